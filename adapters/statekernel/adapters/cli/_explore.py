"""``statekernel explore TARGET``: prove a spec's invariants over its bounded state space.

Exit codes: 0 ``proved``; 1 ``violated`` (each property is printed with its numbered shortest
trace); 0 ``undetermined`` (a bound was hit first) with a loud warning on stderr, or 1 with
``--strict``; 2 a bad spec, target or argument.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, TextIO

from statekernel.kernel import ExploreReport, Spec, explore

from ._files import check_folder, write_folder
from ._help import FAILED, epilog
from ._target import load_spec

__all__ = [
    "add_explore_arguments",
    "exit_code",
    "explore_from_args",
    "register",
    "run_explore",
    "warn_undetermined",
]

DEFAULT_MAX_STATES = 1_000_000
"""The state bound when ``--max-states`` is not given."""


def positive_int(text: str) -> int:
    """An argparse type: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def add_explore_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the explorer's bounds and options (``--max-depth``, ``--max-states``,
    ``--time-budget``/``--seconds``, ``--idempotency``, ``--clients``) to ``parser``, so that
    other subcommands (``check``) accept the same flags."""
    parser.add_argument(
        "--max-depth", type=positive_int, default=None, help="explore paths of at most N steps"
    )
    parser.add_argument(
        "--max-states",
        type=positive_int,
        default=DEFAULT_MAX_STATES,
        help=f"keep at most N distinct states (default {DEFAULT_MAX_STATES:,})",
    )
    parser.add_argument(
        "--time-budget",
        "--seconds",
        dest="time_budget",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="stop exploring after this many seconds (default: no limit)",
    )
    parser.add_argument(
        "--idempotency",
        action="store_true",
        help="also model clients sending keyed commands, their duplicates and retries "
        "through the planner",
    )
    parser.add_argument(
        "--clients",
        type=positive_int,
        default=2,
        help="clients in the idempotency model (default 2)",
    )


def register(sub: Any) -> None:
    """Add the ``explore`` subcommand."""
    summary = "Prove a spec's invariants over every reachable state, or find a counterexample."
    p = sub.add_parser(
        "explore",
        help=summary,
        description=f"""{summary}

Breadth-first over every reachable (state, context) within the bounds, with the
transitions' payload examples. A violated property is printed with its shortest
numbered trace; an undetermined run (a bound was hit first) warns loudly on
stderr.""",
        epilog=epilog(
            {
                0: "proved, or undetermined without --strict",
                1: "violated (each property with its trace), or undetermined with --strict",
                2: "a bad spec, target, argument or --save-traces folder",
                3: FAILED,
            },
            "statekernel explore myapp.flows:SPEC --max-depth 12 --save-traces traces",
        ),
    )
    p.add_argument("target", metavar="TARGET", help="module.path:ATTR or path/file.py:ATTR")
    add_explore_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON report")
    p.add_argument("--strict", action="store_true", help="exit 1 when the verdict is undetermined")
    p.add_argument(
        "--save-traces",
        metavar="DIR",
        default=None,
        help="write each counterexample as a replayable trace JSON file into DIR",
    )
    p.set_defaults(run=run_explore)


class _Progress:
    """A one-line progress display on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False

    def __call__(self, states: int, depth: int, seconds: float) -> None:
        rate = states / seconds if seconds > 0 else 0.0
        self.stream.write(
            f"\rexploring: {states:,} states, depth {depth}, {seconds:.0f} s ({rate:,.0f}/s) "
        )
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def explore_from_args(spec: Spec, args: argparse.Namespace) -> ExploreReport:
    """Run :func:`~statekernel.kernel.explore` with the bounds parsed by
    :func:`add_explore_arguments`, showing progress when stderr is a terminal."""
    progress = _Progress(sys.stderr) if sys.stderr.isatty() else None
    try:
        return explore(
            spec,
            max_depth=args.max_depth,
            max_states=args.max_states,
            time_budget=args.time_budget,
            idempotency=args.idempotency,
            clients=args.clients,
            progress=progress,
        )
    finally:
        if progress is not None:
            progress.clear()


def exit_code(report: ExploreReport, strict: bool = False) -> int:
    """0 proved, 1 violated; undetermined is 0 (or 1 when ``strict``)."""
    if report.verdict == "violated":
        return 1
    if report.verdict == "undetermined" and strict:
        return 1
    return 0


def warn_undetermined(report: ExploreReport, stream: TextIO) -> None:
    """Write the loud warning an undetermined verdict deserves (nothing otherwise)."""
    if report.verdict == "undetermined":
        stream.write(
            f"WARNING: exploration of {report.spec!r} is UNDETERMINED: {report.bound_detail}. "
            "No violation was found in the states seen, but the invariants are NOT proved; "
            "raise the bound (--max-depth, --max-states, --time-budget).\n"
        )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "violation"


def run_explore(args: argparse.Namespace) -> int:
    """Load the spec, explore it, print the report and return the exit code."""
    spec = load_spec(args.target)
    if args.save_traces:
        check_folder(args.save_traces)  # before the run, not after it
    report = explore_from_args(spec, args)
    if args.save_traces:
        write_folder(
            args.save_traces,
            {
                f"{_slug(spec.name)}-{_slug(v.property)}.json": v.trace.dumps() + "\n"
                for v in report.violations
            },
        )
    if args.json:
        print(json.dumps(report.to_data(), indent=2, sort_keys=True))
    else:
        print(report.format())
    warn_undetermined(report, sys.stderr)
    return exit_code(report, args.strict)
