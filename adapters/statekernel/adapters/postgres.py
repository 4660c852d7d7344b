"""``PostgresStore``: the store for PostgreSQL (and wire-compatible distributed SQL engines).

Needs the ``postgres`` extra (psycopg 3 and psycopg-pool); only this module and its private
helpers (``_postgres_sql``: table layout, statements, the ``jsonb`` flavour, the error map;
``_postgres_sources``: connections) import them.

Schema (in ``schema``; several stores, one per spec, may share it)::

    meta       (spec PK, spec_version, format)          which spec version wrote the data
    snapshots  (spec, entity) PK, state, context jsonb, version
    audit      (spec, entity, version) PK, event, from_state, to_state, idempotency_key, at,
               record jsonb                              the exact audit record
    keys       (scope, key) PK, entity, fingerprint, decision jsonb, at
    outbox     id identity PK, spec, entity, version, name, data jsonb, delivered_at
               (partial index on the rows not yet delivered)

Opening a store reads the catalog first; only if something is missing does it create it, with
idempotent DDL under an advisory lock (an existing schema gains the columns and indexes of later
releases in place: ``ADD COLUMN IF NOT EXISTS``, ``CREATE INDEX IF NOT EXISTS``). With
``create=False`` it never writes: it raises
:class:`~statekernel.adapters.errors.SchemaMissing` when the tables or the spec's data are
absent, and reads a schema still lacking later columns (everything but the outbox relay methods
works on it).

One command (or one ``handle_many`` batch) is one READ COMMITTED transaction, driven by the
store core every store shares (see :mod:`statekernel.adapters.base`): load the snapshot and
the key record, plan, then write with a version compare-and-swap (``UPDATE ... WHERE
version = <loaded>``, or ``INSERT ... ON CONFLICT DO NOTHING`` for a new entity; the key row
likewise). If the swap
touches no row (or a unique constraint fires) another writer won, so the whole transaction
runs again: the next plan may be the stored answer under the key, or a ``version_conflict``
decided by the kernel. Serialization failures (40001) and deadlocks (40P01) also re-run the
whole transaction. Re-runs are bounded and back off exponentially with jitter; when they run
out the store raises :class:`~statekernel.adapters.errors.StoreBusy`. Nothing else is
retried. The hot path is plain SQL: no advisory locks, no LISTEN/NOTIFY. A re-run loads the
snapshot ``FOR UPDATE``, so a writer that lost once queues on the row instead of racing again.
The snapshot write returns the context as ``jsonb`` gives it back, so the next load of an
unchanged row reuses the decoded snapshot instead of decoding it again.

If the connection breaks during ``COMMIT`` the store does not guess. On a fresh connection it
repeats the transaction's first compare-and-swap in a transaction it always rolls back (so it
waits for any transaction still holding the rows) and then reads the key record, or the audit
row at the new version: if they hold exactly what this transaction wrote, it landed (all of
it: a transaction is atomic) and its answers stand; otherwise it certainly did not, and the
command runs again. If it cannot find out,
:class:`~statekernel.adapters.errors.CommitOutcomeUnknown`. ``verify`` and ``explain`` read
from one ``REPEATABLE READ`` snapshot.

Values are stored as JSON text cast to ``jsonb``. Integers of any size round-trip exactly
(``jsonb`` keeps numbers as ``numeric``); floats are written in positional notation so that
they come back as floats (``-0.0`` comes back as ``0.0``, which is equal). ``NaN``, the
infinities, and strings holding NUL or lone surrogates cannot be stored in ``jsonb``: such a
command is refused with :class:`~statekernel.adapters.errors.StoreDataError` and nothing is
written, as on every store is a context that would not read back equal (a value of the wrong
type in a field, say: :meth:`~statekernel.kernel.Spec.context_problem`).

Outbox ids come from an identity column: they order rows, but a transaction that commits late
can add a row with an id below one a reader has already seen, so ``outbox(after=...)`` is for
reading history, not for relaying. A relay uses :meth:`PostgresStore.pending_outbox` and
:meth:`PostgresStore.mark_delivered`: a row stays pending until it is marked, whenever its
transaction commits (see :mod:`statekernel.adapters.base`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from statekernel.kernel import MAX_PAYLOAD, AuditRecord, InvalidArgument, Spec

from ._core import (
    MAX_CONTEXT,
    Conflict,
    Core,
    KeyRow,
    KeyScope,
    OutboxRow,
    Retries,
    SnapshotRow,
    Writes,
)
from ._postgres_sources import (
    Conn,
    ConnectionSource,
    DsnSource,
    PoolSource,
    Source,
    begin,
    broken,
    commit,
    rollback,
)
from ._postgres_sql import (
    DDL,
    FORMAT,
    INDEXES,
    JSONB,
    RETRYABLE,
    STATEMENTS,
    TABLES,
    Found,
    ambiguous,
    audit_landed,
    conflict,
    key_landed,
    lock_id,
    render,
    translate,
    utc,
)
from ._shell import SyncStore
from .base import utcnow
from .errors import CommitOutcomeUnknown, SchemaMismatch, SchemaMissing, StoreUnavailable

__all__ = ["FORMAT", "PostgresStore"]

_T = TypeVar("_T")
_LONGEST_TIMEOUT = 2**31 // 1000  # seconds: PostgreSQL keeps timeouts as int milliseconds


def _seconds(what: str, value: float | None) -> float | None:
    if value is None:
        return None
    if type(value) not in (int, float) or not 0.001 <= value <= _LONGEST_TIMEOUT:
        raise InvalidArgument(
            what, value, f"must be seconds between 0.001 and {_LONGEST_TIMEOUT}, or None"
        )
    return float(value)


class _Tx:
    """One transaction on ``conn``: what it wrote (for COMMIT and the lost-COMMIT probe)."""

    __slots__ = ("conn", "writes", "wrote")

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.writes: list[Writes] = []
        self.wrote = False


class PostgresStore(SyncStore[_Tx]):
    """A store for ``spec`` in PostgreSQL.

    ``target`` is a DSN (the store opens and closes its own connections), a
    ``psycopg.Connection`` (used one command at a time; the caller closes it) or a
    ``psycopg_pool.ConnectionPool`` (the caller opens and closes it). ``schema`` names the
    PostgreSQL schema holding the tables; ``max_retries`` bounds the re-runs of one command's
    transaction (lost compare-and-swap, 40001, 40P01); ``connect_timeout`` (seconds) bounds
    connecting and waiting for a pool. ``clock`` stamps commands that carry no ``at`` and
    outbox rows marked delivered. ``create=False`` opens an existing schema without creating
    or changing anything (for readers such as ``statekernel verify``).

    ``lock_timeout`` and ``statement_timeout`` (seconds; ``None`` leaves the server's setting)
    bound every statement of every transaction the store runs, set with ``SET LOCAL`` in the
    round trip that begins it (so a pool's connections keep their own settings): a command
    stuck behind a row lock another session holds, or a statement that runs too long, is
    cancelled and raises :class:`~statekernel.adapters.errors.StoreBusy` with nothing written,
    to be retried with its idempotency key. ``max_payload``, ``max_context`` and ``key_scope``
    are the size limits and the namespace of idempotency keys every store takes (see
    :mod:`statekernel.adapters.base`).

    Raises :class:`~statekernel.adapters.errors.SchemaMismatch` if ``schema`` holds data
    written for another version of the spec,
    :class:`~statekernel.adapters.errors.SchemaMissing` (with ``create=False``) if it holds no
    statekernel tables or no data of ``spec``, and
    :class:`~statekernel.adapters.errors.StoreUnavailable` if the server cannot be reached.
    """

    def __init__(
        self,
        spec: Spec,
        target: str | psycopg.Connection[Any] | ConnectionPool[Any],
        *,
        clock: Callable[[], datetime] = utcnow,
        max_retries: int = 12,
        schema: str = "statekernel",
        connect_timeout: float = 5.0,
        create: bool = True,
        lock_timeout: float | None = 5.0,
        statement_timeout: float | None = 30.0,
        max_payload: int | None = MAX_PAYLOAD,
        max_context: int | None = MAX_CONTEXT,
        key_scope: str | KeyScope = "spec",
    ) -> None:
        if type(schema) is not str or not schema or not schema.isprintable() or len(schema) > 63:
            raise ValueError(f"schema must be a PostgreSQL identifier, got {schema!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries!r}")
        self.spec = spec
        self.schema = schema
        self.max_retries = max_retries
        self._clock = clock
        self._create = bool(create)
        self._delivery_problem: str | None = None
        self.lock_timeout = _seconds("lock_timeout", lock_timeout)
        self.statement_timeout = _seconds("statement_timeout", statement_timeout)
        self._settings = b"; ".join(
            f"SET LOCAL {name} = {round(value * 1000)}".encode()
            for name, value in (
                ("lock_timeout", self.lock_timeout),
                ("statement_timeout", self.statement_timeout),
            )
            if value is not None
        )
        self._core = Core(
            spec, JSONB, max_payload=max_payload, max_context=max_context, key_scope=key_scope
        )
        self._retries = Retries(max_retries)
        self._random = random.Random()
        self._pinned = threading.local()  # the connection of a consistent read, per thread
        self._sql = {name: render(text, schema) for name, text in STATEMENTS.items()}
        self._source: Source
        if isinstance(target, str):
            self._source = DsnSource(target, connect_timeout)
        elif isinstance(target, ConnectionPool):
            self._source = PoolSource(target, connect_timeout)
        elif isinstance(target, psycopg.Connection):
            self._source = ConnectionSource(target, connect_timeout)
        else:
            raise TypeError(
                "PostgresStore needs a DSN, a psycopg.Connection or a "
                f"psycopg_pool.ConnectionPool, not {type(target).__name__}"
            )
        self._setup()

    # -- plumbing ------------------------------------------------------------------------

    @contextmanager
    def _begun(self, consistent: bool = False) -> Iterator[Conn]:
        """A borrowed connection inside a new transaction, bounded by the store's timeouts.

        A connection that turns out broken at BEGIN went stale while it sat idle (the server
        restarted, or its backend was killed): nothing was sent that could change anything,
        so it is dropped together with the other idle connections (which idled through the
        same event) and the transaction begins on a fresh one. So the first call after the
        server is back works, instead of one failure per stale connection."""
        with self._source.borrow() as conn:
            try:
                begin(conn, consistent, self._settings)
            except psycopg.OperationalError:
                if not broken(conn):
                    raise
            else:
                yield conn
                return
        self._source.discard_idle()
        with self._source.borrow() as conn:
            begin(conn, consistent, self._settings)
            yield conn

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[Conn]:
        """BEGIN ... COMMIT for setup: rolled back if the block raises; every driver error
        inside becomes a store error."""
        try:
            with self._begun() as conn:
                try:
                    yield conn
                except BaseException:
                    rollback(conn)
                    raise
                commit(conn)
        except psycopg.Error as exc:
            raise translate(exc, f"{doing} ({self._source.where})") from exc

    def _inspect(self) -> Found:
        """Read the catalog (in a read-only transaction): which of the store's tables,
        indexes and columns exist, and the spec's meta row."""
        with self._transaction("reading the schema") as conn:
            conn.execute(b"SET TRANSACTION READ ONLY")
            tables = frozenset(
                row[0]
                for row in conn.execute(
                    b"SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (self.schema,),
                )
            )
            indexes = frozenset(
                row[0]
                for row in conn.execute(
                    b"SELECT indexname FROM pg_indexes WHERE schemaname = %s", (self.schema,)
                )
            )
            delivered_at = (
                conn.execute(
                    b"SELECT 1 FROM information_schema.columns WHERE table_schema = %s"
                    b" AND table_name = 'outbox' AND column_name = 'delivered_at'",
                    (self.schema,),
                ).fetchone()
                is not None
            )
            meta = None
            if "meta" in tables:
                row = conn.execute(self._sql["meta"], (self.spec.name,)).fetchone()
                meta = None if row is None else (int(row[0]), int(row[1]))
        return Found(tables & TABLES, indexes & INDEXES, delivered_at, meta)

    def _check_meta(self, meta: tuple[int, int]) -> None:
        if meta != (self.spec.version, FORMAT):
            raise SchemaMismatch(
                f"schema {self.schema!r} holds spec {self.spec.name!r} version {meta[0]} "
                f"(table format {meta[1]}); this store is for version {self.spec.version} "
                f"(table format {FORMAT}). Migrate the data or use another schema; "
                "nothing was written"
            )

    def _setup(self) -> None:
        found = self._inspect()
        if found.meta is not None:
            self._check_meta(found.meta)
        if not self._create:
            where = f"schema {self.schema!r} on {self._source.where}"
            if found.meta is None:
                what = f"holds no data of spec {self.spec.name!r}"
                if "meta" not in found.tables:
                    what = f"has no statekernel tables, so it {what}"
                raise SchemaMissing(f"{where} {what}; nothing was created or written")
            missing = sorted(TABLES - found.tables)
            if missing:
                raise SchemaMismatch(
                    f"{where} lacks the tables {', '.join(missing)}; they were dropped or "
                    "renamed outside the store (nothing was written)"
                )
            if not found.delivered_at:
                self._delivery_problem = (
                    f"the outbox in schema {self.schema!r} has no delivered_at column yet; the "
                    "store was opened with create=False, so it did not add it. Open the schema "
                    "once with create=True (the default) to upgrade it in place"
                )
            return
        if found.complete and found.meta is not None:
            return  # nothing to create: no DDL, so no table locks at start-up
        with self._transaction("creating the schema") as conn:
            conn.execute(b"SELECT pg_advisory_xact_lock(%s)", (lock_id(self.schema),))
            for ddl in DDL:
                conn.execute(render(ddl, self.schema))
            row = conn.execute(self._sql["meta"], (self.spec.name,)).fetchone()
            if row is None:
                conn.execute(self._sql["insert_meta"], (self.spec.name, self.spec.version, FORMAT))
            else:
                self._check_meta((int(row[0]), int(row[1])))
        self._delivery_problem = None

    # -- the driver ------------------------------------------------------------------------

    def _run(self, work: Callable[[_Tx, bool], _T], rerun: bool, doing: Callable[[], str]) -> _T:
        """``work`` in one READ COMMITTED transaction. A transaction that wrote nothing is
        rolled back; one whose COMMIT got no reply is resolved by :meth:`_resolve`."""
        try:
            with self._begun() as conn:
                tx = _Tx(conn)
                try:
                    result = work(tx, rerun)
                except BaseException:
                    rollback(conn)
                    raise
                if not tx.wrote:
                    rollback(conn)
                    return result
                try:
                    commit(conn)
                except psycopg.Error as exc:
                    if exc.sqlstate in RETRYABLE or not ambiguous(exc) or not tx.writes:
                        raise
                    lost = exc
                else:
                    return result
            self._resolve(tx.writes[0], lost)
            return result
        except psycopg.Error as exc:
            if exc.sqlstate in RETRYABLE:
                raise conflict(exc) from exc
            raise translate(exc, f"{doing()} ({self._source.where})") from exc

    @contextmanager
    def _reading(self, doing: str, *, consistent: bool = False) -> Iterator[_Tx]:
        pinned: _Tx | None = getattr(self._pinned, "tx", None)
        if pinned is not None:  # inside a consistent read on this thread: share it
            yield pinned
            return
        try:
            with self._begun(consistent) as conn:
                tx = _Tx(conn)
                if consistent:
                    self._pinned.tx = tx
                try:
                    yield tx
                except BaseException:
                    rollback(conn)
                    raise
                finally:
                    self._pinned.tx = None
                commit(conn)
        except psycopg.Error as exc:
            raise translate(exc, f"{doing} ({self._source.where})") from exc

    def _read(self, doing: str, work: Callable[[_Tx], _T], *, consistent: bool = False) -> _T:
        """``work`` in a read transaction; run once more on a fresh connection if the
        connection broke under it (the server restarted, its backend was killed): reading
        changes nothing. Inside a consistent read the outer read decides."""
        if getattr(self._pinned, "tx", None) is not None:
            return super()._read(doing, work, consistent=consistent)
        used: list[Conn] = []

        def run(tx: _Tx) -> _T:
            used.append(tx.conn)
            return work(tx)

        try:
            return super()._read(doing, run, consistent=consistent)
        except StoreUnavailable:
            if not used or not broken(used[-1]) or isinstance(self._source, ConnectionSource):
                raise
        self._source.discard_idle()
        return super()._read(doing, work, consistent=consistent)

    def _load(
        self, tx: _Tx, entity: str, key: str | None, lock: bool
    ) -> tuple[SnapshotRow | None, KeyRow | None]:
        name, execute = self.spec.name, tx.conn.execute
        row = execute(self._sql["load_locked" if lock else "load"], (name, entity)).fetchone()
        stored = None if key is None else execute(self._sql["load_key"], (name, key)).fetchone()
        return row, stored

    def _write(self, tx: _Tx, w: Writes) -> None:
        tx.wrote = True
        tx.writes.append(w)
        stored = self._apply(tx.conn, w)
        if stored is not None and w.snapshot is not None and w.result is not None:
            self._core.remember(w.entity, w.snapshot.version, stored, w.result)

    def _apply(self, conn: Conn, w: Writes) -> str | None:
        """Run the write set's statements; return the context as stored."""
        name, entity, sql_ = self.spec.name, w.entity, self._sql
        s, a, stored = w.snapshot, w.audit, None
        if s is not None and a is not None:
            if s.expected is None:
                cur = conn.execute(
                    sql_["insert_snapshot"], (name, entity, s.state, s.context, s.version)
                )
            else:
                cur = conn.execute(
                    sql_["update_snapshot"],
                    (s.state, s.context, s.version, name, entity, s.expected),
                )
            row = cur.fetchone()
            if row is None:
                raise Conflict(f"{entity!r} moved on from version {s.version - 1}")
            stored = row[0]
            conn.execute(
                sql_["insert_audit"],
                (
                    name,
                    entity,
                    a.version,
                    a.event,
                    a.from_state,
                    a.to_state,
                    a.key,
                    utc(a.at),
                    self._core.record_text(w),
                ),
            )
            for msg, data in w.outbox:
                conn.execute(sql_["insert_outbox"], (name, entity, s.version, msg, data))
        k = w.key
        if k is not None:
            row_key = (name, k.key, k.entity, k.fingerprint, k.answer, utc(k.at))
            if conn.execute(sql_["insert_key"], row_key).rowcount != 1:
                raise Conflict(f"idempotency key {k.key!r} was taken meanwhile")
        return stored

    def _resolve(self, first: Writes, lost: psycopg.Error) -> None:
        """After a COMMIT whose reply was lost: return if the transaction landed, raise
        :class:`~._core.Conflict` (run it again) if it certainly did not, and
        :class:`~.errors.CommitOutcomeUnknown` if that cannot be found out."""
        problem: Exception = lost
        for attempt in range(3):
            if attempt:
                time.sleep(self._retries.delay(attempt + 4, self._random))
            try:
                with self._source.fresh() as conn:
                    begin(conn, False, self._settings)
                    try:
                        landed = self._landed(conn, first)
                    finally:
                        rollback(conn)
            except psycopg.Error as exc:
                problem = exc
                continue
            if landed:
                return
            raise Conflict(f"the COMMIT on {self._source.where} did not land ({lost})")
        raise CommitOutcomeUnknown(
            f"the connection to {self._source.where} broke during COMMIT of a write on "
            f"{first.entity!r} ({lost}) and the outcome could not be checked ({problem})"
        ) from lost

    def _landed(self, conn: Conn, w: Writes) -> bool:
        """Whether the rows of ``w`` are in the database, exactly as written."""
        conn.execute(self._sql["lock_timeout"])
        # Repeat the compare-and-swap (this transaction is always rolled back): it waits
        # for a transaction still holding the row, and succeeds only if ours did not land.
        try:
            self._apply(conn, w)
        except Conflict:
            pass
        else:
            return False
        name, k = self.spec.name, w.key
        if k is not None:
            return key_landed(conn.execute(self._sql["load_key"], (name, k.key)).fetchone(), k)
        assert w.audit is not None
        row = conn.execute(self._sql["audit_at"], (name, w.entity, w.audit.version)).fetchone()
        return audit_landed(row, self._core.record_text(w))

    def _snapshot_row(self, tx: _Tx, entity: str) -> SnapshotRow | None:
        row: SnapshotRow | None = tx.conn.execute(
            self._sql["load"], (self.spec.name, entity)
        ).fetchone()
        return row

    def _history(self, tx: _Tx, entity: str) -> list[AuditRecord]:
        rows = tx.conn.execute(self._sql["history"], (self.spec.name, entity)).fetchall()
        what = f"audit record of {entity!r}"
        return [self._core.record(entity, self._core.loads(row[0], what)) for row in rows]

    def _entity_ids(self, tx: _Tx) -> list[str]:
        rows = tx.conn.execute(self._sql["entities"], (self.spec.name,)).fetchall()
        return [row[0] for row in rows]

    def _outbox_rows(self, tx: _Tx, after: int, limit: int) -> list[OutboxRow]:
        return tx.conn.execute(self._sql["outbox"], (self.spec.name, after, limit)).fetchall()

    def _pending_rows(self, tx: _Tx, limit: int) -> list[OutboxRow]:
        return tx.conn.execute(self._sql["pending"], (self.spec.name, limit)).fetchall()

    def _mark(self, tx: _Tx, ids: list[int], at: datetime) -> int:
        tx.wrote = True
        cur = tx.conn.execute(self._sql["mark_delivered"], (utc(at), self.spec.name, ids))
        return cur.rowcount

    def _purge(self, tx: _Tx, older_than: datetime) -> int:
        tx.wrote = True
        cur = tx.conn.execute(self._sql["purge"], (self.spec.name, utc(older_than)))
        return cur.rowcount

    # -- lifecycle -----------------------------------------------------------------------

    def reopen(self) -> None:
        """Drop the store's connections and check the schema again, as after a restart.

        With a DSN every connection is closed and reopened on demand; with a pool, broken
        idle connections are replaced (``pool.check()``); with a single given connection,
        nothing can be reopened: it raises
        :class:`~statekernel.adapters.errors.StoreUnavailable` if that connection is closed.
        """
        self._core.forget()
        try:
            self._source.reopen()
        except psycopg.Error as exc:
            raise translate(exc, f"reopening ({self._source.where})") from exc
        self._setup()

    def close(self) -> None:
        """Close the connections the store opened itself (a given connection or pool is
        left to its owner)."""
        self._source.close()

    def __repr__(self) -> str:
        return (
            f"PostgresStore({self.spec.name!r} v{self.spec.version}, {self._source.where}, "
            f"schema {self.schema!r})"
        )
