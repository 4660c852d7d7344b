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

**What a store checks, and what it answers.** Every command is checked once, by the kernel's
planner, which every store plans through, and every other argument once, by the shell the
bundled stores share, so the stores agree: an argument or command envelope the calling code
got wrong (an ``at`` that is not a ``datetime``, an actor id that is not a
string, a ``limit`` that is not an ``int``...) raises
:class:`~statekernel.kernel.InvalidArgument` (a ``TypeError`` and a ``ValueError``) before
anything is read or written; a payload a client got wrong is answered with a rejection, like
every refusal of :func:`~statekernel.kernel.decide`. Neither ever comes back as
``spec_fault``, which means the spec is wrong.

**Size limits.** Every store takes ``max_payload`` and ``max_context`` (characters; default
1 MiB each, :data:`~statekernel.kernel.MAX_PAYLOAD` and :data:`MAX_CONTEXT`; ``None``: no
limit). A payload whose canonical JSON (compact, ASCII) is longer than ``max_payload`` is
answered ``payload_too_large`` before it is decided, at no cost of copies; a payload nested
deeper than :data:`~statekernel.kernel.MAX_PAYLOAD_DEPTH` levels, with an integer of more than
:data:`~statekernel.kernel.MAX_INT_DIGITS` digits or a float JSON cannot hold is
``invalid_payload``. An accepted transition whose new context encodes to more than
``max_context`` characters of JSON (as the store encodes it: ASCII text on the memory and
SQLite stores, UTF-8 ``jsonb`` on PostgreSQL) is answered ``context_too_large``. None of these
writes anything, not even under the idempotency key (a retry runs again, so raising a limit
takes effect at once). Over HTTP, ``payload_too_large`` is 413 Content Too Large.

**Key scopes.** By default idempotency keys are scoped by spec name: one namespace per
workflow, so a key reused on another entity is ``idempotency_mismatch`` (which names the key
but not the other entity, whose existence is not the caller's business). ``key_scope``, chosen
when the store is made, narrows it, as the IETF Idempotency-Key draft recommends for keys that
clients pick: ``"actor"`` (each actor id its own namespace; commands without an actor share
the spec's), ``"entity"`` (each entity its own) or a :data:`KeyScope` function of the entity
id and the command, for tenants (``key_scope=lambda entity, command: entity.split("/")[0]``).
The audit trail keeps the key as the client sent it; ``purge_keys`` purges every namespace.
Change the scope of a store with data only with care: records kept under the old scope are not
found under the new one, so a retry across the change runs again.

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

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol, runtime_checkable

import attrs

from statekernel.kernel import (
    AuditRecord,
    Command,
    Decision,
    InvalidArgument,
    InvalidCommand,
    Snapshot,
    Spec,
)

from ._audit import Mismatch, VerifyReport, explain, verify

__all__ = [
    "MAX_CONTEXT",
    "KeyScope",
    "Mismatch",
    "OutboxEntry",
    "Store",
    "VerifyReport",
    "as_utc",
    "check_after",
    "check_cutoff",
    "check_limit",
    "explain",
    "outbox_ids",
    "stamp",
    "utcnow",
    "verify",
]


MAX_CONTEXT: Final = 1 << 20
"""The default limit on a stored context (``max_context``): 1 MiB of JSON text, as the store
encodes it."""

KeyScope = Callable[[str, Command], str]
"""``(entity id, command) -> namespace``: the namespace of idempotency keys a request's key
belongs to, within its spec's (``""``: the spec's own). See ``key_scope`` above."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the stores' default clock)."""
    return datetime.now(UTC)


def as_utc(at: datetime) -> datetime:
    """``at`` as an aware time; a naive time is taken as UTC (every store's rule)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def stamp(command: Command, now: datetime) -> Command:
    """``command`` with ``at`` set to ``now`` unless the caller already supplied a time
    (:class:`~statekernel.kernel.InvalidCommand` if ``command`` is not a ``Command``; the
    planner checks the rest of it)."""
    if not isinstance(command, Command):
        raise InvalidCommand("command", command, f"must be a Command, not {type(command).__name__}")
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


_ROW_IDS = 2**63 - 1
"""The largest id (and row count) a 64-bit column holds: bigger limits and cursors are cut to
it, so every store reads the same rows for them."""


def check_limit(limit: int) -> int:
    """``limit`` if it is an ``int`` (not a ``bool``) of at least 1, cut to the largest row
    count a store can hold; otherwise :class:`~statekernel.kernel.InvalidArgument` (a
    ``TypeError`` and a ``ValueError``)."""
    if type(limit) is not int:
        raise InvalidArgument("limit", limit, f"must be an int, not {type(limit).__name__}")
    if limit < 1:
        raise InvalidArgument("limit", limit, "must be at least 1")
    return min(limit, _ROW_IDS)


def check_after(after: int) -> int:
    """An outbox cursor (``after``: rows with a larger id) if it is an ``int`` (not a
    ``bool``), cut to the range of ids (a negative cursor reads from the first row, one past
    the largest id reads nothing); otherwise :class:`~statekernel.kernel.InvalidArgument`."""
    if type(after) is not int:
        raise InvalidArgument("after", after, f"must be an int, not {type(after).__name__}")
    return min(max(after, 0), _ROW_IDS)


def check_cutoff(older_than: datetime) -> datetime:
    """A purge cutoff if it is a ``datetime`` (a naive one is taken as UTC), otherwise
    :class:`~statekernel.kernel.InvalidArgument`."""
    if not isinstance(older_than, datetime):
        raise InvalidArgument(
            "older_than", older_than, f"must be a datetime, not {type(older_than).__name__}"
        )
    return older_than


_ID_RANGE = range(-(2**63), 2**63)


def outbox_ids(ids: Iterable[int]) -> frozenset[int]:
    """The distinct outbox ids in ``ids`` that a 64-bit id column can hold (others name no
    row); raise :class:`~statekernel.kernel.InvalidArgument` naming any that is not an
    ``int`` (``bool`` included), or for ``ids`` that is not an iterable, before anything is
    written."""
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        raise InvalidArgument("ids", ids, "must be an iterable of outbox ids (ints)")
    found = set()
    for i in ids:
        if type(i) is not int:
            raise InvalidArgument("outbox id", i, f"must be an int, not {type(i).__name__}")
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
    (or a :class:`~statekernel.kernel.InvalidArgument`, which is both a ``TypeError`` and a
    ``ValueError``, for a malformed argument or command)."""

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
