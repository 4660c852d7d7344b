"""The explorer: every reachable ``(state, context)`` of a spec within bounds, breadth first.

:func:`explore` is a small explicit-state model checker in the manner of TLC. From the spec's
start snapshot it fires every transition with every payload of its ``examples`` (or, when a
transition has a payload type and no examples, the small deterministic sample of
:func:`sample_payloads`), sent by one actor per declared role plus one actor holding no role
(``guest``). An event with a row whose guard or update reads the command (``(ctx, payload,
command)``) is sent by all of them and by one actor holding every role (:data:`ALL_ROLES`, the
one person a four-eyes rule is about), each at every time of :data:`EXPLORE_TIMES`; other
commands carry no time. States are deduplicated by value, ``(state, context)``; the version
number is not part of a state. Parent links are kept, so because the search is breadth first
the trace printed for each violated property is a shortest one.

Verdicts:

- ``proved``: the whole bounded space was seen and no decision was ``invariant_violated`` or
  ``spec_fault`` (the spec's guards never let through what its invariants forbid);
- ``violated``: at least one such decision, each reported with its shortest trace;
- ``undetermined``: a bound (``max_depth``, ``max_states``, ``time_budget``) was hit before
  the whole space was seen and no violation was found in the part that was. This is *not* a
  pass, and the report says so.

Warnings, each with a witness trace where one exists: deadlocks (a reachable non-final
snapshot where nothing is enabled), states never reached (the spec validates statically
reachable states, so these are unreachable given the guards and contexts), transitions that
never fire, and guards that are never true or never false.

With ``idempotency=True`` the explorer also model checks the planner: ``clients`` clients
send commands under fresh idempotency keys; every delivery is followed by its duplicate, and
a client may retry its last request under the same key at any later point, after the others
have moved the entity on. Every key must take effect at most once (a replay writes nothing)
and every duplicate or retry must get an answer equal to the first.

The hot loop builds no ``Accepted``: each move calls the spec's probe for the rows its actor
and payload pass, generated from the same template and rows as the deciding functions (see
the private decision package), which gives the new ``(state, context)``, or ``None`` when the
rows turn the command down at a guard. Whenever a probe meets anything else (a fault, a broken
invariant) the loop asks :func:`~statekernel.kernel.decide` for the exact decision, so the
verdict and every reported decision are :func:`~statekernel.kernel.decide`'s own.
"""

from __future__ import annotations

import builtins
import sys
import time
from array import array
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import attrs

from ._decision import Irregular, Probe, Row, decide
from ._decision.reference import admits, structure
from ._fuzz import BASE_TIME
from ._model import Accepted, Actor, Command, Decision, Rejected, Snapshot
from ._plan import KeyRecord, plan
from ._serial import plain
from ._spec import Spec
from ._trace import VIOLATION_CODES, Trace, TraceStep, violation_property
from ._types import sample_payloads

__all__ = [
    "ALL_ROLES",
    "EXPLORE_TIMES",
    "GUEST",
    "ExploreReport",
    "ExploreViolation",
    "ExploreWarning",
    "Verdict",
    "explore",
    "sample_payloads",
]

Verdict = Literal["proved", "violated", "undetermined"]
"""What an exploration concluded."""

GUEST: Final = Actor("guest")
"""The actor holding no role that the explorer sends besides one actor per declared role."""

ALL_ROLES: Final = "all-roles"
"""The id of the actor holding every declared role, who also sends the events whose guards or
updates read the command: the one person who can break a four-eyes rule."""

EXPLORE_TIMES: Final = tuple(
    BASE_TIME + d
    for d in (
        timedelta(0),
        timedelta(minutes=1),
        timedelta(hours=1),
        timedelta(days=1),
        timedelta(days=30),
        timedelta(days=366),
    )
)
"""The times ``at`` of the commands the explorer sends for events whose guards or updates read
the command (other commands carry no time): the fuzzer's start, then a minute, an hour, a day,
a month and a year later, in no particular order along a trace, so that deadlines of those
sizes are met and missed."""

ENTITY: Final = "e1"
"""The entity id every explored trace acts on."""

_CHECK_EVERY = 512  # expanded states between two looks at the clock
_PROGRESS_EVERY = 1.0  # seconds between two progress calls

Progress = Callable[[int, int, float], None]
"""A progress callback: ``(states seen, current depth, seconds so far)``."""


# --- report ------------------------------------------------------------------------------


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
                    bound("max depth", b.get("max_depth")),
                    bound("max states", b.get("max_states")),
                    bound("time budget", b.get("time_budget"), " s"),
                ]
            )
            + f"; {hit}"
        ]
        groups: dict[str, list[str]] = {"examples": [], "samples": [], "none": []}
        for event, (source, count) in self.payloads.items():
            groups[source].append(event if source == "none" else f"{event} ({count})")
        words = {
            "examples": "from examples",
            "samples": "from samples of the payload type",
            "none": "none",
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


# --- moves -------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class _Move:
    """One command the explorer sends from some state: event, wire payload, actor and time."""

    event: str
    payload: Any
    actor: Actor
    at: datetime | None = None

    def command(self) -> Command:
        return Command(self.event, self.payload, actor=self.actor, at=self.at)

    def step(self, **fields: Any) -> TraceStep:
        return TraceStep(
            event=self.event, payload=self.payload, actor=self.actor, at=self.at, **fields
        )


# A move in hot-loop form: (move id, probe, structured payload, command). The probe decides
# the move's rows from a context (see Probe in the decision package).
_Hot = tuple[int, Probe, Any, Command]


def _freeze(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return ("unhashable", repr(plain(value)))
    return (type(value), value)


def _wire_payloads(rows: tuple[Row, ...]) -> list[Any]:
    ptype = rows[0].transition.payload
    if ptype is None:
        return [None]
    out: list[Any] = []
    seen: set[Any] = set()
    for r in rows:
        for ex in r.transition.examples:
            k = _freeze(plain(ex))
            if k not in seen:
                seen.add(k)
                out.append(ex)
    if not out:
        out = list(sample_payloads(ptype))
    return out


def payload_choices(spec: Spec) -> dict[str, tuple[str, int]]:
    """How the explorer chooses each event's payloads: ``(source, count)`` per event, in
    event order, as :attr:`ExploreReport.payloads` describes. An event whose rows choose
    differently in different states is listed once per state, as ``event (from state)``."""
    per_event: dict[str, dict[str, tuple[str, int]]] = {}
    for (state, event), rows in spec._compiled.rows.items():
        if rows[0].transition.payload is None:
            choice = ("none", 0)
        else:
            source = "examples" if any(r.transition.examples for r in rows) else "samples"
            choice = (source, len(_wire_payloads(rows)))
        per_event.setdefault(event, {})[state] = choice
    out: dict[str, tuple[str, int]] = {}
    for event in sorted(per_event):
        choices = per_event[event]
        if len(set(choices.values())) == 1:
            out[event] = next(iter(choices.values()))
        else:
            for state in sorted(choices):
                out[f"{event} (from {state})"] = choices[state]
    return out


def _compile_moves(spec: Spec) -> tuple[list[_Move], dict[str, list[_Hot]]]:
    """Every distinct move per state, in hot-loop form.

    Moves that every row rejects statically (roles or payload) change nothing and are never
    violations, so they are left out; moves that behave identically (the same rows with equal
    payloads) are kept once.
    """
    moves: list[_Move] = []
    by_state: dict[str, list[_Hot]] = {}
    for state in spec.states:
        state_moves: list[_Hot] = []
        seen: set[Any] = set()
        for event, raw, fitting, payload, senders in _sends(spec, state):
            frozen = _freeze(payload)
            for actor, times in senders:
                rows = _passing(fitting, actor)
                if not rows:
                    continue
                reading = any(r.reads_command for r in rows)
                for at in times:
                    # what the rows read decides which moves behave alike
                    who = (actor.id, actor.roles, at) if reading else None
                    signature = (event, tuple(r.index for r in rows), frozen, who)
                    if signature in seen:
                        continue
                    seen.add(signature)
                    moves.append(_Move(event, raw, actor, at))
                    probe = spec._compiled.probe(state, event, rows)
                    state_moves.append((len(moves) - 1, probe, payload, moves[-1].command()))
        by_state[state] = state_moves
    return moves, by_state


_Senders = list[tuple[Actor, tuple[datetime | None, ...]]]


def _sends(spec: Spec, state: str) -> list[tuple[str, Any, tuple[Row, ...], Any, _Senders]]:
    """What the explorer sends from ``state``: per event and payload of
    :func:`_wire_payloads`, the rows of the event that the payload fits (by the reference
    loop's rule, :func:`structure`; the rows share their payload type), the payload
    structured, and who sends it when: the guest and one actor per role of the event's rows,
    with no time; for an event whose rows read the command, the guest, one actor per declared
    role and the actor holding every role, each at every time of :data:`EXPLORE_TIMES`."""
    roles = sorted({r for t in spec.transitions for r in t.roles})
    role_actors = {r: Actor(r, roles=[r]) for r in roles}
    everyone = [GUEST, *role_actors.values(), Actor(ALL_ROLES, roles=roles)]
    out = []
    for event in spec.allowed_events(state):
        rows = spec._compiled.rows[(state, event)]
        if any(r.reads_command for r in rows):
            senders: _Senders = [(actor, EXPLORE_TIMES) for actor in everyone]
        else:
            event_roles = sorted({role for r in rows for role in r.roles})
            senders = [(a, (None,)) for a in [GUEST, *(role_actors[r] for r in event_roles)]]
        for raw in _wire_payloads(rows):
            fitting = []
            payload = None
            for row in rows:
                structured, rejection = structure(row, event, raw)
                if rejection is None:
                    fitting.append(row)
                    payload = structured
            out.append((event, raw, tuple(fitting), payload, senders))
    return out


def _passing(rows: tuple[Row, ...], actor: Actor) -> tuple[Row, ...]:
    """The ``rows`` whose roles let ``actor`` fire them (the reference loop's rule)."""
    return tuple(r for r in rows if admits(r, actor))


# --- the search --------------------------------------------------------------------------


def _peak_rss() -> int | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on this platform
        return None
    peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak if sys.platform == "darwin" else peak * 1024


def _changed(old: Any, new: Any) -> dict[str, Any]:
    if old is new:
        return {}
    if attrs.has(type(old)) and type(old) is type(new):
        out = {}
        for a in attrs.fields(type(old)):
            v = getattr(new, a.name)
            if getattr(old, a.name) != v:
                out[a.name] = plain(v)
        return out
    return {} if old == new else {"context": plain(new)}


class _Search:
    """State of one breadth-first search (kept on an object so traces can be rebuilt)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.moves, self.by_state = _compile_moves(spec)
        self.slots = spec._compiled.guard_slots
        start = spec.start()
        self.nodes: list[tuple[str, Any]] = [(start.state, start.context)]
        self.parent = array("q", [-1])
        self.via = array("q", [-1])
        # Per guard slot, where the guard was first seen true and false: slots below
        # len(self.slots) for evaluations in the first row that got to its guards, the same
        # slots plus len(self.slots) for evaluations after an earlier row gave way.
        self.guard_true: list[tuple[int, int] | None] = [None] * (2 * len(self.slots))
        self.guard_false: list[tuple[int, int] | None] = [None] * (2 * len(self.slots))
        self.fired_at: list[int] = [-1] * len(spec.transitions)
        self.violations: dict[str, tuple[int, int, Rejected]] = {}
        self.deadlocks: dict[str, tuple[int, int]] = {}  # state -> (first node, count)
        self.fired = 0
        self.depth = 0
        self.bound: str | None = None
        self.bound_detail = ""

    # trace building

    def path(self, node: int) -> list[tuple[int, int]]:
        """``(node, move)`` pairs from the start to ``node``."""
        out = []
        while node > 0:
            out.append((node, self.via[node]))
            node = self.parent[node]
        out.reverse()
        return out

    def trace(
        self, node: int, move: int | None = None, prop: str | None = None
    ) -> tuple[Trace, Decision | None]:
        """The trace to ``node`` (then ``move`` from it, decided by ``decide``)."""
        steps = []
        for child, mid in self.path(node):
            p = self.parent[child]
            steps.append(
                self.moves[mid].step(
                    state=self.nodes[child][0],
                    changed=_changed(self.nodes[p][1], self.nodes[child][1]),
                )
            )
        decision: Decision | None = None
        if move is not None:
            state, ctx = self.nodes[node]
            m = self.moves[move]
            decision = decide(self.spec, Snapshot(state, ctx, len(steps)), m.command())
            if isinstance(decision, Accepted):
                new = decision.snapshot
                steps.append(m.step(state=new.state, changed=_changed(ctx, new.context)))
            else:
                steps.append(m.step(state=state, code=decision.code))
        t = Trace(self.spec.name, steps, spec_version=self.spec.version, property=prop)
        return t, decision

    # the hot loop

    def run(
        self,
        max_depth: int | None,
        max_states: int | None,
        deadline: float | None,
        progress: Progress | None,
        started: float,
    ) -> None:
        spec = self.spec
        ctx_type = spec.context
        context_problem = spec.context_problem
        finals = frozenset(spec.final)
        by_state = self.by_state
        nodes = self.nodes
        parent = self.parent
        via = self.via
        gtrue = self.guard_true
        gfalse = self.guard_false
        fired_at = self.fired_at
        limit = max_states if max_states is not None else -1
        head = 0
        layer_end = 1
        depth = 0
        fired = 0
        next_report = started + _PROGRESS_EVERY
        try:
            hash(nodes[0])
        except TypeError:
            raise TypeError(
                f"the context {ctx_type.__qualname__} of spec {spec.name!r} is not hashable; "
                "the explorer deduplicates states by value, so use hashable field types "
                "(tuple, frozenset) instead of list, set or dict"
            ) from None
        seen: set[tuple[str, Any]] = {nodes[0]}
        while head < len(nodes):
            if head == layer_end:
                depth += 1
                layer_end = len(nodes)
                if max_depth is not None and depth >= max_depth:
                    if any(nodes[i][0] not in finals for i in range(head, len(nodes))):
                        self.bound = "max_depth"
                        self.bound_detail = f"the depth bound {max_depth} was reached"
                    break
            if head % _CHECK_EVERY == 0 and (deadline is not None or progress is not None):
                now = time.perf_counter()
                if deadline is not None and now >= deadline:
                    self.bound = "time_budget"
                    self.bound_detail = f"the time budget ran out at depth {depth}"
                    break
                if progress is not None and now >= next_report:
                    progress(len(nodes), depth, now - started)
                    next_report = now + _PROGRESS_EVERY
            node = head
            state, ctx = nodes[head]
            head += 1
            enabled = False
            for mid, probe, p, command in by_state[state]:
                try:
                    key = probe(ctx, p, command, node, mid, gtrue, gfalse, fired_at)
                    if key is None:
                        continue
                    enabled = True
                    fired += 1
                    if key not in seen:
                        if len(nodes) == limit:
                            raise _Bound
                        new = key[1]
                        if new is not ctx and context_problem(new) is not None:
                            raise Irregular  # decide accepts it; the stores cannot keep it
                        seen.add(key)
                        nodes.append(key)
                        parent.append(node)
                        via.append(mid)
                except _Bound:
                    self.bound = "max_states"
                    self.bound_detail = f"the state bound {max_states} was reached"
                    self.depth = depth
                    self.fired = fired
                    return
                except Exception:  # only decide may judge it
                    result = self._irregular(node, mid, seen, limit)
                    if result is None:
                        self.bound = "max_states"
                        self.bound_detail = f"the state bound {max_states} was reached"
                        self.depth = depth
                        self.fired = fired
                        return
                    if result:
                        enabled = True
                        fired += 1
            if not enabled and state not in finals:
                first = self.deadlocks.get(state)
                self.deadlocks[state] = (node, 1) if first is None else (first[0], first[1] + 1)
        self.depth = depth
        self.fired = fired

    def _irregular(
        self, node: int, mid: int, seen: set[tuple[str, Any]], limit: int
    ) -> bool | None:
        """Let ``decide`` judge a move the hot loop could not: record a violation, or (should
        the kernel accept) follow the edge. True when accepted, None when that overflows the
        state bound."""
        state, ctx = self.nodes[node]
        d = decide(self.spec, Snapshot(state, ctx, 0), self.moves[mid].command())
        if isinstance(d, Accepted):
            # Only reached if user code behaves differently on a second call (it should be
            # pure). The decision does not say which candidate fired: credit the first one
            # with the same target.
            for t in self.spec.candidates(state, d.record.event):
                if t.target_from(state) == d.snapshot.state:
                    idx = self.spec.transitions.index(t)
                    if self.fired_at[idx] < 0:
                        self.fired_at[idx] = node
                    break
            key = (d.snapshot.state, d.snapshot.context)
            problem = self.spec.context_problem(d.snapshot.context)
            if problem is None:
                try:
                    hash(key)
                except TypeError as exc:
                    problem = f"it is not hashable ({exc}); use tuple or frozenset fields"
            if problem is not None:
                fault = Rejected(
                    "spec_fault",
                    f"the update of {d.record.event!r} returned a context that cannot be "
                    f"stored: {problem}",
                    {"where": "update", "event": d.record.event},
                )
                self.violations.setdefault(violation_property(fault), (node, mid, fault))
                return False
            if key not in seen:
                if len(self.nodes) == limit:
                    return None
                seen.add(key)
                self.nodes.append(key)
                self.parent.append(node)
                self.via.append(mid)
            return True
        if d.code in VIOLATION_CODES:
            prop = violation_property(d)
            if prop not in self.violations:
                self.violations[prop] = (node, mid, d)
        return False


class _Bound(Exception):
    """The state bound was reached."""


# --- idempotency model -------------------------------------------------------------------


@attrs.frozen(eq=False)
class _Pending:
    """The observed client's last keyed request, as the store remembers it."""

    move: int
    key: str
    record: KeyRecord
    first: Decision


def _abstract(d: Decision) -> tuple[Any, ...]:
    if isinstance(d, Accepted):
        return ("accepted", d.snapshot.state, d.snapshot.context, d.record.event)
    return ("rejected", d.code, d.message)


@attrs.frozen(eq=False)
class _KeyNode:
    snapshot: Snapshot
    pending: _Pending | None
    sent: tuple[int, int]
    parent: int
    step: TraceStep | None
    fresh: bool  # made by the observed client's own delivery: its next replay is a duplicate


class _KeySearch:
    """Breadth-first search of clients sending keyed commands through the pure planner.

    What the planner answers a client depends only on the entity's snapshot and that client's
    own key record, so the model follows one observed client (``c1``, its last request and its
    record) while the other clients (``c2``, when ``clients`` is 2 or more) move the entity
    with keyed requests of their own. By symmetry this covers every number of clients from two
    up. States are deduplicated by ``(state, context, pending request, its first answer)``;
    version numbers are left out since, without ``expected_version``, neither ``decide`` nor the
    planner reads them.
    """

    def __init__(self, search: _Search, clients: int) -> None:
        self.search = search
        self.spec = search.spec
        self.others = clients >= 2
        self.nodes: list[_KeyNode] = []
        self.violations: dict[str, tuple[int, list[TraceStep], str]] = {}
        self.bound: str | None = None
        self.bound_detail = ""

    def steps_to(self, index: int) -> list[TraceStep]:
        """The steps from the start to node ``index``."""
        out = []
        while index >= 0:
            n = self.nodes[index]
            if n.step is not None:
                out.append(n.step)
            index = n.parent
        out.reverse()
        return out

    def _violate(self, prop: str, node: int, step: TraceStep, message: str) -> None:
        if prop not in self.violations:
            self.violations[prop] = (node, [step], message)

    def _replay_check(self, node: int, pend: _Pending, action: str) -> None:
        snap = self.nodes[node].snapshot
        move = self.search.moves[pend.move]
        p = plan(self.spec, ENTITY, snap, move.command(), pend.key, pend.record)
        step = move.step(
            state=snap.state,
            idempotency_key=pend.key,
            action=action,
            client="c1",
            code=None if p.decision.accepted else p.decision.code,
        )
        if p.writes or p.record is not None or p.outbox:
            self._violate(
                "idempotency: at most once",
                node,
                step,
                f"the {action} of key {pend.key!r} took effect again",
            )
        if not p.replayed or p.decision != pend.first:
            self._violate(
                "idempotency: equal answers",
                node,
                step,
                f"the {action} of key {pend.key!r} was answered differently from its first "
                "delivery",
            )

    def run(self, max_depth: int | None, max_states: int | None, deadline: float | None) -> None:
        """Search until the model is exhausted or a bound is hit."""
        spec = self.spec
        self.nodes.append(_KeyNode(spec.start(), None, (0, 0), -1, None, False))
        seen = {self._key(self.nodes[0])}
        head = 0
        layer_end = 1
        depth = 0
        while head < len(self.nodes):
            if head == layer_end:
                depth += 1
                layer_end = len(self.nodes)
                if max_depth is not None and depth >= max_depth:
                    self.bound = "max_depth"
                    self.bound_detail = f"the depth bound {max_depth} was reached"
                    return
            if deadline is not None and head % 64 == 0 and time.perf_counter() >= deadline:
                self.bound = "time_budget"
                self.bound_detail = "the time budget ran out in the idempotency model"
                return
            node = head
            head += 1
            n = self.nodes[node]
            if n.pending is not None:
                self._replay_check(node, n.pending, "duplicate" if n.fresh else "retry")
            for mid, *_ in self.search.by_state[n.snapshot.state]:
                move = self.search.moves[mid]
                key = f"c1-k{n.sent[0] + 1}"
                p = plan(spec, ENTITY, n.snapshot, move.command(), key, None)
                d = p.decision
                if isinstance(d, Rejected) and d.code in VIOLATION_CODES:
                    continue  # the plain search reports these
                after = p.snapshot if p.snapshot is not None else n.snapshot
                if p.snapshot is not None and p.snapshot.version != n.snapshot.version + 1:
                    self._violate(
                        "idempotency: at most once",
                        node,
                        move.step(state=after.state, idempotency_key=key, client="c1"),
                        f"key {key!r} moved the version by "
                        f"{p.snapshot.version - n.snapshot.version}",
                    )
                children = []
                code = None if d.accepted else d.code
                changed = _changed(n.snapshot.context, after.context)
                if p.key_record is not None:
                    step = move.step(
                        state=after.state,
                        idempotency_key=key,
                        client="c1",
                        code=code,
                        changed=changed,
                    )
                    pend = _Pending(mid, key, p.key_record, d)
                    sent = (n.sent[0] + 1, n.sent[1])
                    children.append(_KeyNode(after, pend, sent, node, step, True))
                if self.others and p.snapshot is not None:
                    other = f"c2-k{n.sent[1] + 1}"
                    step = move.step(
                        state=after.state, idempotency_key=other, client="c2", changed=changed
                    )
                    sent = (n.sent[0], n.sent[1] + 1)
                    children.append(_KeyNode(after, n.pending, sent, node, step, False))
                for child in children:
                    k = self._key(child)
                    if k in seen:
                        continue
                    if max_states is not None and len(self.nodes) >= max_states:
                        self.bound = "max_states"
                        self.bound_detail = (
                            f"the state bound {max_states} was reached in the idempotency model"
                        )
                        return
                    seen.add(k)
                    self.nodes.append(child)

    @staticmethod
    def _key(n: _KeyNode) -> tuple[Any, ...]:
        p = n.pending
        return (
            n.snapshot.state,
            n.snapshot.context,
            None if p is None else (p.move, _abstract(p.first)),
        )


# --- entry point -------------------------------------------------------------------------


def explore(
    spec: Spec,
    *,
    max_depth: int | None = None,
    max_states: int | None = 1_000_000,
    time_budget: float | None = None,
    idempotency: bool = False,
    clients: int = 2,
    progress: Progress | None = None,
) -> ExploreReport:
    """Explore every reachable ``(state, context)`` of ``spec`` within the bounds, breadth
    first, and report the verdict, each violated property with a shortest trace, and the
    warnings (see the module documentation).

    ``max_depth`` bounds the number of steps from the start (a non-final state left at that
    depth makes the verdict undetermined); ``max_states`` bounds the distinct states kept;
    ``time_budget`` (seconds) bounds the wall-clock time, both searches together.
    ``idempotency`` adds the planner model: with ``clients=1`` one client's own requests are
    the only traffic; from 2 up, other clients also move the entity between a request and its
    retry (more than two add nothing new, see the module documentation). ``progress`` is
    called about once a second with ``(states, depth, seconds)``.
    """
    for name, value in (("max_depth", max_depth), ("max_states", max_states)):
        if value is not None and (type(value) is not int or value < 1):
            raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    if clients < 1:
        raise ValueError(f"clients must be at least 1, got {clients!r}")
    started = time.perf_counter()
    deadline = None if time_budget is None else started + time_budget
    search = _Search(spec)
    search.run(max_depth, max_states, deadline, progress, started)
    bound, bound_detail = search.bound, search.bound_detail

    violations: list[ExploreViolation] = []
    for prop, (node, mid, d) in search.violations.items():
        trace, _ = search.trace(node, mid, prop)
        violations.append(ExploreViolation(prop, d.code, d.message, trace))

    key_states = 0
    key_seconds = 0.0
    if idempotency:
        key_started = time.perf_counter()
        keys = _KeySearch(search, clients)
        keys.run(max_depth, max_states, deadline)
        key_states = len(keys.nodes)
        key_seconds = time.perf_counter() - key_started
        for prop, (node, extra, message) in keys.violations.items():
            if prop in search.violations:
                continue
            steps = keys.steps_to(node) + extra
            trace = Trace(spec.name, steps, spec_version=spec.version, property=prop)
            code = "idempotency" if prop.startswith("idempotency") else prop.split(":")[0]
            violations.append(ExploreViolation(prop, code, message, trace))
        if bound is None and keys.bound is not None:
            bound, bound_detail = keys.bound, keys.bound_detail
    seconds = time.perf_counter() - started
    violations.sort(key=lambda v: (v.depth, v.property))

    warnings = _warnings(search, complete=bound is None)
    if violations:
        verdict: Verdict = "violated"
    elif bound is not None:
        verdict = "undetermined"
    else:
        verdict = "proved"
    return ExploreReport(
        spec=spec.name,
        spec_version=spec.version,
        verdict=verdict,
        violations=tuple(violations),
        warnings=tuple(warnings),
        states=len(search.nodes),
        depth=search.depth,
        fired=search.fired,
        seconds=seconds,
        bound=bound,
        bound_detail=bound_detail,
        peak_rss_bytes=_peak_rss(),
        idempotency_clients=clients if idempotency else 0,
        key_states=key_states,
        key_seconds=key_seconds,
        bounds={"max_depth": max_depth, "max_states": max_states, "time_budget": time_budget},
        payloads=payload_choices(spec),
        invariants=tuple(inv.name for inv in spec.invariants),
    )


def _warnings(search: _Search, complete: bool) -> list[ExploreWarning]:
    spec = search.spec
    out: list[ExploreWarning] = []
    scope = "" if complete else " (within the bounds explored)"
    for state, (node, count) in search.deadlocks.items():
        trace, _ = search.trace(node, prop=f"deadlock in {state}")
        others = f"; {count} such snapshots" if count > 1 else ""
        out.append(
            ExploreWarning(
                "deadlock",
                f"state {state!r}",
                f"a reachable non-final snapshot where no transition is enabled{others}",
                trace,
            )
        )
    reached = {spec.initial} | {
        t.target
        for t, at in zip(spec.transitions, search.fired_at, strict=True)
        if at >= 0 and t.target is not None
    }
    for state in spec.states:
        if state not in reached:
            out.append(
                ExploreWarning(
                    "unreachable_state",
                    f"state {state!r}",
                    f"never reached given the guards and contexts{scope}",
                )
            )
    for t, at in zip(spec.transitions, search.fired_at, strict=True):
        if at < 0:
            out.append(ExploreWarning("transition_never_fired", t.label(), f"never fired{scope}"))
    after = len(search.slots)
    for slot, (tidx, gpos) in enumerate(search.slots):
        t = spec.transitions[tidx]
        g = t.guards[gpos]
        subject = f"guard {g.name!r} of {t.label()}"
        first_yes = search.guard_true[slot]
        yes = first_yes or search.guard_true[slot + after]
        no = search.guard_false[slot] or search.guard_false[slot + after]
        if yes is None:
            witness = None if no is None else search.trace(no[0], no[1], f"{g.name} false")[0]
            what = "never true" if no is not None else "never evaluated"
            out.append(ExploreWarning("guard_never_true", subject, what + scope, witness))
        elif no is None:
            witness = search.trace(yes[0], yes[1], f"{g.name} true")[0]
            what = "never false" + scope
            if first_yes is None:  # only ever evaluated once an earlier row had given way
                what += _complementary(spec, tidx)
            out.append(ExploreWarning("guard_never_false", subject, what, witness))
    return out


def _complementary(spec: Spec, tidx: int) -> str:
    """Why a guard that is never false, and only ever evaluated after an earlier row sharing
    its source and event turned the command down at a guard, decides nothing, and what to do."""
    t = spec.transitions[tidx]
    earlier: list[str] = []
    for source in t.source:
        for other in spec.candidates(source, t.event):
            if other is t:
                break
            if other.guards and other.label() not in earlier:
                earlier.append(other.label())
    rows = " or ".join(earlier) if earlier else "an earlier row"
    fix = (
        f"with no guard left the row is the fallback of {t.event!r}, which must be tried last"
        if len(t.guards) == 1
        else "the row's other guards still apply"
    )
    return (
        f": it is only evaluated once the earlier row {rows} has turned the command down at a "
        "guard, and then it always holds. The earlier row already takes the other case, so "
        f"this guard decides nothing: drop it ({fix}), or fix it if it was meant to turn "
        "something down"
    )
