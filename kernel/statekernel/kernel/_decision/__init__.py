"""How a spec decides a command: every rule of a decision, in one package.

Read it in this order:

- :mod:`.decide`: ``decide`` itself, the order of the checks, and the checks that come
  before any transition is tried (unknown event, stale version, no transition from here);
- :mod:`.compile`: building a spec compiles it into one :class:`~.compile.Compiled` object,
  the rows of each ``(state, event)`` key and a deciding function per key;
- :mod:`.reference`: the rules for the rows of a key, written as the plain loop;
- :mod:`.codegen`: the same rules as one template, written out as straight-line code, once as
  the deciding function ``decide`` calls and once as the explorer's probe;
- :mod:`.rejections`: every rejection a decision returns; :mod:`.accepted`: building the
  ``Accepted`` fast; :mod:`.source`: how generated code gets its file name and source for
  tracebacks.

Set ``STATEKERNEL_DECIDE=reference`` before a spec is built to make it decide (and the
explorer probe it) through the plain loop, for debugging.
"""

from .codegen import Irregular
from .compile import SWITCH, Compiled, Decider, Probe, Row, compile_spec, reads_command
from .decide import decide

__all__ = [
    "SWITCH",
    "Compiled",
    "Decider",
    "Irregular",
    "Probe",
    "Row",
    "compile_spec",
    "decide",
    "reads_command",
]
