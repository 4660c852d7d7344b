"""``statekernel history`` of something that is not there exits 2, as ``verify`` does: an
unknown entity (naming a few that exist), or a SQLite file that is not a statekernel
database."""

from __future__ import annotations

import sqlite3
import sys
import types
from pathlib import Path

import pytest

from statekernel.adapters.cli import main
from statekernel.adapters.memory import MemoryStore
from statekernel.adapters.sqlite import SqliteStore, read_entity_ids
from statekernel.kernel import Command
from tests.kernel.example import SPEC

TARGET = "tests.kernel.example:SPEC"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _database(path: Path, entities: int) -> Path:
    store = SqliteStore(SPEC, path)
    for i in range(entities):
        store.handle(f"app-{i}", Command("attach", {"count": 1}))
    store.close()
    return path


@pytest.mark.parametrize("spec", [[], ["--spec", TARGET]])
def test_an_unknown_entity_exits_2_naming_a_few_that_exist(
    here: Path, capsys: pytest.CaptureFixture[str], spec: list[str]
) -> None:
    _database(here / "app.db", 8)
    code, out, err = run(capsys, "history", "app.db", "app-99", *spec)
    of = " of spec 'enrollment'" if spec else ""
    assert (code, out, err) == (
        2,
        "",
        f"error: app.db has no entity 'app-99'{of}; "
        "entities there: app-0, app-1, app-2, app-3, app-4, ... (8 in all)\n",
    )


@pytest.mark.parametrize("spec", [[], ["--spec", TARGET]])
def test_an_unknown_entity_among_few(
    here: Path, capsys: pytest.CaptureFixture[str], spec: list[str]
) -> None:
    _database(here / "app.db", 2)
    code, _, err = run(capsys, "history", "app.db", "nope", *spec)
    of = " of spec 'enrollment'" if spec else ""
    assert (code, err) == (
        2,
        f"error: app.db has no entity 'nope'{of}; entities there: app-0, app-1\n",
    )


@pytest.mark.parametrize("spec", [[], ["--spec", TARGET]])
def test_an_unknown_entity_in_an_empty_database(
    here: Path, capsys: pytest.CaptureFixture[str], spec: list[str]
) -> None:
    _database(here / "app.db", 0)
    code, _, err = run(capsys, "history", "app.db", "nope", *spec)
    of = " of spec 'enrollment'" if spec else ""
    assert (code, err) == (2, f"error: app.db has no entity 'nope'{of}; it holds none yet\n")


def test_a_sqlite_file_that_is_not_a_statekernel_database(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = sqlite3.connect(here / "other.db")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = (here / "other.db").read_bytes()
    code, out, err = run(capsys, "history", "other.db", "app-1")
    assert (code, out, err) == (
        2,
        "",
        "error: other.db is not a statekernel database (it holds no statekernel data)\n",
    )
    code, _, err = run(capsys, "history", "other.db", "app-1", "--spec", TARGET)
    assert (code, err) == (
        2,
        "error: other.db holds no data of spec 'enrollment' (it holds: no statekernel data)\n",
    )
    assert (here / "other.db").read_bytes() == before


def test_a_known_entity_still_prints_its_rows(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _database(here / "app.db", 3)
    code, out, _ = run(capsys, "history", "app.db", "app-2")
    assert code == 0 and '"event": "attach"' in out


def test_an_unknown_entity_of_a_postgres_database_hides_the_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DSN route (a stand-in ``PostgresStore`` here): same message, no password."""
    backing = MemoryStore(SPEC)
    backing.handle("app-1", Command("attach", {"count": 1}))
    module = types.ModuleType("statekernel.adapters.postgres")
    module.PostgresStore = lambda spec, dsn, **options: backing  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "statekernel.adapters.postgres", module)
    dsn = "postgresql://app:s3cret@db.internal:5432/app"
    code, _, err = run(capsys, "history", dsn, "nope", "--spec", TARGET)
    assert (code, err) == (
        2,
        "error: postgresql://app@db.internal:5432/app has no entity 'nope' of spec "
        "'enrollment'; entities there: app-1\n",
    )


def test_read_entity_ids_lists_each_id_once(tmp_path: Path) -> None:
    from tests.stores.ledger import SPEC as LEDGER

    path = _database(tmp_path / "app.db", 2)
    other = SqliteStore(LEDGER, path)
    other.handle("app-1", Command("deposit", {"amount": {"cents": 1}}))
    other.handle("zed", Command("deposit", {"amount": {"cents": 1}}))
    other.close()
    conn = sqlite3.connect(path)
    try:
        assert read_entity_ids(conn) == ["app-0", "app-1", "zed"]
        assert read_entity_ids(conn, "ledger") == ["app-1", "zed"]
        assert read_entity_ids(sqlite3.connect(":memory:")) == []
    finally:
        conn.close()
