"""``statekernel history`` and ``statekernel verify`` on SQLite files (and the DSN route)."""

from __future__ import annotations

import json
import sqlite3
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from statekernel.adapters.cli import main
from statekernel.adapters.memory import MemoryStore
from statekernel.adapters.sqlite import SqliteStore
from statekernel.kernel import Actor, Command

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
        (["verify", "{missing}", "--spec", TARGET], "no such database file"),
        (["verify", "{junk}", "--spec", TARGET], "not a database"),
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
    opened: list[tuple[Any, str]] = []
    backing = MemoryStore(SPEC)
    backing.handle("acct", Command("deposit", {"amount": {"cents": 5}}))

    def fake_store(spec: Any, dsn: str) -> MemoryStore:
        opened.append((spec, dsn))
        return backing

    module = types.ModuleType("statekernel.adapters.postgres")
    module.PostgresStore = fake_store  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "statekernel.adapters.postgres", module)
    dsn = "postgresql://u@127.0.0.1/db"
    code, out, _ = run(capsys, "history", dsn, "acct", "--spec", TARGET)
    assert code == 0 and "balance: 0 -> 5" in out
    code, out, _ = run(capsys, "verify", dsn, "--spec", TARGET)
    assert code == 0 and "1 entities verified, ok" in out
    assert opened == [(SPEC, dsn), (SPEC, dsn)]


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
