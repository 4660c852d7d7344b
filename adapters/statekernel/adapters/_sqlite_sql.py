"""What every SQLite store shares, with no I/O of its own: the schema (sqlite-utils
migrations), the statement text, and the one map from ``sqlite3`` errors to store errors.

The synchronous :class:`~statekernel.adapters.sqlite.SqliteStore` uses it today; an
asynchronous store would run the same statements and migrations.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import sqlite_utils
from sqlite_utils import Migrations

from .base import as_utc
from .errors import (
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreReadOnly,
    StoreUnavailable,
)

__all__ = [
    "DELIVERY_MIGRATION",
    "INSERT_AUDIT",
    "INSERT_KEY",
    "INSERT_OUTBOX",
    "INSERT_SNAPSHOT",
    "KNOWN_MIGRATIONS",
    "MARK_CHUNK",
    "MIGRATIONS",
    "PURGE",
    "SELECT_ENTITIES",
    "SELECT_HISTORY",
    "SELECT_OUTBOX",
    "SELECT_PENDING",
    "SELECT_SNAPSHOT",
    "SELECT_SNAPSHOT_AND_KEY",
    "UPDATE_SNAPSHOT",
    "commit_outcome_known",
    "has_table",
    "micros",
    "translate_error",
]

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


DELIVERY_MIGRATION = "0002_outbox_delivery"

KNOWN_MIGRATIONS = frozenset({"0001_initial", DELIVERY_MIGRATION})
"""The names of every migration above (a database with others is from a newer version)."""


# -- the hot path's statements (the sqlite3 module caches them prepared) ----------------------

SELECT_SNAPSHOT = (
    "SELECT state, version, context FROM statekernel_snapshots WHERE scope = ? AND entity = ?"
)
# One round trip for a keyed command: the snapshot (if any) and the key record (if any).
SELECT_SNAPSHOT_AND_KEY = (
    "SELECT s.state, s.version, s.context, k.entity, k.fingerprint, k.decision, k.at"
    " FROM (SELECT 1) AS one"
    " LEFT JOIN statekernel_snapshots AS s ON s.scope = ? AND s.entity = ?"
    " LEFT JOIN statekernel_keys AS k ON k.scope = ? AND k.key = ?"
)
INSERT_SNAPSHOT = (
    "INSERT INTO statekernel_snapshots (scope, entity, state, version, context)"
    " VALUES (?, ?, ?, ?, ?)"
)
UPDATE_SNAPSHOT = (
    "UPDATE statekernel_snapshots SET state = ?, version = ?, context = ?"
    " WHERE scope = ? AND entity = ? AND version = ?"
)
INSERT_AUDIT = (
    "INSERT INTO statekernel_audit (scope, entity, version, event, payload, actor, from_state,"
    " to_state, at, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_OUTBOX = (
    "INSERT INTO statekernel_outbox (scope, entity, version, name, data) VALUES (?, ?, ?, ?, ?)"
)
INSERT_KEY = (
    "INSERT INTO statekernel_keys (scope, key, entity, fingerprint, decision, at, at_us)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
SELECT_PENDING = (
    "SELECT id, entity, version, name, data FROM statekernel_outbox"
    " WHERE scope = ? AND delivered_at IS NULL ORDER BY id LIMIT ?"
)
MARK_CHUNK = 500  # ids per UPDATE, far below SQLite's limit on bound parameters
SELECT_HISTORY = (
    "SELECT version, event, payload, actor, from_state, to_state, at, idempotency_key"
    " FROM statekernel_audit WHERE scope = ? AND entity = ? ORDER BY version"
)
SELECT_ENTITIES = "SELECT entity FROM statekernel_snapshots WHERE scope = ? ORDER BY entity"
SELECT_OUTBOX = (
    "SELECT id, entity, version, name, data FROM statekernel_outbox"
    " WHERE scope = ? AND id > ? ORDER BY id LIMIT ?"
)
PURGE = "DELETE FROM statekernel_keys WHERE scope = ? AND at_us < ?"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    """Microseconds since the epoch; a naive time is taken as UTC."""
    return (as_utc(at) - _EPOCH) // _US


# -- error translation: the one place sqlite3 errors become store errors ----------------------

_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_READONLY = {3, 8}  # SQLITE_PERM, SQLITE_READONLY
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
        return StoreReadOnly(f"the database cannot be written{where}: {text}")
    if primary == 13:  # SQLITE_FULL
        return StoreUnavailable(
            f"the disk (or the database's max_page_count) is full{where}: {text}; nothing "
            "was written"
        )
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


_COMMIT_REFUSED = {
    3,  # SQLITE_PERM
    5,  # SQLITE_BUSY
    6,  # SQLITE_LOCKED
    7,  # SQLITE_NOMEM
    8,  # SQLITE_READONLY
    9,  # SQLITE_INTERRUPT
    11,  # SQLITE_CORRUPT
    13,  # SQLITE_FULL
    14,  # SQLITE_CANTOPEN
    19,  # SQLITE_CONSTRAINT (a deferred constraint)
    26,  # SQLITE_NOTADB
}
"""Primary result codes with which a failed COMMIT certainly did not commit: SQLite refused
before the commit record was complete (and rolled back, or kept the transaction open)."""

_COMMIT_REFUSED_IO = {
    266,  # SQLITE_IOERR_READ
    522,  # SQLITE_IOERR_SHORT_READ
    778,  # SQLITE_IOERR_WRITE: the log or database write failed, so no commit record
    3082,  # SQLITE_IOERR_NOMEM
}
"""Extended I/O error codes with which a failed COMMIT certainly did not commit. Every other
I/O error (a failed fsync, say, after the commit record was written: the record may survive
in the log and be recovered) leaves the outcome unknown."""


def commit_outcome_known(exc: sqlite3.Error) -> bool:
    """Whether a failed ``COMMIT`` that raised ``exc`` certainly committed nothing."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return False
    return (code & 0xFF) in _COMMIT_REFUSED or code in _COMMIT_REFUSED_IO


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None
