"""The store contract every adapter implements, and what they share.

A store binds one spec. ``handle`` loads the entity's snapshot and any record under the
idempotency key inside one transaction, calls the kernel's pure planner, writes the complete
write set (snapshot, audit record, key record, outbox rows) and commits: all of it or none.

**Relaying the outbox.** The messages an accepted transition emits are committed to the
outbox with the transition. A relay carries them to other systems::

    while True:
        batch = store.pending_outbox(limit=100)
        for entry in batch:
            publish(entry)                    # a queue, a webhook, another service
        store.mark_delivered(entry.id for entry in batch)
        if not batch:
            wait_a_little()

Delivery is *at least once*: a relay publishes, then marks, so a relay that crashes between
the two publishes those rows again when it restarts, and two relays running at once may both
publish a row. Consumers therefore deduplicate on :attr:`OutboxEntry.dedupe_key`,
``(spec, entity, version, name)``, which is unique per message: each entity version comes from
one transition, and a spec refuses a transition that emits two messages of the same name.
Within one spec ``(entity, version, name)`` is enough.

``pending_outbox`` cannot skip a row, whatever order concurrent transactions commit in: a row
stays pending until it is marked. ``outbox(after=...)`` reads the outbox as history by id and is
not a relay cursor: on PostgreSQL a transaction that commits late can add a row with an id
below one a reader has already seen.

**How the bundled stores are built.** ``MemoryStore``, ``SqliteStore`` and ``PostgresStore``
share one I/O-free core (``_core``): the rows to load, the step that decodes them, plans and
encodes the write set, the decoder of every stored row, the snapshot cache and the rules for
re-running a transaction another writer won. One shell (``_shell``) writes their public
methods once over a small driver (run a transaction, read, and one method per statement), so
all three also offer ``handle_many``, ``explain`` and ``verify``, behave alike and pass one
conformance suite. Each store keeps only what is its own: schema and migrations, SQL text,
its JSON flavour, where its connections come from, and how its driver's errors map to
:mod:`~statekernel.adapters.errors`.
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
    "as_utc",
    "check_limit",
    "explain",
    "outbox_ids",
    "stamp",
    "utcnow",
    "verify",
]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the stores' default clock)."""
    return datetime.now(UTC)


def as_utc(at: datetime) -> datetime:
    """``at`` as an aware time; a naive time is taken as UTC (every store's rule)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def stamp(command: Command, now: datetime) -> Command:
    """``command`` with ``at`` set to ``now`` unless the caller already supplied a time."""
    if command.at is not None:
        return command
    return Command(command.event, command.payload, command.actor, command.expected_version, now)


@attrs.frozen
class OutboxEntry:
    """One outbox row: a message an accepted transition emitted, for another system.

    ``id`` orders a store's outbox (oldest first) and is what :meth:`Store.mark_delivered`
    takes; ``version`` is the entity version whose transition emitted the message; ``spec`` is
    the name of the spec that emitted it. :attr:`dedupe_key` identifies the message for
    consumers, which may receive it more than once.
    """

    id: int
    entity: str
    version: int
    name: str
    data: Mapping[str, Any]
    spec: str

    @property
    def dedupe_key(self) -> tuple[str, str, int, str]:
        """``(spec, entity, version, name)``: unique per message, the same on every
        redelivery. Consumers keep the keys they have processed and drop repeats."""
        return (self.spec, self.entity, self.version, self.name)


def check_limit(limit: int) -> int:
    """``limit`` if it is a positive ``int``; otherwise raise ``ValueError`` (or
    ``TypeError`` for a non-integer)."""
    if type(limit) is not int:
        raise TypeError(f"limit must be an int, not {type(limit).__name__}")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return limit


_ID_RANGE = range(-(2**63), 2**63)


def outbox_ids(ids: Iterable[int]) -> frozenset[int]:
    """The distinct outbox ids in ``ids`` that a 64-bit id column can hold (others name no
    row); raise ``TypeError`` naming any that is not an ``int`` (``bool`` included), before
    anything is written."""
    if isinstance(ids, str | bytes):
        raise TypeError("ids must be an iterable of outbox ids (ints), not a string")
    found = set()
    for i in ids:
        if type(i) is not int:
            raise TypeError(f"outbox ids are ints; got {i!r} ({type(i).__name__})")
        if i in _ID_RANGE:
            found.add(i)
    return frozenset(found)


@runtime_checkable
class Store(Protocol):
    """What the fuzzer, ``verify``, the CLI and an outbox relay need from a store. Stores may
    add ``reopen()`` (close and open the database again, as after a crash).

    A store answers a command it refuses with a :class:`~statekernel.kernel.Rejected`
    decision, as :func:`~statekernel.kernel.decide` does; unlike ``decide`` it raises when it
    cannot do its own job, always one of the typed errors of :mod:`statekernel.adapters.errors`
    (or ``InvalidIdentifier``, ``TypeError``, ``ValueError`` for a malformed argument)."""

    spec: Spec

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        """Decide and, if accepted, commit the transition atomically; return the decision.

        A retry under an idempotency key already answered returns the first answer, equal to
        it, with ``replayed`` true (an HTTP API's ``Idempotency-Replayed``)."""
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
        """Outbox rows with ``id > after``, oldest first, delivered or not: the outbox as
        history.

        Not a relay cursor: where ids are assigned at insert but rows become visible at
        commit (PostgreSQL), a transaction that commits late can add a row with an id below
        one already read, and a reader polling with ``after=<last id seen>`` skips it. Relay
        with :meth:`pending_outbox` and :meth:`mark_delivered` instead."""
        ...

    def pending_outbox(self, *, limit: int = 100) -> Sequence[OutboxEntry]:
        """Outbox rows not yet marked delivered, oldest first (by id), at most ``limit``.

        A row is pending from the commit of its transition until :meth:`mark_delivered`
        marks it, so a relay that publishes what this returns and then marks it misses no
        row, whatever order transactions commit in. Rows of rejected commands, replayed
        keys and rolled-back writes never appear (they were never written)."""
        ...

    def mark_delivered(self, ids: Iterable[int]) -> int:
        """Mark the outbox rows with these ids delivered (at the store's clock) and return
        how many changed. Idempotent: ids already delivered, unknown or of another spec are
        left alone and not counted. Call it after publishing, never before: delivery is at
        least once (see the module documentation)."""
        ...

    def purge_keys(self, older_than: datetime) -> int:
        """Delete idempotency key records first answered before ``older_than``; return how
        many were deleted."""
        ...

    def close(self) -> None:
        """Release the store's connections (the ones it opened itself)."""
        ...
