"""``statekernel diagram`` and ``statekernel docs``, run in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from statekernel.adapters.cli import main
from statekernel.kernel import Trace
from statekernel.kernel.diagrams import FORMATS, highlight_trace, render
from statekernel.kernel.docs import index_page, page_filename, spec_page

from .diagram_specimens import ENROLLMENT, walk_trace

TARGET = "tests.diagrams.diagram_specimens:ENROLLMENT"
OTHER = "tests.diagrams.diagram_specimens:AWKWARD"


@pytest.mark.parametrize("fmt", FORMATS)
def test_diagram_writes_the_rendered_spec(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / "d.txt"
    assert main(["diagram", TARGET, "--format", fmt, "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render(ENROLLMENT, fmt)


def test_diagram_prints_mermaid_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", TARGET]) == 0
    assert capsys.readouterr().out == render(ENROLLMENT, "mermaid")


def test_diagram_highlights_a_trace_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = walk_trace(ENROLLMENT)
    path = tmp_path / "trace.json"
    path.write_text(trace.dumps(), encoding="utf-8")
    assert main(["diagram", TARGET, "--format", "dot", "--highlight", str(path)]) == 0
    expected = render(ENROLLMENT, "dot", highlight=highlight_trace(ENROLLMENT, trace))
    assert capsys.readouterr().out == expected
    assert expected != render(ENROLLMENT, "dot")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "trace.json: no such file; check the path"),
        ("{not json", "is not JSON"),
        ('{"format": "other/1"}', "not a statekernel trace"),
        (Trace(spec="someone-else", steps=[]).dumps(), "not 'enrollment-sample'"),
    ],
)
def test_a_bad_trace_file_exits_2(
    content: str | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "trace.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["diagram", TARGET, "--highlight", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_diagram_rejects_an_unknown_format_and_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", TARGET, "--format", "svg"]) == 2
    assert main(["diagram", "tests.diagrams.diagram_specimens:NOPE"]) == 2
    assert "NOPE" in capsys.readouterr().err


def test_docs_writes_a_page_per_spec_and_an_index(tmp_path: Path) -> None:
    from .diagram_specimens import AWKWARD

    out = tmp_path / "specs"
    assert main(["docs", TARGET, OTHER, "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["index.md", page_filename(ENROLLMENT), page_filename(AWKWARD)]
    )
    assert (out / page_filename(ENROLLMENT)).read_text() == spec_page(ENROLLMENT)
    assert (out / "index.md").read_text() == index_page([ENROLLMENT, AWKWARD])


def test_docs_check_reports_stale_missing_and_extra_pages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "specs"
    assert main(["docs", TARGET, "-o", str(out), "--check"]) == 1
    assert "missing" in capsys.readouterr().err
    assert main(["docs", TARGET, "-o", str(out)]) == 0
    assert main(["docs", TARGET, "-o", str(out), "--check"]) == 0
    page = out / page_filename(ENROLLMENT)
    page.write_text(page.read_text() + "\nhand edit\n")
    assert main(["docs", TARGET, "-o", str(out), "--check"]) == 1
    assert "differs from the spec" in capsys.readouterr().err
    assert main(["docs", TARGET, "-o", str(out)]) == 0
    (out / "gone.md").write_text("# a spec that no longer exists\n")
    assert main(["docs", TARGET, "-o", str(out), "--check"]) == 1
    assert "gone.md: no spec generates it" in capsys.readouterr().err


def test_docs_refuses_two_specs_with_one_page_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["docs", TARGET, TARGET, "-o", str(tmp_path)]) == 2
    assert "rename one" in capsys.readouterr().err
