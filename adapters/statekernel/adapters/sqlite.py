"""``SqliteStore``: the store for one SQLite file (or a connection you hand it).

Usage::

    store = SqliteStore(SPEC, "app.db")        # or a sqlite3.Connection / sqlite_utils.Database
    d = store.handle("app-1", Command("attach", {"count": 1}), idempotency_key="k-1")

**Transactions.** Every write is one ``BEGIN IMMEDIATE`` ... ``COMMIT``: the store takes the
write lock first, loads the record under the idempotency key and the entity's snapshot,
calls the kernel's pure planner (:func:`statekernel.kernel.plan`, the only place where the
idempotency and version rules live) and writes the plan's rows: snapshot (insert, or update
guarded by the version it read), audit row, outbox rows and key record. All of them commit
together or none does; any error rolls the transaction back.
:meth:`SqliteStore.handle_many` runs several commands in one such transaction (one disk sync
for the batch). Unique constraints on ``(scope, entity, version)`` in the audit table and
``(scope, key)`` in the key table back the planner up. ``scope`` is the spec name, so several
stores with different specs can share one database file.

**Durability.** The store puts the database in WAL mode and runs with ``synchronous=FULL``
by default: a command acknowledged by :meth:`SqliteStore.handle` survives a power cut.
``synchronous="NORMAL"`` is an explicit opt-in: in WAL mode it stays consistent after any
crash, and survives a crash of the process, but the last transactions acknowledged before a
power cut or an operating-system crash may be rolled back. Lock waits are bounded by
``busy_timeout`` (seconds); past it the store raises :class:`~.errors.StoreBusy` and nothing is
written, so the command can be retried with its idempotency key.

**Schema.** Tables are created and migrated with sqlite-utils' migrations (set
``"statekernel"``); ``statekernel_specs`` records each spec name and version stored in the
file. Opening a file that holds data of the same spec name at another version raises
:class:`~.errors.SchemaMismatch` and writes nothing. Opening an existing file applies the
migrations it lacks, in place, in one transaction. With ``create=False`` the store creates and
migrates nothing: it raises :class:`~.errors.SchemaMissing` if the file holds no data of the
spec, and reads a file still lacking later migrations (everything but the outbox relay methods
works on it). Contexts, payloads, actors, effects
and answers are stored as JSON text (``ensure_ascii``, so any Python string round-trips,
and integers of any size stay exact); SQLite's JSON functions are never used on them, since
they would turn integers beyond 64 bits into floats.

**Key retention.** A key record is kept until :meth:`SqliteStore.purge_keys` deletes it (by
the time the key was first answered, the command's ``at``). After a purge, a retry of that
key is a new request and runs again, so keep keys at least as long as any client may retry:
the longest retry window of your clients plus a margin (days, not minutes). Audit rows keep
their ``idempotency_key`` forever, so purging never loses the explanation of a transition.

**Outbox.** Migration ``0002_outbox_delivery`` adds ``delivered_at`` to the outbox, with a
partial index on the rows still undelivered. :meth:`SqliteStore.pending_outbox` and
:meth:`SqliteStore.mark_delivered` are the relay API (see
:mod:`statekernel.adapters.base`); rows written before the upgrade start undelivered, so a
relay publishes them once more unless they are marked first.

**Connections.** Given a path, the store opens (and owns) its connection, and
:meth:`SqliteStore.reopen` closes it and opens the file again, as after a crash. Given a
``sqlite3.Connection`` or ``sqlite_utils.Database``, the store configures it (WAL,
``synchronous``, busy timeout) but never closes it: ``close()`` only detaches the store, and
``reopen()`` rolls back anything left open and checks the schema again on the same
connection. The store owns transaction boundaries: handing it a connection in the middle of a
transaction is an error. A store is safe to share between threads (one lock serialises its
use of the connection); separate processes coordinate through SQLite's file locks.

**Errors.** ``sqlite3`` errors are translated in one place (:func:`translate_error`): locked
or busy -> :class:`~.errors.StoreBusy`, read-only -> :class:`~.errors.StoreReadOnly`, "file is
not a database" or corruption -> :class:`~.errors.StoreCorrupt`, cannot open ->
:class:`~.errors.StoreUnavailable`; a failed ``COMMIT`` whose outcome cannot be known is
:class:`~.errors.CommitOutcomeUnknown`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Literal, TypeVar

import sqlite_utils

from statekernel.kernel import MAX_PAYLOAD, AuditRecord, Spec, check_identifier

from ._core import MAX_CONTEXT, Core, KeyRow, KeyScope, OutboxRow, SnapshotRow, Writes
from ._shell import SyncStore
from ._sqlite_sql import (
    DELIVERY_MIGRATION,
    INSERT_AUDIT,
    INSERT_KEY,
    INSERT_OUTBOX,
    INSERT_SNAPSHOT,
    KNOWN_MIGRATIONS,
    MARK_CHUNK,
    MIGRATIONS,
    PURGE,
    SELECT_ENTITIES,
    SELECT_HISTORY,
    SELECT_OUTBOX,
    SELECT_PENDING,
    SELECT_SNAPSHOT,
    SELECT_SNAPSHOT_AND_KEY,
    UPDATE_SNAPSHOT,
    commit_outcome_known,
    has_table,
    micros,
    translate_error,
)
from .base import utcnow
from .errors import (
    CommitOutcomeUnknown,
    SchemaMismatch,
    SchemaMissing,
    StoreCorrupt,
    StoreError,
    StoreReadOnly,
    StoreUnavailable,
)

__all__ = [
    "MIGRATIONS",
    "SqliteStore",
    "read_audit_rows",
    "read_entity_ids",
    "stored_specs",
    "translate_error",
]

Synchronous = Literal["FULL", "NORMAL"]
_T = TypeVar("_T")


# -- reading a database without binding a spec (for tools such as the CLI) --------------------


def stored_specs(conn: sqlite3.Connection) -> dict[str, int]:
    """``{spec name: spec version}`` for every spec with data in the database."""
    try:
        if not has_table(conn, "statekernel_specs"):
            return {}
        rows = conn.execute("SELECT scope, spec_version FROM statekernel_specs ORDER BY scope")
        return {str(scope): int(version) for scope, version in rows}
    except sqlite3.Error as exc:
        raise translate_error(exc, "reading the stored specs") from exc


def read_audit_rows(
    conn: sqlite3.Connection, entity: str, scope: str | None = None
) -> list[dict[str, Any]]:
    """The audit rows of ``entity`` exactly as stored (JSON columns decoded), oldest first,
    for every spec or only ``scope``; each row also names its ``spec`` and ``spec_version``.
    Needs no spec, so it reads a database whose spec code is not at hand."""
    check_identifier("entity id", entity)
    sql = (
        "SELECT a.scope, s.spec_version, a.version, a.event, a.payload, a.actor, a.from_state,"
        " a.to_state, a.at, a.idempotency_key FROM statekernel_audit a"
        " JOIN statekernel_specs s ON s.scope = a.scope WHERE a.entity = ?"
    )
    params: tuple[str, ...] = (entity,)
    if scope is not None:
        sql += " AND a.scope = ?"
        params = (entity, scope)
    try:
        if not has_table(conn, "statekernel_audit"):
            return []
        rows = conn.execute(sql + " ORDER BY a.scope, a.version", params).fetchall()
    except sqlite3.Error as exc:
        raise translate_error(exc, f"reading the history of {entity!r}") from exc
    return [
        {
            "spec": r[0],
            "spec_version": r[1],
            "version": r[2],
            "event": r[3],
            "payload": json.loads(r[4]),
            "actor": None if r[5] is None else json.loads(r[5]),
            "from_state": r[6],
            "to_state": r[7],
            "at": r[8],
            "idempotency_key": r[9],
        }
        for r in rows
    ]


def read_entity_ids(conn: sqlite3.Connection, scope: str | None = None) -> list[str]:
    """The id of every entity with a stored snapshot, sorted and each once, for every spec
    or only ``scope``. Needs no spec, like :func:`read_audit_rows`."""
    sql = "SELECT DISTINCT entity FROM statekernel_snapshots"
    params: tuple[str, ...] = ()
    if scope is not None:
        sql += " WHERE scope = ?"
        params = (scope,)
    try:
        if not has_table(conn, "statekernel_snapshots"):
            return []
        rows = conn.execute(sql + " ORDER BY entity", params).fetchall()
    except sqlite3.Error as exc:
        raise translate_error(exc, "listing the entities") from exc
    return [str(r[0]) for r in rows]


# -- the store --------------------------------------------------------------------------------


class SqliteStore(SyncStore[sqlite3.Connection]):
    """The SQLite store for ``spec``; see the module documentation for the guarantees.

    ``database`` is a path (``":memory:"`` and ``file:`` URIs work too), a
    ``sqlite3.Connection`` or a ``sqlite_utils.Database``. ``synchronous`` is ``"FULL"``
    (durable, the default) or ``"NORMAL"`` (faster; may lose the last acknowledged commits on
    power loss). ``busy_timeout`` is how long a write waits for the lock, in seconds.
    ``clock`` stamps commands that carry no ``at`` and outbox rows marked delivered.
    ``create=False`` opens an existing database without changing it (no tables, migrations or
    journal-mode switch; for readers such as ``statekernel verify``): it raises
    :class:`~.errors.SchemaMissing` if the database holds no data of ``spec``.
    ``max_payload``, ``max_context`` and ``key_scope`` are the size limits and the namespace
    of idempotency keys every store takes (see :mod:`statekernel.adapters.base`).
    """

    def __init__(
        self,
        spec: Spec,
        database: str | os.PathLike[str] | sqlite3.Connection | sqlite_utils.Database,
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
        create: bool = True,
        max_payload: int | None = MAX_PAYLOAD,
        max_context: int | None = MAX_CONTEXT,
        key_scope: str | KeyScope = "spec",
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', not {synchronous!r}")
        if not busy_timeout >= 0:
            raise ValueError(f"busy_timeout must be >= 0 seconds, not {busy_timeout!r}")
        self.spec = spec
        self.synchronous: Synchronous = synchronous
        self.busy_timeout = float(busy_timeout)
        self._clock = clock
        self._create = bool(create)
        self._delivery_problem: str | None = None
        self._scope = spec.name
        self._lock = threading.RLock()
        self._core = Core(
            spec, max_payload=max_payload, max_context=max_context, key_scope=key_scope
        )
        self._path: str | None = None
        self._uri = False
        self._conn: sqlite3.Connection | None = None
        if isinstance(database, sqlite_utils.Database):
            self._conn = database.conn
        elif isinstance(database, sqlite3.Connection):
            self._conn = database
        elif isinstance(database, str | os.PathLike):
            self._path = os.fspath(database)
            self._uri = self._path.startswith("file:")
        else:
            raise TypeError(
                "database must be a path, a sqlite3.Connection or a sqlite_utils.Database, "
                f"not {type(database).__name__}"
            )
        self._owned = self._conn is None
        self._given = self._conn
        self._open()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection the store uses (raises :class:`~.errors.StoreUnavailable` once
        closed)."""
        if self._conn is None:
            raise StoreUnavailable("the store is closed; call reopen() to use it again")
        return self._conn

    def _open(self) -> None:
        if self._conn is None:
            assert self._path is not None
            try:
                self._conn = sqlite3.connect(
                    self._path,
                    timeout=self.busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                    uri=self._uri,
                )
            except sqlite3.Error as exc:
                raise translate_error(exc, f"opening {self._path}") from exc
        conn = self._conn
        try:
            if conn.in_transaction:
                raise StoreError(
                    "the connection is inside a transaction; the store owns transaction "
                    "boundaries, so commit or roll back before handing it over"
                )
            self._configure(conn)
            if self._create:
                self._setup(conn)
            else:
                self._check_existing(conn)
        except BaseException:
            if self._owned:
                conn.close()
                self._conn = None
            raise

    def _configure(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        except sqlite3.Error as exc:
            raise translate_error(exc, "configuring the connection") from exc
        if self._create and str(mode).lower() not in ("wal", "memory"):
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.Error as exc:
                err = translate_error(exc, "switching to WAL")
                # A read-only database can still be read in its current mode.
                if not isinstance(err, StoreReadOnly):
                    raise err from exc

    def _setup(self, conn: sqlite3.Connection) -> None:
        """Apply pending migrations and record the spec, writing only if something is
        missing; refuse data of another spec version or a newer schema."""
        db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
        try:
            if self._schema_ready(db, conn):
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._check_known_migrations(db)
                MIGRATIONS.apply(db)
                if not self._spec_recorded(conn):
                    conn.execute(
                        "INSERT INTO statekernel_specs (scope, spec_version, created_at)"
                        " VALUES (?, ?, ?)",
                        (self._scope, self.spec.version, utcnow().isoformat()),
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise translate_error(exc, "preparing the schema") from exc

    def _check_existing(self, conn: sqlite3.Connection) -> None:
        """For ``create=False``: require the schema and the spec's record, write nothing."""
        db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
        try:
            applied = (
                {m.name for m in MIGRATIONS.applied(db)}
                if has_table(conn, MIGRATIONS.migrations_table)
                else set()
            )
            self._check_known_migrations(db)
            if "0001_initial" not in applied or not self._spec_recorded(conn):
                raise SchemaMissing(
                    f"the database holds no data of spec {self._scope!r}; nothing was created "
                    "or written"
                )
        except sqlite3.Error as exc:
            raise translate_error(exc, "checking the schema") from exc
        if DELIVERY_MIGRATION not in applied:
            self._delivery_problem = (
                f"the database lacks migration {DELIVERY_MIGRATION} (outbox delivery); the "
                "store was opened with create=False, so it did not migrate it. Open it once "
                "with create=True (the default) to upgrade it in place"
            )

    def _schema_ready(self, db: sqlite_utils.Database, conn: sqlite3.Connection) -> bool:
        if not has_table(conn, MIGRATIONS.migrations_table):
            return False
        self._check_known_migrations(db)
        if MIGRATIONS.pending(db):
            return False
        return self._spec_recorded(conn)

    def _check_known_migrations(self, db: sqlite_utils.Database) -> None:
        unknown = [m.name for m in MIGRATIONS.applied(db) if m.name not in KNOWN_MIGRATIONS]
        if unknown:
            raise SchemaMismatch(
                f"the database has statekernel schema migrations this version does not know "
                f"({', '.join(unknown)}); it was written by a newer statekernel"
            )

    def _spec_recorded(self, conn: sqlite3.Connection) -> bool:
        if not has_table(conn, "statekernel_specs"):
            return False
        row = conn.execute(
            "SELECT spec_version FROM statekernel_specs WHERE scope = ?", (self._scope,)
        ).fetchone()
        if row is None:
            return False
        if row[0] != self.spec.version:
            raise SchemaMismatch(
                f"the database holds data of spec {self._scope!r} version {row[0]}, not "
                f"version {self.spec.version}; migrate the data or open it with that version"
            )
        return True

    def reopen(self) -> None:
        """Close the connection and open the database again, as after a crash. For a
        connection the store was given, roll back anything left open and check the schema
        again on the same connection (the store does not own it, so it stays open)."""
        with self._lock:
            self._core.forget()
            if self._owned and self._path != ":memory:":
                if self._conn is not None:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.close()
                    self._conn = None
            elif not self._owned:
                self._conn = self._given
            if self._conn is not None and self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            self._open()

    def close(self) -> None:
        """Close the connection if the store opened it; a given connection stays open.
        Either way the store refuses further use until :meth:`reopen`."""
        with self._lock:
            if self._conn is not None and self._owned:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
            self._conn = None
            self._core.forget()

    # -- the driver ---------------------------------------------------------------------------

    def _run(
        self, work: Callable[[sqlite3.Connection, bool], _T], rerun: bool, doing: Callable[[], str]
    ) -> _T:
        """``work`` inside one ``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any error."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreUnavailable("the store is closed; call reopen() to use it again")
            if conn.in_transaction:
                raise StoreError(
                    "the connection is inside a transaction the store did not open; the store "
                    "owns transaction boundaries"
                )
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn, rerun)
                    try:
                        conn.execute("COMMIT")
                    except sqlite3.Error as exc:
                        # SQLite kept the transaction open, or refused before the commit
                        # record was complete: nothing committed, the error says why. Only
                        # a failure after that (an fsync, say) leaves the outcome unknown.
                        if not conn.in_transaction and not commit_outcome_known(exc):
                            raise CommitOutcomeUnknown(
                                f"COMMIT failed while {doing()} after SQLite began writing "
                                f"the commit record ({exc}), so it may have landed"
                            ) from exc
                        raise
                except BaseException:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise translate_error(exc, doing()) from exc
            return result

    @contextlib.contextmanager
    def _reading(self, doing: str, *, consistent: bool = False) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self.connection
            began = consistent and not conn.in_transaction
            try:
                if began:
                    conn.execute("BEGIN")
                yield conn
            except sqlite3.Error as exc:
                raise translate_error(exc, doing) from exc
            finally:
                if began and conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("COMMIT")

    def _load(
        self, conn: sqlite3.Connection, entity: str, key: str | None, lock: bool
    ) -> tuple[SnapshotRow | None, KeyRow | None]:
        scope = self._scope
        if key is None:
            return conn.execute(SELECT_SNAPSHOT, (scope, entity)).fetchone(), None
        row = conn.execute(SELECT_SNAPSHOT_AND_KEY, (scope, entity, scope, key)).fetchone()
        stored = None
        if row[5] is not None:
            at = None if row[6] is None else datetime.fromisoformat(row[6])
            stored = (row[3], row[4], row[5], at)
        return (None if row[0] is None else row[:3]), stored

    def _write(self, conn: sqlite3.Connection, w: Writes) -> None:
        scope, entity = self._scope, w.entity
        s, a = w.snapshot, w.audit
        if s is not None and a is not None and w.result is not None:
            if s.expected is None:
                conn.execute(INSERT_SNAPSHOT, (scope, entity, s.state, s.version, s.context))
            elif (
                conn.execute(
                    UPDATE_SNAPSHOT, (s.state, s.version, s.context, scope, entity, s.expected)
                ).rowcount
                != 1
            ):
                raise StoreCorrupt(
                    f"the snapshot of {entity!r} changed under the write lock; the database "
                    "was changed outside the store (nothing was written)"
                )
            conn.execute(
                INSERT_AUDIT,
                (
                    scope,
                    entity,
                    a.version,
                    a.event,
                    a.payload,
                    a.actor,
                    a.from_state,
                    a.to_state,
                    a.at_text,
                    a.key,
                ),
            )
            if w.outbox:
                conn.executemany(
                    INSERT_OUTBOX,
                    [(scope, entity, s.version, name, data) for name, data in w.outbox],
                )
            self._core.remember(entity, s.version, s.context, w.result)
        if w.key is not None:
            k = w.key
            at_us = None if k.at is None else micros(k.at)
            conn.execute(
                INSERT_KEY, (scope, k.key, k.entity, k.fingerprint, k.answer, k.at_text, at_us)
            )

    def _snapshot_row(self, conn: sqlite3.Connection, entity: str) -> SnapshotRow | None:
        row: SnapshotRow | None = conn.execute(SELECT_SNAPSHOT, (self._scope, entity)).fetchone()
        return row

    def _history(self, conn: sqlite3.Connection, entity: str) -> list[AuditRecord]:
        rows = conn.execute(SELECT_HISTORY, (self._scope, entity)).fetchall()
        return [self._core.record_columns(entity, *row) for row in rows]

    def _entity_ids(self, conn: sqlite3.Connection) -> list[str]:
        rows = conn.execute(SELECT_ENTITIES, (self._scope,)).fetchall()
        return [r[0] for r in rows]

    def _outbox_rows(self, conn: sqlite3.Connection, after: int, limit: int) -> list[OutboxRow]:
        return conn.execute(SELECT_OUTBOX, (self._scope, after, limit)).fetchall()

    def _pending_rows(self, conn: sqlite3.Connection, limit: int) -> list[OutboxRow]:
        return conn.execute(SELECT_PENDING, (self._scope, limit)).fetchall()

    def _mark(self, conn: sqlite3.Connection, ids: list[int], at: datetime) -> int:
        changed, stamp = 0, at.isoformat()
        for start in range(0, len(ids), MARK_CHUNK):
            chunk = ids[start : start + MARK_CHUNK]
            changed += conn.execute(
                "UPDATE statekernel_outbox SET delivered_at = ? WHERE scope = ?"
                f" AND delivered_at IS NULL AND id IN ({','.join('?' * len(chunk))})",
                (stamp, self._scope, *chunk),
            ).rowcount
        return changed

    def _purge(self, conn: sqlite3.Connection, older_than: datetime) -> int:
        return conn.execute(PURGE, (self._scope, micros(older_than))).rowcount

    def __repr__(self) -> str:
        where = self._path if self._path is not None else "a given connection"
        return f"SqliteStore({self.spec.name!r} v{self.spec.version}, {where})"
