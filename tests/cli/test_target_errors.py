"""A TARGET that does not load says where and why: the file, line and source line of an import
error; the specs of a module named without ``:ATTRIBUTE``; the file form of a module name
that only exists as a file here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from statekernel.adapters.cli import main

TWO_SPECS = """\
import attrs
from statekernel.kernel import Spec, Transition

@attrs.frozen
class Ctx:
    n: int = 0

def make(name):
    return Spec(name=name, version=1, context=Ctx, initial="a", states=["a", "b"],
                final=["b"], transitions=[Transition("go", "a", "b")])

ORDERS = make("orders")
REFUNDS = make("refunds")
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder that is not on ``sys.path`` (as for the installed command)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    return tmp_path


def test_a_file_that_raises_shows_file_line_and_source(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "broken.py").write_text("x = 1\nraise RuntimeError('nope')\n")
    code, _, err = run(capsys, "lint", "broken.py:SPEC")
    assert code == 2
    assert err == (
        "error: importing broken.py failed: RuntimeError: nope\n"
        '  File "broken.py", line 2, in <module>\n'
        "    raise RuntimeError('nope')\n"
    )


def test_a_syntax_error_points_at_the_column(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "typo.py").write_text("import attrs\nx = = 1\n")
    code, _, err = run(capsys, "show", "typo.py:SPEC")
    assert code == 2
    assert err == (
        "error: importing typo.py failed: SyntaxError: invalid syntax\n"
        '  File "typo.py", line 2\n'
        "    x = = 1\n"
        "        ^\n"
    )


def test_the_line_shown_is_the_users_not_a_librarys(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    helper = "sk_target_helper"
    (here / f"{helper}.py").write_text(
        "import attrs\n\n\ndef build():\n    return attrs.evolve(1)\n"
    )
    (here / "app.py").write_text(f"from {helper} import build\n\nSPEC = build()\n")
    code, _, err = run(capsys, "lint", "app.py:SPEC")
    sys.modules.pop(helper, None)
    assert code == 2
    assert err.splitlines() == [
        "error: importing app.py failed: NotAnAttrsClassError: "
        "<class 'int'> is not an attrs-decorated class.",
        f'  File "{helper}.py", line 5, in build',
        "    return attrs.evolve(1)",
    ]


def test_a_module_target_that_raises(
    here: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (here / "skpkg").mkdir()
    (here / "skpkg" / "__init__.py").write_text("")
    (here / "skpkg" / "flows.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(here))
    code, _, err = run(capsys, "lint", "skpkg.flows:SPEC")
    for name in ("skpkg", "skpkg.flows"):
        sys.modules.pop(name, None)
    assert code == 2
    assert err == (
        "error: importing skpkg.flows failed: ModuleNotFoundError: "
        "No module named 'no_such_dependency_xyz'\n"
        f'  File "{Path("skpkg", "flows.py")}", line 1, in <module>\n'
        "    import no_such_dependency_xyz\n"
    )


def test_a_module_without_attribute_lists_its_specs(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "lint", "tests.kernel.example")
    assert (code, err) == (
        2,
        "error: target 'tests.kernel.example' names no attribute; "
        "specs defined there: tests.kernel.example:SPEC\n",
    )


def test_a_file_without_attribute_lists_its_specs(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "flows.py").write_text(TWO_SPECS)
    code, _, err = run(capsys, "diagram", "flows.py")
    assert (code, err) == (
        2,
        "error: target 'flows.py' names no attribute; "
        "specs defined there: flows.py:ORDERS, flows.py:REFUNDS\n",
    )


def test_a_module_without_attribute_and_without_specs(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "plain.py").write_text("X = 1\n")
    code, _, err = run(capsys, "lint", "plain.py")
    assert (code, err) == (
        2,
        "error: target 'plain.py' names no attribute, and plain.py defines no spec: "
        "a TARGET looks like module.path:ATTRIBUTE or path/to/file.py:ATTRIBUTE\n",
    )


def test_a_name_that_is_no_module(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "lint", "no_such_module_xyz")
    assert (code, err) == (
        2,
        "error: no module named 'no_such_module_xyz': a TARGET looks like "
        "module.path:ATTRIBUTE or path/to/file.py:ATTRIBUTE\n",
    )


def test_a_module_name_for_a_file_here_suggests_the_file_form(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "flows.py").write_text(TWO_SPECS)
    code, _, err = run(capsys, "lint", "flows:ORDERS")
    assert (code, err) == (
        2,
        "error: no module named 'flows'; to load the file flows.py, use flows.py:ORDERS\n",
    )


def test_a_dotted_name_for_a_file_here_suggests_the_file_form(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "myflows").mkdir()
    (here / "myflows" / "flows.py").write_text(TWO_SPECS)
    code, _, err = run(capsys, "lint", "myflows.flows:ORDERS")
    path = Path("myflows", "flows.py")
    assert (code, err) == (
        2,
        f"error: no module named 'myflows.flows'; to load the file {path}, use {path}:ORDERS\n",
    )
