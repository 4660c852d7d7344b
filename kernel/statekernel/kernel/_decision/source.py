"""Generated code a person can debug: every function the kernel generates goes through
:func:`define`.

Each gets its own file name (``<statekernel enrollment:draft/attach>``) registered in
:mod:`linecache`, so a traceback through it shows the line and :func:`inspect.getsource`
returns its source, and a qualified name saying what it decides. As attrs does it, two
functions with the same file name and the same source share the entry; a different source
under a taken name gets a numbered one (``<statekernel enrollment:draft/attach-1>``).
User-supplied values (states, events, functions) only enter the source as names bound in the
function's namespace, never as text; they appear in the file name and the qualified name,
which are only labels.
"""

from __future__ import annotations

import linecache
from typing import Any

__all__ = ["define", "indent"]


def define(
    lines: list[str], namespace: dict[str, Any], *, name: str, label: str, doc: str, module: str
) -> Any:
    """Compile ``lines`` (one ``def name(...)``) in ``namespace`` and return the function,
    with the file name ``<statekernel {label}>``, the qualified name ``name[label]``, the
    docstring ``doc`` and the module ``module`` (the module that generated it)."""
    source = "\n".join(lines) + "\n"
    base = f"<statekernel {label}>"
    filename = base
    count = 1
    while True:
        entry = (len(source), None, source.splitlines(True), filename)
        if linecache.cache.setdefault(filename, entry) == entry:
            break
        filename = f"{base[:-1]}-{count}>"
        count += 1
    namespace["__name__"] = module
    exec(compile(source, filename, "exec"), namespace)
    fn = namespace[name]
    fn.__qualname__ = f"{name}[{label}]"
    fn.__code__ = fn.__code__.replace(co_qualname=fn.__qualname__)
    fn.__doc__ = doc
    return fn


def indent(lines: list[str], width: int = 4) -> list[str]:
    """``lines``, each indented by ``width`` spaces."""
    return [" " * width + line for line in lines]
