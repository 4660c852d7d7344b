"""The Python snippets of docs/diagrams.md and docs/transitions.md run, in page order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ["diagrams.md", "transitions.md"]
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def snippets(page: str) -> list[str]:
    """The fenced ``python`` blocks of a docs page, in order."""
    return FENCE.findall((DOCS / page).read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", PAGES)
def test_page_snippets_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = snippets(page)
    assert len(blocks) >= 2, f"{page} lost its examples"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.removesuffix('.md')}"}
    for i, block in enumerate(blocks, 1):
        code = compile(block, f"{page} snippet {i}", "exec")
        exec(code, namespace)


def test_a_failing_snippet_fails_the_test(tmp_path: Path) -> None:
    broken = tmp_path / "broken.md"
    broken.write_text("```python\nassert 1 == 2\n```\n", encoding="utf-8")
    (block,) = FENCE.findall(broken.read_text())
    with pytest.raises(AssertionError):
        exec(compile(block, "broken", "exec"), {})


@pytest.mark.parametrize("page", PAGES)
def test_cli_options_named_in_the_page_exist(page: str) -> None:
    from statekernel.adapters.cli import build_parser

    text = (DOCS / page).read_text(encoding="utf-8")
    help_text = build_parser().format_help()
    sub = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for command, options in re.findall(r"statekernel (\w+) [^\n`]*?((?: --?[\w-]+[^\n`]*)+)", text):
        assert command in help_text
        known = sub[command].format_help()
        for option in re.findall(r"(?<!\w)(--?[a-z][\w-]*)", options):
            assert option in known, f"{page}: statekernel {command} has no {option}"
