"""The synchronous shell: every public store method, written once over a tiny driver.

:class:`SyncStore` implements the store contract (:class:`~.base.Store`) plus ``handle_many``,
``explain`` and ``verify`` by driving the I/O-free :mod:`._core`. A store subclasses it and
supplies only its driver: how to run one transaction (:meth:`SyncStore._run`) and a read
(:meth:`SyncStore._reading`, and :meth:`SyncStore._read` where a read may run again), and one
method per statement (load, write, read rows, mark,
purge), each handed the connection ``C`` the transaction gave it. An asynchronous store is the
same shape with ``await`` in these few places: the steps, the encoder, the decoder and the
retry rules all stay in the core.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Generic, Self, TypeVar

from statekernel.kernel import AuditRecord, Command, Decision, Snapshot, Spec, check_identifier

from ._audit import VerifyReport, explain, verify
from ._core import Conflict, Core, KeyRow, OutboxRow, Retries, SnapshotRow, Writes, check_requests
from .base import OutboxEntry, check_after, check_cutoff, check_limit, outbox_ids, stamp
from .errors import CommitOutcomeUnknown, SchemaMismatch

__all__ = ["SyncStore"]

C = TypeVar("C")
T = TypeVar("T")


class SyncStore(Generic[C]):
    """The public methods of a synchronous store, over the driver methods below.

    A subclass sets ``spec``, ``_core``, ``_clock`` and ``_retries`` (and
    ``_delivery_problem`` while its outbox lacks the delivery column) and implements every
    method that raises ``NotImplementedError`` here.
    """

    spec: Spec
    _core: Core
    _clock: Callable[[], datetime]
    _retries: Retries = Retries()
    _delivery_problem: str | None = None
    _random: random.Random = random.Random()

    # -- the driver: what a store implements -------------------------------------------------

    def _run(self, work: Callable[[C, bool], T], rerun: bool, doing: Callable[[], str]) -> T:
        """Run ``work(conn, rerun)`` in one write transaction and commit; roll back if it
        raises. Driver errors become store errors here, or :class:`~._core.Conflict` for
        those that may re-run the transaction. ``doing`` describes the work (called only on
        failure)."""
        raise NotImplementedError

    def _reading(self, doing: str, *, consistent: bool = False) -> AbstractContextManager[C]:
        """A connection to read with. ``consistent``: one snapshot of the database until the
        block ends, which reads inside it (on this thread) share."""
        raise NotImplementedError

    def _read(self, doing: str, work: Callable[[C], T], *, consistent: bool = False) -> T:
        """``work(conn)`` on a connection from :meth:`_reading`. Reading changes nothing, so
        a driver may run ``work`` again on a fresh connection when the one it used broke."""
        with self._reading(doing, consistent=consistent) as conn:
            return work(conn)

    def _load(
        self, conn: C, entity: str, key: str | None, lock: bool
    ) -> tuple[SnapshotRow | None, KeyRow | None]:
        """The entity's snapshot row and the row kept under ``key`` (the key's slot, see
        :meth:`~._core.Core.slot`; ``lock``: a re-run, which may lock the snapshot row so as
        not to lose again)."""
        raise NotImplementedError

    def _write(self, conn: C, writes: Writes) -> None:
        """Write every row of ``writes``; raise :class:`~._core.Conflict` (or, where no other
        writer can be at work, :class:`~.errors.StoreCorrupt`) when the compare-and-swap
        touches no row. Tell the core's snapshot cache what the database now holds."""
        raise NotImplementedError

    def _snapshot_row(self, conn: C, entity: str) -> SnapshotRow | None:
        raise NotImplementedError

    def _history(self, conn: C, entity: str) -> Sequence[AuditRecord]:
        """The entity's audit records, oldest first (decoded with the core)."""
        raise NotImplementedError

    def _entity_ids(self, conn: C) -> Iterable[str]:
        raise NotImplementedError

    def _outbox_rows(self, conn: C, after: int, limit: int) -> Iterable[OutboxRow]:
        raise NotImplementedError

    def _pending_rows(self, conn: C, limit: int) -> Iterable[OutboxRow]:
        raise NotImplementedError

    def _mark(self, conn: C, ids: list[int], at: datetime) -> int:
        """Mark the undelivered rows among ``ids`` (sorted, distinct) delivered at ``at``."""
        raise NotImplementedError

    def _purge(self, conn: C, older_than: datetime) -> int:
        raise NotImplementedError

    # -- the transaction script --------------------------------------------------------------

    def _transact(
        self,
        work: Callable[[C, bool], T],
        doing: Callable[[], str],
        keys: Sequence[str | None] = (),
    ) -> T:
        """Run ``work(conn, rerun)`` in a transaction, again (``rerun=True``) after each
        :class:`~._core.Conflict` while :attr:`_retries` allows. ``keys`` are the idempotency
        keys of the requests the work handles (none: work that is harmless to repeat), for
        the advice a :class:`~.errors.CommitOutcomeUnknown` gives."""
        rerun = 0
        while True:
            try:
                return self._run(work, rerun > 0, doing)
            except Conflict as exc:
                if rerun >= self._retries.limit:
                    raise self._retries.exhausted(exc, doing()) from (exc.__cause__ or exc)
            except CommitOutcomeUnknown as exc:
                raise CommitOutcomeUnknown(f"{exc}; {_advice(keys)}") from (exc.__cause__ or exc)
            rerun += 1
            time.sleep(self._retries.delay(rerun, self._random))

    def _step(
        self, conn: C, entity: str, command: Command, key: str | None, lock: bool
    ) -> Decision:
        core = self._core
        slot = core.slot(entity, command, key)
        decision, writes = core.step(
            entity, command, key, *self._load(conn, entity, slot, lock), slot
        )
        if writes is not None:
            self._write(conn, writes)
        return decision

    # -- the store contract --------------------------------------------------------------------

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        """Decide ``command`` on ``entity`` and commit the plan's whole write set in one
        transaction; return the decision (for a key already answered, the first answer,
        marked ``replayed``). Raises :class:`~statekernel.kernel.InvalidIdentifier` for a bad
        entity id or key, :class:`~statekernel.kernel.InvalidCommand` for a malformed command
        (both are :class:`~statekernel.kernel.InvalidArgument`) and a
        :class:`~.errors.StoreError` when storing fails; nothing is written in any of these
        cases (but see :class:`~.errors.CommitOutcomeUnknown`). A payload a client got wrong
        is not an error but a rejection (``invalid_payload``, ``payload_too_large``)."""
        check_identifier("entity id", entity)
        if idempotency_key is not None:
            check_identifier("idempotency key", idempotency_key)
        command = stamp(command, self._clock())
        return self._transact(
            lambda conn, rerun: self._step(conn, entity, command, idempotency_key, rerun),
            lambda: f"handling {command.event!r} on {entity!r}",
            (idempotency_key,),
        )

    def handle_many(self, requests: Iterable[tuple[str, Command, str | None]]) -> list[Decision]:
        """Handle several ``(entity, command, idempotency_key)`` requests in one transaction,
        in order, each seeing the writes of those before it: the decisions are the ones
        :meth:`handle` would give one by one, but all the writes commit together or none do
        (one commit for the whole batch). Every request is checked to be such a triple, and
        every id and key checked, before anything runs; a malformed command rolls the whole
        batch back. Commands without a time all get the same one."""
        items = check_requests(requests)
        if not items:
            return []
        now = self._clock()
        items = [(entity, stamp(command, now), key) for entity, command, key in items]
        return self._transact(
            lambda conn, rerun: [self._step(conn, e, c, k, rerun) for e, c, k in items],
            lambda: f"handling a batch of {len(items)}",
            [k for _, _, k in items],
        )

    def get(self, entity: str) -> Snapshot | None:
        """The entity's current snapshot, or ``None`` if it was never written."""
        check_identifier("entity id", entity)
        row = self._read(f"reading {entity!r}", lambda conn: self._snapshot_row(conn, entity))
        return None if row is None else self._core.snapshot(entity, row)

    def history(self, entity: str) -> Sequence[AuditRecord]:
        """The entity's audit records, oldest first."""
        check_identifier("entity id", entity)
        return self._read(
            f"reading the history of {entity!r}", lambda conn: tuple(self._history(conn, entity))
        )

    def entities(self) -> list[str]:
        """Every entity id with a stored snapshot, sorted (by code point)."""
        return self._read("listing entities", lambda conn: sorted(self._entity_ids(conn)))

    def outbox(self, *, after: int = 0, limit: int = 100) -> list[OutboxEntry]:
        """Outbox rows with ``id > after``, oldest first, at most ``limit``, delivered or
        not: the outbox as history, not a relay cursor (see :mod:`~.base`); a relay uses
        :meth:`pending_outbox` and :meth:`mark_delivered`. ``after`` and ``limit`` are ints
        (:class:`~statekernel.kernel.InvalidArgument` otherwise, or for a ``limit`` below 1);
        a negative ``after`` reads from the first row."""
        limit, after = check_limit(limit), check_after(after)
        rows = self._read(
            "reading the outbox", lambda conn: list(self._outbox_rows(conn, after, limit))
        )
        return [self._core.entry(row) for row in rows]

    def pending_outbox(self, *, limit: int = 100) -> list[OutboxEntry]:
        """Outbox rows not yet marked delivered, oldest first (by id), at most ``limit``."""
        limit = check_limit(limit)
        self._require_delivery()
        rows = self._read(
            "reading the pending outbox", lambda conn: list(self._pending_rows(conn, limit))
        )
        return [self._core.entry(row) for row in rows]

    def mark_delivered(self, ids: Iterable[int]) -> int:
        """Mark these outbox rows delivered (at the store's clock, in one transaction) and
        return how many changed; rows already delivered, unknown ids and other specs' rows
        are left alone. Marking again is harmless: delivery is at least once."""
        wanted = sorted(outbox_ids(ids))
        self._require_delivery()
        if not wanted:
            return 0
        at = self._clock()
        return self._transact(
            lambda conn, rerun: self._mark(conn, wanted, at),
            lambda: f"marking {len(wanted)} outbox row(s) delivered",
        )

    def purge_keys(self, older_than: datetime) -> int:
        """Delete the key records first answered before ``older_than`` (a naive time is taken
        as UTC) and return how many were deleted. After a purge a retry of such a key is a
        new request, so keep keys at least as long as any client may retry."""
        check_cutoff(older_than)
        return self._transact(
            lambda conn, rerun: self._purge(conn, older_than),
            lambda: "purging idempotency keys",
        )

    def explain(self, entity: str) -> str:
        """Every transition of ``entity`` with the context fields it changed
        (:func:`statekernel.adapters.base.explain`), read from one snapshot."""
        return self._read(
            f"explaining {entity!r}", lambda conn: explain(self, entity), consistent=True
        )

    def verify(self) -> VerifyReport:
        """Replay every entity's audit log through the kernel and report every mismatch with
        its stored snapshot (:func:`statekernel.adapters.base.verify`). Everything is read
        from one snapshot, so concurrent writers cannot cause false alarms."""
        return self._read("verifying", lambda conn: verify(self), consistent=True)

    def _require_delivery(self) -> None:
        if self._delivery_problem is not None:
            raise SchemaMismatch(self._delivery_problem)

    def __enter__(self) -> Self:
        """``with Store(...) as store:`` returns the store itself."""
        return self

    def __exit__(self, *exc: object) -> None:
        """:meth:`close` the store when the ``with`` block ends, however it ends."""
        self.close()

    def close(self) -> None:
        """Release the store's connections (the ones it opened itself)."""
        raise NotImplementedError


def _advice(keys: Sequence[str | None]) -> str:
    """What to do after a commit whose outcome is unknown, for requests under ``keys``."""
    if not keys:
        return "running it again is harmless"
    if all(k is not None for k in keys):
        return (
            "retry with the same idempotency key: the store answers from the key record if "
            "the write landed"
        )
    if any(k is not None for k in keys):
        return (
            "retry the requests that carried an idempotency key with the same key; for the "
            "others, read their entity's history first, since running them again may apply "
            "them twice"
        )
    return (
        "the request carried no idempotency key, so read the entity's history before sending "
        "it again: running it again may apply it twice"
    )
