"""The store contract every adapter implements, and what they share.

A store binds one spec. ``handle`` loads the entity's snapshot and any record under the
idempotency key inside one transaction, calls the kernel's pure planner, writes the complete
write set (snapshot, audit record, key record, outbox rows) and commits: all of it or none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import attrs

from statekernel.kernel import AuditRecord, Command, Decision, Snapshot, Spec

from ._audit import Mismatch, VerifyReport, explain, verify

__all__ = [
    "Mismatch",
    "OutboxEntry",
    "Store",
    "VerifyReport",
    "explain",
    "stamp",
    "utcnow",
    "verify",
]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the stores' default clock)."""
    return datetime.now(UTC)


def stamp(command: Command, now: datetime) -> Command:
    """``command`` with ``at`` set to ``now`` unless the caller already supplied a time."""
    if command.at is not None:
        return command
    return Command(command.event, command.payload, command.actor, command.expected_version, now)


@attrs.frozen
class OutboxEntry:
    """One outbox row: a message an accepted transition emitted, waiting to be delivered.

    ``id`` orders the outbox; ``version`` is the entity version that emitted it.
    """

    id: int
    entity: str
    version: int
    name: str
    data: Mapping[str, Any]


@runtime_checkable
class Store(Protocol):
    """What the fuzzer, ``verify`` and the CLI need from a store. Stores may add ``reopen()``
    (close and open the database again, as after a crash)."""

    spec: Spec

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        """Decide and, if accepted, commit the transition atomically; return the decision."""
        ...

    def get(self, entity: str) -> Snapshot | None:
        """The entity's current snapshot, or ``None`` if it was never written."""
        ...

    def history(self, entity: str) -> Sequence[AuditRecord]:
        """The entity's audit records, oldest first."""
        ...

    def entities(self) -> Iterable[str]:
        """Every entity id with a stored snapshot, sorted."""
        ...

    def outbox(self, *, after: int = 0, limit: int = 100) -> Sequence[OutboxEntry]:
        """Outbox rows with ``id > after``, oldest first."""
        ...

    def purge_keys(self, older_than: datetime) -> int:
        """Delete idempotency key records first answered before ``older_than``; return how
        many were deleted."""
        ...

    def close(self) -> None:
        """Release the store's connections (the ones it opened itself)."""
        ...
