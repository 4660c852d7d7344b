"""The docs pages are code: the tutorial runs, and the CLI reference is generated from the
parser itself. Regenerate ``docs/cli.md`` with::

    python tests/test_docs_pages.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"```(python|console)\n(.*?)```", text, flags=re.DOTALL)


def _run_console(block: str) -> None:
    from statekernel.adapters.cli import main

    commands: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands and line.strip() and line.strip() != "...":
            commands[-1][1].append(line.strip())
    for command, expected in commands:
        argv = shlex.split(command)
        assert argv[0] == "statekernel", command
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv[1:])
        assert code == 0, (command, code, err.getvalue())
        for fragment in expected:
            assert fragment in out.getvalue(), (command, fragment, out.getvalue())


def test_tutorial_runs_in_an_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (DOCS / "tutorial.md").read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    ran = 0
    for kind, block in _blocks(text):
        first = block.splitlines()[0]
        if kind == "python" and re.fullmatch(r"# [\w./-]+\.py", first):
            (tmp_path / first[2:]).write_text(block, encoding="utf-8")
        elif kind == "python":
            exec(compile(block, "docs/tutorial.md", "exec"), {"__name__": "tutorial"})
        else:
            _run_console(block)
        ran += 1
    assert ran >= 8
    assert (tmp_path / "refunds.db").exists() and (tmp_path / "refund.dot").exists()
    assert (tmp_path / "refund-docs" / "refund.md").exists()
    sys.modules.pop("refund", None)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    from statekernel.adapters.cli import build_parser

    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def render_cli_reference() -> str:
    """The CLI reference page, from the parser."""
    from statekernel.adapters import cli
    from statekernel.adapters.cli._help import HelpFormatter

    def help_text(parser: argparse.ArgumentParser) -> str:
        parser.formatter_class = lambda prog: HelpFormatter(prog, width=100)
        return parser.format_help().strip()

    out = [
        "# Command-line reference",
        "",
        "<!-- generated from the argument parser by `python tests/test_docs_pages.py`; "
        "do not edit -->",
        "",
        "\n\n".join((cli.__doc__ or "").strip().split("\n\n")[1:2]),
        "",
        "## `statekernel`",
        "",
        "```",
        help_text(cli.build_parser()),
        "```",
        "",
    ]
    for name, sub in sorted(_subcommands().items()):
        out += [f"## `statekernel {name}`", "", "```", help_text(sub), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def test_cli_reference_is_up_to_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    actual = (DOCS / "cli.md").read_text(encoding="utf-8") if (DOCS / "cli.md").exists() else ""
    assert actual == render_cli_reference(), (
        "docs/cli.md is out of date with the CLI; regenerate it with "
        "`python tests/test_docs_pages.py`"
    )


def test_cli_reference_covers_every_command() -> None:
    text = render_cli_reference()
    for name in ("check", "explore", "lint", "show", "diagram", "docs", "history", "verify"):
        assert f"## `statekernel {name}`" in text


if __name__ == "__main__":
    for root in ("kernel", "adapters", "specs"):
        sys.path.insert(0, str(ROOT / root))
    os.environ["COLUMNS"] = "100"
    (DOCS / "cli.md").write_text(render_cli_reference(), encoding="utf-8")
    print("wrote docs/cli.md")
