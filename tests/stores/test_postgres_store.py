"""PostgresStore specifics: connection kinds, reopen, the schema and spec-version check, bad
input and values jsonb cannot hold. The shared contract is in conformance/; the
commit-order gap and the in-place upgrade of the first release's outbox are here."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import attrs
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from statekernel.adapters.errors import (
    SchemaMismatch,
    StoreDataError,
    StoreError,
    StoreUnavailable,
)
from statekernel.adapters.postgres import PostgresStore
from statekernel.kernel import Command, Effect, Spec, Transition

from .ledger import SPEC
from .pgutil import fresh_pg_schema, raw_counts


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> tuple[str, str]:
    return fresh_pg_schema(request)


def deposit(cents: int) -> Command:
    return Command("deposit", {"amount": {"cents": cents}})


@attrs.frozen
class Gauge:
    value: float = 0.0
    label: str = ""
    extra: Any = None


@attrs.frozen
class SetValue:
    value: float


@attrs.frozen
class Label:
    label: str


GAUGE = Spec(
    name="gauge",
    version=1,
    context=Gauge,
    initial="on",
    states=["on"],
    transitions=[
        Transition(
            "set", "on", "on", payload=SetValue, update=lambda c, p: attrs.evolve(c, value=p.value)
        ),
        Transition(
            "label", "on", "on", payload=Label, update=lambda c, p: attrs.evolve(c, label=p.label)
        ),
        Transition("poison", "on", "on", update=lambda c, p: attrs.evolve(c, value=math.nan)),
        Transition("stash", "on", "on", update=lambda c, p: attrs.evolve(c, extra=1j)),
        Transition("shout", "on", "on", effects=[Effect("loud", lambda c, p: {"x": math.inf})]),
    ],
)


# --- connection kinds and lifecycle ------------------------------------------------------


def test_dsn_store_survives_reopen_and_a_second_store(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    with PostgresStore(SPEC, dsn, schema=schema) as store:
        first = store.handle("a", deposit(5), idempotency_key="k")
        store.reopen()
        assert store.get("a").context.balance == 5
        assert store.handle("a", deposit(5), idempotency_key="k") == first
    with PostgresStore(SPEC, dsn, schema=schema) as again:
        assert again.handle("a", deposit(5), idempotency_key="k") == first
        assert [r.idempotency_key for r in again.history("a")] == ["k"]


def test_closed_dsn_store_refuses_until_reopened(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    store = PostgresStore(SPEC, dsn, schema=schema)
    store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        store.handle("a", deposit(1))
    store.reopen()
    assert store.handle("a", deposit(1)).accepted


def test_given_connection_is_used_and_left_open(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    for autocommit in (True, False):
        with psycopg.connect(dsn, autocommit=autocommit) as conn:
            store = PostgresStore(SPEC, conn, schema=schema)
            assert store.handle(f"c{autocommit}", deposit(2)).accepted
            store.reopen()
            store.close()
            assert not conn.closed
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    other = PostgresStore(SPEC, dsn, schema=schema)
    assert other.entities() == ["cFalse", "cTrue"]
    other.close()


def test_given_connection_inside_a_transaction_is_refused(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    with psycopg.connect(dsn) as conn:
        store = PostgresStore(SPEC, conn, schema=schema)
        conn.execute("SELECT 1")  # the caller's own transaction is now open
        with pytest.raises(StoreError, match="inside a transaction"):
            store.handle("a", deposit(1))
        conn.rollback()
        assert store.get("a") is None


def test_given_connection_that_was_closed_cannot_be_reopened(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    conn = psycopg.connect(dsn)
    store = PostgresStore(SPEC, conn, schema=schema)
    conn.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        store.reopen()
    with pytest.raises(StoreUnavailable, match="closed"):
        store.handle("a", deposit(1))


def test_pool_store(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    with ConnectionPool(dsn, min_size=1, max_size=2) as pool:
        store = PostgresStore(SPEC, pool, schema=schema)
        assert store.handle("a", deposit(3), idempotency_key="k").accepted
        store.reopen()
        assert store.get("a").version == 1
        store.close()
        assert not pool.closed


# --- bad input ---------------------------------------------------------------------------


def test_another_spec_version_is_a_schema_mismatch_and_writes_nothing(
    pg: tuple[str, str],
) -> None:
    dsn, schema = pg
    with PostgresStore(SPEC, dsn, schema=schema) as store:
        store.handle("a", deposit(5))
    v2 = attrs.evolve(SPEC, version=2)
    with pytest.raises(SchemaMismatch, match="version 1") as info:
        PostgresStore(v2, dsn, schema=schema)
    assert "version 2" in str(info.value)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(f'SELECT spec, spec_version FROM "{schema}".meta').fetchall()
    assert rows == [("ledger", 1)]
    assert raw_counts(dsn, schema, "a") == {"version": 1, "audit": 1, "outbox": 1, "keys": 0}
    # another spec may share the schema
    with PostgresStore(GAUGE, dsn, schema=schema) as gauge:
        assert gauge.entities() == []


def test_unreachable_server_is_store_unavailable_naming_it() -> None:
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1/") as info:
        PostgresStore(SPEC, "postgresql://postgres@127.0.0.1:1/test", connect_timeout=1)
    assert isinstance(info.value.__cause__, psycopg.OperationalError)


def test_unreachable_pool_is_store_unavailable() -> None:
    with (
        ConnectionPool("postgresql://postgres@127.0.0.1:1/test", min_size=1, open=True) as pool,
        pytest.raises(StoreUnavailable, match="pool"),
    ):
        PostgresStore(SPEC, pool, connect_timeout=0.5)


def test_bad_targets_and_schema_names_are_refused() -> None:
    with pytest.raises(TypeError, match="DSN"):
        PostgresStore(SPEC, 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schema"):
        PostgresStore(SPEC, "postgresql://", schema="")


# --- values jsonb cannot hold ------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "why"),
    [
        (Command("poison"), "nan"),
        (Command("label", {"label": "a\x00b"}), "NUL"),
        (Command("stash"), "complex"),
        (Command("shout"), "inf"),
    ],
)
def test_unstorable_values_are_store_data_errors_and_write_nothing(
    pg: tuple[str, str], command: Command, why: str
) -> None:
    dsn, schema = pg
    with PostgresStore(GAUGE, dsn, schema=schema) as store:
        store.handle("g", Command("set", {"value": 1.5}))
        for key in (None, "k"):
            with pytest.raises(StoreDataError, match=why):
                store.handle("g", command, idempotency_key=key)
        assert store.get("g").context == Gauge(1.5)
        assert raw_counts(dsn, schema, "g", "k") == {
            "version": 1,
            "audit": 1,
            "outbox": 0,
            "keys": 0,
        }


def test_floats_come_back_as_the_same_floats(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    values = [1e16, 1e300, -2.5e-300, 5e-324, 1.7976931348623157e308, 0.1, -0.0, 3.0, 1e22]
    with PostgresStore(GAUGE, dsn, schema=schema) as store:
        for i, v in enumerate(values):
            store.handle(f"f{i}", Command("set", {"value": v}))
        for i, v in enumerate(values):
            got = store.get(f"f{i}").context.value
            assert type(got) is float and got == v, (v, got)


# --- PostgreSQL: the commit-order gap ------------------------------------------------------


def test_postgres_pending_outbox_returns_a_row_that_commits_after_a_higher_id(
    request: pytest.FixtureRequest,
) -> None:
    """T1 inserts an outbox row and stays open; T2 commits a row with a higher id. A reader
    paging with ``outbox(after=last id)`` reads T2's row, and once T1 commits, its row sits
    below the cursor and is skipped for good; ``pending_outbox`` returns it."""
    import psycopg

    from statekernel.adapters.postgres import PostgresStore

    dsn, schema = fresh_pg_schema(request)
    store = PostgresStore(SPEC, dsn, schema=schema)
    request.addfinalizer(store.close)
    with psycopg.connect(dsn) as t1:  # not autocommit: T1 stays open until commit()
        row = t1.execute(
            f'INSERT INTO "{schema}".outbox (spec, entity, version, name, data)'
            " VALUES ('ledger', 'late', 1, 'ledger.deposited', '{\"cents\": 1}') RETURNING id"
        ).fetchone()
        assert row is not None
        late_id = row[0]

        assert store.handle("early", deposit(2)).accepted  # T2 commits while T1 is open
        seen = list(store.outbox(after=0))
        assert [(e.entity, e.id > late_id) for e in seen] == [("early", True)]
        cursor = seen[-1].id
        # the relay publishes what is pending now and marks it
        pending = list(store.pending_outbox())
        assert pending == seen
        assert store.mark_delivered(e.id for e in pending) == 1

        t1.commit()

    assert list(store.outbox(after=cursor)) == []  # the id cursor skipped T1's row
    (late,) = store.pending_outbox()  # the relay API did not
    assert (late.id, late.entity, dict(late.data)) == (late_id, "late", {"cents": 1})
    assert late.id < cursor
    assert store.mark_delivered([late.id]) == 1
    assert list(store.pending_outbox()) == []


def test_postgres_schema_of_the_first_release_upgrades_in_place(
    request: pytest.FixtureRequest,
) -> None:
    import psycopg

    from statekernel.adapters.postgres import PostgresStore

    dsn, schema = fresh_pg_schema(request)
    with PostgresStore(SPEC, dsn, schema=schema) as store:
        store.handle("old", deposit(7))
    with psycopg.connect(dsn, autocommit=True) as conn:  # back to the first release's layout
        conn.execute(f'ALTER TABLE "{schema}".outbox DROP COLUMN delivered_at')

    def layout() -> tuple[bool, bool]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            column = conn.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = %s"
                " AND table_name = 'outbox' AND column_name = 'delivered_at'",
                (schema,),
            ).fetchone()
            index = conn.execute(
                "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = 'outbox_pending'",
                (schema,),
            ).fetchone()
        return column is not None, index is not None

    assert layout() == (False, False)
    with PostgresStore(SPEC, dsn, schema=schema, create=False) as reader:
        assert [r.event for r in reader.history("old")] == ["deposit"]
        with pytest.raises(SchemaMismatch, match="create=True"):
            reader.pending_outbox()
        with pytest.raises(SchemaMismatch, match="delivered_at"):
            reader.mark_delivered([1])
    assert layout() == (False, False)

    when = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    with PostgresStore(SPEC, dsn, schema=schema, clock=lambda: when) as store:
        assert layout() == (True, True)
        (old,) = store.pending_outbox()  # rows from before the upgrade start undelivered
        assert (old.entity, dict(old.data)) == ("old", {"cents": 7})
        assert store.mark_delivered([old.id]) == 1
    with psycopg.connect(dsn, autocommit=True) as conn:
        stamped = conn.execute(f'SELECT delivered_at FROM "{schema}".outbox').fetchone()
    assert stamped == (when,)
