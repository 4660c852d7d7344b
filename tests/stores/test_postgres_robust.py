"""PostgresStore when the server misbehaves: every statement is bounded (a row lock held by
another session, a statement that runs too long: StoreBusy, nothing written), connections
left stale by a restart or a killed backend are replaced before they cost a call, and a
value beyond PostgreSQL's limits is a data error, not an unreachable server."""

from __future__ import annotations

import base64
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from statekernel.adapters.errors import StoreBusy, StoreDataError
from statekernel.adapters.postgres import PostgresStore
from statekernel.kernel import Accepted, Command, InvalidArgument, Spec

from .ledger import SPEC
from .pgutil import fresh_pg_schema, raw_counts


def deposit(cents: int) -> Command:
    return Command("deposit", {"amount": {"cents": cents}})


def with_app_name(dsn: str, name: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}application_name={name}"


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> tuple[str, str]:
    return fresh_pg_schema(request)


@pytest.fixture(params=["dsn", "pool", "connection"])
def target(request: pytest.FixtureRequest, pg: tuple[str, str]) -> Iterator[Any]:
    """The store's connection source, each kind."""
    dsn, _ = pg
    if request.param == "dsn":
        yield dsn
    elif request.param == "pool":
        with ConnectionPool(dsn, min_size=1, max_size=2) as pool:
            yield pool
    else:
        conn = psycopg.connect(dsn, autocommit=True)
        yield conn
        conn.close()


def in_thread(work: Any, timeout: float) -> tuple[bool, Any]:
    """Run ``work()`` in a thread; ``(finished in time, result or exception)``."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(work())
        except BaseException as exc:
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return (not thread.is_alive(), box[0] if box else None)


# -- item: every statement is bounded -----------------------------------------------------------


def test_handle_behind_a_row_lock_is_store_busy_within_the_lock_timeout(
    pg: tuple[str, str], target: Any
) -> None:
    """Another session holds the entity's snapshot row ``FOR UPDATE``: the store's write used
    to wait for it forever; now it gives up after ``lock_timeout`` with StoreBusy (a
    TimeoutError), having written nothing, and the retry under the same key works once the
    lock is gone."""
    dsn, schema = pg
    store = PostgresStore(SPEC, target, schema=schema, lock_timeout=0.5)
    store.handle("a", deposit(1))
    locker = psycopg.connect(dsn)
    try:
        locker.execute(
            f'SELECT * FROM "{schema}".snapshots WHERE entity = %s FOR UPDATE', ("a",)
        ).fetchall()
        started = time.monotonic()
        finished, outcome = in_thread(
            lambda: store.handle("a", deposit(2), idempotency_key="k"), timeout=15
        )
        elapsed = time.monotonic() - started
    finally:
        locker.rollback()
        locker.close()
    assert finished, "handle() was still waiting for the row lock after 15 s"
    assert isinstance(outcome, StoreBusy) and isinstance(outcome, TimeoutError), outcome
    assert "lock timeout" in str(outcome) and "lock_timeout" in str(outcome)
    assert 0.4 < elapsed < 5
    assert raw_counts(dsn, schema, "a", "k") == {"version": 1, "audit": 1, "outbox": 1, "keys": 0}
    d = store.handle("a", deposit(2), idempotency_key="k")
    assert isinstance(d, Accepted) and d.snapshot.version == 2
    store.close()


def test_by_default_handle_gives_up_on_a_row_lock_after_five_seconds(
    pg: tuple[str, str],
) -> None:
    dsn, schema = pg
    store = PostgresStore(SPEC, dsn, schema=schema)
    store.handle("a", deposit(1))
    locker = psycopg.connect(dsn)
    try:
        locker.execute(f'SELECT 1 FROM "{schema}".snapshots FOR UPDATE').fetchall()
        started = time.monotonic()
        finished, outcome = in_thread(lambda: store.handle("a", deposit(2)), timeout=20)
        elapsed = time.monotonic() - started
    finally:
        locker.rollback()
        locker.close()
    assert finished, "handle() was still waiting for the row lock after 20 s"
    assert isinstance(outcome, StoreBusy), outcome
    assert 4.5 < elapsed < 10
    store.close()


def test_a_statement_that_runs_too_long_is_store_busy(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    store = PostgresStore(SPEC, dsn, schema=schema, statement_timeout=0.5)
    store.handle("a", deposit(1))
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(
            f'CREATE FUNCTION "{schema}".slow() RETURNS trigger LANGUAGE plpgsql AS'
            " $$BEGIN PERFORM pg_sleep(5); RETURN NEW; END$$"
        )
        admin.execute(
            f'CREATE TRIGGER slow BEFORE INSERT ON "{schema}".audit FOR EACH ROW'
            f' EXECUTE FUNCTION "{schema}".slow()'
        )
    started = time.monotonic()
    with pytest.raises(StoreBusy, match="statement timeout"):
        store.handle("a", deposit(2), idempotency_key="k")
    assert time.monotonic() - started < 4
    assert raw_counts(dsn, schema, "a", "k") == {"version": 1, "audit": 1, "outbox": 1, "keys": 0}
    store.close()


def test_the_timeouts_stay_inside_the_stores_transactions(pg: tuple[str, str]) -> None:
    """``SET LOCAL``: a pool's connections keep their own settings between commands."""
    dsn, schema = pg
    with ConnectionPool(dsn, min_size=1, max_size=1) as pool:
        with pool.connection() as conn:
            before = conn.execute("SHOW lock_timeout").fetchone()
        store = PostgresStore(SPEC, pool, schema=schema, lock_timeout=0.25)
        store.handle("a", deposit(1))
        with pool.connection() as conn:
            assert conn.execute("SHOW lock_timeout").fetchone() == before
            conn.rollback()


@pytest.mark.parametrize("option", ["lock_timeout", "statement_timeout"])
@pytest.mark.parametrize("bad", [0, -1, "5", 10**9])
def test_a_timeout_must_be_seconds(pg: tuple[str, str], option: str, bad: Any) -> None:
    dsn, schema = pg
    with pytest.raises(InvalidArgument, match=option):
        PostgresStore(SPEC, dsn, schema=schema, **{option: bad})


# -- item: stale connections ----------------------------------------------------------------------


def kill_backends(dsn: str, app_name: str) -> int:
    """Terminate every backend of ``app_name`` (as a server restart would) and wait until
    they are gone."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (app_name,),
        ).fetchone()[0]  # type: ignore[index]
        for _ in range(100):
            left = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (app_name,),
            ).fetchone()[0]  # type: ignore[index]
            if left == 0:
                break
            time.sleep(0.05)
    return int(killed)


@pytest.mark.parametrize("call", ["handle", "get", "history"])
@pytest.mark.parametrize("source", ["dsn", "pool"])
def test_the_first_call_after_the_backends_were_killed_works(
    pg: tuple[str, str], source: str, call: str
) -> None:
    """Every idle connection of the store is broken at once (its backend killed, as by a
    server restart). The next call used to fail with StoreUnavailable, and so did one call
    per idle connection after it; now the first call finds the broken connection when it
    begins, drops the idle ones with it, and runs on a fresh connection."""
    dsn, schema = pg
    app = f"sk_stale_{uuid.uuid4().hex[:12]}"
    app_dsn = with_app_name(dsn, app)
    pool = None
    if source == "pool":
        pool = ConnectionPool(app_dsn, min_size=3, max_size=3, open=True)
        pool.wait()
        store = PostgresStore(SPEC, pool, schema=schema)
    else:
        store = PostgresStore(SPEC, app_dsn, schema=schema)
        # three idle connections, as after a burst of concurrent calls
        with store._source.borrow(), store._source.borrow(), store._source.borrow():
            pass
    try:
        store.handle("a", deposit(1))
        assert kill_backends(dsn, app) >= 3
        calls = {
            "handle": lambda: store.handle("a", deposit(2), idempotency_key="k").accepted,
            "get": lambda: store.get("a").version == 1,
            "history": lambda: len(store.history("a")) == 1,
        }
        assert calls[call]()  # the very next call
        for _ in range(4):  # and every one after it
            assert store.handle("b", deposit(1)).accepted
        assert store.get("a") is not None
    finally:
        store.close()
        if pool is not None:
            pool.close()


def test_a_given_connection_that_broke_is_reported_not_replaced(pg: tuple[str, str]) -> None:
    """The store cannot reconnect a connection it was given; it says so, clearly."""
    from statekernel.adapters.errors import StoreUnavailable

    dsn, schema = pg
    app = f"sk_stale_{uuid.uuid4().hex[:12]}"
    conn = psycopg.connect(with_app_name(dsn, app), autocommit=True)
    store = PostgresStore(SPEC, conn, schema=schema)
    store.handle("a", deposit(1))
    kill_backends(dsn, app)
    with pytest.raises(StoreUnavailable, match="closed"):
        store.handle("a", deposit(2))
    conn.close()


# -- item: a value beyond PostgreSQL's limits ---------------------------------------------------


def test_a_value_beyond_a_postgres_limit_is_a_data_error(pg: tuple[str, str]) -> None:
    """``ProgramLimitExceeded`` (a spec name too long for the primary key's index here) used
    to be StoreUnavailable, as if the server could not be reached."""
    dsn, schema = pg
    name = base64.b64encode(os.urandom(3000)).decode()[:3000]
    spec = Spec(
        name=name,
        version=1,
        context=SPEC.context,
        initial=SPEC.initial,
        states=list(SPEC.states),
        final=list(SPEC.final),
        transitions=list(SPEC.transitions),
        invariants=list(SPEC.invariants),
    )
    with pytest.raises(StoreDataError, match="index row size") as caught:
        PostgresStore(spec, dsn, schema=schema)
    assert isinstance(caught.value, ValueError)
    assert "beyond what PostgreSQL can store or index" in str(caught.value)
