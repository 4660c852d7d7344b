"""What every PostgreSQL store shares, with no I/O: the table layout (DDL and the catalog
check), the statement text, the ``jsonb`` JSON flavour, the one map from driver errors to
store errors, and how to tell from rows read back after a lost COMMIT whether it landed.

The synchronous :class:`~statekernel.adapters.postgres.PostgresStore` uses it today; an
asynchronous store over psycopg's async connections would use the same text and rules.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import attrs
import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ._core import Conflict, Json, KeyWrite
from .errors import (
    SchemaMismatch,
    StoreBusy,
    StoreDataError,
    StoreError,
    StoreReadOnly,
    StoreUnavailable,
)

__all__ = [
    "DDL",
    "FORMAT",
    "INDEXES",
    "JSONB",
    "RETRYABLE",
    "STATEMENTS",
    "TABLES",
    "Found",
    "ambiguous",
    "audit_landed",
    "conflict",
    "key_landed",
    "lock_id",
    "render",
    "to_json",
    "translate",
    "utc",
    "where",
]

FORMAT: Final = 1
"""The version of the table layout these statements write (kept in the ``meta`` table)."""

RETRYABLE: Final = frozenset({"40001", "40P01", "23505"})
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


def to_json(data: object) -> str:
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


def utc(at: datetime | None) -> datetime | None:
    """A time for a ``timestamptz`` column; naive times are taken as UTC."""
    if at is None or at.tzinfo is not None:
        return at
    return at.replace(tzinfo=UTC)


JSONB: Final = Json(to_json)
"""The JSON flavour of this store: text that ``jsonb`` stores and gives back exactly."""


# --- driver errors: the one translation point -------------------------------------------


def ambiguous(exc: psycopg.Error) -> bool:
    """Whether a failed COMMIT may nevertheless have committed."""
    state = exc.sqlstate
    return state is None or state.startswith(("08", "57"))


def translate(exc: psycopg.Error, doing: str) -> StoreError:
    """The store error for a driver error (raise it ``from exc``)."""
    text = f"PostgreSQL failed while {doing}: {str(exc).strip() or type(exc).__name__}"
    if isinstance(exc, pg_errors.LockNotAvailable | pg_errors.QueryCanceled):
        return StoreBusy(
            f"{text} (the store's lock_timeout or statement_timeout expired); nothing was "
            "written, retry with the same idempotency key"
        )
    if isinstance(exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected):
        return StoreBusy(text)
    if (exc.sqlstate or "").startswith("54"):  # program_limit_exceeded and its kin
        return StoreDataError(
            f"{text} (a value is beyond what PostgreSQL can store or index); nothing was written"
        )
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


def conflict(exc: psycopg.Error) -> Conflict:
    """The :class:`~._core.Conflict` for a driver error whose SQLSTATE is in
    :data:`RETRYABLE` (raise it ``from exc``)."""
    return Conflict(str(exc).strip() or type(exc).__name__, backstop=exc.sqlstate == "23505")


def where(conninfo: str) -> str:
    """``host:port/dbname`` of a conninfo string, for messages (never the password)."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "the given DSN"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or ''}"


STATEMENTS: Final = {
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

DDL: Final = (
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

TABLES: Final = frozenset({"meta", "snapshots", "audit", "keys", "outbox"})
INDEXES: Final = frozenset({"outbox_spec_id", "keys_scope_at", "outbox_pending"})


@attrs.frozen
class Found:
    """What the catalog shows of the store's schema (read without writing)."""

    tables: frozenset[str]
    indexes: frozenset[str]
    delivered_at: bool
    meta: tuple[int, int] | None

    @property
    def complete(self) -> bool:
        """Every table, column and index this version creates is there."""
        return self.tables >= TABLES and self.indexes >= INDEXES and self.delivered_at


def render(template: str, schema: str) -> bytes:
    return sql.SQL(template).format(s=sql.Identifier(schema)).as_bytes(None)


def lock_id(schema: str) -> int:
    """The advisory lock that serialises creating the tables in ``schema``."""
    return int.from_bytes(
        hashlib.sha256(f"statekernel:{schema}".encode()).digest()[:8], "big", signed=True
    )


# --- after a lost COMMIT: did the transaction land? ------------------------------------


def key_landed(row: Sequence[Any] | None, k: KeyWrite) -> bool:
    """Whether ``row`` (``load_key``'s: entity, fingerprint, answer, at) is the key record
    ``k`` exactly as it was written, not another request's."""
    return (
        row is not None
        and (row[0], row[1], row[3]) == (k.entity, k.fingerprint, utc(k.at))
        and json.loads(row[2]) == json.loads(k.answer)
    )


def audit_landed(row: Sequence[Any] | None, record_text: str) -> bool:
    """Whether ``row`` (``audit_at``'s: the record) is the audit record written as
    ``record_text``."""
    return row is not None and json.loads(row[0]) == json.loads(record_text)
