"""``statekernel diagram TARGET --format mermaid|dot|plantuml [-o FILE] [--highlight TRACE]``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from statekernel.kernel import Trace
from statekernel.kernel.diagrams import FORMATS, highlight_trace, render

from ._files import write_file
from ._help import FAILED, epilog
from ._target import TargetError, load_spec

__all__ = ["register", "run_diagram"]


def register(sub: Any) -> None:
    """Add the ``diagram`` subcommand."""
    summary = "Draw a spec as a Mermaid, Graphviz DOT or PlantUML state diagram."
    p = sub.add_parser(
        "diagram",
        help=summary,
        description=f"""{summary}

Edges are labelled 'event [guards] by roles / effects'; edges with the same
event, target and label from several states are drawn once, through a junction;
invariants are listed in a note. --highlight draws a trace (such as a
counterexample saved by 'statekernel explore --save-traces') on top. -o FILE
replaces FILE whole, or leaves it as it was if writing fails.""",
        epilog=epilog(
            {0: "the diagram was written", 2: "a bad spec, target, trace file or path", 3: FAILED},
            "statekernel diagram myapp.flows:SPEC --format dot -o flows.dot",
            "statekernel diagram myapp.flows:SPEC --highlight traces/flows-overdraft.json",
        ),
    )
    p.add_argument("target", metavar="TARGET", help="module.path:ATTR or path/file.py:ATTR")
    p.add_argument("--format", "-f", choices=FORMATS, default="mermaid", help="default: mermaid")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument(
        "--highlight", metavar="TRACE.json", help="a trace file (statekernel-trace/1) to highlight"
    )
    p.set_defaults(run=run_diagram)


def run_diagram(args: argparse.Namespace) -> int:
    """Render the diagram; a bad trace file is a bad input (exit 2)."""
    spec = load_spec(args.target)
    highlight = None
    if args.highlight:
        try:
            trace = Trace.load(args.highlight)
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, json.JSONDecodeError):
                raise TargetError(f"{args.highlight} is not JSON: {exc}") from exc
            raise TargetError(f"{args.highlight}: {exc}") from exc
        highlight = highlight_trace(spec, trace)
    text = render(spec, args.format, highlight=highlight)
    if args.output:
        write_file(args.output, text)
    else:
        sys.stdout.write(text)
    return 0
