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

Layout: ``engine`` is the breadth-first engine both searches run on (nodes, parent links,
layers, bounds, deadline, progress, paths); ``moves`` the payloads, actors and compiled
moves; ``spec_search`` the search of a spec and its hot loop; ``key_search`` the idempotency
model; ``warnings`` the warnings; ``report`` the report types and their text and JSON.
"""

from __future__ import annotations

import sys
import time

from .._spec import Spec
from .._trace import Trace
from .engine import MAX_DEPTH, MAX_STATES, TIME_BUDGET, Progress
from .key_search import KeySearch
from .moves import ALL_ROLES, EXPLORE_TIMES, GUEST, payload_choices, sample_payloads
from .report import ExploreReport, ExploreViolation, ExploreWarning, Verdict
from .spec_search import SpecSearch
from .warnings import warnings

__all__ = [
    "ALL_ROLES",
    "EXPLORE_TIMES",
    "GUEST",
    "ExploreReport",
    "ExploreViolation",
    "ExploreWarning",
    "Progress",
    "Verdict",
    "explore",
    "sample_payloads",
]


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
    for name, value in ((MAX_DEPTH, max_depth), (MAX_STATES, max_states)):
        if value is not None and (type(value) is not int or value < 1):
            raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    if clients < 1:
        raise ValueError(f"clients must be at least 1, got {clients!r}")
    started = time.perf_counter()
    deadline = None if time_budget is None else started + time_budget
    search = SpecSearch(
        spec,
        max_depth=max_depth,
        max_states=max_states,
        deadline=deadline,
        progress=progress,
        started=started,
    )
    search.run()
    bound, bound_detail = search.bfs.bound, search.bfs.bound_detail

    violations: list[ExploreViolation] = []
    for prop, (node, mid, d) in search.violations.items():
        trace, _ = search.trace(node, mid, prop)
        violations.append(ExploreViolation(prop, d.code, d.message, trace))

    key_states = 0
    key_seconds = 0.0
    if idempotency:
        key_started = time.perf_counter()
        keys = KeySearch(
            search, clients, max_depth=max_depth, max_states=max_states, deadline=deadline
        )
        keys.run()
        key_states = len(keys.nodes)
        key_seconds = time.perf_counter() - key_started
        for prop, (node, extra, message) in keys.violations.items():
            if prop in search.violations:
                continue
            steps = keys.steps_to(node) + extra
            trace = Trace(spec.name, steps, spec_version=spec.version, property=prop)
            code = "idempotency" if prop.startswith("idempotency") else prop.split(":")[0]
            violations.append(ExploreViolation(prop, code, message, trace))
        if bound is None and keys.bfs.bound is not None:
            bound, bound_detail = keys.bfs.bound, keys.bfs.bound_detail
    seconds = time.perf_counter() - started
    violations.sort(key=lambda v: (v.depth, v.property))

    found = warnings(search, complete=bound is None)
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
        warnings=tuple(found),
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
        bounds={MAX_DEPTH: max_depth, MAX_STATES: max_states, TIME_BUDGET: time_budget},
        payloads=payload_choices(spec),
        invariants=tuple(inv.name for inv in spec.invariants),
    )


def _peak_rss() -> int | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on this platform
        return None
    peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak if sys.platform == "darwin" else peak * 1024
