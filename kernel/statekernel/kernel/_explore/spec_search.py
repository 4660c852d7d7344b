"""The spec search: every reachable ``(state, context)`` of a spec, breadth first.

The hot loop builds no ``Accepted``: each move calls the spec's probe for the rows its actor
and payload pass, which gives the new ``(state, context)``, or ``None`` when the rows turn the
command down at a guard, and records where each guard was first seen true and false and where
each transition first fired. Whenever a probe meets anything else (a fault, a broken
invariant) the loop asks :func:`~statekernel.kernel.decide` for the exact decision, so the
verdict and every reported decision are ``decide``'s own.
"""

from __future__ import annotations

from typing import Any

from .._decision import Irregular, decide
from .._model import Accepted, Decision, Rejected, Snapshot
from .._spec import Spec
from .._trace import VIOLATION_CODES, Trace, violation_property
from .engine import BreadthFirst, Progress
from .moves import changed, compile_moves

__all__ = ["SpecSearch"]


class _Full(Exception):
    """The state bound was reached."""


class SpecSearch:
    """State of one search of a spec (kept on an object so traces can be rebuilt)."""

    def __init__(
        self,
        spec: Spec,
        *,
        max_depth: int | None,
        max_states: int | None,
        deadline: float | None,
        progress: Progress | None,
        started: float,
    ) -> None:
        self.spec = spec
        self.moves, self.by_state = compile_moves(spec)
        self.slots = spec._compiled.guard_slots
        start = spec.start()
        root = (start.state, start.context)
        try:
            hash(root)
        except TypeError:
            raise TypeError(
                f"the context {spec.context.__qualname__} of spec {spec.name!r} is not "
                "hashable; the explorer deduplicates states by value, so use hashable field "
                "types (tuple, frozenset) instead of list, set or dict"
            ) from None
        # A node is its own key: the (state, context) pair.
        self.bfs: BreadthFirst[tuple[str, Any]] = BreadthFirst(
            root,
            root,
            max_depth=max_depth,
            max_states=max_states,
            deadline=deadline,
            progress=progress,
            started=started,
        )
        self.nodes = self.bfs.nodes
        # Per guard slot, where the guard was first seen true and false: slots below
        # len(self.slots) for evaluations in the first row that got to its guards, the same
        # slots plus len(self.slots) for evaluations after an earlier row gave way.
        self.guard_true: list[tuple[int, int] | None] = [None] * (2 * len(self.slots))
        self.guard_false: list[tuple[int, int] | None] = [None] * (2 * len(self.slots))
        self.fired_at: list[int] = [-1] * len(spec.transitions)
        self.violations: dict[str, tuple[int, int, Rejected]] = {}
        self.deadlocks: dict[str, tuple[int, int]] = {}  # state -> (first node, count)
        self.fired = 0

    @property
    def depth(self) -> int:
        """The last layer reached."""
        return self.bfs.depth

    # trace building

    def trace(
        self, node: int, move: int | None = None, prop: str | None = None
    ) -> tuple[Trace, Decision | None]:
        """The trace to ``node`` (then ``move`` from it, decided by ``decide``)."""
        nodes = self.nodes
        parent = self.bfs.parent
        steps = []
        for child, mid in self.bfs.path(node):
            steps.append(
                self.moves[mid].step(
                    state=nodes[child][0],
                    changed=changed(nodes[parent[child]][1], nodes[child][1]),
                )
            )
        decision: Decision | None = None
        if move is not None:
            state, ctx = nodes[node]
            m = self.moves[move]
            decision = decide(self.spec, Snapshot(state, ctx, len(steps)), m.command())
            if isinstance(decision, Accepted):
                new = decision.snapshot
                steps.append(m.step(state=new.state, changed=changed(ctx, new.context)))
            else:
                steps.append(m.step(state=state, code=decision.code))
        t = Trace(self.spec.name, steps, spec_version=self.spec.version, property=prop)
        return t, decision

    # the hot loop

    def run(self) -> None:
        """Search until the space is exhausted or a bound is hit."""
        spec = self.spec
        context_problem = spec.context_problem
        finals = frozenset(spec.final)
        by_state = self.by_state
        bfs = self.bfs
        nodes = bfs.nodes
        parent = bfs.parent
        via = bfs.via
        seen = bfs.seen
        limit = bfs.limit
        gtrue = self.guard_true
        gfalse = self.guard_false
        fired_at = self.fired_at
        deadlocks = self.deadlocks
        fired = 0

        def open_states(first: int, end: int) -> bool:
            return any(nodes[i][0] not in finals for i in range(first, end))

        try:
            for batch in bfs.batches(open_states):
                for node in batch:
                    state, ctx = nodes[node]
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
                                    raise _Full
                                new = key[1]
                                if new is not ctx and context_problem(new) is not None:
                                    raise Irregular  # decide accepts it; stores cannot keep it
                                seen.add(key)
                                nodes.append(key)
                                parent.append(node)
                                via.append(mid)
                        except _Full:
                            raise
                        except Exception:  # only decide may judge it
                            if self._irregular(node, mid):
                                enabled = True
                                fired += 1
                    if not enabled and state not in finals:
                        first = deadlocks.get(state)
                        deadlocks[state] = (node, 1) if first is None else (first[0], first[1] + 1)
        except _Full:
            bfs.stop_full()
        self.fired = fired

    def _irregular(self, node: int, mid: int) -> bool:
        """Let ``decide`` judge a move the hot loop could not: record a violation, or (should
        the kernel accept) follow the edge. True when accepted; raises :class:`_Full` when
        that overflows the state bound."""
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
            if not self.bfs.add(key, key, node, mid):
                raise _Full
            return True
        if d.code in VIOLATION_CODES:
            prop = violation_property(d)
            if prop not in self.violations:
                self.violations[prop] = (node, mid, d)
        return False
