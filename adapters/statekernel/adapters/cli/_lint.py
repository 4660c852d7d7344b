"""``statekernel lint TARGET`` and ``statekernel show TARGET``."""

from __future__ import annotations

import argparse
from typing import Any

from statekernel.kernel import Spec

from ._help import BAD_INPUT, FAILED, epilog
from ._target import load_spec

__all__ = ["register", "render_table"]


def register(sub: Any) -> None:
    """Add the ``lint`` and ``show`` subcommands."""
    summary = "Validate a spec and list every problem it has."
    lint = sub.add_parser(
        "lint",
        help=summary,
        description=f"""{summary}

Building a spec validates it: unknown or unreachable states, rows sharing
(state, event) that no guard separates, non-final states with no way out, a bad
initial state. Every problem is listed at once.""",
        epilog=epilog(
            {
                0: "the spec is valid",
                2: "the spec has problems (every one listed), or a bad target or path",
                3: FAILED,
            },
            "statekernel lint path/to/flows.py:SPEC",
        ),
    )
    lint.add_argument("target", metavar="TARGET", help="module.path:ATTR or path/file.py:ATTR")
    lint.set_defaults(run=run_lint)
    summary = "Print a spec's states, transitions and invariants as tables."
    show = sub.add_parser(
        "show",
        help=summary,
        description=summary,
        epilog=epilog(
            {0: "the tables were printed", 2: BAD_INPUT, 3: FAILED},
            "statekernel show myapp.flows:SPEC",
        ),
    )
    show.add_argument("target", metavar="TARGET", help="module.path:ATTR or path/file.py:ATTR")
    show.set_defaults(run=run_show)


def run_lint(args: argparse.Namespace) -> int:
    """Load the spec (building it validates it); SpecError is reported by ``main``."""
    spec = load_spec(args.target)
    print(
        f"{spec.name} v{spec.version}: ok ({len(spec.states)} states, "
        f"{len(spec.transitions)} transitions, {len(spec.invariants)} invariants)"
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print the spec's tables."""
    print(render_table(load_spec(args.target)))
    return 0


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    return out


def render_table(spec: Spec) -> str:
    """The spec as readable text: header, states table, transitions table (with the effects
    each transition emits), invariants."""
    lines = [f"{spec.name} v{spec.version}  (context: {spec.context.__qualname__})"]
    if spec.description:
        lines.append(spec.description)
    lines.append("")
    state_rows = []
    for s in spec.states:
        kind = "initial" if s == spec.initial else ("final" if s in spec.final else "")
        state_rows.append([s, kind, ", ".join(spec.allowed_events(s)) or "-"])
    lines.extend(_table(["STATE", "KIND", "EVENTS"], state_rows))
    lines.append("")
    rows = []
    for t in spec.transitions:
        rows.append(
            [
                ", ".join(t.source),
                t.event,
                "(internal)" if t.target is None else t.target,
                ", ".join(g.name for g in t.guards) or "-",
                ", ".join(t.roles) or "anyone",
                t.payload.__qualname__ if t.payload is not None else "-",
                ", ".join(e.name for e in t.effects) or "-",
            ]
        )
    lines.extend(_table(["FROM", "EVENT", "TO", "GUARDS", "ROLES", "PAYLOAD", "EFFECTS"], rows))
    if spec.invariants:
        lines.append("")
        lines.append("INVARIANTS")
        for inv in spec.invariants:
            lines.append(f"  {inv.name}: {inv.description or '(no description)'}")
    return "\n".join(lines)
