"""The values that flow through the kernel: commands in, decisions out.

Everything here is a frozen attrs class. Time, ids and actors arrive on the :class:`Command`;
the kernel has no clock and no randomness of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Final, Literal

import attrs

__all__ = [
    "CODES",
    "Accepted",
    "Actor",
    "AuditRecord",
    "Command",
    "Decision",
    "Message",
    "Rejected",
    "Snapshot",
]

CODES: Final = (
    "unknown_event",
    "invalid_transition",
    "forbidden",
    "invalid_payload",
    "version_conflict",
    "guard_rejected",
    "invariant_violated",
    "spec_fault",
    "idempotency_mismatch",
    "payload_too_large",
    "context_too_large",
)
"""Every stable rejection code: the first eight in the order ``decide`` checks them, then the
planner's (``idempotency_mismatch``; ``payload_too_large``, a payload larger than the store's
limit, refused before it is decided) and the stores' (``context_too_large``: the accepted
transition would store a context larger than the store's limit). The planner also answers a
payload that is not plain data within bounds ``invalid_payload`` before deciding it."""


def _roles(value: Iterable[str] | str) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset((value,))
    return frozenset(value)


@attrs.frozen
class Actor:
    """Who sends a command, and the roles they hold (``Actor("ann", roles=["reviewer"])``)."""

    id: str
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_roles)

    def __repr__(self) -> str:
        return f"Actor({self.id!r}, roles={sorted(self.roles)!r})"


@attrs.frozen
class Command:
    """A request to fire ``event`` on one entity.

    ``payload`` is plain data (a mapping, as decoded from JSON) or an instance of the
    transition's payload type. ``expected_version`` makes the command a compare-and-swap: it is
    rejected with ``version_conflict`` unless the entity is at exactly that version. ``at`` is
    the time the command happened, supplied by the caller (the kernel never reads a clock).
    """

    event: str
    payload: object = None
    actor: Actor | None = None
    expected_version: int | None = None
    at: datetime | None = None


@attrs.frozen
class Snapshot:
    """An entity at one moment: its state, its context and how many transitions it has had."""

    state: str
    context: Any
    version: int = 0


@attrs.frozen
class Message:
    """An effect: a named message for another system, emitted by an accepted transition.

    Stores write it to their outbox in the same transaction as the transition.
    """

    name: str
    data: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class AuditRecord:
    """What an accepted command did, as stored in the audit trail.

    ``payload`` is the structured payload (an instance of the transition's payload type, or
    ``None``). ``version`` is the entity's version *after* the transition, so the n-th record
    of an entity has version n.
    """

    version: int
    event: str
    payload: Any
    actor: Actor | None
    from_state: str
    to_state: str
    at: datetime | None = None
    idempotency_key: str | None = None


@attrs.frozen
class Accepted:
    """The command is valid: here is the new snapshot, its audit record and its effects.

    ``replayed`` is true when a store answered from the record under the idempotency key
    (a retry: nothing was written this time). It is not part of equality, so a retry's answer
    equals the first one; ``decide`` itself always says ``False``.
    """

    accepted: ClassVar[Literal[True]] = True
    snapshot: Snapshot
    record: AuditRecord
    effects: tuple[Message, ...] = ()
    replayed: bool = attrs.field(default=False, eq=False, repr=False, kw_only=True)


@attrs.frozen
class Rejected:
    """The command is refused; nothing changes.

    ``code`` is one of :data:`CODES`; ``message`` is for humans; ``details`` holds structured
    fields (the field at fault, the guard's name, the allowed events...). For ``spec_fault``,
    ``error`` is the exception user code raised. ``replayed`` is true when a store answered
    from the record under the idempotency key, as for :class:`Accepted`. Neither is part of
    equality.
    """

    accepted: ClassVar[Literal[False]] = False
    code: str
    message: str
    details: Mapping[str, Any] = attrs.field(factory=dict)
    error: BaseException | None = attrs.field(default=None, eq=False, repr=False)
    replayed: bool = attrs.field(default=False, eq=False, repr=False, kw_only=True)


Decision = Accepted | Rejected
"""What :func:`~statekernel.kernel.decide` returns."""


_ACCEPTED_PARTS: Final = (
    ("acc_snap", Snapshot, {"state": "target", "context": "context", "version": "version"}),
    (
        "acc_rec",
        AuditRecord,
        {
            "version": "version",
            "event": "event",
            "payload": "payload",
            "actor": "actor",
            "from_state": "source",
            "to_state": "target",
            "at": "at",
            "idempotency_key": "None",
        },
    ),
    (
        "acc",
        Accepted,
        {"snapshot": "acc_snap", "record": "acc_rec", "effects": "effects", "replayed": "False"},
    ),
)


def _filler(cls: type) -> type | None:
    """A private subclass of the frozen ``cls`` for building its instances quickly, or ``None``
    where the interpreter does not allow it.

    A frozen attrs class forbids ``obj.field = value``, so its own ``__init__`` (and any code
    filling its slots from outside) goes through a bound ``object.__setattr__`` or the slot
    descriptor's ``__set__``: a generic call per field. The filler adds no slots and no state
    and lets plain attribute assignment through, the interpreter's fastest store. An instance
    is created as a filler, its fields are assigned, and then its ``__class__`` is set to
    ``cls`` (allowed because the two classes have the same layout): from then on it is an
    ordinary, frozen ``cls`` instance, equal to and indistinguishable from one built by
    ``cls(...)``. Fillers never escape the generated code.
    """
    namespace = {
        "__slots__": (),
        "__init__": object.__init__,
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
        "__module__": __name__,
    }
    filler = type(f"_{cls.__name__}Filler", (cls,), namespace)
    try:
        obj = filler()
        for a in attrs.fields(cls):
            setattr(obj, a.name, None)
        obj.__class__ = cls
    except TypeError:  # the interpreter refuses the __class__ assignment
        return None
    return filler if type(obj) is cls else None


def accepted_source(values: Mapping[str, str]) -> tuple[list[str], dict[str, Any]]:
    """Straight-line source that builds an :class:`Accepted`, its snapshot and its audit record
    into the local ``acc``: the kernel's hot path, where an attrs ``__init__`` per object and a
    generic call per field would cost more than the rest of a decision.

    ``values`` maps ``target``, ``context``, ``version``, ``event``, ``payload``, ``actor``,
    ``source``, ``at`` and ``effects`` to names (several are read twice) in the code the lines
    go into. Returns the lines and the namespace they need; their own names start with ``acc``
    or ``set_acc``. Each object is built through its class's :func:`_filler` (plain attribute
    stores, then the ``__class__`` assignment) or, where the interpreter has no fillers, by
    filling its slots through their descriptors.
    """
    namespace: dict[str, Any] = {"acc_new": object.__new__}
    values = {
        **values,
        "acc_snap": "acc_snap",
        "acc_rec": "acc_rec",
        "None": "None",
        "False": "False",
    }
    lines = []
    for var, cls, fields in _ACCEPTED_PARTS:
        assert tuple(a.name for a in attrs.fields(cls)) == tuple(fields)
        namespace[f"{var}_cls"] = cls
        filler = _FILLERS[cls]
        if filler is not None:
            namespace[f"{var}_filler"] = filler
            lines.append(f"{var} = {var}_filler()")
            lines += [f"{var}.{name} = {values[value]}" for name, value in fields.items()]
            lines.append(f"{var}.__class__ = {var}_cls")
        else:
            lines.append(f"{var} = acc_new({var}_cls)")
            for name, value in fields.items():
                namespace[f"set_{var}_{name}"] = cls.__dict__[name].__set__
                lines.append(f"set_{var}_{name}({var}, {values[value]})")
    return lines, namespace


_FILLERS: Final = {cls: _filler(cls) for _, cls, _ in _ACCEPTED_PARTS}


def _accepted_builder() -> Any:
    """One function that builds an :class:`Accepted` with its snapshot and audit record in a
    single call, filling the slots directly."""
    params = ("target", "context", "version", "event", "payload", "actor", "source", "at")
    lines, namespace = accepted_source({p: p for p in (*params, "effects")})
    source = [f"def make({', '.join(params)}, effects):", *("    " + ln for ln in lines)]
    exec("\n".join([*source, "    return acc"]), namespace)
    return namespace["make"]


make_accepted = _accepted_builder()
"""``make_accepted(target, context, version, event, payload, actor, source, at, effects)``:
the :class:`Accepted` of a transition from ``source`` to ``target``, without a key."""
