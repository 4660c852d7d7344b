"""``PostgresStore``: the store for PostgreSQL (and wire-compatible distributed SQL engines).

Needs the ``postgres`` extra (psycopg 3 and psycopg-pool); this is the only module that
imports them.

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

One command (or one ``handle_many`` batch) is one READ COMMITTED transaction driven by the
shared store core (:mod:`statekernel.adapters._core`): load the snapshot and the key record,
plan, then write with a version compare-and-swap (``UPDATE ... WHERE version = <loaded>``, or
``INSERT ... ON CONFLICT DO NOTHING`` for a new entity; the key row likewise). If the swap
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
written.

Outbox ids come from an identity column: they order rows, but a transaction that commits late
can add a row with an id below one a reader has already seen, so ``outbox(after=...)`` is for
reading history, not for relaying. A relay uses :meth:`PostgresStore.pending_outbox` and
:meth:`PostgresStore.mark_delivered`: a row stays pending until it is marked, whenever its
transaction commits (see :mod:`statekernel.adapters.base`).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, TypeVar

import attrs
import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from statekernel.kernel import AuditRecord, Spec

from ._core import Conflict, Core, Json, KeyRow, OutboxRow, Retries, SnapshotRow, Writes
from ._shell import SyncStore
from .base import utcnow
from .errors import (
    CommitOutcomeUnknown,
    SchemaMismatch,
    SchemaMissing,
    StoreBusy,
    StoreDataError,
    StoreError,
    StoreReadOnly,
    StoreUnavailable,
)

__all__ = ["FORMAT", "PostgresStore"]

FORMAT: Final = 1
"""The version of the table layout this module writes (kept in the ``meta`` table)."""

_Conn = psycopg.Connection[Any]
_T = TypeVar("_T")
_RETRYABLE: Final = frozenset({"40001", "40P01", "23505"})
"""SQLSTATEs that re-run a command's whole transaction: serialization failure, deadlock, and
a unique violation (another writer took the row first; the compare-and-swap statements use
ON CONFLICT DO NOTHING, so this is only the constraints backing them up)."""

# --- JSON -------------------------------------------------------------------------------


def _float_text(value: float, path: str) -> str:
    if not math.isfinite(value):
        raise StoreDataError(
            f"{path or 'value'} is {value!r}, which PostgreSQL jsonb cannot store; "
            "nothing was written"
        )
    text = repr(value)
    if "e" in text or "E" in text:  # positional, so that jsonb gives back a float
        text = format(Decimal(text), "f")
        if "." not in text:
            text += ".0"
    return text


def _str_text(value: str, path: str) -> str:
    if "\x00" in value:
        raise StoreDataError(
            f"{path or 'value'} holds a NUL character, which PostgreSQL cannot store; "
            "nothing was written"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StoreDataError(
            f"{path or 'value'} is not valid Unicode text ({exc.reason}); nothing was written"
        ) from exc
    return json.dumps(value, ensure_ascii=False)


def _json_text(value: object, path: str = "") -> str:
    """Plain data as JSON text that ``jsonb`` stores and gives back exactly."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        try:
            return str(value)
        except ValueError as exc:  # more digits than Python converts by default
            raise StoreDataError(f"{path or 'value'}: {exc}; nothing was written") from exc
    if type(value) is float:
        return _float_text(value, path)
    if type(value) is str:
        return _str_text(value, path)
    if type(value) is dict:
        parts = []
        for k, v in value.items():
            if type(k) is not str:
                raise StoreDataError(f"{path or 'value'} has a non-string key {k!r}")
            sub = f"{path}.{k}" if path else k
            parts.append(f"{_str_text(k, sub)}:{_json_text(v, sub)}")
        return "{" + ",".join(parts) + "}"
    if type(value) is list or type(value) is tuple:
        items: Sequence[object] = value
        return "[" + ",".join(_json_text(v, f"{path}[{i}]") for i, v in enumerate(items)) + "]"
    raise StoreDataError(
        f"{path or 'value'} is a {type(value).__qualname__}, which is not plain data"
    )


_EXPONENT: Final = re.compile(r"(?:^|[:,\[])-?\d+(?:\.\d+)?[eE]")
"""A number in exponent notation, as ``json.dumps`` writes large and tiny floats (it may
also match inside a string, which only costs the careful path)."""


def _to_json(data: object) -> str:
    """Plain ``data`` as JSON text for a ``jsonb`` column, or StoreDataError.

    The C encoder does the common case; anything it might get wrong for ``jsonb`` (NaN,
    infinities, NUL, lone surrogates, floats in exponent notation, huge integers) goes
    through :func:`_json_text`, which is exact and names the offending field."""
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        text.encode("utf-8")
    except (ValueError, TypeError):
        pass
    else:
        if "\\u0000" not in text and not _EXPONENT.search(text):
            return text
    return _json_text(data)


def _utc(at: datetime | None) -> datetime | None:
    """A time for a ``timestamptz`` column; naive times are taken as UTC."""
    if at is None or at.tzinfo is not None:
        return at
    return at.replace(tzinfo=UTC)


JSONB: Final = Json(_to_json)
"""The JSON flavour of this store: text that ``jsonb`` stores and gives back exactly."""


# --- driver errors: the one translation point -------------------------------------------


def _ambiguous(exc: psycopg.Error) -> bool:
    """Whether a failed COMMIT may nevertheless have committed."""
    state = exc.sqlstate
    return state is None or state.startswith(("08", "57"))


def _translate(exc: psycopg.Error, doing: str) -> StoreError:
    """The store error for a driver error (raise it ``from exc``)."""
    text = f"PostgreSQL failed while {doing}: {str(exc).strip() or type(exc).__name__}"
    if isinstance(
        exc,
        pg_errors.SerializationFailure
        | pg_errors.DeadlockDetected
        | pg_errors.LockNotAvailable
        | pg_errors.QueryCanceled,
    ):
        return StoreBusy(text)
    if isinstance(exc, pg_errors.InsufficientPrivilege | pg_errors.ReadOnlySqlTransaction):
        return StoreReadOnly(text)
    if isinstance(
        exc, pg_errors.UndefinedTable | pg_errors.UndefinedColumn | pg_errors.InvalidSchemaName
    ):
        return SchemaMismatch(f"{text} (the store's tables are missing or were changed)")
    if isinstance(exc, psycopg.DataError):
        return StoreDataError(text)
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnavailable(text)
    return StoreError(text)


# --- where connections come from ---------------------------------------------------------


def _where(conninfo: str) -> str:
    """``host:port/dbname`` of a conninfo string, for messages (never the password)."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "the given DSN"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or ''}"


class _Source:
    """Hands out connections for one transaction at a time."""

    where: str = "PostgreSQL"

    @contextmanager
    def borrow(self) -> Iterator[_Conn]:
        """A connection, idle, for the caller's exclusive use until the block ends."""
        raise NotImplementedError
        yield

    @contextmanager
    def fresh(self) -> Iterator[_Conn]:
        """A connection other than any that just broke (to resolve a lost COMMIT)."""
        raise NotImplementedError
        yield

    def reopen(self) -> None:
        """Drop connections that may be stale."""

    def close(self) -> None:
        """Release what the store opened itself."""


class _DsnSource(_Source):
    """Connections the store opens itself, kept idle between commands."""

    def __init__(self, dsn: str, connect_timeout: float, keep_idle: int = 16) -> None:
        self.dsn = dsn
        self.where = _where(dsn)
        self.connect_timeout = connect_timeout
        self.keep_idle = keep_idle
        self._lock = threading.Lock()
        self._idle: list[_Conn] = []
        self._generation = 0
        self._closed = False

    def connect(self) -> _Conn:
        return psycopg.connect(
            self.dsn, autocommit=True, connect_timeout=max(1, math.ceil(self.connect_timeout))
        )

    @contextmanager
    def borrow(self) -> Iterator[_Conn]:
        with self._lock:
            if self._closed:
                raise StoreUnavailable("the store is closed")
            conn = self._idle.pop() if self._idle else None
            generation = self._generation
        if conn is None:
            conn = self.connect()
        try:
            yield conn
        finally:
            keep = not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE
            with self._lock:
                if (
                    keep
                    and not self._closed
                    and generation == self._generation
                    and len(self._idle) < self.keep_idle
                ):
                    self._idle.append(conn)
                    keep = True
                else:
                    keep = False
            if not keep:
                conn.close()

    @contextmanager
    def fresh(self) -> Iterator[_Conn]:
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._generation += 1
        for conn in idle:
            conn.close()

    def reopen(self) -> None:
        self._drop_idle()
        with self._lock:
            self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._drop_idle()


class _PoolSource(_Source):
    """Connections from a pool the caller owns (and closes)."""

    def __init__(self, pool: ConnectionPool[Any], timeout: float) -> None:
        self.pool = pool
        self.where = f"pool {pool.name!r}"
        self.timeout = timeout

    @contextmanager
    def borrow(self) -> Iterator[_Conn]:
        with self.pool.connection(timeout=self.timeout) as conn:
            yield conn

    fresh = borrow

    def reopen(self) -> None:
        self.pool.check()


class _ConnectionSource(_Source):
    """One connection the caller owns: used by one command at a time, never closed by the
    store. A lost COMMIT is resolved on a new connection to the same DSN."""

    def __init__(self, conn: _Conn, connect_timeout: float) -> None:
        self.conn = conn
        self.dsn = conn.info.dsn
        self.where = _where(self.dsn)
        self.connect_timeout = connect_timeout
        self._lock = threading.RLock()

    @contextmanager
    def borrow(self) -> Iterator[_Conn]:
        with self._lock:
            if self.conn.closed:
                raise StoreUnavailable(
                    f"the connection given to the store ({self.where}) is closed; "
                    "give the store a DSN or a pool to let it reconnect"
                )
            if self.conn.info.transaction_status != TransactionStatus.IDLE:
                raise StoreError(
                    "the connection given to the store is inside a transaction; the store "
                    "commits its own transactions and will not commit or roll back yours"
                )
            yield self.conn

    @contextmanager
    def fresh(self) -> Iterator[_Conn]:
        conn = psycopg.connect(
            self.dsn, autocommit=True, connect_timeout=max(1, math.ceil(self.connect_timeout))
        )
        try:
            yield conn
        finally:
            conn.close()

    def reopen(self) -> None:
        with self._lock:
            if self.conn.closed:
                raise StoreUnavailable(
                    f"the connection given to the store ({self.where}) is closed and a store "
                    "cannot reopen a connection it does not own"
                )


# --- transactions -------------------------------------------------------------------------


def _begin(conn: _Conn, consistent: bool = False) -> None:
    """READ COMMITTED, or (``consistent``) one REPEATABLE READ, read-only snapshot."""
    if consistent:
        conn.execute(
            b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            if conn.autocommit
            else b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"
        )
    elif conn.autocommit:
        conn.execute(b"BEGIN ISOLATION LEVEL READ COMMITTED")
    elif conn.isolation_level != psycopg.IsolationLevel.READ_COMMITTED:
        conn.execute(b"SET TRANSACTION ISOLATION LEVEL READ COMMITTED")


def _commit(conn: _Conn) -> None:
    if conn.autocommit:
        conn.execute(b"COMMIT")
    else:
        conn.commit()


def _rollback(conn: _Conn) -> None:
    """Best effort: end the transaction, or close a connection that cannot."""
    if conn.closed:
        return
    try:
        if conn.autocommit:
            if conn.info.transaction_status != TransactionStatus.IDLE:
                conn.execute(b"ROLLBACK")
        else:
            conn.rollback()
    except psycopg.Error:
        conn.close()


class _Tx:
    """One transaction on ``conn``: what it wrote (for COMMIT and the lost-COMMIT probe)."""

    __slots__ = ("conn", "writes", "wrote")

    def __init__(self, conn: _Conn) -> None:
        self.conn = conn
        self.writes: list[Writes] = []
        self.wrote = False


_STATEMENTS: Final = {
    "load": "SELECT state, version, context::text FROM {s}.snapshots"
    " WHERE spec = %s AND entity = %s",
    "load_locked": "SELECT state, version, context::text FROM {s}.snapshots"
    " WHERE spec = %s AND entity = %s FOR UPDATE",
    "load_key": "SELECT entity, fingerprint, decision::text, at FROM {s}.keys"
    " WHERE scope = %s AND key = %s",
    "insert_snapshot": "INSERT INTO {s}.snapshots (spec, entity, state, context, version)"
    " VALUES (%s, %s, %s, %s::jsonb, %s) ON CONFLICT (spec, entity) DO NOTHING"
    " RETURNING context::text",
    "update_snapshot": "UPDATE {s}.snapshots SET state = %s, context = %s::jsonb, version = %s"
    " WHERE spec = %s AND entity = %s AND version = %s RETURNING context::text",
    "insert_audit": "INSERT INTO {s}.audit (spec, entity, version, event, from_state,"
    " to_state, idempotency_key, at, record) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
    "insert_outbox": "INSERT INTO {s}.outbox (spec, entity, version, name, data)"
    " VALUES (%s, %s, %s, %s, %s::jsonb)",
    "insert_key": "INSERT INTO {s}.keys (scope, key, entity, fingerprint, decision, at)"
    " VALUES (%s, %s, %s, %s, %s::jsonb, %s) ON CONFLICT (scope, key) DO NOTHING",
    "audit_at": "SELECT record::text FROM {s}.audit"
    " WHERE spec = %s AND entity = %s AND version = %s",
    "history": "SELECT record::text FROM {s}.audit WHERE spec = %s AND entity = %s"
    " ORDER BY version",
    "entities": "SELECT entity FROM {s}.snapshots WHERE spec = %s",
    "outbox": "SELECT id, entity, version, name, data::text FROM {s}.outbox"
    " WHERE spec = %s AND id > %s ORDER BY id LIMIT %s",
    "pending": "SELECT id, entity, version, name, data::text FROM {s}.outbox"
    " WHERE spec = %s AND delivered_at IS NULL ORDER BY id LIMIT %s",
    "mark_delivered": "UPDATE {s}.outbox SET delivered_at = %s"
    " WHERE spec = %s AND delivered_at IS NULL AND id = ANY(%s::bigint[])",
    "purge": "DELETE FROM {s}.keys WHERE scope = %s AND at < %s",
    "lock_timeout": "SET LOCAL lock_timeout = '5s'",
    "meta": "SELECT spec_version, format FROM {s}.meta WHERE spec = %s",
    "insert_meta": "INSERT INTO {s}.meta (spec, spec_version, format) VALUES (%s, %s, %s)",
}

_DDL: Final = (
    "CREATE SCHEMA IF NOT EXISTS {s}",
    "CREATE TABLE IF NOT EXISTS {s}.meta (spec text PRIMARY KEY,"
    " spec_version bigint NOT NULL, format integer NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {s}.snapshots (spec text NOT NULL, entity text NOT NULL,"
    " state text NOT NULL, context jsonb NOT NULL, version bigint NOT NULL CHECK (version > 0),"
    " PRIMARY KEY (spec, entity))",
    "CREATE TABLE IF NOT EXISTS {s}.audit (spec text NOT NULL, entity text NOT NULL,"
    " version bigint NOT NULL CHECK (version > 0), event text NOT NULL,"
    " from_state text NOT NULL, to_state text NOT NULL, idempotency_key text, at timestamptz,"
    " record jsonb NOT NULL, PRIMARY KEY (spec, entity, version))",
    "CREATE TABLE IF NOT EXISTS {s}.keys (scope text NOT NULL, key text NOT NULL,"
    " entity text NOT NULL, fingerprint text NOT NULL, decision jsonb NOT NULL,"
    " at timestamptz, PRIMARY KEY (scope, key))",
    "CREATE TABLE IF NOT EXISTS {s}.outbox (id bigint GENERATED BY DEFAULT AS IDENTITY"
    " PRIMARY KEY, spec text NOT NULL, entity text NOT NULL, version bigint NOT NULL,"
    " name text NOT NULL, data jsonb NOT NULL)",
    "CREATE INDEX IF NOT EXISTS outbox_spec_id ON {s}.outbox (spec, id)",
    "CREATE INDEX IF NOT EXISTS keys_scope_at ON {s}.keys (scope, at)",
    # added after the first release: existing schemas gain them in place
    "ALTER TABLE {s}.outbox ADD COLUMN IF NOT EXISTS delivered_at timestamptz",
    "CREATE INDEX IF NOT EXISTS outbox_pending ON {s}.outbox (spec, id) WHERE delivered_at IS NULL",
)

_TABLES: Final = frozenset({"meta", "snapshots", "audit", "keys", "outbox"})
_INDEXES: Final = frozenset({"outbox_spec_id", "keys_scope_at", "outbox_pending"})


@attrs.frozen
class _Found:
    """What the catalog shows of the store's schema (read without writing)."""

    tables: frozenset[str]
    indexes: frozenset[str]
    delivered_at: bool
    meta: tuple[int, int] | None

    @property
    def complete(self) -> bool:
        """Every table, column and index this version creates is there."""
        return self.tables >= _TABLES and self.indexes >= _INDEXES and self.delivered_at


def _render(template: str, schema: str) -> bytes:
    return sql.SQL(template).format(s=sql.Identifier(schema)).as_bytes(None)


# --- the store ----------------------------------------------------------------------------


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
        self._core = Core(spec, JSONB)
        self._retries = Retries(max_retries)
        self._random = random.Random()
        self._pinned = threading.local()  # the connection of a consistent read, per thread
        self._sql = {name: _render(text, schema) for name, text in _STATEMENTS.items()}
        self._source: _Source
        if isinstance(target, str):
            self._source = _DsnSource(target, connect_timeout)
        elif isinstance(target, ConnectionPool):
            self._source = _PoolSource(target, connect_timeout)
        elif isinstance(target, psycopg.Connection):
            self._source = _ConnectionSource(target, connect_timeout)
        else:
            raise TypeError(
                "PostgresStore needs a DSN, a psycopg.Connection or a "
                f"psycopg_pool.ConnectionPool, not {type(target).__name__}"
            )
        self._setup()

    # -- plumbing ------------------------------------------------------------------------

    @contextmanager
    def _connection(self, doing: str) -> Iterator[_Conn]:
        """A borrowed connection; every driver error inside becomes a store error."""
        try:
            with self._source.borrow() as conn:
                yield conn
        except psycopg.Error as exc:
            raise _translate(exc, f"{doing} ({self._source.where})") from exc

    @contextmanager
    def _transaction(self, conn: _Conn) -> Iterator[None]:
        """BEGIN ... COMMIT for setup: rolled back if the block raises."""
        _begin(conn)
        try:
            yield
        except BaseException:
            _rollback(conn)
            raise
        _commit(conn)

    def _inspect(self) -> _Found:
        """Read the catalog (in a read-only transaction): which of the store's tables,
        indexes and columns exist, and the spec's meta row."""
        with self._connection("reading the schema") as conn, self._transaction(conn):
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
        return _Found(tables & _TABLES, indexes & _INDEXES, delivered_at, meta)

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
            missing = sorted(_TABLES - found.tables)
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
        lock_id = int.from_bytes(
            hashlib.sha256(f"statekernel:{self.schema}".encode()).digest()[:8], "big", signed=True
        )
        with self._connection("creating the schema") as conn, self._transaction(conn):
            conn.execute(b"SELECT pg_advisory_xact_lock(%s)", (lock_id,))
            for ddl in _DDL:
                conn.execute(_render(ddl, self.schema))
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
            with self._source.borrow() as conn:
                tx = _Tx(conn)
                _begin(conn)
                try:
                    result = work(tx, rerun)
                except BaseException:
                    _rollback(conn)
                    raise
                if not tx.wrote:
                    _rollback(conn)
                    return result
                try:
                    _commit(conn)
                except psycopg.Error as exc:
                    if exc.sqlstate in _RETRYABLE or not _ambiguous(exc) or not tx.writes:
                        raise
                    lost = exc
                else:
                    return result
            self._resolve(tx.writes[0], lost)
            return result
        except psycopg.Error as exc:
            if exc.sqlstate in _RETRYABLE:
                raise Conflict(
                    str(exc).strip() or type(exc).__name__, backstop=exc.sqlstate == "23505"
                ) from exc
            raise _translate(exc, f"{doing()} ({self._source.where})") from exc

    @contextmanager
    def _reading(self, doing: str, *, consistent: bool = False) -> Iterator[_Tx]:
        pinned: _Tx | None = getattr(self._pinned, "tx", None)
        if pinned is not None:  # inside a consistent read on this thread: share it
            yield pinned
            return
        try:
            with self._source.borrow() as conn:
                _begin(conn, consistent)
                tx = _Tx(conn)
                if consistent:
                    self._pinned.tx = tx
                try:
                    yield tx
                except BaseException:
                    _rollback(conn)
                    raise
                finally:
                    self._pinned.tx = None
                _commit(conn)
        except psycopg.Error as exc:
            raise _translate(exc, f"{doing} ({self._source.where})") from exc

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

    def _apply(self, conn: _Conn, w: Writes) -> str | None:
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
                    _utc(a.at),
                    self._core.record_text(w),
                ),
            )
            for msg, data in w.outbox:
                conn.execute(sql_["insert_outbox"], (name, entity, s.version, msg, data))
        k = w.key
        if k is not None:
            row_key = (name, k.key, k.entity, k.fingerprint, k.answer, _utc(k.at))
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
                time.sleep(self._retries.delay(attempt + 3, self._random))
            try:
                with self._source.fresh() as conn:
                    _begin(conn)
                    try:
                        landed = self._landed(conn, first)
                    finally:
                        _rollback(conn)
            except psycopg.Error as exc:
                problem = exc
                continue
            if landed:
                return
            raise Conflict(f"the COMMIT on {self._source.where} did not land ({lost})")
        raise CommitOutcomeUnknown(
            f"the connection to {self._source.where} broke during COMMIT of a write on "
            f"{first.entity!r} ({lost}) and the outcome could not be checked ({problem}); "
            "retry with the same idempotency key"
        ) from lost

    def _landed(self, conn: _Conn, w: Writes) -> bool:
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
            row = conn.execute(self._sql["load_key"], (name, k.key)).fetchone()
            return (
                row is not None
                and (row[0], row[1], row[3]) == (k.entity, k.fingerprint, _utc(k.at))
                and json.loads(row[2]) == json.loads(k.answer)
            )
        assert w.audit is not None
        row = conn.execute(self._sql["audit_at"], (name, w.entity, w.audit.version)).fetchone()
        return row is not None and json.loads(row[0]) == json.loads(self._core.record_text(w))

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
        cur = tx.conn.execute(self._sql["mark_delivered"], (_utc(at), self.spec.name, ids))
        return cur.rowcount

    def _purge(self, tx: _Tx, older_than: datetime) -> int:
        tx.wrote = True
        cur = tx.conn.execute(self._sql["purge"], (self.spec.name, _utc(older_than)))
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
            raise _translate(exc, f"reopening ({self._source.where})") from exc
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
