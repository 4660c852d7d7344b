"""The outbox relay contract, once for every store (``pending_outbox`` and ``mark_delivered``),
then what only a database shows: writes rolled back, schemas upgraded in place, and the
PostgreSQL commit-order gap that a reader paging by id falls into."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlite_utils

from statekernel.adapters.errors import SchemaMismatch, StoreError
from statekernel.adapters.sqlite import MIGRATIONS, SqliteStore
from statekernel.kernel import Accepted, Command, Effect, Rejected, Spec, Transition

from .ledger import SPEC
from .pgutil import fresh_pg_schema


def deposit(cents: int, **extra: Any) -> Command:
    return Command("deposit", {"amount": {"cents": cents}, **extra})


@attrs.frozen
class Parcel:
    shipped: int = 0


SHIPPING = Spec(
    name="shipping",
    version=1,
    context=Parcel,
    initial="packing",
    states=["packing", "sent"],
    final=["sent"],
    transitions=[
        Transition(
            "pack",
            "packing",
            "packing",
            update=lambda c, p: attrs.evolve(c, shipped=c.shipped + 1),
            effects=[
                Effect("parcel.packed", lambda c, p: {"n": c.shipped}),
                Effect("invoice.due", lambda c, p: {"n": c.shipped}),
            ],
        ),
        Transition("send", "packing", "sent"),
    ],
)


def keys(entries: Any) -> list[tuple[str, int, str]]:
    return [(e.entity, e.version, e.name) for e in entries]


# --- the contract, every store -------------------------------------------------------------


def test_pending_returns_undelivered_rows_oldest_first(make_store: Any) -> None:
    store = make_store(SPEC)
    assert list(store.pending_outbox()) == []
    store.handle("b", deposit(1))
    store.handle("a", deposit(2))
    store.handle("a", Command("withdraw", {"cents": 1}))  # emits nothing
    store.handle("b", deposit(3))
    pending = list(store.pending_outbox())
    assert keys(pending) == [
        ("b", 1, "ledger.deposited"),
        ("a", 1, "ledger.deposited"),
        ("b", 2, "ledger.deposited"),
    ]
    assert [dict(e.data) for e in pending] == [{"cents": 1}, {"cents": 2}, {"cents": 3}]
    assert [e.id for e in pending] == sorted(e.id for e in pending)
    assert len({e.id for e in pending}) == 3
    assert pending == list(store.outbox())  # nothing delivered yet: the same rows
    assert {e.spec for e in pending} == {"ledger"}
    assert pending[0].dedupe_key == ("ledger", "b", 1, "ledger.deposited")


def test_messages_of_one_transition_are_pending_in_order_with_distinct_dedupe_keys(
    make_store: Any,
) -> None:
    store = make_store(SHIPPING)
    store.handle("p-1", Command("pack"))
    store.handle("p-1", Command("pack"))
    pending = list(store.pending_outbox())
    assert keys(pending) == [
        ("p-1", 1, "parcel.packed"),
        ("p-1", 1, "invoice.due"),
        ("p-1", 2, "parcel.packed"),
        ("p-1", 2, "invoice.due"),
    ]
    assert len({e.dedupe_key for e in pending}) == 4


def test_limit_pages_through_pending_rows(make_store: Any) -> None:
    store = make_store(SPEC)
    for cents in range(1, 6):
        store.handle(f"e{cents}", deposit(cents))
    first = list(store.pending_outbox(limit=2))
    assert [e.data["cents"] for e in first] == [1, 2]
    assert list(store.pending_outbox(limit=2)) == first  # reading marks nothing
    assert store.mark_delivered(e.id for e in first) == 2
    assert [e.data["cents"] for e in store.pending_outbox(limit=2)] == [3, 4]
    assert [e.data["cents"] for e in store.pending_outbox(limit=100)] == [3, 4, 5]
    for bad in (0, -1):
        with pytest.raises(ValueError, match="limit"):
            store.pending_outbox(limit=bad)
    with pytest.raises(TypeError, match="limit"):
        store.pending_outbox(limit="2")


def test_marking_is_idempotent_and_touches_only_the_given_ids(make_store: Any) -> None:
    store = make_store(SPEC)
    for cents in range(1, 5):
        store.handle("a", deposit(cents))
    r1, r2, r3, r4 = store.pending_outbox()
    assert store.mark_delivered([r2.id]) == 1
    assert list(store.pending_outbox()) == [r1, r3, r4]
    assert store.mark_delivered([r2.id]) == 0
    assert store.mark_delivered([r2.id, r3.id, r3.id, r4.id + 1000, -5, 2**80]) == 1
    assert list(store.pending_outbox()) == [r1, r4]
    assert store.mark_delivered([]) == 0
    assert store.mark_delivered(iter([r1.id])) == 1
    assert list(store.pending_outbox()) == [r4]
    # delivered rows stay in the outbox's history
    assert list(store.outbox()) == [r1, r2, r3, r4]


def test_bad_ids_are_refused_before_anything_is_marked(make_store: Any) -> None:
    store = make_store(SPEC)
    store.handle("a", deposit(1))
    (row,) = store.pending_outbox()
    for bad in ([row.id, "2"], [row.id, True], [row.id, 1.0], str(row.id)):
        with pytest.raises(TypeError):
            store.mark_delivered(bad)
    assert list(store.pending_outbox()) == [row]


def test_rejected_and_replayed_commands_add_no_rows(make_store: Any) -> None:
    store = make_store(SPEC)
    first = store.handle("a", deposit(5), idempotency_key="k1")
    assert isinstance(first, Accepted)
    (row,) = store.pending_outbox()
    assert store.handle("a", deposit(5), idempotency_key="k1") == first  # replay
    mismatch = store.handle("a", deposit(6), idempotency_key="k1")
    stale = store.handle("a", Command("deposit", {"amount": {"cents": 1}}, expected_version=0))
    guarded = store.handle("a", deposit(-1))
    for d in (mismatch, stale, guarded):
        assert isinstance(d, Rejected)
    assert list(store.pending_outbox()) == [row]
    assert store.mark_delivered([row.id]) == 1
    assert store.handle("a", deposit(5), idempotency_key="k1") == first  # replay after delivery
    assert list(store.pending_outbox()) == []
    assert list(store.outbox()) == [row]


# --- a write that rolls back leaves no row (stores with transactions) ----------------------


def _refuse_key_records(store: Any, request: pytest.FixtureRequest) -> Any:
    """Make inserting a key record fail: the last write of a keyed command, after its
    outbox rows. Returns a function that lifts the refusal."""
    if isinstance(store, SqliteStore):
        conn = store.connection

        def authorizer(action: int, table: str | None, *_: Any) -> int:
            if action == sqlite3.SQLITE_INSERT and table == "statekernel_keys":
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK

        conn.set_authorizer(authorizer)
        return lambda: conn.set_authorizer(None)
    import psycopg

    dsn = request.getfixturevalue("pg_dsn")
    s = f'"{store.schema}"'
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE FUNCTION {s}.refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'key records refused'; END$$"
        )
        conn.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT ON {s}.keys FOR EACH ROW"
            f" EXECUTE FUNCTION {s}.refuse()"
        )

    def lift() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP TRIGGER refuse ON {s}.keys")

    return lift


@pytest.mark.parametrize("make_store", ["sqlite", "postgres"], indirect=True)
def test_rows_of_a_rolled_back_write_never_appear(
    make_store: Any, request: pytest.FixtureRequest
) -> None:
    store = make_store(SPEC)
    store.handle("a", deposit(1))
    (before,) = store.pending_outbox()
    lift = _refuse_key_records(store, request)
    with pytest.raises(StoreError):
        store.handle("a", deposit(2), idempotency_key="k")
    assert list(store.pending_outbox()) == [before]
    assert list(store.outbox()) == [before]
    assert store.get("a").version == 1
    lift()
    assert store.handle("a", deposit(2), idempotency_key="k").accepted
    assert [e.data["cents"] for e in store.pending_outbox()] == [1, 2]


# --- upgrading a database written before outbox delivery existed ---------------------------


def _sqlite_without_delivery(path: Path) -> None:
    """A database as the first release left it: migration 0001 only, one spec, one row."""
    conn = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS.apply(sqlite_utils.Database(conn), stop_before="0002_outbox_delivery")
    conn.execute(
        "INSERT INTO statekernel_specs (scope, spec_version, created_at) VALUES (?, ?, ?)",
        ("ledger", 1, "2024-01-01T00:00:00+00:00"),
    )
    conn.execute(
        "INSERT INTO statekernel_outbox (scope, entity, version, name, data)"
        " VALUES ('ledger', 'old', 1, 'ledger.deposited', '{\"cents\":7}')"
    )
    conn.close()


def _sqlite_migrations(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    finally:
        conn.close()


def test_sqlite_database_of_the_first_release_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _sqlite_without_delivery(path)
    assert _sqlite_migrations(path) == ["0001_initial"]
    with SqliteStore(SPEC, path) as store:
        (old,) = store.pending_outbox()  # rows from before the upgrade start undelivered
        assert (old.entity, old.data) == ("old", {"cents": 7})
        store.handle("new", deposit(1))
        assert [e.entity for e in store.pending_outbox()] == ["old", "new"]
        assert store.mark_delivered([old.id]) == 1
    assert _sqlite_migrations(path) == ["0001_initial", "0002_outbox_delivery"]
    with SqliteStore(SPEC, path) as again:  # already migrated: opens as is
        assert [e.entity for e in again.pending_outbox()] == ["new"]
        plan = again.connection.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM statekernel_outbox"
            " WHERE scope = 'ledger' AND delivered_at IS NULL ORDER BY id LIMIT 5"
        ).fetchall()
        assert "statekernel_outbox_pending" in " ".join(str(r[-1]) for r in plan)


def test_sqlite_create_false_reads_an_old_database_without_migrating_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _sqlite_without_delivery(path)
    before = path.read_bytes()
    with SqliteStore(SPEC, path, create=False) as store:
        assert [e.entity for e in store.outbox()] == ["old"]
        assert store.get("old") is None
        with pytest.raises(SchemaMismatch, match="0002_outbox_delivery"):
            store.pending_outbox()
        with pytest.raises(SchemaMismatch, match="create=True"):
            store.mark_delivered([1])
    assert path.read_bytes() == before
    assert _sqlite_migrations(path) == ["0001_initial"]


def test_delivery_is_stamped_with_the_store_clock(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    when = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    with SqliteStore(SPEC, tmp_path / "c.db", clock=lambda: when) as store:
        store.handle("a", deposit(1))
        assert store.mark_delivered([store.pending_outbox()[0].id]) == 1
        (stored,) = store.connection.execute(
            "SELECT delivered_at FROM statekernel_outbox"
        ).fetchone()
    assert datetime.fromisoformat(stored) == when


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


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_marking_leaves_other_specs_rows_alone(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two specs share one database; each store relays only its own rows."""
    if kind == "sqlite":
        ledger: Any = SqliteStore(SPEC, tmp_path / "shared.db")
        shipping: Any = SqliteStore(SHIPPING, tmp_path / "shared.db")
    else:
        from statekernel.adapters.postgres import PostgresStore

        dsn, schema = fresh_pg_schema(request)
        ledger = PostgresStore(SPEC, dsn, schema=schema)
        shipping = PostgresStore(SHIPPING, dsn, schema=schema)
    try:
        ledger.handle("x", deposit(1))
        shipping.handle("x", Command("pack"))
        (mine,) = ledger.pending_outbox()
        theirs = list(shipping.pending_outbox())
        assert [e.spec for e in theirs] == ["shipping", "shipping"]
        assert ledger.mark_delivered([e.id for e in theirs]) == 0
        assert list(shipping.pending_outbox()) == theirs
        assert shipping.mark_delivered([mine.id]) == 0
        assert list(ledger.pending_outbox()) == [mine]
    finally:
        ledger.close()
        shipping.close()
