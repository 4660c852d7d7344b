"""The README's second command passes on a fresh machine that has only Python.

There, the renderer tests skip (saying how to enable them) and the PostgreSQL tests skip (no
server answers); ``.ci/run`` installs the renderers and PostgreSQL and sets
``STATEKERNEL_REQUIRE_RENDERERS=1``, ``STATEKERNEL_REQUIRE_PG=1`` and
``STATEKERNEL_RUN_SLOW=1``, so in CI every one of those tests must run. The slow test below
proves the fresh-machine half: it copies this checkout to a temporary folder and runs the
README's second command there, word for word, with only ``python3`` on ``PATH``.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"

# Set in the copy's run, so that its suite does not start another copy of itself.
FRESH_RUN = "STATEKERNEL_FRESH_MACHINE_RUN"
# No PostgreSQL server answers here: a fresh machine has none.
NO_SERVER_DSN = "postgresql://postgres@127.0.0.1:1/test"


def readme_setup_commands() -> list[str]:
    """The set-up commands at the top of README.md (its first ``bash`` block), in order."""
    block = re.search(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert block is not None, "README.md lost its set-up commands"
    return [line for line in block.group(1).splitlines() if line.startswith("python3 ")]


def test_ci_requires_every_optional_test_to_run() -> None:
    ci = CI.read_text(encoding="utf-8")
    for variable in (
        "STATEKERNEL_REQUIRE_PG",
        "STATEKERNEL_REQUIRE_RENDERERS",
        "STATEKERNEL_RUN_SLOW",
    ):
        assert re.search(rf"^export {variable}=1$", ci, re.M), f".ci/run does not set {variable}"
    assert "apt-get install" in ci and "graphviz plantuml" in ci
    assert "npm ci --prefix tests/diagrams/mermaid" in ci


def test_readme_says_how_to_run_the_renderer_and_slow_tests() -> None:
    text = README.read_text(encoding="utf-8")
    for needed in (
        "STATEKERNEL_REQUIRE_RENDERERS=1",
        "npm ci --prefix tests/diagrams/mermaid",
        "graphviz",
        "plantuml",
        "STATEKERNEL_RUN_SLOW=1",
        "STATEKERNEL_REQUIRE_PG=1",
    ):
        assert needed in text, needed


def test_slow_tests_skip_unless_asked_for(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    pytester.makeini("[pytest]\nmarkers =\n    slow: long\n")
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.slow\ndef test_long():\n    pass\n\n"
        "def test_short():\n    pass\n"
    )
    monkeypatch.delenv("STATEKERNEL_RUN_SLOW", raising=False)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*slow test: set STATEKERNEL_RUN_SLOW=1 to run it*"])
    monkeypatch.setenv("STATEKERNEL_RUN_SLOW", "1")
    pytester.runpytest().assert_outcomes(passed=2)


def _ignored_by_git(root: Path) -> list[str]:
    """The name patterns of ``root/.gitignore`` (all of them plain names or globs)."""
    lines = (root / ".gitignore").read_text(encoding="utf-8").splitlines()
    return [p.rstrip("/") for p in lines if p.strip() and not p.startswith("#")]


def _copy_checkout(dest: Path) -> None:
    """This checkout as a fresh clone would have it: no virtualenv, no installed renderers,
    no caches (whatever .gitignore names), no git metadata."""
    patterns = [*_ignored_by_git(ROOT), ".git"]

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)}

    shutil.copytree(ROOT, dest, ignore=ignore)


def _only_python_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a machine that has Python and nothing else the tests could use: a
    PATH holding only ``python3``, no PostgreSQL server, none of the CI switches."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = getattr(sys, "_base_executable", None) or sys.executable
    (bin_dir / "python3").symlink_to(os.path.realpath(python))
    (tmp_path / "tmp").mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STATEKERNEL_", "PYTEST_", "PYTHON")) and k != "VIRTUAL_ENV"
    }
    env.update(
        PATH=str(bin_dir),
        TMPDIR=str(tmp_path / "tmp"),
        STATEKERNEL_PG_DSN=NO_SERVER_DSN,
        **{FRESH_RUN: "1"},
    )
    return env


@pytest.mark.slow
@pytest.mark.skipif(FRESH_RUN in os.environ, reason="already inside the fresh-machine run")
def test_readme_test_command_passes_on_a_machine_with_only_python(tmp_path: Path) -> None:
    # Costs one more run of the suite (minus PostgreSQL, renderer and slow tests) plus an
    # install into a new virtualenv: about as long again as the suite itself.
    command = readme_setup_commands()[1]
    checkout = tmp_path / "checkout"
    _copy_checkout(checkout)
    env = _only_python_env(tmp_path)
    for program in ("dot", "plantuml", "node", "java", "psql"):
        assert shutil.which(program, path=env["PATH"]) is None, program
    proc = subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{command!r} exited {proc.returncode}:\n{out[-6000:]}"
    summary = proc.stdout.strip().splitlines()[-1]  # pytest's last line
    assert re.search(r"\d+ passed", summary) and "failed" not in summary, summary
    # The renderer and PostgreSQL tests were skipped, saying how to enable them.
    assert "dot is not installed: install Graphviz" in out
    assert "STATEKERNEL_REQUIRE_RENDERERS=1 makes a missing renderer a failure" in out
    assert f"no PostgreSQL server answers at {NO_SERVER_DSN}" in out
