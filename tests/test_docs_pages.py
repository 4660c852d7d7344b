"""The docs pages are code: the tutorial runs, showing the real output of every command and
snippet, and the CLI reference is generated from the parser itself. Regenerate both
``docs/cli.md`` and the tutorial's outputs with::

    python tests/test_docs_pages.py
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TUTORIAL = DOCS / "tutorial.md"
REGENERATE = "python tests/test_docs_pages.py"

FENCE = re.compile(r"```(\w*)\n(.*?)```", flags=re.DOTALL)
FILE_BLOCK = re.compile(r"# ([\w./-]+\.py)")

# What changes from one run to the next: compared as placeholders, shown as they were.
VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?"), "<time>"),
    (re.compile(r"\d[\d,]*(?:\.\d+)? (?:states|steps)/s\b"), "<rate>"),
    (re.compile(r"\d+(?:\.\d+)? ?MiB\b"), "<memory>"),
    (re.compile(r"\d+(?:\.\d+)? ?s\b"), "<seconds>"),
]


def normalize(text: str) -> str:
    """``text`` with timestamps, durations, rates and memory sizes replaced by placeholders."""
    for pattern, placeholder in VOLATILE:
        text = pattern.sub(placeholder, text)
    return text


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    """Run in ``folder`` with it on ``sys.path``; forget the modules imported from it."""
    before, modules = os.getcwd(), set(sys.modules)
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        os.chdir(before)
        sys.path.remove(str(folder))
        for name in set(sys.modules) - modules:
            file = getattr(sys.modules[name], "__file__", None)
            if file is not None and Path(file).parent == folder:
                del sys.modules[name]


def _run_command(command: str, folder: Path) -> str:
    """What ``command`` prints (standard output and error, as a terminal shows them);
    ``statekernel`` runs in this process, ``pytest`` in a child process."""
    from statekernel.adapters.cli import main

    argv = shlex.split(command)
    if argv[0] == "pytest":
        # statekernel importable with or without an install; the folder is not added:
        # pytest finds refund.py next to the test module by itself, as it does for a reader
        path = [str(ROOT / root) for root in ("kernel", "adapters", "specs")]
        env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": os.pathsep.join(path)}
        env.pop("PYTEST_ADDOPTS", None)
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", *argv[1:]],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        code, printed = proc.returncode, proc.stdout + proc.stderr
    else:
        assert argv[0] == "statekernel", f"the tutorial runs only statekernel and pytest: {command}"
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(argv[1:])
        printed = out.getvalue()
    assert code == 0, f"{command!r} exited {code}:\n{printed}"
    return printed if not printed or printed.endswith("\n") else printed + "\n"


def _run_console(block: str, folder: Path) -> str:
    """The console block with each ``$ command`` followed by its real output."""
    commands = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    return "".join(f"$ {c}\n{_run_command(c, folder)}" for c in commands)


def _run_snippet(block: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "docs/tutorial.md", "exec"), {"__name__": "tutorial"})
    return out.getvalue()


def run_page(text: str, folder: Path) -> str:
    """``text`` (a Markdown page) with every output replaced by the real one, running its
    blocks in order in ``folder``: a ``python`` block whose first line is ``# name.py`` is
    saved as that file; any other ``python`` block runs, and what it prints is the ``text``
    block after it (added when missing); a ``console`` block's ``$ statekernel ...`` and
    ``$ pytest ...`` commands run, each followed by what it prints."""
    blocks = list(FENCE.finditer(text))
    out, pos, printed = [], 0, ""
    with _inside(folder):
        for i, m in enumerate(blocks):
            kind, body = m.group(1), m.group(2)
            out.append(text[pos : m.start()])
            pos = m.end()
            if kind == "text":
                assert printed, f"a text block shows output no snippet printed:\n{body}"
                out.append(f"```text\n{printed}```")
                printed = ""
                continue
            assert not printed, f"a snippet prints but the page does not show it:\n{printed}"
            if kind == "console":
                out.append(f"```console\n{_run_console(body, folder)}```")
                continue
            out.append(m.group(0))
            if kind != "python":
                continue
            name = FILE_BLOCK.fullmatch(body.splitlines()[0])
            if name:
                (folder / name.group(1)).write_text(body, encoding="utf-8")
            else:
                printed = _run_snippet(body)
            follows = blocks[i + 1].group(1) if i + 1 < len(blocks) else None
            if printed and follows != "text":
                out.append(f"\n\n```text\n{printed}```")
                printed = ""
    assert not printed, f"a snippet prints but the page does not show it:\n{printed}"
    out.append(text[pos:])
    return "".join(out)


def test_tutorial_shows_the_real_output_of_every_command_and_snippet(tmp_path: Path) -> None:
    text = TUTORIAL.read_text(encoding="utf-8")
    ran = run_page(text, tmp_path)
    if normalize(ran) != normalize(text):
        diff = difflib.unified_diff(
            normalize(text).splitlines(), normalize(ran).splitlines(), "shown", "real", lineterm=""
        )
        pytest.fail(
            f"docs/tutorial.md does not show what its commands print; regenerate it with "
            f"`{REGENERATE}`:\n" + "\n".join(list(diff)[:80])
        )
    assert len(FENCE.findall(text)) >= 10
    for made in ("refunds.db", "refund.dot", "refund-docs/refund.md", "test_refund.py"):
        assert (tmp_path / made).exists(), made


def test_outputs_are_checked_whole_except_what_varies(tmp_path: Path) -> None:
    page = "```python\nprint('a\\nb')\n```\n\n```text\na\n```\n"
    assert run_page(page, tmp_path) == "```python\nprint('a\\nb')\n```\n\n```text\na\nb\n```\n"
    added = run_page("```python\nprint(1)\n```\nprose\n", tmp_path)
    assert added == "```python\nprint(1)\n```\n\n```text\n1\n```\nprose\n"
    shown = "```console\n$ statekernel lint statekernel.specs.order:SPEC\norder v1: ok\n```"
    assert normalize(run_page(shown, tmp_path)) != normalize(shown)
    assert normalize("0.012 s (19,941 states/s), 4.97s, peak memory 32.3 MiB") == normalize(
        "1.5 s (7 states/s), 12s, peak memory 400 MiB"
    )
    assert normalize("v1  2026-12-01T21:12:04.129148+00:00  3 transition(s)") == (
        "v1  <time>  3 transition(s)"
    )
    assert normalize("7 distinct states, 1000 steps") == "7 distinct states, 1000 steps"


def _sections(text: str) -> list[tuple[str, str]]:
    """``(prose, code)`` of each ``##`` section: its text outside and inside code blocks."""
    out = []
    for section in re.split(r"^## ", text, flags=re.M):
        code = "\n".join(body for kind, body in FENCE.findall(section) if kind == "python")
        out.append((FENCE.sub("", section), code))
    return out


def test_tutorial_says_where_every_imported_name_comes_from() -> None:
    text = TUTORIAL.read_text(encoding="utf-8")
    local = {m.removesuffix(".py") for m in FILE_BLOCK.findall(text)}
    for prose, code in _sections(text):
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Import):
                pairs = [(a.name, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                pairs = [(node.module or "", a.name) for a in node.names]
            else:
                continue
            for module, name in pairs:
                where = f"`{module}.py`" if module in local else f"`{module}`"
                assert f"`{name}`" in prose and where in prose, (
                    f"the tutorial imports {name} from {module} without saying so "
                    f"(its section's prose must name `{name}` and {where})"
                )


def test_tutorial_says_fuzz_test_needs_pytest() -> None:
    text = TUTORIAL.read_text(encoding="utf-8")
    (prose, _) = next(s for s in _sections(text) if "fuzz_test" in s[1])
    assert "`fuzz_test`" in prose and "pytest" in prose and "pip install pytest" in prose


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
    with tempfile.TemporaryDirectory() as folder:
        TUTORIAL.write_text(run_page(TUTORIAL.read_text(encoding="utf-8"), Path(folder)))
    print("wrote docs/tutorial.md")
