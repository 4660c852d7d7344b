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
