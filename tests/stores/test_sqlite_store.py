"""SqliteStore beyond the shared contract (conformance/): exact round trips, one transaction
per command, nothing partial after a failure at any statement, typed errors for bad databases,
options, migrations of the first release's database."""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statekernel.adapters.errors import (
    CommitOutcomeUnknown,
    SchemaMismatch,
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreReadOnly,
    StoreUnavailable,
)
from statekernel.adapters.sqlite import MIGRATIONS, SqliteStore, stored_specs, translate_error
from statekernel.kernel import (
    Accepted,
    Actor,
    Command,
    Effect,
    Spec,
    Transition,
    unstructure,
)

from .ledger import SPEC, Ledger

TABLES = (
    "statekernel_specs",
    "statekernel_snapshots",
    "statekernel_audit",
    "statekernel_keys",
    "statekernel_outbox",
)


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the store's tables, read through a fresh connection."""
    conn = sqlite3.connect(path)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return {
            t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
            for t in TABLES
            if t in names
        }
    finally:
        conn.close()


def deposit(cents: int) -> Command:
    return Command("deposit", {"amount": {"cents": cents}})


# -- a spec whose context exercises everything the codec supports -----------------------------


@attrs.frozen
class Inner:
    n: int
    label: str | None = None
    ratio: float = 0.0


@attrs.frozen
class Box:
    big: int = 0
    inner: Inner | None = None
    items: tuple[Inner, ...] = ()
    pair: tuple[int, str] = (0, "")
    names: frozenset[str] = frozenset()
    flag: bool = False


@attrs.frozen
class Put:
    value: Box


BOX = Spec(
    name="box",
    version=1,
    context=Box,
    initial="open",
    states=["open", "done"],
    final=["done"],
    transitions=[
        Transition(
            "put",
            "open",
            "open",
            payload=Put,
            update=lambda c, p: p.value,
            # a tuple in effect data: stored as a JSON list, and answered as one
            effects=[
                Effect("box.put", lambda c, p: {"big": c.big, "names": tuple(sorted(c.names))})
            ],
        ),
        Transition("finish", "open", "done"),
    ],
)

big_ints = st.one_of(
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**300),
    st.integers(min_value=-(2**300), max_value=-(2**63) + 2),
)
texts = st.one_of(st.text(max_size=20), st.just("\ud800 lone surrogate"), st.just("é\x00\u2028"))
inners = st.builds(
    Inner,
    n=big_ints,
    label=st.none() | texts,
    ratio=st.floats(allow_nan=False, allow_infinity=False),
)
boxes = st.builds(
    Box,
    big=big_ints,
    inner=st.none() | inners,
    items=st.lists(inners, max_size=3).map(tuple),
    pair=st.tuples(big_ints, texts),
    names=st.frozensets(texts, max_size=3),
    flag=st.booleans(),
)


def test_contexts_and_payloads_round_trip_exactly(tmp_path: Path) -> None:
    path = tmp_path / "rt.db"
    writer = SqliteStore(BOX, path)
    counter = itertools.count()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(box=boxes, actor_id=texts.filter(bool))
    def check(box: Box, actor_id: str) -> None:
        i = next(counter)
        entity, key = f"e{i}", f"k{i}"
        cmd = Command("put", {"value": unstructure(box)}, actor=Actor(actor_id, roles=["x"]))
        first = writer.handle(entity, cmd, idempotency_key=key)
        assert isinstance(first, Accepted) and first.snapshot.context == box
        # a second store has nothing cached: everything below is parsed from the file
        reader = SqliteStore(BOX, path)
        try:
            assert reader.get(entity) == first.snapshot
            (record,) = reader.history(entity)
            assert record == first.record and record.payload == Put(box)
            assert reader.handle(entity, cmd, idempotency_key=key) == first
            assert writer.handle(entity, cmd, idempotency_key=key) == first
            raw = reader.connection.execute(
                "SELECT context FROM statekernel_snapshots WHERE entity = ?", (entity,)
            ).fetchone()[0]
            assert json.loads(raw)["big"] == box.big  # exact, however large
            assert reader.get(entity).version == 1
        finally:
            reader.close()

    check()
    writer.close()


def test_no_sqlite_json_function_touches_stored_values(tmp_path: Path) -> None:
    """SQLite's JSON functions read integers beyond 64 bits as floats; the store never
    calls them (every statement it runs is traced here)."""
    store = SqliteStore(BOX, tmp_path / "t.db")
    statements: list[str] = []
    store.connection.set_trace_callback(statements.append)
    value = Box(big=2**100 + 1, pair=(-(2**90), "x"))
    store.handle("e", Command("put", {"value": unstructure(value)}), idempotency_key="k")
    store.handle("e", Command("put", {"value": unstructure(value)}), idempotency_key="k")
    store.get("e")
    store.history("e")
    store.outbox()
    store.entities()
    assert store.verify().ok
    store.purge_keys(datetime(2000, 1, 1, tzinfo=UTC))
    assert len(statements) > 10
    assert not [s for s in statements if re.search(r"\bjson(_\w+)?\s*\(", s, re.I)]
    store.connection.set_trace_callback(None)
    assert store.get("e").context.big == 2**100 + 1
    assert store.outbox()[0].data == {"big": 2**100 + 1, "names": []}


def test_one_command_is_one_immediate_transaction(tmp_path: Path) -> None:
    store = SqliteStore(SPEC, tmp_path / "t.db")
    store.handle("a", deposit(1))
    statements: list[str] = []
    store.connection.set_trace_callback(statements.append)
    store.handle("a", deposit(2), idempotency_key="k")
    store.connection.set_trace_callback(None)
    verbs = [s.split()[0].upper() for s in statements]
    assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"
    assert verbs[1:-1] == ["SELECT", "UPDATE", "INSERT", "INSERT", "INSERT"]
    assert "version = 1" in statements[2].replace("version = ?", "")  # the version guard


# -- failure after every statement: nothing partial ------------------------------------------


class FailingConnection(sqlite3.Connection):
    """A connection that raises right after its ``fail_at``-th statement (once armed)."""

    fail_at: int | None = None
    count = 0

    def execute(self, sql: str, params: Any = (), /) -> sqlite3.Cursor:
        cur = super().execute(sql, params)
        self._tick(sql)
        return cur

    def executemany(self, sql: str, params: Any, /) -> sqlite3.Cursor:
        cur = super().executemany(sql, params)
        self._tick(sql)
        return cur

    def _tick(self, sql: str) -> None:
        self.count += 1
        if self.fail_at is not None and self.count == self.fail_at:
            self.fail_at = None
            raise sqlite3.OperationalError(f"injected failure after {sql.split()[0]}")


def _state(store: SqliteStore, entity: str) -> tuple[Any, ...]:
    snap = store.get(entity)
    keys = store.connection.execute("SELECT count(*) FROM statekernel_keys").fetchone()[0]
    return (
        None if snap is None else snap.version,
        len(store.history(entity)),
        len(store.outbox()),
        keys,
    )


@pytest.mark.parametrize("existing", [False, True], ids=["insert", "update"])
def test_failure_after_any_statement_leaves_nothing_partial(tmp_path: Path, existing: bool) -> None:
    seen_commit_unknown = False
    for n in itertools.count(1):
        path = tmp_path / f"f{n}.db"
        setup = SqliteStore(SPEC, path)
        if existing:
            setup.handle("a", deposit(1), idempotency_key="k0")
        before = _state(setup, "a")
        setup.close()
        conn = sqlite3.connect(path, factory=FailingConnection, isolation_level=None)
        assert isinstance(conn, FailingConnection)
        store = SqliteStore(SPEC, conn)
        conn.count, conn.fail_at = 0, n
        try:
            store.handle("a", deposit(5), idempotency_key="k1")
        except StoreError as exc:
            failed: StoreError | None = exc
        else:
            failed = None
        conn.close()
        check = SqliteStore(SPEC, path)
        after = _state(check, "a")
        full = (1 + existing, 1 + existing, 1 + existing, 1 + existing)
        if failed is None:  # the injection point lies past the last statement: all done
            assert after == full and n > 6
            check.close()
            break
        if isinstance(failed, CommitOutcomeUnknown):
            seen_commit_unknown = True
            assert after == full  # the COMMIT itself ran
        else:
            assert after == before, f"partial write after statement {n}: {after}"
        assert check.verify().ok
        # a retry with the same key takes effect exactly once
        d = check.handle("a", deposit(5), idempotency_key="k1")
        assert d.accepted and _state(check, "a") == full
        check.close()
    assert seen_commit_unknown


# -- bad databases and bad input: typed errors, nothing written -------------------------------


def test_another_spec_version_is_refused_and_nothing_written(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    SqliteStore(SPEC, path).handle("a", deposit(1))
    before = dump(path)
    with pytest.raises(SchemaMismatch, match="version 1, not version 2"):
        SqliteStore(attrs.evolve(SPEC, version=2), path)
    assert dump(path) == before


def test_several_specs_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    ledger, box = SqliteStore(SPEC, path), SqliteStore(BOX, path)
    ledger.handle("a", deposit(3), idempotency_key="same-key")
    box.handle("a", Command("put", {"value": {"big": 9}}), idempotency_key="same-key")
    assert ledger.get("a").context == Ledger(balance=3, entries=ledger.get("a").context.entries)
    assert box.get("a").context == Box(big=9)
    assert [r.event for r in ledger.history("a")] == ["deposit"]
    assert [m.name for m in box.outbox()] == ["box.put"]
    assert [m.name for m in ledger.outbox()] == ["ledger.deposited"]
    assert stored_specs(ledger.connection) == {"box": 1, "ledger": 1}


def test_a_file_that_is_not_a_database_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    content = b"this is not a database, just some text\n" * 200
    path.write_bytes(content)
    with pytest.raises(StoreCorrupt, match="not a database"):
        SqliteStore(SPEC, path)
    with pytest.raises(StoreCorrupt):
        SqliteStore(SPEC, sqlite_utils.Database(path))
    assert path.read_bytes() == content


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    SqliteStore(SPEC, path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
            " VALUES ('statekernel', '9999_from_the_future', 'later')"
        )
    conn.close()
    with pytest.raises(SchemaMismatch, match="9999_from_the_future"):
        SqliteStore(SPEC, path)


def test_read_only_database_reads_but_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    writer = SqliteStore(SPEC, path)
    writer.handle("a", deposit(4), idempotency_key="k")
    writer.close()
    before = dump(path)
    for database in (
        f"file:{path}?mode=ro",
        sqlite3.connect(f"file:{path}?mode=ro", uri=True),
    ):
        store = SqliteStore(SPEC, database)
        assert store.get("a").context.balance == 4
        assert [r.event for r in store.history("a")] == ["deposit"]
        assert store.verify().ok
        assert store.handle("a", deposit(4), idempotency_key="k").accepted  # answered from the key
        with pytest.raises(StoreReadOnly) as info:
            store.handle("a", deposit(1))
        assert isinstance(info.value, PermissionError)
        with pytest.raises(StoreReadOnly):
            store.purge_keys(datetime(2100, 1, 1, tzinfo=UTC))
        store.close()
    assert dump(path) == before
    # a new spec cannot be recorded in a read-only file
    with pytest.raises(StoreReadOnly):
        SqliteStore(BOX, f"file:{path}?mode=ro")


def test_unopenable_path_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        SqliteStore(SPEC, tmp_path / "no" / "such" / "dir" / "t.db")


def test_a_held_lock_is_store_busy_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = SqliteStore(SPEC, path, busy_timeout=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreBusy) as info:
        store.handle("a", deposit(1), idempotency_key="k")
    assert isinstance(info.value, TimeoutError)
    other.execute("ROLLBACK")
    other.close()
    assert store.get("a") is None
    assert store.handle("a", deposit(1), idempotency_key="k").snapshot.version == 1
    assert store.handle("a", deposit(1), idempotency_key="k").snapshot.version == 1


# -- connections, options, lifecycle ----------------------------------------------------------


def test_pragmas_follow_the_options(tmp_path: Path) -> None:
    full = SqliteStore(SPEC, tmp_path / "f.db")
    normal = SqliteStore(SPEC, tmp_path / "n.db", synchronous="NORMAL", busy_timeout=1.5)
    for store, sync, timeout in ((full, 2, 5000), (normal, 1, 1500)):
        conn = store.connection
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == sync
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == timeout
    with pytest.raises(ValueError, match="synchronous"):
        SqliteStore(SPEC, tmp_path / "x.db", synchronous="OFF")  # type: ignore[arg-type]


def test_given_connections_are_used_but_not_closed(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    conn = sqlite3.connect(path)  # default (legacy) transaction handling
    store = SqliteStore(SPEC, conn)
    store.handle("a", deposit(2))
    store.close()
    assert conn.execute("SELECT count(*) FROM statekernel_audit").fetchone() == (1,)
    with pytest.raises(StoreUnavailable, match="closed"):
        store.get("a")
    store.reopen()
    assert store.get("a").version == 1
    conn.execute("BEGIN")
    with pytest.raises(StoreError, match="transaction"):
        store.handle("a", deposit(2))
    conn.execute("ROLLBACK")
    db = sqlite_utils.Database(path)
    other = SqliteStore(SPEC, db)
    assert other.handle("a", deposit(3)).snapshot.version == 2
    other.close()
    assert db.execute("SELECT count(*) FROM statekernel_audit").fetchone() == (2,)


def test_reopen_of_a_path_keeps_everything(tmp_path: Path) -> None:
    store = SqliteStore(SPEC, tmp_path / "t.db")
    first = store.handle("a", deposit(2), idempotency_key="k")
    old = store.connection
    store.reopen()
    assert store.connection is not old
    assert store.get("a") == first.snapshot
    assert store.handle("a", deposit(2), idempotency_key="k") == first
    store.close()
    with pytest.raises(StoreUnavailable):
        store.handle("a", deposit(1))
    store.reopen()
    assert store.get("a").version == 1


def test_translate_error_maps_each_kind() -> None:
    def err(cls: type[sqlite3.Error], msg: str, code: int | None) -> sqlite3.Error:
        e = cls(msg)
        if code is not None:
            e.sqlite_errorcode = code  # type: ignore[attr-defined]
        return e

    cases: list[tuple[sqlite3.Error, type[StoreError]]] = [
        (err(sqlite3.OperationalError, "database is locked", 5), StoreBusy),
        (err(sqlite3.OperationalError, "database table is locked", None), StoreBusy),
        (err(sqlite3.OperationalError, "attempt to write a readonly database", 8), StoreReadOnly),
        (err(sqlite3.DatabaseError, "file is not a database", 26), StoreCorrupt),
        (err(sqlite3.DatabaseError, "database disk image is malformed", 11), StoreCorrupt),
        (err(sqlite3.OperationalError, "unable to open database file", 14), StoreUnavailable),
        (err(sqlite3.OperationalError, "disk I/O error", 10), StoreUnavailable),
        (
            err(sqlite3.ProgrammingError, "Cannot operate on a closed database.", None),
            StoreUnavailable,
        ),
        (err(sqlite3.IntegrityError, "UNIQUE constraint failed", 2067), StoreCorrupt),
        (err(sqlite3.OperationalError, "something else", 1), StoreError),
    ]
    for exc, kind in cases:
        got = translate_error(exc, "testing")
        assert type(got) is kind, (exc, got)
        assert "testing" in str(got)


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
