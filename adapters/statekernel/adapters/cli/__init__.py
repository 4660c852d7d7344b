"""The ``statekernel`` command line.

Exit codes: 0 nothing wrong, 1 a violation (or a mismatch) was found, 2 a bad spec, target,
argument or path (every problem listed; a file or folder that cannot be read or written, a
database of another spec or not a database at all), 3 the command could not do its work (a
store that is busy, unreachable or read-only, or an unexpected error; the traceback is
printed).

Each subcommand lives in its own private module with a ``register(subparsers)`` function;
:func:`main` wires them together and is the one place where errors become messages and exit
codes (an ``OSError`` about a path becomes one ``error:`` line, exit 2).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
import traceback
from collections.abc import Callable, Sequence

from statekernel.adapters.errors import SchemaMismatch, StoreCorrupt, StoreError
from statekernel.kernel import SpecError, StatekernelError

from ._files import describe_os_error
from ._help import CommandParser, HelpFormatter, epilog
from ._target import TargetError, load_spec

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_VIOLATION",
    "TargetError",
    "load_spec",
    "main",
]

EXIT_OK = 0
"""Nothing wrong."""
EXIT_VIOLATION = 1
"""A violation, a mismatch or a failed check."""
EXIT_BAD_INPUT = 2
"""A bad spec, target or argument."""
EXIT_FAILED = 3
"""The command could not do its work: the store failed, or an unexpected error."""

# Each name is a private module ``_<name>`` in this package defining ``register(subparsers)``.
_COMMAND_MODULES = ("lint", "diagram", "docs", "explore", "check", "store")

Runner = Callable[[argparse.Namespace], int]


def _version() -> str:
    try:
        return importlib.metadata.version("statekernel")
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown: not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="statekernel",
        description="A formally specified state-machine kernel: lint, explore, fuzz, draw\n"
        "and inspect workflow specs. Run 'statekernel COMMAND --help' for a\n"
        "command's options, exit codes and an example.",
        formatter_class=HelpFormatter,
        epilog=epilog(
            {
                EXIT_OK: "nothing wrong",
                EXIT_VIOLATION: "a violation or a mismatch was found",
                EXIT_BAD_INPUT: "a bad spec, target, argument or path (every problem listed)",
                EXIT_FAILED: "the store failed, or an unexpected error (traceback printed)",
            },
            "statekernel lint path/to/flows.py:SPEC",
            "statekernel check myapp.flows:SPEC --store sqlite",
            "statekernel diagram myapp.flows:SPEC --format dot -o flows.dot",
        ),
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {_version()}",
        help="print the installed version and exit",
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=CommandParser
    )
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}._{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):
        sys.stdout.write(parser.format_help())
        return EXIT_BAD_INPUT
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad arguments, 0 on --help
        return int(exc.code or 0)
    run: Runner = args.run
    try:
        return run(args)
    except SpecError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except TargetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (SchemaMismatch, StoreCorrupt) as exc:  # another spec's database, or none: bad input
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StoreError as exc:
        print(f"error: the store failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except StatekernelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:  # a path that cannot be read or written: the user's to fix
        message = describe_os_error(exc)
        if message is None:
            return _unexpected()
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception:
        return _unexpected()


def _unexpected() -> int:
    """Print the traceback of the exception being handled; exit code 3."""
    traceback.print_exc()
    print("error: unexpected failure (the traceback is above)", file=sys.stderr)
    return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
