"""The command line explains itself: ``--version``, help for a bare ``statekernel``, and for
every subcommand a one-line description, its exit codes and an example that parses."""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shlex
from pathlib import Path

import pytest

from statekernel.adapters.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def _summaries() -> dict[str, str]:
    """The one-line help of each subcommand, as the top-level help lists it."""
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    raise AssertionError("no subcommands")


def _section(help_text: str, title: str) -> list[str]:
    """The indented lines under ``title:`` in a help text."""
    lines = help_text.splitlines()
    start = lines.index(f"{title}:")
    out = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        out.append(line.strip())
    return out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"statekernel {importlib.metadata.version('statekernel')}\n"


def test_version_when_not_installed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == "statekernel (version unknown: not installed)\n"


def test_a_bare_statekernel_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([])
    out, err = capsys.readouterr()
    assert code == 2  # a missing command is a bad argument: a script calling it notices
    assert out == build_parser().format_help()
    assert err == ""
    assert out.startswith("usage: statekernel [-h] [--version] COMMAND ...")
    for name in _subcommands():
        assert re.search(rf"^    {name} ", out, flags=re.MULTILINE), name


def test_the_top_level_help_lists_exit_codes_and_examples() -> None:
    text = build_parser().format_help()
    codes = _section(text, "exit codes")
    assert [line.split()[0] for line in codes] == ["0", "1", "2", "3"]
    assert _section(text, "examples")


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_subcommand_has_a_summary_exit_codes_and_an_example(name: str) -> None:
    sub = _subcommands()[name]
    summary = _summaries()[name]
    assert summary and "\n" not in summary and len(summary) <= 80, summary
    assert summary.endswith(".") and summary[0].isupper(), summary
    description = sub.description or ""
    assert description.split("\n\n")[0] == summary  # the help opens with the same sentence
    text = sub.format_help()
    assert f"\n\n{summary}\n" in text  # shown as written, not re-wrapped
    codes = {line.split()[0]: line for line in _section(text, "exit codes")}
    assert {"0", "2", "3"} <= set(codes) <= {"0", "1", "2", "3"}, codes
    examples = _section(text, "example") if "\nexample:\n" in text else _section(text, "examples")
    assert examples, text
    for example in examples:
        argv = shlex.split(example)
        assert argv[:2] == ["statekernel", name], example
        args = build_parser().parse_args(argv[1:])  # the example is a valid command line
        assert args.command == name


@pytest.mark.parametrize(
    ("name", "codes"),
    [
        ("check", ["0", "1", "2", "3"]),
        ("explore", ["0", "1", "2", "3"]),
        ("verify", ["0", "1", "2", "3"]),
        ("docs", ["0", "1", "2", "3"]),
        ("lint", ["0", "2", "3"]),
        ("history", ["0", "2", "3"]),
    ],
)
def test_exit_codes_listed(name: str, codes: list[str]) -> None:
    text = _subcommands()[name].format_help()
    assert [line.split()[0] for line in _section(text, "exit codes")] == codes


def test_check_help_lists_exit_3_and_the_default_dsn(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--help"]) == 0
    out = capsys.readouterr().out
    assert "  3  the store failed" in out
    assert DEFAULT_PG_DSN in out


def test_the_default_dsn_is_in_the_cli_reference() -> None:
    assert DEFAULT_PG_DSN in (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["", *sorted(_subcommands())])
def test_descriptions_and_epilogs_fit_an_80_column_terminal(name: str) -> None:
    """They are shown as written (not re-wrapped), so they must fit as written."""
    sub = _subcommands()[name] if name else build_parser()
    for text in (sub.description or "", sub.epilog or ""):
        too_long = [line for line in text.splitlines() if len(line) > 79]
        assert not too_long, too_long
