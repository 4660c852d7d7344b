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
    lines = out.splitlines()
    assert out.startswith("lint: splitter v1 ok")
    assert (
        "explorer: splitter v1: PROVED - every reachable state within the bounds was checked"
        in lines
    )
    assert any(line.startswith("fuzzer: no violation in 30 runs / ") for line in lines)
    assert "split (open -> open)" in out  # hit counts per transition
    verdict = lines.index(next(line for line in lines if line.startswith("verdict: ")))
    assert lines[verdict].startswith("verdict: PROVED (")
    assert lines[verdict + 1].startswith("  explorer: PROVED - the whole bounded space was seen")
    assert lines[verdict + 2].startswith("  fuzzer: no violation in 30 runs / ")
    assert lines[verdict + 2].endswith(
        " on MemoryStore (a sample, not a proof); every state was entered and every transition "
        "fired"
    )
    assert err == ""  # no progress when stderr is not a terminal


def test_spec_violation_is_found_by_the_explorer_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", target("PROMOTION"), *FAST]) == 1
    out = capsys.readouterr().out
    assert "invariant_violated: seniors_are_trained" in out
    assert "fuzzer: skipped (the explorer found the spec violated; fix it first)" in out
    lines = out.splitlines()
    verdict = lines.index(next(line for line in lines if line.startswith("verdict: ")))
    assert lines[verdict].startswith("verdict: VIOLATED (")
    assert lines[verdict + 1] == "  explorer: VIOLATED - invariant_violated: seniors_are_trained"
    assert lines[verdict + 2] == "  fuzzer: skipped"


def test_store_violation_exits_1_with_the_numbered_trace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = f"{PLANTED}:ForgetsKeys"
    args = ["--store", store, "--seed", "0", "--max-states", "2000"]
    assert main(["check", target("OVERDRAFT_FIXED"), *args]) == 1
    out = capsys.readouterr().out
    assert "property violated: store: retry_returns_first_answer" in out
    assert "    1. [c" in out and "seed: 0" in out
    lines = out.splitlines()
    verdict = lines.index(next(line for line in lines if line.startswith("verdict: ")))
    assert lines[verdict].startswith("verdict: VIOLATED (")
    assert lines[verdict + 1].startswith("  explorer: UNDETERMINED - ")  # balances are unbounded
    assert lines[verdict + 2].startswith(
        "  fuzzer: VIOLATED - store: retry_returns_first_answer, found on ForgetsKeys in run "
    )


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
    lines = out.splitlines()
    verdict = lines.index(next(line for line in lines if line.startswith("verdict: ")))
    assert lines[verdict].startswith("verdict: UNDETERMINED (")
    assert lines[verdict + 1].startswith("  explorer: UNDETERMINED - the depth bound 1 was reached")
    assert lines[verdict + 1].endswith(", NOT a proof")
    assert lines[verdict + 2].startswith("  fuzzer: no violation in 30 runs / ")
    bounds = "  bounds: max depth 1, max states 2,000, time budget none; hit: the depth bound 1 was"
    assert f"{bounds} reached" in lines
    assert "raise --max-depth" in err


def test_sqlite_store_with_a_db_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "fuzz.db"
    args = ["check", target("SPLITTER_FIXED"), "--store", "sqlite", "--db", str(db)]
    assert main([*args, "--examples", "5", "--seed", "2"]) == 0
    assert "fuzzer: no violation in 5 runs / " in capsys.readouterr().out
    assert db.exists()  # it holds the last run, for `statekernel history`
    assert main(args) == 2  # it exists now: refuse to overwrite it
    assert "exists" in capsys.readouterr().err


def test_sqlite_store_in_a_temporary_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", target("SPLITTER_FIXED"), "--store", "sqlite", "--examples", "5"]) == 0
    out = capsys.readouterr().out
    assert "fuzzer: no violation in 5 runs / " in out and " steps on SqliteStore" in out


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
    out = capsys.readouterr().out
    assert "fuzzer: no violation in 8 runs / " in out and " steps on PostgresStore" in out


LADDER = f"{Path(__file__).with_name('coverage_specs.py')}:LADDER"


def test_each_tool_says_what_it_showed_and_the_fuzzer_what_it_never_reached(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the explorer sees the ladder whole; no fuzz run is long enough to climb it
    assert main(["check", LADDER, "--examples", "5", "--seed", "0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert main(["check", LADDER, "--examples", "5", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    explorer = lines.index(
        "explorer: ladder v1: PROVED - every reachable state within the bounds was checked"
    )
    assert lines[explorer + 2 : explorer + 5] == [
        "  bounds: max depth none, max states 1,000,000, time budget none; none was hit",
        "  payloads: from examples: paint (2); from samples of the payload type: label (2); "
        "none: climb",
        "  invariants checked on every state seen (1): rung_matches_state",
    ]
    fuzzer = lines.index(f"fuzzer: no violation in 5 runs / {data['fuzzer']['steps']} steps on "
                         "MemoryStore")  # fmt: skip
    never_states = [s for s, n in data["fuzzer"]["state_hits"].items() if not n]
    never_edges = sorted(t for t, n in data["fuzzer"]["transition_hits"].items() if not n)
    assert {"top", "rung59"} <= set(never_states)  # 60 steps up; a run takes at most 50
    assert "climb (rung59 -> top)" in never_edges
    warning = lines.index(
        f"  WARNING: the fuzzer never reached {len(never_states)} states and "
        f"{len(never_edges)} transitions, so the store was not tested there:"
    )
    assert warning > fuzzer
    listed = lines[warning + 1 : warning + 1 + len(never_states) + len(never_edges)]
    assert listed == [f"    state {s}" for s in never_states] + [
        f"    transition {t}" for t in never_edges
    ]
    verdict = lines.index(next(line for line in lines if line.startswith("verdict: ")))
    assert lines[verdict].startswith("verdict: PROVED (")
    assert lines[verdict + 1] == (
        f"  explorer: PROVED - the whole bounded space was seen ({data['states']} states); "
        "1 invariant holds in every one"
    )
    assert lines[verdict + 2] == (
        f"  fuzzer: no violation in 5 runs / {data['fuzzer']['steps']} steps on MemoryStore "
        f"(a sample, not a proof); never reached {len(never_states)} states and "
        f"{len(never_edges)} transitions"
    )


def test_json_keeps_every_key_and_adds_what_each_tool_showed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", LADDER, "--examples", "5", "--seed", "0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    # every key the report had before per-tool sections were added is still there
    top = "spec spec_version store verdict violations states seconds explorer fuzzer"
    explored = (
        "spec spec_version verdict violations warnings states depth fired seconds "
        "states_per_second bound bound_detail peak_rss_bytes idempotency_clients key_states "
        "key_seconds"
    )
    fuzzed = "spec store seed examples steps seconds states state_hits transition_hits violation"
    assert set(top.split()) <= set(data)
    assert set(explored.split()) <= set(data["explorer"])
    assert set(fuzzed.split()) <= set(data["fuzzer"])
    assert data["verdict"] == "proved" and data["violations"] == []
    explorer = data["explorer"]
    assert explorer["verdict"] == "proved" and explorer["states"] == data["states"]
    assert explorer["bounds"] == {"max_depth": None, "max_states": 1_000_000, "time_budget": None}
    assert explorer["payloads"] == {
        "climb": {"from": "none", "count": 0},
        "label": {"from": "samples", "count": 2},
        "paint": {"from": "examples", "count": 2},
    }
    assert explorer["invariants"] == ["rung_matches_state"]
    fuzzer = data["fuzzer"]
    assert fuzzer["runs"] == fuzzer["examples"] == 5 and fuzzer["violations"] == []
    assert fuzzer["unreached"]["states"] == [s for s, n in fuzzer["state_hits"].items() if not n]
    assert fuzzer["unreached"]["transitions"] == sorted(
        t for t, n in fuzzer["transition_hits"].items() if not n
    )
    assert "top" in fuzzer["unreached"]["states"]
    assert fuzzer["not_tested"] == []  # MemoryStore has reopen() and entities()
