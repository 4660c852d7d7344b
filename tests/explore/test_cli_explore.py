"""``statekernel explore TARGET``: output, JSON report, saved traces and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from statekernel.adapters.cli import main
from statekernel.kernel import Trace, assert_trace_passes, replay_trace

from . import explore_specs as specs

SPECS = Path(__file__).with_name("explore_specs.py")


def target(name: str) -> str:
    return f"{SPECS}:{name}"


def test_proved_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", target("SAFE")]) == 0
    out, err = capsys.readouterr()
    assert "PROVED" in out
    assert "42 distinct states" in out
    assert err == ""


def test_violated_exits_1_and_prints_the_numbered_trace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["explore", target("ACCOUNT")]) == 1
    out = capsys.readouterr().out
    assert "VIOLATED" in out
    assert "invariant_violated: never_negative" in out
    lines = out.splitlines()
    numbered = [line.strip() for line in lines if line.strip()[:2] in ("1.", "2.", "3.")]
    assert numbered[0].startswith("1. deposit")
    assert "balance=1" in numbered[0]
    assert numbered[1].startswith("2. raise_limit")
    assert "limit_raised=True" in numbered[1]
    assert numbered[2].startswith("3. withdraw") and "invariant_violated" in numbered[2]


def test_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", target("ACCOUNT"), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "violated"
    assert data["states"] > 0
    assert isinstance(data["seconds"], float)
    [v] = data["violations"]
    assert v["property"] == "invariant_violated: never_negative"
    steps = v["trace"]
    assert [s["event"] for s in steps] == ["deposit", "raise_limit", "withdraw"]
    assert all({"event", "payload", "state"} <= set(s) for s in steps)
    trace = Trace.from_data({"format": "statekernel-trace/1", "spec": "account", "steps": steps})
    assert replay_trace(specs.ACCOUNT, trace).violation == v["property"]


def test_undetermined_exits_0_with_a_loud_warning(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", target("UNBOUNDED"), "--max-depth", "4"]) == 0
    out, err = capsys.readouterr()
    assert "UNDETERMINED" in out
    assert "WARNING" in err and "NOT proved" in err


def test_undetermined_exits_1_with_strict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", target("UNBOUNDED"), "--max-states", "50", "--strict"]) == 1
    assert "state bound 50" in capsys.readouterr().err


def test_json_undetermined(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", target("UNBOUNDED"), "--max-states", "10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["verdict"], data["bound"], data["states"]) == ("undetermined", "max_states", 10)


def test_seconds_is_an_alias_of_time_budget(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", target("UNBOUNDED"), "--seconds", "0.2", "--max-states", "10"]) == 0
    assert "UNDETERMINED" in capsys.readouterr().out


def test_idempotency_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", target("SAFE"), "--idempotency", "--clients", "2"]) == 0
    out = capsys.readouterr().out
    assert "PROVED" in out and "idempotency: 2 client(s)" in out


def test_saved_traces_replay_as_regression_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explore", target("DOUBLING"), "--save-traces", str(tmp_path)]) == 1
    capsys.readouterr()
    [saved] = sorted(tmp_path.iterdir())
    assert saved.suffix == ".json"
    with pytest.raises(AssertionError, match="below_ten"):
        assert_trace_passes(specs.DOUBLING, saved)


@pytest.mark.parametrize(
    "argv",
    [
        ["explore", "no_such_module_xyz:SPEC"],
        ["explore", "not-a-target"],
        ["explore", str(SPECS) + ":Counter"],
        ["explore", str(SPECS) + ":SAFE", "--max-depth", "0"],
        ["explore", str(SPECS) + ":SAFE", "--seconds", "soon"],
    ],
)
def test_bad_target_or_argument_exits_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err
