"""``statekernel history`` and ``statekernel verify`` on SQLite files (and the DSN route)."""

from __future__ import annotations

import json
import sqlite3
import sys
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlite_utils

from statekernel.adapters.cli import main
from statekernel.adapters.memory import MemoryStore
from statekernel.adapters.sqlite import MIGRATIONS, SqliteStore
from statekernel.kernel import Actor, Command

from ._sqlite_workers import TALLY
from .ledger import SPEC

TARGET = "tests.stores.ledger:SPEC"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    store = SqliteStore(SPEC, path)
    store.handle("acct", Command("deposit", {"amount": {"cents": 2**70}}), idempotency_key="k1")
    store.handle("acct", Command("withdraw", {"cents": 10}))
    store.handle("acct", Command("freeze", actor=Actor("ada", roles=["auditor"])))
    store.handle("other", Command("deposit", {"amount": {"cents": 1}}))
    store.close()
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_history_without_spec_prints_stored_rows(db: Path, capsys: Any) -> None:
    code, out, _ = run(capsys, "history", str(db), "acct")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["version"], r["event"], r["spec"], r["spec_version"]) for r in rows] == [
        (1, "deposit", "ledger", 1),
        (2, "withdraw", "ledger", 1),
        (3, "freeze", "ledger", 1),
    ]
    assert rows[0]["payload"]["amount"]["cents"] == 2**70
    assert rows[0]["idempotency_key"] == "k1"
    assert rows[2]["actor"] == {"id": "ada", "roles": ["auditor"]}


def test_history_with_spec_explains_changes(db: Path, capsys: Any) -> None:
    code, out, _ = run(capsys, "history", str(db), "acct", "--spec", TARGET)
    assert code == 0
    assert "acct (ledger v1): 3 transition(s)" in out
    assert f"balance: 0 -> {2**70}" in out
    assert f"balance: {2**70} -> {2**70 - 10}" in out
    assert "open -> frozen" in out and "ada [auditor]" in out
    assert "now: frozen at version 3" in out


def test_verify_clean_database(db: Path, capsys: Any) -> None:
    before = db.read_bytes()
    code, out, _ = run(capsys, "verify", str(db), "--spec", TARGET)
    assert (code, out.strip()) == (0, "ledger v1: 2 entities verified, ok")
    assert db.read_bytes() == before  # read-only


def test_verify_catches_a_hand_edited_audit_row(db: Path, capsys: Any) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE statekernel_audit SET payload = ? WHERE entity = 'acct' AND version = 2",
            (json.dumps({"cents": 2**71}),),
        )
    conn.close()
    code, out, _ = run(capsys, "verify", str(db), "--spec", TARGET)
    assert code == 1
    assert "MISMATCH acct at v2: replay rejects 'withdraw': guard_rejected" in out
    assert "other" not in out.replace("2 entities", "")
    assert out.strip().endswith("1 mismatch(es)")


def test_verify_catches_an_edited_snapshot(db: Path, capsys: Any) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE statekernel_snapshots SET context = replace(context, '\"balance\":1', "
            "'\"balance\":9') WHERE entity = 'other'"
        )
    conn.close()
    code, out, _ = run(capsys, "verify", str(db), "--spec", TARGET)
    assert code == 1
    assert "MISMATCH other: stored context differs from replay (balance: replay 1, stored 9)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify", "{missing}", "--spec", TARGET], "missing.db: no such file"),
        (["verify", "{junk}", "--spec", TARGET], "junk.db: not a SQLite database file"),
        (["verify", "{db}", "--spec", "tests.stores.ledger:NOPE"], "no attribute 'NOPE'"),
        (["verify", "{db}", "--spec", "tests.stores._sqlite_workers:TALLY"], "no data of spec"),
        (["history", "{db}", "acct", "--spec", "{v2}"], "version 1, not version 2"),
        (["history", "{db}", "x" * 300], "entity id"),
        (["history", "postgresql://nobody@127.0.0.1:1/none", "acct"], "needs --spec"),
    ],
)
def test_bad_input_exits_2(
    db: Path, tmp_path: Path, capsys: Any, argv: list[str], message: str
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all " * 100)
    v2 = tmp_path / "v2.py"
    v2.write_text(
        "import attrs\nfrom tests.stores.ledger import SPEC\nV2 = attrs.evolve(SPEC, version=2)\n"
    )
    names = {"missing": tmp_path / "missing.db", "junk": junk, "db": db, "v2": f"{v2}:V2"}
    before = db.read_bytes()
    code, out, err = run(capsys, *(a.format(**names) for a in argv))
    assert code == 2, (out, err)
    assert message in err
    assert db.read_bytes() == before
    assert not names["missing"].exists()  # type: ignore[union-attr]


def test_postgres_dsn_without_the_postgres_store_is_a_clear_error(
    capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "statekernel.adapters.postgres", None)
    code, _, err = run(capsys, "verify", "postgresql://u@127.0.0.1/db", "--spec", TARGET)
    assert code == 2
    assert "statekernel[postgres]" in err


def test_postgres_dsn_goes_to_the_postgres_store(
    capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DSN route hands the spec and DSN to ``PostgresStore`` (a stand-in here)."""
    opened: list[tuple[Any, str, dict[str, Any]]] = []
    backing = MemoryStore(SPEC)
    backing.handle("acct", Command("deposit", {"amount": {"cents": 5}}))

    def fake_store(spec: Any, dsn: str, **options: Any) -> MemoryStore:
        opened.append((spec, dsn, options))
        return backing

    module = types.ModuleType("statekernel.adapters.postgres")
    module.PostgresStore = fake_store  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "statekernel.adapters.postgres", module)
    dsn = "postgresql://u@127.0.0.1/db"
    code, out, _ = run(capsys, "history", dsn, "acct", "--spec", TARGET)
    assert code == 0 and "balance: 0 -> 5" in out
    code, out, _ = run(capsys, "verify", dsn, "--spec", TARGET)
    assert code == 0 and "1 entities verified, ok" in out
    assert opened == [(SPEC, dsn, {"create": False}), (SPEC, dsn, {"create": False})]


def test_an_unreachable_store_exits_3(capsys: Any) -> None:
    """A store that cannot be reached is not a bad spec (2) nor a mismatch (1)."""
    pytest.importorskip("psycopg")
    code, _, err = run(
        capsys,
        "verify",
        "postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=2",
        "--spec",
        TARGET,
    )
    assert code == 3
    assert "the store failed" in err


def test_a_database_lacking_later_migrations_is_read_as_it_is(tmp_path: Path, capsys: Any) -> None:
    """The first release's layout (no outbox delivery column): read, never migrated."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS.apply(sqlite_utils.Database(conn), stop_before="0002_outbox_delivery")
    conn.execute(
        "INSERT INTO statekernel_specs (scope, spec_version, created_at)"
        " VALUES ('ledger', 1, '2024-01-01T00:00:00+00:00')"
    )
    conn.close()
    before = path.read_bytes()
    code, out, err = run(capsys, "verify", str(path), "--spec", TARGET)
    assert (code, out.strip()) == (0, "ledger v1: 0 entities verified, ok"), err
    code, out, err = run(capsys, "history", str(path), "acct", "--spec", TARGET)
    assert (code, err) == (
        2,
        f"error: {path} has no entity 'acct' of spec 'ledger'; it holds none yet\n",
    )
    assert path.read_bytes() == before
    conn = sqlite3.connect(path)
    names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")]
    conn.close()
    assert names == ["0001_initial"]


# --- PostgreSQL: the commands never create or write anything -----------------------------


@pytest.fixture
def empty_pg_database(pg_dsn: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (the CLI uses the default schema name,
    so each test gets a database of its own), dropped afterwards."""
    import psycopg

    parts = urlsplit(pg_dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        pytest.skip("these tests build database URLs from a postgresql:// DSN")
    name = f"sk_cli_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_objects(dsn: str) -> list[tuple[str, str]]:
    """Every schema and relation outside the system catalogs, and every meta row."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT 'schema', nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'"
            " AND nspname NOT IN ('information_schema', 'public')"
            " UNION ALL SELECT 'relation', n.nspname || '.' || c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'"
        ).fetchall()
        found = [(str(a), str(b)) for a, b in rows]
        if ("relation", "statekernel.meta") in found:
            meta = conn.execute("SELECT spec, spec_version FROM statekernel.meta").fetchall()
            found += [("meta", f"{spec} v{version}") for spec, version in meta]
    return sorted(found)


@pytest.mark.parametrize(
    "argv",
    [["history", "{dsn}", "acct", "--spec", TARGET], ["verify", "{dsn}", "--spec", TARGET]],
)
def test_postgres_database_without_the_schema_is_reported_and_left_untouched(
    empty_pg_database: str, capsys: Any, argv: list[str]
) -> None:
    before = _pg_objects(empty_pg_database)
    assert not any(name.startswith("statekernel") for _, name in before)
    code, out, err = run(capsys, *(a.format(dsn=empty_pg_database) for a in argv))
    assert code == 2, (out, err)
    assert "has no statekernel tables" in err and "no data of spec 'ledger'" in err
    assert "nothing was created or written" in err
    assert _pg_objects(empty_pg_database) == before


@pytest.mark.parametrize(
    "argv",
    [["history", "{dsn}", "acct", "--spec", TARGET], ["verify", "{dsn}", "--spec", TARGET]],
)
def test_postgres_schema_of_another_spec_is_reported_and_left_untouched(
    empty_pg_database: str, capsys: Any, argv: list[str]
) -> None:
    from statekernel.adapters.postgres import PostgresStore

    with PostgresStore(TALLY, empty_pg_database) as other:
        assert other.handle("t", Command("add", {"n": 1})).accepted
    before = _pg_objects(empty_pg_database)
    assert ("meta", "tally v1") in before
    code, out, err = run(capsys, *(a.format(dsn=empty_pg_database) for a in argv))
    assert code == 2, (out, err)
    assert "holds no data of spec 'ledger'" in err
    assert _pg_objects(empty_pg_database) == before


def test_postgres_history_and_verify_read_a_schema_with_data(
    empty_pg_database: str, capsys: Any
) -> None:
    from statekernel.adapters.postgres import PostgresStore

    with PostgresStore(SPEC, empty_pg_database) as store:
        store.handle("acct", Command("deposit", {"amount": {"cents": 5}}))
    before = _pg_objects(empty_pg_database)
    code, out, _ = run(capsys, "history", empty_pg_database, "acct", "--spec", TARGET)
    assert code == 0 and "balance: 0 -> 5" in out
    code, out, _ = run(capsys, "verify", empty_pg_database, "--spec", TARGET)
    assert (code, out.strip()) == (0, "ledger v1: 1 entities verified, ok")
    assert _pg_objects(empty_pg_database) == before


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_row_that_no_longer_fits_is_a_mismatch_on_every_database(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, capsys: Any
) -> None:
    """The same corrupt row gives the same verdict, exit 1 naming the entity, whichever
    database holds it (not a store failure, exit 3)."""
    bad_context = '{"balance": "five"}'
    if kind == "sqlite":
        db = str(tmp_path / "app.db")
        with SqliteStore(SPEC, db) as store:
            store.handle("a", Command("deposit", {"amount": {"cents": 5}}))
            store.handle("b", Command("deposit", {"amount": {"cents": 7}}))
        conn = sqlite3.connect(db)
        with conn:
            conn.execute(
                "UPDATE statekernel_snapshots SET context = ? WHERE entity = 'a'", (bad_context,)
            )
        conn.close()
    else:
        import psycopg

        from statekernel.adapters.postgres import PostgresStore

        db = request.getfixturevalue("empty_pg_database")
        with PostgresStore(SPEC, db) as store:
            store.handle("a", Command("deposit", {"amount": {"cents": 5}}))
            store.handle("b", Command("deposit", {"amount": {"cents": 7}}))
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(
                "UPDATE statekernel.snapshots SET context = %s::jsonb WHERE entity = 'a'",
                (bad_context,),
            )
    code, out, err = run(capsys, "verify", db, "--spec", TARGET)
    assert code == 1, (out, err)
    lines = out.strip().splitlines()
    assert lines[0].startswith("MISMATCH a: the stored context of 'a' no longer fits 'ledger' v1")
    assert lines[1:] == ["ledger v1: 2 entities verified, 1 mismatch(es)"]


def test_postgres_history_and_verify_read_the_schema_named_by_schema(
    empty_pg_database: str, capsys: Any
) -> None:
    """``--schema`` picks the PostgreSQL schema; without it the default one is read (empty
    here, so it is reported and nothing is created)."""
    from statekernel.adapters.postgres import PostgresStore

    with PostgresStore(SPEC, empty_pg_database, schema="billing") as store:
        store.handle("acct", Command("deposit", {"amount": {"cents": 5}}))
    before = _pg_objects(empty_pg_database)
    dsn = empty_pg_database
    code, out, err = run(capsys, "history", dsn, "acct", "--spec", TARGET, "--schema", "billing")
    assert code == 0 and "balance: 0 -> 5" in out, err
    code, out, err = run(capsys, "verify", dsn, "--spec", TARGET, "--schema", "billing")
    assert (code, out.strip()) == (0, "ledger v1: 1 entities verified, ok"), err
    code, _, err = run(capsys, "verify", dsn, "--spec", TARGET)
    assert code == 2 and "schema 'statekernel'" in err and "has no statekernel tables" in err
    code, _, err = run(capsys, "verify", dsn, "--spec", TARGET, "--schema", "elsewhere")
    assert code == 2 and "schema 'elsewhere'" in err
    assert _pg_objects(empty_pg_database) == before


def test_schema_is_for_postgres_only(db: Path, capsys: Any) -> None:
    for argv in (
        ["history", str(db), "acct", "--schema", "billing"],
        ["history", str(db), "acct", "--spec", TARGET, "--schema", "billing"],
        ["verify", str(db), "--spec", TARGET, "--schema", "billing"],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "--schema names a PostgreSQL schema" in err, (argv, err)
