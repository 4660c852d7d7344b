"""``statekernel diagram TARGET --format mermaid|dot|plantuml [-o FILE] [--highlight TRACE]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from statekernel.kernel import Trace
from statekernel.kernel.diagrams import FORMATS, highlight_trace, render

from ._target import TargetError, load_spec

__all__ = ["register", "run_diagram"]


def register(sub: Any) -> None:
    """Add the ``diagram`` subcommand."""
    p = sub.add_parser(
        "diagram",
        help="draw a spec as a Mermaid, Graphviz DOT or PlantUML state diagram",
        description="Draw a spec's state diagram. Edges are labelled "
        "'event [guards] by roles / effects'; edges with the same event, target and label "
        "from several states are drawn once, through a junction; invariants are listed in a "
        "note. --highlight draws a trace (such as a counterexample written by "
        "'statekernel check') on top.",
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
        except OSError as exc:
            raise TargetError(f"cannot read trace {args.highlight}: {exc.strerror}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, json.JSONDecodeError):
                raise TargetError(f"{args.highlight} is not JSON: {exc}") from exc
            raise TargetError(f"{args.highlight}: {exc}") from exc
        highlight = highlight_trace(spec, trace)
    text = render(spec, args.format, highlight=highlight)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
