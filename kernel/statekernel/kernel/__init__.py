"""statekernel.kernel: the pure core.

Declare a workflow as a :class:`Spec` (states, :class:`Transition` rows, :func:`guard` and
:func:`invariant` predicates); :func:`decide` answers every :class:`Command` with
:class:`Accepted` or :class:`Rejected`; :func:`plan` adds idempotency for stores. This package
imports only the standard library and attrs (Hypothesis only inside
``statekernel.kernel.testing``).
"""

from ._codec import PayloadError, UnsupportedType, checker_for, structurer_for, unstructure
from ._decision import decide
from ._errors import (
    InvalidArgument,
    InvalidCommand,
    InvalidIdentifier,
    Problem,
    SpecError,
    StatekernelError,
)
from ._explore import (
    ExploreReport,
    ExploreViolation,
    ExploreWarning,
    explore,
    sample_payloads,
)
from ._input import MAX_INT_DIGITS, MAX_PAYLOAD, MAX_PAYLOAD_DEPTH, check_command
from ._model import (
    CODES,
    Accepted,
    Actor,
    AuditRecord,
    Command,
    Decision,
    Message,
    Rejected,
    Snapshot,
)
from ._plan import MAX_ID_LENGTH, KeyRecord, Plan, check_identifier, plan
from ._serial import (
    decision_from_data,
    decision_to_data,
    record_from_data,
    record_to_data,
    request_fingerprint,
    snapshot_from_data,
    snapshot_to_data,
)
from ._spec import Effect, Guard, Invariant, Spec, Transition, guard, invariant
from ._trace import (
    TRACE_FORMAT,
    VIOLATION_CODES,
    ReplayResult,
    Trace,
    TraceMismatch,
    TraceStep,
    assert_trace_passes,
    replay_trace,
    violation_property,
)

__all__ = [
    "CODES",
    "MAX_ID_LENGTH",
    "MAX_INT_DIGITS",
    "MAX_PAYLOAD",
    "MAX_PAYLOAD_DEPTH",
    "TRACE_FORMAT",
    "VIOLATION_CODES",
    "Accepted",
    "Actor",
    "AuditRecord",
    "Command",
    "Decision",
    "Effect",
    "ExploreReport",
    "ExploreViolation",
    "ExploreWarning",
    "Guard",
    "InvalidArgument",
    "InvalidCommand",
    "InvalidIdentifier",
    "Invariant",
    "KeyRecord",
    "Message",
    "PayloadError",
    "Plan",
    "Problem",
    "Rejected",
    "ReplayResult",
    "Snapshot",
    "Spec",
    "SpecError",
    "StatekernelError",
    "Trace",
    "TraceMismatch",
    "TraceStep",
    "Transition",
    "UnsupportedType",
    "assert_trace_passes",
    "check_command",
    "check_identifier",
    "checker_for",
    "decide",
    "decision_from_data",
    "decision_to_data",
    "explore",
    "guard",
    "invariant",
    "plan",
    "record_from_data",
    "record_to_data",
    "replay_trace",
    "request_fingerprint",
    "sample_payloads",
    "snapshot_from_data",
    "snapshot_to_data",
    "structurer_for",
    "unstructure",
    "violation_property",
]
