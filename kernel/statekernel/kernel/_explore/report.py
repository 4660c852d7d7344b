"""What the explorer reports: the verdict, each violated property with its shortest trace,
the warnings, the figures and what the verdict covers, as text and as JSON data."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs

from .._trace import Trace
from .engine import MAX_DEPTH, MAX_STATES, TIME_BUDGET

__all__ = [
    "DEADLOCK",
    "FROM_EXAMPLES",
    "FROM_SAMPLES",
    "GUARD_NEVER_FALSE",
    "GUARD_NEVER_TRUE",
    "NO_PAYLOAD",
    "TRANSITION_NEVER_FIRED",
    "UNREACHABLE_STATE",
    "ExploreReport",
    "ExploreViolation",
    "ExploreWarning",
    "Verdict",
]

Verdict = Literal["proved", "violated", "undetermined"]
"""What an exploration concluded."""

FROM_EXAMPLES: Final = "examples"
"""An event's payloads are its transitions' ``examples``."""

FROM_SAMPLES: Final = "samples"
"""An event's payloads are the samples of its payload type (it has no ``examples``)."""

NO_PAYLOAD: Final = "none"
"""An event has no payload type."""

DEADLOCK: Final = "deadlock"
"""A reachable non-final snapshot where no transition is enabled."""

UNREACHABLE_STATE: Final = "unreachable_state"
"""A state never reached."""

TRANSITION_NEVER_FIRED: Final = "transition_never_fired"
"""A transition that never fired."""

GUARD_NEVER_TRUE: Final = "guard_never_true"
"""A guard never seen true."""

GUARD_NEVER_FALSE: Final = "guard_never_false"
"""A guard never seen false."""


@attrs.frozen
class ExploreViolation:
    """A property the spec breaks, with the shortest trace that shows it.

    ``property`` names it the way :func:`~statekernel.kernel.replay_trace` does
    (``invariant_violated: <invariant>``, ``spec_fault: <where>``, or ``idempotency: ...``);
    ``code`` is the decision's code (``idempotency`` for the planner properties); the last
    step of ``trace`` is the command that breaks it.
    """

    property: str
    code: str
    message: str
    trace: Trace

    @builtins.property
    def depth(self) -> int:
        """How many steps the trace has."""
        return len(self.trace.steps)

    def to_data(self) -> dict[str, Any]:
        """Plain data for JSON: ``trace`` is the list of steps of the shared trace format."""
        return {
            "property": self.property,
            "code": self.code,
            "message": self.message,
            "depth": self.depth,
            "trace": [s.to_data() for s in self.trace.steps],
        }


@attrs.frozen
class ExploreWarning:
    """Something suspicious but not a violation: ``kind`` is ``deadlock``,
    ``unreachable_state``, ``transition_never_fired``, ``guard_never_true`` or
    ``guard_never_false``; ``subject`` names the state, transition or guard; ``witness`` is a
    trace showing it where one exists (the shortest path to the deadlock, or to a state where
    the guard was evaluated with the other outcome)."""

    kind: str
    subject: str
    message: str
    witness: Trace | None = None

    def to_data(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "kind": self.kind,
            "subject": self.subject,
            "message": self.message,
            "witness": None if self.witness is None else [s.to_data() for s in self.witness.steps],
        }


@attrs.frozen
class ExploreReport:
    """What :func:`explore` found.

    ``states`` counts distinct ``(state, context)`` pairs seen, ``depth`` the longest shortest
    path explored, ``fired`` the accepted decisions evaluated (edges), ``bound`` which limit
    stopped the search (``None`` when the whole space was seen). ``peak_rss_bytes`` is the
    process's peak resident memory when the search ended (``None`` where the platform cannot
    tell). With idempotency checking, ``key_states`` counts the states of the client model.

    What the verdict covers: ``bounds`` the limits the search ran under (``max_depth``,
    ``max_states``, ``time_budget``; ``None`` for none), ``payloads`` how each event's payloads
    were chosen, as ``(source, count)`` with source ``examples`` (the transitions'
    ``examples``), ``samples`` (:func:`sample_payloads` of the payload type, for an event with
    no examples) or ``none`` (no payload type; count 0), and ``invariants`` the names of the
    invariants checked on every state seen.
    """

    spec: str
    spec_version: int
    verdict: Verdict
    violations: tuple[ExploreViolation, ...]
    warnings: tuple[ExploreWarning, ...]
    states: int
    depth: int
    fired: int
    seconds: float
    bound: str | None = None
    bound_detail: str = ""
    peak_rss_bytes: int | None = None
    idempotency_clients: int = 0
    key_states: int = 0
    key_seconds: float = 0.0
    bounds: Mapping[str, int | float | None] = attrs.field(factory=dict)
    payloads: Mapping[str, tuple[str, int]] = attrs.field(factory=dict)
    invariants: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True unless a violation was found (an undetermined run is ok but not proved)."""
        return self.verdict != "violated"

    @property
    def states_per_second(self) -> float:
        """Distinct states found per second of the plain search (the idempotency model's
        time, ``key_seconds``, is left out)."""
        spent = self.seconds - self.key_seconds
        return self.states / spent if spent > 0 else float(self.states)

    def to_data(self) -> dict[str, Any]:
        """The JSON report: ``verdict``, ``violations`` (each with ``property`` and
        ``trace``), ``warnings``, ``states``, ``seconds``, what the verdict covers
        (``bounds``, ``payloads`` as ``{event: {"from": source, "count": n}}``,
        ``invariants``) and the other figures."""
        return {
            "spec": self.spec,
            "spec_version": self.spec_version,
            "verdict": self.verdict,
            "violations": [v.to_data() for v in self.violations],
            "warnings": [w.to_data() for w in self.warnings],
            "states": self.states,
            "depth": self.depth,
            "fired": self.fired,
            "seconds": round(self.seconds, 6),
            "states_per_second": round(self.states_per_second, 1),
            "bound": self.bound,
            "bound_detail": self.bound_detail,
            "peak_rss_bytes": self.peak_rss_bytes,
            "idempotency_clients": self.idempotency_clients,
            "key_states": self.key_states,
            "key_seconds": round(self.key_seconds, 6),
            "bounds": dict(self.bounds),
            "payloads": {
                event: {"from": source, "count": count}
                for event, (source, count) in self.payloads.items()
            },
            "invariants": list(self.invariants),
        }

    def coverage(self) -> list[str]:
        """What the verdict covers, as lines: the bounds (and the one hit), how payloads were
        chosen, and the invariants checked."""
        b = self.bounds

        def bound(name: str, value: Any, unit: str = "") -> str:
            if value is None:
                return f"{name} none"
            shown = f"{value:,}" if isinstance(value, int) else f"{value:g}"
            return f"{name} {shown}{unit}"

        hit = f"hit: {self.bound_detail}" if self.bound is not None else "none was hit"
        lines = [
            "  bounds: "
            + ", ".join(
                [
                    bound("max depth", b.get(MAX_DEPTH)),
                    bound("max states", b.get(MAX_STATES)),
                    bound("time budget", b.get(TIME_BUDGET), " s"),
                ]
            )
            + f"; {hit}"
        ]
        groups: dict[str, list[str]] = {FROM_EXAMPLES: [], FROM_SAMPLES: [], NO_PAYLOAD: []}
        for event, (source, count) in self.payloads.items():
            groups[source].append(event if source == NO_PAYLOAD else f"{event} ({count})")
        words = {
            FROM_EXAMPLES: "from examples",
            FROM_SAMPLES: "from samples of the payload type",
            NO_PAYLOAD: "none",
        }
        parts = [f"{words[k]}: {', '.join(v)}" for k, v in groups.items() if v]
        if parts:
            lines.append("  payloads: " + "; ".join(parts))
        n = len(self.invariants)
        lines.append(
            f"  invariants checked on every state seen ({n}): {', '.join(self.invariants)}"
            if n
            else "  invariants: none declared (only spec_fault is checked)"
        )
        return lines

    def headline(self) -> str:
        """One line: the verdict and what it means."""
        name = f"{self.spec} v{self.spec_version}"
        if self.verdict == "proved":
            return f"{name}: PROVED - every reachable state within the bounds was checked"
        if self.verdict == "violated":
            n = len(self.violations)
            return f"{name}: VIOLATED - {n} propert{'y' if n == 1 else 'ies'} broken"
        return (
            f"{name}: UNDETERMINED - {self.bound_detail}; no violation in the "
            f"{self.states} states seen, but this is NOT a proof"
        )

    def format(self) -> str:
        """The human-readable report: headline, figures, each violation with its numbered
        shortest trace (state and changed context fields at each step), then warnings."""
        lines = [self.headline()]
        figures = (
            f"  {self.states} distinct states, depth {self.depth}, {self.fired} transitions "
            f"fired, {self.seconds:.3f} s ({self.states_per_second:,.0f} states/s)"
        )
        if self.peak_rss_bytes is not None:
            figures += f", peak memory {self.peak_rss_bytes / 2**20:.1f} MiB"
        lines.append(figures)
        lines.extend(self.coverage())
        if self.bound is not None and self.verdict == "violated":
            lines.append(f"  search stopped early: {self.bound_detail}")
        if self.idempotency_clients:
            lines.append(
                f"  idempotency: {self.idempotency_clients} client(s), "
                f"{self.key_states} client-model states, {self.key_seconds:.3f} s"
            )
        for i, v in enumerate(self.violations, 1):
            lines.append("")
            lines.append(f"violation {i}: {v.property}")
            lines.append(f"  {v.message}")
            lines.append(f"  shortest trace ({v.depth} step{'s' if v.depth != 1 else ''}):")
            lines.extend("  " + line for line in _numbered(v.trace))
        if self.warnings:
            lines.append("")
            lines.append(f"warnings ({len(self.warnings)}):")
            for w in self.warnings:
                lines.append(f"  {w.kind}: {w.subject}: {w.message}")
                if w.witness is not None and w.witness.steps:
                    lines.extend("      " + line for line in _numbered(w.witness))
        return "\n".join(lines)


def _numbered(trace: Trace) -> list[str]:
    return [f"{i:>3}. {s.describe()}" for i, s in enumerate(trace.steps, 1)]
