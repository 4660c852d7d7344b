"""The idempotency model: clients sending keyed commands through the pure planner.

What the planner answers a client depends only on the entity's snapshot and that client's own
key record, so the model follows one observed client (:data:`OBSERVED`, its last request and
its record) while the other clients (:data:`OTHERS`, when there are two or more) move the
entity with keyed requests of their own. By symmetry this covers every number of clients from
two up. Every delivery by the observed client is followed by its :data:`DUPLICATE`, and it may
send a :data:`RETRY` of its last request under the same key at any later point. Every key must
take effect at most once (a replay writes nothing) and every duplicate or retry must get an
answer equal to the first.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from .._model import Accepted, Decision, Rejected, Snapshot
from .._plan import KeyRecord, plan
from .._trace import VIOLATION_CODES, TraceStep
from .engine import BreadthFirst
from .moves import ENTITY, changed
from .spec_search import SpecSearch

__all__ = [
    "AT_MOST_ONCE",
    "DUPLICATE",
    "EQUAL_ANSWERS",
    "OBSERVED",
    "OTHERS",
    "RETRY",
    "KeySearch",
]

OBSERVED: Final = "c1"
"""The client whose requests and key record the model follows."""

OTHERS: Final = "c2"
"""The client standing for every other client: it moves the entity between the observed
client's request and its retry."""

DUPLICATE: Final = "duplicate"
"""The request kind of a delivery's duplicate, sent right after it."""

RETRY: Final = "retry"
"""The request kind of a client's retry of its last request, after other moves."""

AT_MOST_ONCE: Final = "idempotency: at most once"
"""The property that a key takes effect at most once."""

EQUAL_ANSWERS: Final = "idempotency: equal answers"
"""The property that every duplicate or retry is answered as the first delivery was."""

_CHECK_EVERY = 64  # expanded model states between two looks at the clock


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
    step: TraceStep | None
    fresh: bool  # made by the observed client's own delivery: its next replay is a duplicate


def _key(n: _KeyNode) -> tuple[Any, ...]:
    p = n.pending
    return (
        n.snapshot.state,
        n.snapshot.context,
        None if p is None else (p.move, _abstract(p.first)),
    )


class KeySearch:
    """Breadth-first search of the idempotency model (see the module documentation).

    States are deduplicated by ``(state, context, pending request, its first answer)``;
    version numbers are left out since, without ``expected_version``, neither ``decide`` nor
    the planner reads them. The moves are those of the spec search it follows.
    """

    def __init__(
        self,
        search: SpecSearch,
        clients: int,
        *,
        max_depth: int | None,
        max_states: int | None,
        deadline: float | None,
    ) -> None:
        self.search = search
        self.spec = search.spec
        self.others = clients >= 2
        root = _KeyNode(self.spec.start(), None, (0, 0), None, False)
        self.bfs: BreadthFirst[_KeyNode] = BreadthFirst(
            root,
            _key(root),
            max_depth=max_depth,
            max_states=max_states,
            deadline=deadline,
            check_every=_CHECK_EVERY,
            where=" in the idempotency model",
        )
        self.nodes = self.bfs.nodes
        self.violations: dict[str, tuple[int, list[TraceStep], str]] = {}

    def steps_to(self, index: int) -> list[TraceStep]:
        """The steps from the start to node ``index``."""
        out = []
        for node, _ in self.bfs.path(index):
            step = self.nodes[node].step
            if step is not None:
                out.append(step)
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
            client=OBSERVED,
            code=None if p.decision.accepted else p.decision.code,
        )
        if p.writes or p.record is not None or p.outbox:
            self._violate(
                AT_MOST_ONCE,
                node,
                step,
                f"the {action} of key {pend.key!r} took effect again",
            )
        if not p.replayed or p.decision != pend.first:
            self._violate(
                EQUAL_ANSWERS,
                node,
                step,
                f"the {action} of key {pend.key!r} was answered differently from its first "
                "delivery",
            )

    def run(self) -> None:
        """Search until the model is exhausted or a bound is hit."""
        for batch in self.bfs.batches():
            for node in batch:
                if not self._expand(node):
                    return

    def _expand(self, node: int) -> bool:
        """Follow every request from ``node``; False when the state bound stopped it."""
        spec = self.spec
        moves = self.search.moves
        n = self.nodes[node]
        if n.pending is not None:
            self._replay_check(node, n.pending, DUPLICATE if n.fresh else RETRY)
        for mid, *_ in self.search.by_state[n.snapshot.state]:
            move = moves[mid]
            key = f"{OBSERVED}-k{n.sent[0] + 1}"
            p = plan(spec, ENTITY, n.snapshot, move.command(), key, None)
            d = p.decision
            if isinstance(d, Rejected) and d.code in VIOLATION_CODES:
                continue  # the spec search reports these
            after = p.snapshot if p.snapshot is not None else n.snapshot
            if p.snapshot is not None and p.snapshot.version != n.snapshot.version + 1:
                self._violate(
                    AT_MOST_ONCE,
                    node,
                    move.step(state=after.state, idempotency_key=key, client=OBSERVED),
                    f"key {key!r} moved the version by {p.snapshot.version - n.snapshot.version}",
                )
            children = []
            code = None if d.accepted else d.code
            diff = changed(n.snapshot.context, after.context)
            if p.key_record is not None:
                step = move.step(
                    state=after.state,
                    idempotency_key=key,
                    client=OBSERVED,
                    code=code,
                    changed=diff,
                )
                pend = _Pending(mid, key, p.key_record, d)
                sent = (n.sent[0] + 1, n.sent[1])
                children.append(_KeyNode(after, pend, sent, step, True))
            if self.others and p.snapshot is not None:
                other = f"{OTHERS}-k{n.sent[1] + 1}"
                step = move.step(
                    state=after.state, idempotency_key=other, client=OTHERS, changed=diff
                )
                sent = (n.sent[0], n.sent[1] + 1)
                children.append(_KeyNode(after, n.pending, sent, step, False))
            for child in children:
                if not self.bfs.add(_key(child), child, node, mid):
                    return False
        return True
