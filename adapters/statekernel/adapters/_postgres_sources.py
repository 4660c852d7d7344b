"""Where a synchronous PostgreSQL store's connections come from (a DSN, a pool, or one given
connection) and how it begins, commits and rolls back on them."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from ._postgres_sql import where
from .errors import StoreError, StoreUnavailable

__all__ = [
    "ConnectionSource",
    "DsnSource",
    "PoolSource",
    "Source",
    "begin",
    "broken",
    "commit",
    "rollback",
]

Conn = psycopg.Connection[Any]


class Source:
    """Hands out connections for one transaction at a time."""

    where: str = "PostgreSQL"

    @contextmanager
    def borrow(self) -> Iterator[Conn]:
        """A connection, idle, for the caller's exclusive use until the block ends."""
        raise NotImplementedError
        yield

    @contextmanager
    def fresh(self) -> Iterator[Conn]:
        """A connection other than any that just broke (to resolve a lost COMMIT)."""
        raise NotImplementedError
        yield

    def reopen(self) -> None:
        """Drop connections that may be stale."""

    def discard_idle(self) -> None:
        """Drop (or check and replace) the idle connections: one of them was found broken,
        so the others, which idled through the same restart, are suspect too."""

    def close(self) -> None:
        """Release what the store opened itself."""


class DsnSource(Source):
    """Connections the store opens itself, kept idle between commands."""

    def __init__(self, dsn: str, connect_timeout: float, keep_idle: int = 16) -> None:
        self.dsn = dsn
        self.where = where(dsn)
        self.connect_timeout = connect_timeout
        self.keep_idle = keep_idle
        self._lock = threading.Lock()
        self._idle: list[Conn] = []
        self._generation = 0
        self._closed = False

    def connect(self) -> Conn:
        return psycopg.connect(
            self.dsn, autocommit=True, connect_timeout=max(1, math.ceil(self.connect_timeout))
        )

    @contextmanager
    def borrow(self) -> Iterator[Conn]:
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
    def fresh(self) -> Iterator[Conn]:
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

    def discard_idle(self) -> None:
        self._drop_idle()

    def reopen(self) -> None:
        self._drop_idle()
        with self._lock:
            self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._drop_idle()


class PoolSource(Source):
    """Connections from a pool the caller owns (and closes)."""

    def __init__(self, pool: ConnectionPool[Any], timeout: float) -> None:
        self.pool = pool
        self.where = f"pool {pool.name!r}"
        self.timeout = timeout

    @contextmanager
    def borrow(self) -> Iterator[Conn]:
        with self.pool.connection(timeout=self.timeout) as conn:
            yield conn

    fresh = borrow

    def discard_idle(self) -> None:
        self.pool.check()  # each idle connection is tested; broken ones are replaced

    def reopen(self) -> None:
        self.pool.check()


class ConnectionSource(Source):
    """One connection the caller owns: used by one command at a time, never closed by the
    store. A lost COMMIT is resolved on a new connection to the same DSN."""

    def __init__(self, conn: Conn, connect_timeout: float) -> None:
        self.conn = conn
        self.dsn = conn.info.dsn
        self.where = where(self.dsn)
        self.connect_timeout = connect_timeout
        self._lock = threading.RLock()

    @contextmanager
    def borrow(self) -> Iterator[Conn]:
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
    def fresh(self) -> Iterator[Conn]:
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


def begin(conn: Conn, consistent: bool = False, settings: bytes = b"") -> None:
    """READ COMMITTED, or (``consistent``) one REPEATABLE READ, read-only snapshot; then
    ``settings`` (``SET LOCAL`` statements, sent in the same round trip)."""
    extra = b"; " + settings if settings else b""
    if consistent:
        conn.execute(
            (
                b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                if conn.autocommit
                else b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"
            )
            + extra
        )
    elif conn.autocommit:
        conn.execute(b"BEGIN ISOLATION LEVEL READ COMMITTED" + extra)
    elif conn.isolation_level != psycopg.IsolationLevel.READ_COMMITTED:
        conn.execute(b"SET TRANSACTION ISOLATION LEVEL READ COMMITTED" + extra)
    elif settings:
        conn.execute(settings)


def broken(conn: Conn) -> bool:
    """Whether ``conn`` is beyond use (closed, or its server went away)."""
    return conn.closed or conn.broken


def commit(conn: Conn) -> None:
    if conn.autocommit:
        conn.execute(b"COMMIT")
    else:
        conn.commit()


def rollback(conn: Conn) -> None:
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
