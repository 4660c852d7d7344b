"""``SqliteStore``: the store for one SQLite file (or a connection you hand it).

Usage::

    store = SqliteStore(SPEC, "app.db")        # or a sqlite3.Connection / sqlite_utils.Database
    d = store.handle("app-1", Command("attach", {"count": 1}), idempotency_key="k-1")

**Transactions.** Every write is one ``BEGIN IMMEDIATE`` ... ``COMMIT``: the store takes the
write lock first, loads the record under the idempotency key and the entity's snapshot,
calls the kernel's pure planner (:func:`statekernel.kernel.plan`, the only place where the
idempotency and version rules live) and writes the plan's rows: snapshot (insert, or update
guarded by the version it read), audit row, outbox rows and key record. All of them commit
together or none does; any error rolls the transaction back. Unique constraints on
``(scope, entity, version)`` in the audit table and ``(scope, key)`` in the key table back
the planner up. ``scope`` is the spec name, so several stores with different specs can share
one database file.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import sqlite_utils
from sqlite_utils import Migrations

from statekernel.kernel import (
    Accepted,
    AuditRecord,
    Command,
    Decision,
    KeyRecord,
    PayloadError,
    Rejected,
    Snapshot,
    Spec,
    UnsupportedType,
    check_identifier,
    decision_from_data,
    decision_to_data,
    plan,
    record_from_data,
    unstructure,
)

from ._audit import Mismatch, VerifyReport, explain, verify_entity
from .base import OutboxEntry, as_utc, check_limit, outbox_ids, stamp, utcnow
from .errors import (
    CommitOutcomeUnknown,
    SchemaMismatch,
    SchemaMissing,
    StoreBusy,
    StoreCorrupt,
    StoreDataError,
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

MIGRATIONS = Migrations("statekernel")
"""The schema history of the store's tables (sqlite-utils migrations, applied in order)."""


@MIGRATIONS(name="0001_initial")
def _m0001_initial(db: sqlite_utils.Database) -> None:
    db.create_table(
        "statekernel_specs",
        {"scope": str, "spec_version": int, "created_at": str},
        pk="scope",
        not_null={"spec_version", "created_at"},
        strict=True,
    )
    db.create_table(
        "statekernel_snapshots",
        {"scope": str, "entity": str, "state": str, "version": int, "context": str},
        pk=("scope", "entity"),
        not_null={"state", "version", "context"},
        strict=True,
    )
    db.create_table(
        "statekernel_audit",
        {
            "scope": str,
            "entity": str,
            "version": int,
            "event": str,
            "payload": str,
            "actor": str,
            "from_state": str,
            "to_state": str,
            "at": str,
            "idempotency_key": str,
        },
        pk=("scope", "entity", "version"),
        not_null={"event", "payload", "from_state", "to_state"},
        strict=True,
    )
    db.create_table(
        "statekernel_keys",
        {
            "scope": str,
            "key": str,
            "entity": str,
            "fingerprint": str,
            "decision": str,
            "at": str,
            "at_us": int,
        },
        pk=("scope", "key"),
        not_null={"entity", "fingerprint", "decision"},
        strict=True,
    )
    db.table("statekernel_keys").create_index(
        ["scope", "at_us"], index_name="statekernel_keys_by_age"
    )
    # AUTOINCREMENT: outbox ids are never reused, even after delivered rows are deleted, so a
    # consumer's "after" cursor stays valid.
    db.execute(
        "CREATE TABLE statekernel_outbox ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " scope TEXT NOT NULL, entity TEXT NOT NULL, version INTEGER NOT NULL,"
        " name TEXT NOT NULL, data TEXT NOT NULL)"
    )
    db.table("statekernel_outbox").create_index(
        ["scope", "id"], index_name="statekernel_outbox_scope"
    )


@MIGRATIONS(name="0002_outbox_delivery")
def _m0002_outbox_delivery(db: sqlite_utils.Database) -> None:
    # NULL until a relay marks the row delivered; existing rows start undelivered (publishing
    # a message twice is recoverable, never publishing it is not).
    db.table("statekernel_outbox").add_column("delivered_at", str)
    db.execute(
        "CREATE INDEX statekernel_outbox_pending ON statekernel_outbox (scope, id)"
        " WHERE delivered_at IS NULL"
    )


_DELIVERY_MIGRATION = "0002_outbox_delivery"

_KNOWN_MIGRATIONS = frozenset({"0001_initial", _DELIVERY_MIGRATION})
"""The names of every migration above (a database with others is from a newer version)."""


# -- the hot path's statements (the sqlite3 module caches them prepared) ----------------------

_SELECT_SNAPSHOT = (
    "SELECT state, version, context FROM statekernel_snapshots WHERE scope = ? AND entity = ?"
)
# One round trip for a keyed command: the snapshot (if any) and the key record (if any).
_SELECT_SNAPSHOT_AND_KEY = (
    "SELECT s.state, s.version, s.context, k.entity, k.fingerprint, k.decision, k.at"
    " FROM (SELECT 1) AS one"
    " LEFT JOIN statekernel_snapshots AS s ON s.scope = ? AND s.entity = ?"
    " LEFT JOIN statekernel_keys AS k ON k.scope = ? AND k.key = ?"
)
_INSERT_SNAPSHOT = (
    "INSERT INTO statekernel_snapshots (scope, entity, state, version, context)"
    " VALUES (?, ?, ?, ?, ?)"
)
_UPDATE_SNAPSHOT = (
    "UPDATE statekernel_snapshots SET state = ?, version = ?, context = ?"
    " WHERE scope = ? AND entity = ? AND version = ?"
)
_INSERT_AUDIT = (
    "INSERT INTO statekernel_audit (scope, entity, version, event, payload, actor, from_state,"
    " to_state, at, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_OUTBOX = (
    "INSERT INTO statekernel_outbox (scope, entity, version, name, data) VALUES (?, ?, ?, ?, ?)"
)
_INSERT_KEY = (
    "INSERT INTO statekernel_keys (scope, key, entity, fingerprint, decision, at, at_us)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_PENDING = (
    "SELECT id, entity, version, name, data FROM statekernel_outbox"
    " WHERE scope = ? AND delivered_at IS NULL ORDER BY id LIMIT ?"
)
_MARK_CHUNK = 500  # ids per UPDATE, far below SQLite's limit on bound parameters
_SELECT_HISTORY = (
    "SELECT version, event, payload, actor, from_state, to_state, at, idempotency_key"
    " FROM statekernel_audit WHERE scope = ? AND entity = ? ORDER BY version"
)

_encoder = json.JSONEncoder(
    ensure_ascii=True, check_circular=False, allow_nan=False, separators=(",", ":")
)
_dumps: Callable[[Any], str] = _encoder.encode
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
if _c_make_encoder is not None:  # the C encoder, built once instead of once per call
    _c_iterencode = _c_make_encoder(
        None,  # no circular-reference markers: values come from unstructure(), a tree
        _encoder.default,
        json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        False,  # sort_keys
        False,  # skipkeys
        False,  # allow_nan
    )

    def _dumps(value: Any) -> str:
        return "".join(_c_iterencode(value, 0))


_ANSWER = (
    '{"accepted":true,"snapshot":{"state":%s,"version":%d,"context":%s},'
    '"record":%s,"payload":%s,"actor":%s},"effects":[%s]}'
)
_EFFECT = '{"name":%s,"data":%s}'
_loads = json.loads

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_CACHE_LIMIT = 4096


def _micros(at: datetime) -> int:
    """Microseconds since the epoch; a naive time is taken as UTC."""
    return (as_utc(at) - _EPOCH) // _US


# -- error translation: the one place sqlite3 errors become store errors ----------------------

_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_READONLY = {8}  # SQLITE_READONLY
_CORRUPT = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_UNAVAILABLE = {10, 13, 14}  # SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN


def translate_error(exc: sqlite3.Error, doing: str = "") -> StoreError:
    """The store error for a ``sqlite3`` error (the caller raises it ``from exc``)."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc)
    low = text.lower()
    where = f" while {doing}" if doing else ""
    if primary in _BUSY or "locked" in low or "busy" in low:
        return StoreBusy(f"the database stayed locked{where}: {text}; nothing was written")
    if primary in _READONLY or "readonly" in low or "read-only" in low:
        return StoreReadOnly(f"the database is read-only{where}: {text}")
    if primary in _CORRUPT or "not a database" in low or "malformed" in low:
        return StoreCorrupt(f"the database is corrupt or not a database{where}: {text}")
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreCorrupt(
            f"a uniqueness backstop fired{where}: {text}; the database was changed outside the "
            "store (nothing was written)"
        )
    if (
        primary in _UNAVAILABLE
        or "unable to open" in low
        or "closed" in low
        or isinstance(exc, sqlite3.ProgrammingError)
    ):
        return StoreUnavailable(f"the database is unavailable{where}: {text}")
    return StoreError(f"SQLite error{where}: {text}")


def _data_error(what: str, exc: Exception) -> StoreDataError:
    return StoreDataError(f"{what}: {exc}; nothing was written")


# -- reading a database without binding a spec (for tools such as the CLI) --------------------


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def stored_specs(conn: sqlite3.Connection) -> dict[str, int]:
    """``{spec name: spec version}`` for every spec with data in the database."""
    try:
        if not _has_table(conn, "statekernel_specs"):
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
        if not _has_table(conn, "statekernel_audit"):
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
            "payload": _loads(r[4]),
            "actor": None if r[5] is None else _loads(r[5]),
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
        if not _has_table(conn, "statekernel_snapshots"):
            return []
        rows = conn.execute(sql + " ORDER BY entity", params).fetchall()
    except sqlite3.Error as exc:
        raise translate_error(exc, "listing the entities") from exc
    return [str(r[0]) for r in rows]


# -- the store --------------------------------------------------------------------------------


class SqliteStore:
    """The SQLite store for ``spec``; see the module documentation for the guarantees.

    ``database`` is a path (``":memory:"`` and ``file:`` URIs work too), a
    ``sqlite3.Connection`` or a ``sqlite_utils.Database``. ``synchronous`` is ``"FULL"``
    (durable, the default) or ``"NORMAL"`` (faster; may lose the last acknowledged commits on
    power loss). ``busy_timeout`` is how long a write waits for the lock, in seconds.
    ``clock`` stamps commands that carry no ``at`` and outbox rows marked delivered.
    ``create=False`` opens an existing database without changing it (no tables, migrations or
    journal-mode switch; for readers such as ``statekernel verify``): it raises
    :class:`~.errors.SchemaMissing` if the database holds no data of ``spec``.
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
        self._delivery_ready = True
        self._scope = spec.name
        self._lock = threading.RLock()
        self._cache: dict[str, tuple[int, str, Snapshot]] = {}
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
                if _has_table(conn, MIGRATIONS.migrations_table)
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
        self._delivery_ready = _DELIVERY_MIGRATION in applied

    def _schema_ready(self, db: sqlite_utils.Database, conn: sqlite3.Connection) -> bool:
        if not _has_table(conn, MIGRATIONS.migrations_table):
            return False
        self._check_known_migrations(db)
        if MIGRATIONS.pending(db):
            return False
        return self._spec_recorded(conn)

    def _check_known_migrations(self, db: sqlite_utils.Database) -> None:
        unknown = [m.name for m in MIGRATIONS.applied(db) if m.name not in _KNOWN_MIGRATIONS]
        if unknown:
            raise SchemaMismatch(
                f"the database has statekernel schema migrations this version does not know "
                f"({', '.join(unknown)}); it was written by a newer statekernel"
            )

    def _spec_recorded(self, conn: sqlite3.Connection) -> bool:
        if not _has_table(conn, "statekernel_specs"):
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
            self._cache.clear()
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
            self._cache.clear()

    def __enter__(self) -> SqliteStore:
        """``with SqliteStore(...) as store:`` returns the store itself."""
        return self

    def __exit__(self, *exc: object) -> None:
        """:meth:`close` the store when the ``with`` block ends, however it ends."""
        self.close()

    # -- writing ------------------------------------------------------------------------------

    def _transact(self, work: Callable[[sqlite3.Connection], _T], doing: Callable[[], str]) -> _T:
        """Run ``work`` inside one ``BEGIN IMMEDIATE`` ... ``COMMIT``; roll back on any error.
        ``doing`` describes the work for error messages (only called on failure)."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreUnavailable("the store is closed; call reopen() to use it again")
            if conn.in_transaction:
                raise StoreError(
                    "the connection is inside a transaction the store did not open; the store "
                    "owns transaction boundaries"
                )
            committing = False
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                    committing = True
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                if committing and not conn.in_transaction:
                    raise CommitOutcomeUnknown(
                        f"COMMIT failed while {doing()} and SQLite ended the transaction: "
                        f"{exc}; retry with the same idempotency key"
                    ) from exc
                raise translate_error(exc, doing()) from exc
            return result

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        """Decide ``command`` on ``entity`` and commit the plan's writes in one transaction.

        Returns the decision (a retry under the same key returns the first answer, equal).
        Raises :class:`~statekernel.kernel.InvalidIdentifier` for a bad entity id or key, and
        a :class:`~.errors.StoreError` when the database fails; either way nothing is written.
        """
        check_identifier("entity id", entity)
        if idempotency_key is not None:
            check_identifier("idempotency key", idempotency_key)
        command = stamp(command, self._clock())
        return self._transact(
            lambda conn: self._handle(conn, entity, command, idempotency_key),
            lambda: f"handling {command.event!r} on {entity!r}",
        )

    def handle_many(self, requests: Iterable[tuple[str, Command, str | None]]) -> list[Decision]:
        """Handle several ``(entity, command, idempotency_key)`` requests in one transaction,
        in order, each seeing the writes of those before it: the decisions are the ones
        :meth:`handle` would give one by one, but all the writes commit together or not at
        all (one disk sync for the whole batch)."""
        items = list(requests)
        now = self._clock()
        for entity, _, key in items:
            check_identifier("entity id", entity)
            if key is not None:
                check_identifier("idempotency key", key)
        return self._transact(
            lambda conn: [
                self._handle(conn, entity, stamp(command, now), key)
                for entity, command, key in items
            ],
            lambda: f"handling a batch of {len(items)}",
        )

    def _handle(
        self, conn: sqlite3.Connection, entity: str, command: Command, key: str | None
    ) -> Decision:
        scope = self._scope
        stored: KeyRecord | None = None
        current: Snapshot | None = None
        if key is None:
            current = self._load(entity, conn.execute(_SELECT_SNAPSHOT, (scope, entity)).fetchone())
        else:
            row = conn.execute(_SELECT_SNAPSHOT_AND_KEY, (scope, entity, scope, key)).fetchone()
            if row[5] is not None:
                stored = KeyRecord(
                    key,
                    row[3],
                    row[4],
                    self._decision(row[5]),
                    None if row[6] is None else datetime.fromisoformat(row[6]),
                )
            elif row[0] is not None:
                current = self._load(entity, row[:3])
        p = plan(self.spec, entity, current, command, key, stored)
        decision = p.decision
        if not p.writes:
            return decision
        snap, rec, kr = p.snapshot, p.record, p.key_record
        if isinstance(decision, Accepted) and snap is not None and rec is not None:
            ctx_text = self._encode_context(entity, snap)
            try:
                payload_text = _dumps(unstructure(rec.payload))
                actor_text = (
                    None
                    if rec.actor is None
                    else _dumps({"id": rec.actor.id, "roles": sorted(rec.actor.roles)})
                )
                effects = [(m.name, unstructure(m.data)) for m in p.outbox]
                effect_texts = [_dumps(data) for _, data in effects]
            except (UnsupportedType, ValueError, TypeError) as exc:
                raise _data_error(f"{command.event!r} on {entity!r} cannot be stored", exc) from exc
            at_text = None if rec.at is None else rec.at.isoformat()
            if current is None:
                conn.execute(_INSERT_SNAPSHOT, (scope, entity, snap.state, snap.version, ctx_text))
            else:
                cur = conn.execute(
                    _UPDATE_SNAPSHOT,
                    (snap.state, snap.version, ctx_text, scope, entity, current.version),
                )
                if cur.rowcount != 1:
                    raise StoreCorrupt(
                        f"the snapshot of {entity!r} changed under the write lock; the database "
                        "was changed outside the store (nothing was written)"
                    )
            conn.execute(
                _INSERT_AUDIT,
                (
                    scope,
                    entity,
                    rec.version,
                    rec.event,
                    payload_text,
                    actor_text,
                    rec.from_state,
                    rec.to_state,
                    at_text,
                    rec.idempotency_key,
                ),
            )
            if effects:
                conn.executemany(
                    _INSERT_OUTBOX,
                    [
                        (scope, entity, rec.version, name, text)
                        for (name, _), text in zip(effects, effect_texts, strict=True)
                    ],
                )
            self._remember(entity, snap.version, ctx_text, snap)
            if kr is not None:
                # decision_to_data(decision) as JSON, composed from the texts encoded above
                # (each value is encoded once; a test checks the two agree).
                answer = _ANSWER % (
                    _dumps(snap.state),
                    snap.version,
                    ctx_text,
                    _dumps(
                        {
                            "version": rec.version,
                            "event": rec.event,
                            "from_state": rec.from_state,
                            "to_state": rec.to_state,
                            "at": at_text,
                            "idempotency_key": rec.idempotency_key,
                        }
                    )[:-1],
                    payload_text,
                    "null" if actor_text is None else actor_text,
                    ",".join(
                        _EFFECT % (_dumps(name), text)
                        for (name, _), text in zip(effects, effect_texts, strict=True)
                    ),
                )
                self._insert_key(conn, kr, answer, at_text if kr.at is rec.at else None)
        elif kr is not None and isinstance(decision, Rejected):
            self._insert_key(conn, kr, _dumps(decision_to_data(decision)))
        return decision

    def _insert_key(
        self, conn: sqlite3.Connection, kr: KeyRecord, text: str, at_text: str | None = None
    ) -> None:
        if kr.at is not None and at_text is None:
            at_text = kr.at.isoformat()
        conn.execute(
            _INSERT_KEY,
            (
                self._scope,
                kr.key,
                kr.entity,
                kr.fingerprint,
                text,
                at_text,
                None if kr.at is None else _micros(kr.at),
            ),
        )

    def _encode_context(self, entity: str, snap: Snapshot) -> str:
        """The context as JSON text, refusing one that would not read back equal (a field
        holding a value of the wrong type, say)."""
        what = f"the new context of {entity!r}"
        problem = self.spec.context_problem(snap.context)
        if problem is not None:
            raise StoreDataError(f"{what} cannot be stored: {problem}; nothing was written")
        try:
            return _dumps(unstructure(snap.context))
        except (UnsupportedType, ValueError, TypeError) as exc:
            raise _data_error(f"{what} cannot be stored", exc) from exc

    def _remember(self, entity: str, version: int, text: str, snap: Snapshot) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[entity] = (version, text, snap)

    def _load(self, entity: str, row: Any) -> Snapshot | None:
        """The snapshot in ``row``; reuses the cached one when the stored text is the same
        (contexts are frozen values, so sharing them is safe)."""
        if row is None:
            return None
        state, version, text = row
        hit = self._cache.get(entity)
        if hit is not None and hit[0] == version and hit[1] == text and hit[2].state == state:
            return hit[2]
        try:
            snap = Snapshot(state, self.spec.structure_context(_loads(text)), version)
        except (PayloadError, ValueError, TypeError) as exc:
            raise StoreDataError(
                f"the stored context of {entity!r} does not fit {self.spec.name!r} "
                f"v{self.spec.version}: {exc}"
            ) from exc
        self._remember(entity, version, text, snap)
        return snap

    def _decision(self, text: str) -> Decision:
        try:
            return decision_from_data(self.spec, _loads(text))
        except (PayloadError, ValueError, TypeError, KeyError) as exc:
            raise StoreDataError(f"a stored answer does not fit the spec: {exc!r}") from exc

    def purge_keys(self, older_than: datetime) -> int:
        """Delete the key records first answered before ``older_than`` (a naive time is taken
        as UTC) and return how many were deleted. See "Key retention" in the module
        documentation for how long to keep them."""
        cutoff = _micros(older_than)
        return self._transact(
            lambda conn: (
                conn.execute(
                    "DELETE FROM statekernel_keys WHERE scope = ? AND at_us < ?",
                    (self._scope, cutoff),
                ).rowcount
            ),
            lambda: "purging idempotency keys",
        )

    # -- reading ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _read(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self.connection
            try:
                yield conn
            except sqlite3.Error as exc:
                raise translate_error(exc, doing) from exc

    def get(self, entity: str) -> Snapshot | None:
        """The entity's current snapshot, or ``None`` if it was never written."""
        check_identifier("entity id", entity)
        with self._read(f"reading {entity!r}") as conn:
            row = conn.execute(_SELECT_SNAPSHOT, (self._scope, entity)).fetchone()
            return self._load(entity, row)

    def history(self, entity: str) -> Sequence[AuditRecord]:
        """The entity's audit records, oldest first."""
        check_identifier("entity id", entity)
        with self._read(f"reading the history of {entity!r}") as conn:
            rows = conn.execute(_SELECT_HISTORY, (self._scope, entity)).fetchall()
        return tuple(self._record(entity, row) for row in rows)

    def _record(self, entity: str, row: Any) -> AuditRecord:
        version, event, payload, actor, from_state, to_state, at, key = row
        try:
            return record_from_data(
                self.spec,
                {
                    "version": version,
                    "event": event,
                    "payload": _loads(payload),
                    "actor": None if actor is None else _loads(actor),
                    "from_state": from_state,
                    "to_state": to_state,
                    "at": at,
                    "idempotency_key": key,
                },
            )
        except (PayloadError, ValueError, TypeError, KeyError) as exc:
            raise StoreDataError(
                f"audit record v{version} of {entity!r} does not fit {self.spec.name!r} "
                f"v{self.spec.version}: {exc!r}"
            ) from exc

    def entities(self) -> list[str]:
        """Every entity id with a stored snapshot, sorted."""
        with self._read("listing entities") as conn:
            rows = conn.execute(
                "SELECT entity FROM statekernel_snapshots WHERE scope = ? ORDER BY entity",
                (self._scope,),
            ).fetchall()
        return [r[0] for r in rows]

    def outbox(self, *, after: int = 0, limit: int = 100) -> list[OutboxEntry]:
        """Outbox rows with ``id > after``, oldest first, at most ``limit``, delivered or not:
        the outbox as history. A relay uses :meth:`pending_outbox` and
        :meth:`mark_delivered`."""
        with self._read("reading the outbox") as conn:
            rows = conn.execute(
                "SELECT id, entity, version, name, data FROM statekernel_outbox"
                " WHERE scope = ? AND id > ? ORDER BY id LIMIT ?",
                (self._scope, after, limit),
            ).fetchall()
        return [self._entry(r) for r in rows]

    def pending_outbox(self, *, limit: int = 100) -> list[OutboxEntry]:
        """Outbox rows not yet marked delivered, oldest first, at most ``limit``."""
        check_limit(limit)
        self._require_delivery()
        with self._read("reading the pending outbox") as conn:
            rows = conn.execute(_SELECT_PENDING, (self._scope, limit)).fetchall()
        return [self._entry(r) for r in rows]

    def mark_delivered(self, ids: Iterable[int]) -> int:
        """Mark these outbox rows delivered (at the store's clock, in one transaction) and
        return how many changed; rows already delivered, unknown ids and other specs' rows
        are left alone."""
        wanted = sorted(outbox_ids(ids))
        self._require_delivery()
        if not wanted:
            return 0
        at = self._clock().isoformat()

        def mark(conn: sqlite3.Connection) -> int:
            changed = 0
            for start in range(0, len(wanted), _MARK_CHUNK):
                chunk = wanted[start : start + _MARK_CHUNK]
                changed += conn.execute(
                    "UPDATE statekernel_outbox SET delivered_at = ? WHERE scope = ?"
                    f" AND delivered_at IS NULL AND id IN ({','.join('?' * len(chunk))})",
                    (at, self._scope, *chunk),
                ).rowcount
            return changed

        return self._transact(mark, lambda: f"marking {len(wanted)} outbox row(s) delivered")

    def _require_delivery(self) -> None:
        if not self._delivery_ready:
            raise SchemaMismatch(
                f"the database lacks migration {_DELIVERY_MIGRATION} (outbox delivery); the "
                "store was opened with create=False, so it did not migrate it. Open it once "
                "with create=True (the default) to upgrade it in place"
            )

    def _entry(self, row: Any) -> OutboxEntry:
        return OutboxEntry(row[0], row[1], row[2], row[3], _loads(row[4]), self._scope)

    def explain(self, entity: str) -> str:
        """Every transition of ``entity`` with the context fields it changed
        (:func:`statekernel.adapters.base.explain`)."""
        return explain(self, entity)

    def verify(self) -> VerifyReport:
        """Replay every entity's audit log through the kernel and report every mismatch with
        its stored snapshot. All of it is read in one read transaction, so concurrent writers
        cannot cause false alarms."""
        with self._read("verifying") as conn:
            began = not conn.in_transaction
            if began:
                conn.execute("BEGIN")
            try:
                found: list[Mismatch] = []
                names = self.entities()
                for entity in names:
                    try:
                        snapshot, records = self.get(entity), self.history(entity)
                    except StoreDataError as exc:
                        found.append(Mismatch(entity, None, str(exc)))
                        continue
                    found.extend(verify_entity(self.spec, entity, snapshot, records))
                return VerifyReport(len(names), tuple(found))
            finally:
                if began and conn.in_transaction:
                    conn.execute("COMMIT")

    def __repr__(self) -> str:
        where = self._path if self._path is not None else "a given connection"
        return f"SqliteStore({self.spec.name!r} v{self.spec.version}, {where})"
