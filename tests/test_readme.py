"""The README's Python snippets run, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_readme_snippets_run() -> None:
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 2
    namespace: dict[str, object] = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert "SPEC" in namespace and "store" in namespace


def test_readme_starts_with_the_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    assert first_block is not None
    commands = [line for line in first_block.group(1).splitlines() if line.startswith("python3")]
    assert len(commands) == 2
    assert "pip install ." in commands[0] and "--store sqlite" in commands[0]
    assert "pip install -e '.[dev]'" in commands[1] and commands[1].endswith("pytest")
