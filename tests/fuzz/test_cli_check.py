"""``statekernel check TARGET``: lint, explorer, fuzzer; output, JSON report, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from statekernel.adapters.cli import main
from statekernel.kernel import Trace
from statekernel.kernel.testing import assert_store_passes

from . import planted

PLANTED = Path(__file__).with_name("planted.py")
FAST = ["--examples", "30", "--seed", "0", "--max-states", "2000"]


def target(name: str) -> str:
    return f"{PLANTED}:{name}"


def test_clean_spec_exits_0_and_shows_every_stage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", target("SPLITTER_FIXED"), *FAST]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("lint: splitter v1 ok")
    assert "explore: splitter v1: PROVED" in out
    assert "fuzz splitter on MemoryStore: 30 runs" in out
    assert "split (open -> open)" in out  # hit counts per transition
    assert out.rstrip().splitlines()[-1].startswith("verdict: PROVED")
    assert err == ""  # no progress when stderr is not a terminal


def test_spec_violation_is_found_by_the_explorer_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", target("PROMOTION"), *FAST]) == 1
    out = capsys.readouterr().out
    assert "invariant_violated: seniors_are_trained" in out
    assert "fuzz: skipped" in out
    assert "verdict: VIOLATED" in out


def test_store_violation_exits_1_with_the_numbered_trace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = f"{PLANTED}:ForgetsKeys"
    args = ["--store", store, "--seed", "0", "--max-states", "2000"]
    assert main(["check", target("OVERDRAFT_FIXED"), *args]) == 1
    out = capsys.readouterr().out
    assert "property violated: store: retry_returns_first_answer" in out
    assert "    1. [c" in out and "seed: 0" in out
    assert "verdict: VIOLATED" in out


def test_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    store = f"{PLANTED}:StaleReads"
    args = ["--store", store, "--seed", "1", "--json", "--max-states", "2000"]
    assert main(["check", target("OVERDRAFT_FIXED"), *args]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "violated"
    assert data["states"] > 0 and isinstance(data["seconds"], float)
    assert data["explorer"]["verdict"] == "undetermined"  # the balance is unbounded
    [v] = data["violations"]
    assert v["property"] == "store: reads_are_current" and v["found_by"] == "fuzzer"
    assert v["seed"] == 1
    assert all({"event", "payload", "state"} <= s.keys() for s in v["trace"])
    trace = Trace.from_data(
        {"format": "statekernel-trace/1", "spec": "overdraft", "steps": v["trace"]}
    )
    with pytest.raises(AssertionError, match="reads_are_current"):
        assert_store_passes(planted.OVERDRAFT_FIXED, planted.StaleReads, trace)
    assert data["fuzzer"]["transition_hits"]


def test_json_clean_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", target("SPLITTER_FIXED"), *FAST, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "proved" and data["violations"] == []
    assert data["fuzzer"]["violation"] is None and data["fuzzer"]["examples"] == 30


def test_undetermined_when_the_explorer_hits_a_bound(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", target("SPLITTER_FIXED"), *FAST, "--max-depth", "1"]) == 0
    out, err = capsys.readouterr()
    assert "verdict: UNDETERMINED" in out
    assert "raise --max-depth" in err


def test_sqlite_store_with_a_db_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "fuzz.db"
    args = ["check", target("SPLITTER_FIXED"), "--store", "sqlite", "--db", str(db)]
    assert main([*args, "--examples", "5", "--seed", "2"]) == 0
    assert "on SqliteStore: 5 runs" in capsys.readouterr().out
    assert db.exists()  # it holds the last run, for `statekernel history`
    assert main(args) == 2  # it exists now: refuse to overwrite it
    assert "exists" in capsys.readouterr().err


def test_sqlite_store_in_a_temporary_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", target("SPLITTER_FIXED"), "--store", "sqlite", "--examples", "5"]) == 0
    assert "on SqliteStore: 5 runs" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--store", "nosuch"], "unknown store"),
        (["--store", "tests.fuzz.planted:NOPE"], "no attribute"),
        (["--store", "tests.fuzz.planted:OVERDRAFT"], "not callable"),
        (["--store", "tests.fuzz.planted:Account"], "lacks handle"),
        (["--store", "tests.fuzz.planted:_split"], "failed to make a store"),
        (["--db", "x.db"], "--db goes with --store sqlite"),
    ],
)
def test_bad_store_exits_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", target("SPLITTER_FIXED"), *args]) == 2
    assert message in capsys.readouterr().err


def test_bad_target_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "no.such.module:SPEC"]) == 2
    assert "no module named" in capsys.readouterr().err
    assert main(["check", target("positive")]) == 2


def test_bad_numbers_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", target("OVERDRAFT_FIXED"), "--examples", "0"]) == 2
    assert main(["check", target("OVERDRAFT_FIXED"), "--seed", "x"]) == 2


@pytest.mark.postgres
def test_postgres_store(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STATEKERNEL_PG_DSN", pg_dsn)
    args = ["--store", "postgres", "--examples", "8", "--seed", "0"]
    assert main(["check", target("SPLITTER_FIXED"), *args]) == 0
    assert "on PostgresStore: 8 runs" in capsys.readouterr().out
