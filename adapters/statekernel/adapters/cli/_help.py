"""How the command line's help reads: each subcommand opens with a one-line summary (the
same line the command list shows), may add a paragraph, and ends with its exit codes and an
example, laid out as written."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

__all__ = ["BAD_INPUT", "FAILED", "STORE_FAILED", "CommandParser", "HelpFormatter", "epilog"]

BAD_INPUT = "a bad spec, target, argument or path (every problem listed)"
"""What exit code 2 means for most commands."""
FAILED = "an unexpected error (the traceback is printed)"
"""What exit code 3 means for a command without a store."""
STORE_FAILED = "the store failed (busy, unreachable), or an unexpected error"
"""What exit code 3 means for a command with a store."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (they hold lists and examples); argument help
    wrapped to the terminal."""


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: :class:`HelpFormatter` unless told otherwise."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def epilog(exit_codes: Mapping[int, str], *examples: str) -> str:
    """The closing sections of a help text: ``exit codes:`` (one line per code, in order)
    and ``example:`` (or ``examples:``), each command line indented by two spaces."""
    lines = ["exit codes:"]
    lines += [f"  {code}  {meaning}" for code, meaning in sorted(exit_codes.items())]
    lines += ["", "examples:" if len(examples) > 1 else "example:"]
    lines += [f"  {example}" for example in examples]
    return "\n".join(lines)
