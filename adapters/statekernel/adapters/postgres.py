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

One command is one READ COMMITTED transaction: load the snapshot and the key record, call the
kernel's :func:`~statekernel.kernel.plan`, then write with a version compare-and-swap
(``UPDATE ... WHERE version = <loaded>``, or ``INSERT ... ON CONFLICT DO NOTHING`` for a new
entity; the key row likewise). If the swap touches no row (or a unique constraint fires)
another writer won, so the whole transaction runs again: the next plan may be the stored
answer under the key, or a ``version_conflict`` decided by the kernel. Serialization failures
(40001) and deadlocks (40P01) also re-run the whole transaction. Re-runs are bounded and back
off exponentially with jitter; when they run out the store raises
:class:`~statekernel.adapters.errors.StoreBusy`. Nothing else is retried. The hot path is
plain SQL: no advisory locks, no LISTEN/NOTIFY. A re-run loads the snapshot ``FOR UPDATE``,
so a writer that lost once queues on the row instead of racing again.

If the connection breaks during ``COMMIT`` the store does not guess. On a fresh connection it
repeats the write's compare-and-swap in a transaction it always rolls back (so it waits for
any transaction still holding the rows) and then reads the key record, or the audit row at
the new version: if the write landed, the answer is the one that was committed; if it
certainly did not, the command runs again. If it cannot find out,
:class:`~statekernel.adapters.errors.CommitOutcomeUnknown`.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import attrs
import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from statekernel.kernel import (
    Accepted,
    AuditRecord,
    Command,
    Decision,
    KeyRecord,
    Plan,
    Snapshot,
    Spec,
    UnsupportedType,
    check_identifier,
    decision_from_data,
    decision_to_data,
    plan,
    record_from_data,
    record_to_data,
    snapshot_from_data,
    snapshot_to_data,
    unstructure,
)

from .base import OutboxEntry, check_limit, outbox_ids, stamp, utcnow
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

__all__ = ["FORMAT", "PostgresStore"]

FORMAT: Final = 1
"""The version of the table layout this module writes (kept in the ``meta`` table)."""

_Conn = psycopg.Connection[Any]
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


def _plain(convert: Callable[[Any], Any], value: object, what: str) -> Any:
    """``convert(value)``: plain data, or StoreDataError when ``value`` holds a type the
    codec does not know."""
    try:
        return convert(value)
    except UnsupportedType as exc:
        raise StoreDataError(f"{what} cannot be stored as plain data: {exc}") from exc


def _to_json(data: object, what: str) -> str:
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
    try:
        return _json_text(data)
    except StoreDataError as exc:
        raise StoreDataError(f"{what}: {exc}") from None


def _from_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StoreDataError(f"stored {what} is not readable JSON: {exc}") from exc


def _utc(at: datetime | None) -> datetime | None:
    """A time for a ``timestamptz`` column; naive times are taken as UTC."""
    if at is None or at.tzinfo is not None:
        return at
    return at.replace(tzinfo=UTC)


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


def _begin(conn: _Conn) -> None:
    if conn.autocommit:
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


class _LostRace(Exception):
    """A compare-and-swap touched no row: another writer won; run the transaction again."""


@attrs.frozen
class _Writes:
    """A plan's write set, encoded for the database (encoding happens before any write)."""

    snapshot: tuple[str, str, int] | None
    audit: tuple[Any, ...] | None
    outbox: tuple[tuple[str, str], ...]
    key: tuple[Any, ...] | None


_STATEMENTS: Final = {
    "load": "SELECT state, context::text, version FROM {s}.snapshots"
    " WHERE spec = %s AND entity = %s",
    "load_locked": "SELECT state, context::text, version FROM {s}.snapshots"
    " WHERE spec = %s AND entity = %s FOR UPDATE",
    "load_key": "SELECT entity, fingerprint, decision::text, at FROM {s}.keys"
    " WHERE scope = %s AND key = %s",
    "insert_snapshot": "INSERT INTO {s}.snapshots (spec, entity, state, context, version)"
    " VALUES (%s, %s, %s, %s::jsonb, %s) ON CONFLICT (spec, entity) DO NOTHING",
    "update_snapshot": "UPDATE {s}.snapshots SET state = %s, context = %s::jsonb, version = %s"
    " WHERE spec = %s AND entity = %s AND version = %s",
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


class PostgresStore:
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
        self._delivery_ready = True
        self._random = random.Random()
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
        """BEGIN ... COMMIT for reads and setup: rolled back if the block raises."""
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
            self._delivery_ready = found.delivered_at
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
        self._delivery_ready = True

    def _backoff(self, attempt: int) -> None:
        time.sleep(self._random.uniform(0, min(0.2, 0.002 * 2**attempt)))

    # -- writing -------------------------------------------------------------------------

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        """Decide ``command`` on ``entity`` and commit the plan's whole write set in one
        transaction; return the decision (the first answer, for a retried key).

        Raises :class:`~statekernel.kernel.InvalidIdentifier` for a malformed id or key,
        :class:`~statekernel.adapters.errors.StoreDataError` for values ``jsonb`` cannot hold,
        :class:`~statekernel.adapters.errors.StoreBusy` when re-runs run out,
        :class:`~statekernel.adapters.errors.StoreUnavailable` when the server is gone, and
        :class:`~statekernel.adapters.errors.CommitOutcomeUnknown` when a lost COMMIT cannot
        be resolved. Nothing is written in any of these cases except the last, where a retry
        with the same key answers from what was written.
        """
        check_identifier("entity id", entity)
        if idempotency_key is not None:
            check_identifier("idempotency key", idempotency_key)
        command = stamp(command, self._clock())
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._backoff(attempt - 1)
            try:
                return self._attempt(entity, command, idempotency_key, lock=attempt > 0)
            except _LostRace as exc:
                last = exc
            except psycopg.Error as exc:
                if exc.sqlstate not in _RETRYABLE:
                    doing = f"handling {command.event!r} on {entity!r} ({self._source.where})"
                    raise _translate(exc, doing) from exc
                last = exc
        if isinstance(last, pg_errors.UniqueViolation):
            raise StoreCorrupt(
                f"{command.event!r} on {entity!r} kept colliding with stored rows ({last}): "
                "the audit log or key records are ahead of the snapshot; nothing was written"
            ) from last
        raise StoreBusy(
            f"{command.event!r} on {entity!r} lost to concurrent writers "
            f"{self.max_retries + 1} times in a row ({last}); nothing was written, retry with "
            "the same idempotency key"
        ) from last

    def _load(
        self, conn: _Conn, entity: str, key: str | None, lock: bool
    ) -> tuple[Snapshot | None, KeyRecord | None]:
        name = self.spec.name
        row = conn.execute(self._sql["load_locked" if lock else "load"], (name, entity)).fetchone()
        current = None
        if row is not None:
            current = self._snapshot(row[0], row[1], row[2])
        stored = None
        if key is not None:
            krow = conn.execute(self._sql["load_key"], (name, key)).fetchone()
            if krow is not None:
                stored = KeyRecord(key, krow[0], krow[1], self._decision(krow[2]), krow[3])
        return current, stored

    def _attempt(self, entity: str, command: Command, key: str | None, lock: bool) -> Decision:
        """One run of the command's transaction. ``lock``: load the snapshot ``FOR UPDATE``
        (re-runs do, so that a busy entity cannot starve a writer; the compare-and-swap
        still checks)."""
        where = self._source.where
        with self._source.borrow() as conn:
            try:
                _begin(conn)
                current, stored = self._load(conn, entity, key, lock)
                p = plan(self.spec, entity, current, command, key, stored)
                if not p.writes:
                    _rollback(conn)
                    return p.decision
                writes = self._encode(entity, p)
                self._write(conn, entity, current, writes)
            except BaseException:
                _rollback(conn)
                raise
            try:
                _commit(conn)
            except psycopg.Error as exc:
                if exc.sqlstate in _RETRYABLE or not _ambiguous(exc):
                    raise
                lost = exc
            else:
                return p.decision
        # The connection broke during COMMIT: find out, on a fresh one, what happened.
        decision = self._resolve(entity, current, p, writes, lost)
        if decision is None:
            raise _LostRace(f"the COMMIT on {where} did not land ({lost})")
        return decision

    def _encode(self, entity: str, p: Plan) -> _Writes:
        """Every value of the write set as ``jsonb`` text. Each value is turned into plain
        data once: the answer kept under the key reuses the snapshot's, the record's and the
        effects' plain forms instead of converting them again."""
        snapshot = audit = key = None
        snapshot_data = record_data = None
        if p.snapshot is not None and p.record is not None:
            snapshot_data = _plain(snapshot_to_data, p.snapshot, "the new context")
            r = p.record
            record_data = _plain(record_to_data, r, "the audit record")
            snapshot = (
                p.snapshot.state,
                _to_json(snapshot_data["context"], "the new context"),
                p.snapshot.version,
            )
            audit = (
                self.spec.name,
                entity,
                r.version,
                r.event,
                r.from_state,
                r.to_state,
                r.idempotency_key,
                _utc(r.at),
                _to_json(record_data, "the audit record"),
            )
        effects = [(m.name, _plain(unstructure, m.data, f"effect {m.name!r}")) for m in p.outbox]
        outbox = tuple((name, _to_json(data, f"effect {name!r}")) for name, data in effects)
        if p.key_record is not None:
            k = p.key_record
            d = k.decision
            if (
                isinstance(d, Accepted)
                and d.snapshot is p.snapshot
                and d.record is p.record
                and snapshot_data is not None
            ):
                answer: object = {
                    "accepted": True,
                    "snapshot": snapshot_data,
                    "record": record_data,
                    "effects": [{"name": name, "data": data} for name, data in effects],
                }
            else:
                answer = _plain(decision_to_data, d, "the answer to remember")
            decision = _to_json(answer, "the answer to remember")
            key = (self.spec.name, k.key, k.entity, k.fingerprint, decision, _utc(k.at))
        return _Writes(snapshot, audit, outbox, key)

    def _write(self, conn: _Conn, entity: str, current: Snapshot | None, w: _Writes) -> None:
        name = self.spec.name
        if w.snapshot is not None and w.audit is not None:
            state, context, version = w.snapshot
            if current is None:
                cur = conn.execute(
                    self._sql["insert_snapshot"], (name, entity, state, context, version)
                )
            else:
                cur = conn.execute(
                    self._sql["update_snapshot"],
                    (state, context, version, name, entity, current.version),
                )
            if cur.rowcount != 1:
                raise _LostRace(f"{entity!r} moved on from version {version - 1}")
            conn.execute(self._sql["insert_audit"], w.audit)
            for msg_name, data in w.outbox:
                conn.execute(self._sql["insert_outbox"], (name, entity, version, msg_name, data))
        if w.key is not None and conn.execute(self._sql["insert_key"], w.key).rowcount != 1:
            raise _LostRace(f"idempotency key {w.key[1]!r} was taken meanwhile")

    def _resolve(
        self,
        entity: str,
        current: Snapshot | None,
        p: Plan,
        writes: _Writes,
        lost: psycopg.Error,
    ) -> Decision | None:
        """After a COMMIT whose reply was lost: the committed answer, or ``None`` if the write
        certainly did not land. Raises CommitOutcomeUnknown if it cannot tell."""
        problem: Exception = lost
        for attempt in range(3):
            if attempt:
                self._backoff(attempt + 3)
            try:
                with self._source.fresh() as conn:
                    _begin(conn)
                    try:
                        return self._probe(conn, entity, current, p, writes)
                    finally:
                        _rollback(conn)
            except psycopg.Error as exc:
                problem = exc
        raise CommitOutcomeUnknown(
            f"the connection to {self._source.where} broke during COMMIT of {p.decision!r} "
            f"on {entity!r} ({lost}) and the outcome could not be checked ({problem}); retry "
            "with the same idempotency key"
        ) from lost

    def _probe(
        self, conn: _Conn, entity: str, current: Snapshot | None, p: Plan, w: _Writes
    ) -> Decision | None:
        conn.execute(self._sql["lock_timeout"])
        name = self.spec.name
        # Repeat the compare-and-swap (this transaction is always rolled back): it waits
        # for a transaction still holding the row, and succeeds only if ours did not land.
        try:
            self._write(conn, entity, current, w)
        except _LostRace:
            pass
        else:
            return None
        if p.key_record is not None:
            row = conn.execute(self._sql["load_key"], (name, p.key_record.key)).fetchone()
            if row is None or (row[0], row[1]) != (entity, p.key_record.fingerprint):
                return None
            decision = self._decision(row[2])
            if w.key is not None and _from_json(row[2], "answer") != _from_json(w.key[4], "answer"):
                # the same request, answered by a duplicate that committed first
                decision = attrs.evolve(decision, replayed=True)
            return decision
        assert p.record is not None
        row = conn.execute(self._sql["audit_at"], (name, entity, p.record.version)).fetchone()
        if row is not None and _from_json(row[0], "audit record") == _from_json(
            w.audit[-1] if w.audit else "null", "audit record"
        ):
            return p.decision
        return None

    # -- reading -------------------------------------------------------------------------

    def _snapshot(self, state: str, context: str, version: int) -> Snapshot:
        data = {"state": state, "context": _from_json(context, "context"), "version": version}
        try:
            return snapshot_from_data(self.spec, data)
        except Exception as exc:
            raise StoreDataError(
                f"a stored context no longer fits {self.spec.name!r} v{self.spec.version}: {exc}"
            ) from exc

    def _decision(self, text: str) -> Decision:
        try:
            return decision_from_data(self.spec, _from_json(text, "answer"))
        except StoreDataError:
            raise
        except Exception as exc:
            raise StoreDataError(f"a stored answer no longer fits the spec: {exc}") from exc

    def _record(self, text: str) -> AuditRecord:
        try:
            return record_from_data(self.spec, _from_json(text, "audit record"))
        except StoreDataError:
            raise
        except Exception as exc:
            raise StoreDataError(f"a stored audit record no longer fits the spec: {exc}") from exc

    def get(self, entity: str) -> Snapshot | None:
        """The entity's current snapshot, or ``None`` if it was never written."""
        check_identifier("entity id", entity)
        with self._connection(f"reading {entity!r}") as conn, self._transaction(conn):
            row = conn.execute(self._sql["load"], (self.spec.name, entity)).fetchone()
        return None if row is None else self._snapshot(row[0], row[1], row[2])

    def history(self, entity: str) -> Sequence[AuditRecord]:
        """The entity's audit records, oldest first."""
        check_identifier("entity id", entity)
        doing = f"reading the history of {entity!r}"
        with self._connection(doing) as conn, self._transaction(conn):
            rows = conn.execute(self._sql["history"], (self.spec.name, entity)).fetchall()
        return tuple(self._record(row[0]) for row in rows)

    def entities(self) -> list[str]:
        """Every entity id with a stored snapshot, sorted (by code point)."""
        with self._connection("listing entities") as conn, self._transaction(conn):
            rows = conn.execute(self._sql["entities"], (self.spec.name,)).fetchall()
        return sorted(row[0] for row in rows)

    def outbox(self, *, after: int = 0, limit: int = 100) -> Sequence[OutboxEntry]:
        """Outbox rows with ``id > after``, oldest first, at most ``limit`` of them,
        delivered or not: the outbox as history.

        Not a relay cursor: ids are assigned when rows are inserted, but rows become visible
        when their transaction commits, so a transaction that commits late can add a row with
        an id below one a reader has already seen, and a reader polling with
        ``after=<last id seen>`` skips it for good. Relay with :meth:`pending_outbox` and
        :meth:`mark_delivered`."""
        with self._connection("reading the outbox") as conn, self._transaction(conn):
            rows = conn.execute(self._sql["outbox"], (self.spec.name, after, limit)).fetchall()
        return tuple(self._entry(row) for row in rows)

    def pending_outbox(self, *, limit: int = 100) -> Sequence[OutboxEntry]:
        """Outbox rows not yet marked delivered, oldest first (by id), at most ``limit``.
        A row that commits late, below ids already returned, is returned too: it is pending
        until it is marked."""
        check_limit(limit)
        self._require_delivery()
        with self._connection("reading the pending outbox") as conn, self._transaction(conn):
            rows = conn.execute(self._sql["pending"], (self.spec.name, limit)).fetchall()
        return tuple(self._entry(row) for row in rows)

    def mark_delivered(self, ids: Iterable[int]) -> int:
        """Mark these outbox rows delivered (at the store's clock, in one transaction) and
        return how many changed; rows already delivered, unknown ids and other specs' rows
        are left alone. Re-runs on serialization failures and deadlocks like
        :meth:`handle`; raises :class:`~statekernel.adapters.errors.StoreBusy` when they
        run out (marking again is harmless)."""
        wanted = sorted(outbox_ids(ids))
        self._require_delivery()
        if not wanted:
            return 0
        at = _utc(self._clock())
        doing = f"marking {len(wanted)} outbox row(s) delivered ({self._source.where})"
        last: psycopg.Error | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._backoff(attempt - 1)
            try:
                with self._source.borrow() as conn:
                    _begin(conn)
                    try:
                        cur = conn.execute(
                            self._sql["mark_delivered"], (at, self.spec.name, wanted)
                        )
                        changed = cur.rowcount
                    except BaseException:
                        _rollback(conn)
                        raise
                    _commit(conn)
                    return changed
            except psycopg.Error as exc:
                if exc.sqlstate not in ("40001", "40P01"):
                    raise _translate(exc, doing) from exc
                last = exc
        raise StoreBusy(
            f"{doing} kept failing serialization ({last}); nothing was written, mark them again"
        ) from last

    def _require_delivery(self) -> None:
        if not self._delivery_ready:
            raise SchemaMismatch(
                f"the outbox in schema {self.schema!r} has no delivered_at column yet; the "
                "store was opened with create=False, so it did not add it. Open the schema "
                "once with create=True (the default) to upgrade it in place"
            )

    def _entry(self, row: Any) -> OutboxEntry:
        data = _from_json(row[4], "outbox data")
        return OutboxEntry(row[0], row[1], row[2], row[3], data, self.spec.name)

    def purge_keys(self, older_than: datetime) -> int:
        """Delete key records first answered before ``older_than`` (naive times are UTC);
        return how many were deleted."""
        with self._connection("purging keys") as conn, self._transaction(conn):
            cur = conn.execute(self._sql["purge"], (self.spec.name, _utc(older_than)))
            return cur.rowcount

    # -- lifecycle -----------------------------------------------------------------------

    def reopen(self) -> None:
        """Drop the store's connections and check the schema again, as after a restart.

        With a DSN every connection is closed and reopened on demand; with a pool, broken
        idle connections are replaced (``pool.check()``); with a single given connection,
        nothing can be reopened: it raises
        :class:`~statekernel.adapters.errors.StoreUnavailable` if that connection is closed.
        """
        try:
            self._source.reopen()
        except psycopg.Error as exc:
            raise _translate(exc, f"reopening ({self._source.where})") from exc
        self._setup()

    def close(self) -> None:
        """Close the connections the store opened itself (a given connection or pool is
        left to its owner)."""
        self._source.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
