"""Failures injected into the connection under PostgresStore: after every statement of a
write, during COMMIT (before and after the server commits), and retryable server errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from statekernel.adapters.errors import (
    CommitOutcomeUnknown,
    StoreBusy,
    StoreCorrupt,
    StoreUnavailable,
)
from statekernel.adapters.postgres import PostgresStore
from statekernel.kernel import Accepted, Command, Rejected

from .ledger import SPEC
from .pgutil import fresh_pg_schema, raw_counts


@attrs.define
class Faults:
    """What the next statements on any :class:`FaultyConnection` do. Only counts while
    ``armed``."""

    armed: bool = False
    count: int = 0
    fail_after: int | None = None  # lose the connection right after this statement
    commit: str | None = None  # "before" / "after": lose the connection at COMMIT
    break_fresh: bool = False  # after a lost COMMIT, every later statement fails too
    raise_on: tuple[str, type[Exception], int] | None = None  # (SQL prefix, error, times)
    statements: list[str] = attrs.field(factory=list)


FAULTS = Faults()


def lose(conn: psycopg.Connection[Any], what: str) -> None:
    conn.close()
    raise psycopg.OperationalError(f"injected: connection lost {what}")


class FaultyConnection(psycopg.Connection[Any]):
    """A real connection that misbehaves as :data:`FAULTS` says."""

    def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:  # type: ignore[override]
        f = FAULTS
        text = query.decode() if isinstance(query, bytes) else str(query)
        if f.armed and f.break_fresh and f.commit is None:
            lose(self, "(the server is still unreachable)")
        if f.armed and text.strip().upper() == "COMMIT":
            return self._commit_with_faults(lambda: super(FaultyConnection, self).execute(query))
        if f.armed and f.raise_on and text.startswith(f.raise_on[0]) and f.raise_on[2] > 0:
            prefix, error, times = f.raise_on
            f.raise_on = (prefix, error, times - 1)
            raise error(f"injected {error.__name__}")
        cur = super().execute(query, params, **kw)
        if f.armed:
            f.count += 1
            f.statements.append(text.split(" (")[0][:40])
            if f.count == f.fail_after:
                f.armed = False
                lose(self, f"after statement {f.count}")
        return cur

    def commit(self) -> None:
        if FAULTS.armed:
            self._commit_with_faults(super().commit)
        else:
            super().commit()

    def _commit_with_faults(self, really_commit: Any) -> Any:
        f = FAULTS
        if f.commit == "before":
            f.commit = None
            f.armed = False
            lose(self, "before COMMIT reached the server")
        result = really_commit()
        if f.commit == "after":
            f.commit = None
            f.armed = f.break_fresh
            lose(self, "after the server committed")
        return result


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, ConnectionPool[Any]]]:
    dsn, schema = fresh_pg_schema(request)
    global FAULTS
    FAULTS = Faults()
    with ConnectionPool(dsn, connection_class=FaultyConnection, min_size=1, max_size=2) as pool:
        yield dsn, schema, pool
    FAULTS = Faults()


def deposit(cents: int, **kw: Any) -> Command:
    return Command("deposit", {"amount": {"cents": cents}}, **kw)


CASES = {
    "new entity": (None, deposit(5)),
    "existing entity": (deposit(1), deposit(5)),
    "remembered rejection": (deposit(1), Command("withdraw", {"cents": 99})),
}


def count_statements(store: PostgresStore, entity: str, command: Command, key: str) -> int:
    FAULTS.armed, FAULTS.count = True, 0
    store.handle(entity, command, idempotency_key=key)
    FAULTS.armed = False
    return FAULTS.count


@pytest.mark.parametrize("case", sorted(CASES))
def test_losing_the_connection_after_any_statement_leaves_nothing_partial(
    pg: tuple[str, str, ConnectionPool[Any]], case: str
) -> None:
    dsn, schema, pool = pg
    setup, command = CASES[case]
    store = PostgresStore(SPEC, pool, schema=schema)
    if setup is not None:
        store.handle("probe", setup)
    total = count_statements(store, "probe", command, "probe-key")
    assert total >= 3  # begin/load..., writes
    for n in range(1, total + 1):
        entity, key = f"e{n}", f"k{n}"
        if setup is not None:
            store.handle(entity, setup)
        before = raw_counts(dsn, schema, entity, key)
        FAULTS.armed, FAULTS.count, FAULTS.fail_after = True, 0, n
        if n == 1:
            # lost with the statement that begins the transaction, before anything was sent
            # that could change anything: the store begins again on a fresh connection (as it
            # does on a stale one)
            first = store.handle(entity, command, idempotency_key=key)
            assert FAULTS.fail_after == n and not FAULTS.armed  # the fault did fire
        else:
            with pytest.raises(StoreUnavailable, match=f"after statement {n}"):
                store.handle(entity, command, idempotency_key=key)
            assert raw_counts(dsn, schema, entity, key) == before, (n, FAULTS.statements)
            # the client retries with the same key: it takes effect exactly once
            first = store.handle(entity, command, idempotency_key=key)
        assert store.handle(entity, command, idempotency_key=key) == first
        after = raw_counts(dsn, schema, entity, key)
        grew = 1 if isinstance(first, Accepted) else 0
        assert after == {
            "version": (before["version"] or 0) + grew or None,
            "audit": before["audit"] + grew,
            "outbox": before["outbox"] + grew,
            "keys": 1,
        }


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("keyed", [True, False])
@pytest.mark.parametrize("source", ["pool", "connection"])
def test_a_lost_commit_is_resolved_not_guessed(
    pg: tuple[str, str, ConnectionPool[Any]], when: str, keyed: bool, source: str
) -> None:
    dsn, schema, pool = pg
    conn = None
    if source == "pool":
        store = PostgresStore(SPEC, pool, schema=schema)
    else:
        conn = FaultyConnection.connect(dsn, autocommit=True)
        store = PostgresStore(SPEC, conn, schema=schema)
    store.handle("a", deposit(1))
    key = "k" if keyed else None
    FAULTS.armed, FAULTS.commit = True, when
    if source == "connection" and when == "before":
        # resolved as "not committed"; the store cannot run it again on a connection it
        # does not own, and says so
        with pytest.raises(StoreUnavailable, match="closed"):
            store.handle("a", deposit(5), idempotency_key=key)
        assert raw_counts(dsn, schema, "a", key) == {
            "version": 1,
            "audit": 1,
            "outbox": 1,
            "keys": 0,
        }
        return
    d = store.handle("a", deposit(5), idempotency_key=key)
    assert FAULTS.commit is None  # the fault did fire
    assert isinstance(d, Accepted) and d.snapshot.version == 2
    assert d.replayed is False  # the write that landed was this command's own
    check = PostgresStore(SPEC, dsn, schema=schema)
    history = check.history("a")
    assert [r.version for r in history] == [1, 2]  # landed exactly once, either way
    assert history[-1] == d.record
    assert check.get("a") == d.snapshot
    if keyed:
        assert check.handle("a", deposit(5), idempotency_key="k") == d
    check.close()
    if conn is not None:
        assert conn.closed


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_lost_commit_of_a_batch_is_resolved_as_a_whole(
    pg: tuple[str, str, ConnectionPool[Any]], when: str
) -> None:
    """A batch is one transaction: its first write tells whether all of it landed."""
    dsn, schema, pool = pg
    store = PostgresStore(SPEC, pool, schema=schema)
    store.handle("a", deposit(1))
    batch = [
        ("a", Command("withdraw", {"cents": 99}), "r"),  # a remembered rejection comes first
        ("a", deposit(5), "k"),
        ("b", deposit(2), None),
    ]
    FAULTS.armed, FAULTS.commit = True, when
    answers = store.handle_many(batch)
    assert FAULTS.commit is None  # the fault did fire
    FAULTS.armed = False
    assert [d.accepted for d in answers] == [False, True, True]
    assert not any(d.replayed for d in answers)
    assert raw_counts(dsn, schema, "a", "k") == {"version": 2, "audit": 2, "outbox": 2, "keys": 1}
    assert raw_counts(dsn, schema, "b") == {"version": 1, "audit": 1, "outbox": 1, "keys": 0}
    again = store.handle_many([(e, c, k) for e, c, k in batch if k is not None])
    assert again == answers[:2] and all(d.replayed for d in again)


def test_a_lost_commit_that_cannot_be_checked_is_commit_outcome_unknown(
    pg: tuple[str, str, ConnectionPool[Any]],
) -> None:
    dsn, schema, pool = pg
    store = PostgresStore(SPEC, pool, schema=schema)
    FAULTS.armed, FAULTS.commit, FAULTS.break_fresh = True, "after", True
    with pytest.raises(CommitOutcomeUnknown, match="same idempotency key"):
        store.handle("a", deposit(5), idempotency_key="k")
    FAULTS.armed = False
    # once the database answers again, the retry gets the committed answer, applied once
    d = store.handle("a", deposit(5), idempotency_key="k")
    assert isinstance(d, Accepted) and d.snapshot.version == 1
    assert raw_counts(dsn, schema, "a", "k") == {"version": 1, "audit": 1, "outbox": 1, "keys": 1}


@pytest.mark.parametrize(
    "error", [pg_errors.SerializationFailure, pg_errors.DeadlockDetected, pg_errors.UniqueViolation]
)
def test_retryable_errors_rerun_the_whole_transaction(
    pg: tuple[str, str, ConnectionPool[Any]], error: type[Exception]
) -> None:
    dsn, schema, pool = pg
    store = PostgresStore(SPEC, pool, schema=schema, max_retries=2)
    store.handle("a", deposit(1))
    FAULTS.armed, FAULTS.raise_on = True, ("INSERT", error, 2)
    d = store.handle("a", deposit(5), idempotency_key="k")
    assert isinstance(d, Accepted) and d.snapshot.version == 2
    FAULTS.raise_on = ("INSERT", error, 3)
    expected = StoreCorrupt if error is pg_errors.UniqueViolation else StoreBusy
    with pytest.raises(expected, match=f"injected {error.__name__}"):
        store.handle("a", deposit(7), idempotency_key="k2")
    FAULTS.armed = False
    assert raw_counts(dsn, schema, "a", "k2") == {"version": 2, "audit": 2, "outbox": 2, "keys": 0}


def test_other_errors_are_not_retried(pg: tuple[str, str, ConnectionPool[Any]]) -> None:
    dsn, schema, pool = pg
    store = PostgresStore(SPEC, pool, schema=schema, max_retries=5)
    FAULTS.armed, FAULTS.raise_on = True, ("INSERT", pg_errors.QueryCanceled, 1)
    with pytest.raises(StoreBusy, match="injected QueryCanceled"):
        store.handle("a", deposit(5), idempotency_key="k")
    assert FAULTS.raise_on[2] == 0
    FAULTS.armed = False
    assert raw_counts(dsn, schema, "a", "k") == {
        "version": None,
        "audit": 0,
        "outbox": 0,
        "keys": 0,
    }


def test_rejections_do_not_reach_the_server_twice(pg: tuple[str, str, ConnectionPool[Any]]) -> None:
    """A replayed key writes nothing: the transaction only reads."""
    _, schema, pool = pg
    store = PostgresStore(SPEC, pool, schema=schema)
    first = store.handle("a", Command("withdraw", {"cents": 3}), idempotency_key="k")
    assert isinstance(first, Rejected)
    FAULTS.armed = True
    assert store.handle("a", Command("withdraw", {"cents": 3}), idempotency_key="k") == first
    assert not any(s.startswith(("INSERT", "UPDATE")) for s in FAULTS.statements)


@pytest.mark.parametrize("read", ["get", "history", "entities", "outbox", "verify", "explain"])
def test_a_read_whose_connection_is_lost_runs_again_on_a_fresh_connection(
    pg: tuple[str, str, ConnectionPool[Any]], read: str
) -> None:
    """The connection breaks right after the read's first query (a killed backend, say):
    reading changes nothing, so the store reads again on a fresh connection instead of
    raising StoreUnavailable."""
    _, schema, pool = pg
    store = PostgresStore(SPEC, pool, schema=schema)
    store.handle("a", deposit(5))
    reads = {
        "get": lambda: store.get("a"),
        "history": lambda: store.history("a"),
        "entities": lambda: store.entities(),
        "outbox": lambda: store.outbox(),
        "verify": lambda: store.verify(),
        "explain": lambda: store.explain("a"),
    }
    expected = reads[read]()
    FAULTS.armed, FAULTS.count, FAULTS.fail_after = True, 0, 2  # BEGIN, then the first read
    assert reads[read]() == expected
    assert not FAULTS.armed and FAULTS.count == 2  # the fault did fire
