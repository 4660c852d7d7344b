"""``statekernel lint`` and ``statekernel show``, and the TARGET loading rules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from statekernel.adapters.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "tests.kernel.example:SPEC"

BAD_SPEC = """
import attrs
from statekernel.kernel import Spec, Transition

@attrs.frozen
class Ctx:
    n: int = 0

SPEC = Spec(name="bad", version=1, context=Ctx, initial="nowhere",
            states=["a", "b", "b", "c"], final=["b"],
            transitions=[Transition("go", "a", "zz"), Transition("back", "b", "a")])
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_lint_clean_spec(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "lint", EXAMPLE)
    assert code == 0
    assert out.startswith("enrollment v1: ok (5 states, 5 transitions, 2 invariants)")


def test_lint_lists_every_problem_and_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad_spec.py"
    path.write_text(BAD_SPEC)
    code, _, err = run(capsys, "lint", f"{path}:SPEC")
    assert code == 2
    assert "spec 'bad' has" in err
    for needle in [
        "initial 'nowhere'",
        "state 'b': declared more than once",
        "unknown target state 'zz'",
        "leaves final state 'b'",
    ]:
        assert needle in err


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("no_such_module_xyz:SPEC", "no module named 'no_such_module_xyz'"),
        ("missing/file.py:SPEC", "missing/file.py: no such folder missing"),
        ("tests.kernel.example:NOPE", "has no attribute 'NOPE'; specs defined there: SPEC"),
        ("tests.kernel.example:Application", "is a type, not a statekernel.kernel.Spec"),
        ("just-a-name", "must look like module.path:ATTRIBUTE"),
    ],
)
def test_bad_targets_exit_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], target: str, needle: str
) -> None:
    code, _, err = run(capsys, "lint", target)
    assert code == 2
    assert needle in err


def test_file_target_that_fails_to_import(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "broken.py"
    path.write_text("raise RuntimeError('nope')\n")
    code, _, err = run(capsys, "lint", f"{path}:SPEC")
    assert code == 2
    assert err.startswith(f"error: importing {path} failed: RuntimeError: nope\n")


def test_show_prints_states_and_transitions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", EXAMPLE)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("enrollment v1")
    draft = next(line for line in lines if line.startswith("draft "))
    assert "initial" in draft and "attach, submit" in draft
    approve = next(line for line in lines if " approve " in line)
    assert "submitted" in approve and "reviewer" in approve and "Approve" in approve
    assert any("approved_names_reviewer: An approved application names" in line for line in lines)


def test_show_lists_the_effects_of_each_transition(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "tests.diagrams.diagram_specimens:CONNECTION")
    assert code == 0
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("FROM "))
    assert header.split()[-1] == "EFFECTS"
    abort = next(line for line in lines if " abort " in line)
    assert abort.endswith("rst, log")
    listen = next(line for line in lines if line.startswith("closed ") and " listen " in line)
    assert listen.endswith(" -")


def test_show_lists_an_internal_transition(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "tests.diagrams.diagram_specimens:LINE")
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert ["closed", "close", "(internal)", "-", "peer", "-", "-"] in rows
    assert ["idle,", "open", "ping", "(internal)", "-", "anyone", "-", "-"] in rows


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "lint" in capsys.readouterr().out


def test_console_entry_point_runs_as_a_module() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "kernel"), str(ROOT / "adapters"), str(ROOT / "specs"), str(ROOT)]
        ),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "statekernel.adapters.cli", "lint", EXAMPLE],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout
