"""Benchmark: ``decide`` against ``transitions.Machine`` firing the same workflow.

The enrollment cycle attach -> submit -> approve -> archive runs through

- ``decide`` on a statekernel spec (a payload structured strictly from a dict, a guard, a
  role check, two updates and an invariant checked after every event),
- a ``transitions.Machine`` firing the same cycle, conditions as plain callables, updates as
  ``after`` callbacks and the invariant as an ``after_state_change`` callback (the work a
  hand-written machine must do to promise the same),
- a bare dict lookup ``(state, event) -> target``, the floor no state machine can beat,

each for at least 200k events, five rounds, in one process. Medians are printed; the last line
is the ratio of events per second, decide over transitions. Run it with::

    python tests/benchmarks/bench_kernel.py [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import attrs
from transitions import Machine

from statekernel.kernel import Actor, Command, Snapshot, Spec, Transition, decide, guard, invariant


@attrs.frozen
class Application:
    documents: int = 0
    approved_by: str | None = None


@attrs.frozen
class Attach:
    count: int


@attrs.frozen
class Approve:
    reviewer: str


@guard
def has_documents(ctx: Application, payload: object) -> bool:
    """At least one document is attached."""
    return ctx.documents > 0


@invariant
def approved_names_reviewer(state: str, ctx: Application) -> bool:
    """An approved application names who approved it."""
    return state != "approved" or ctx.approved_by is not None


SPEC = Spec(
    name="enrollment-bench",
    version=1,
    context=Application,
    initial="draft",
    states=["draft", "submitted", "approved", "rejected", "archived"],
    final=["archived"],
    transitions=[
        Transition(
            "attach",
            "draft",
            "draft",
            payload=Attach,
            update=lambda ctx, p: Application(ctx.documents + p.count, ctx.approved_by),
        ),
        Transition("submit", "draft", "submitted", guards=[has_documents]),
        Transition(
            "approve",
            "submitted",
            "approved",
            payload=Approve,
            roles=["reviewer"],
            update=lambda ctx, p: Application(ctx.documents, p.reviewer),
        ),
        Transition("reject", "submitted", "rejected"),
        Transition("archive", ["approved", "rejected"], "archived"),
    ],
    invariants=[approved_names_reviewer],
)

REVIEWER = Actor("rita", roles=["reviewer"])
CYCLE = [
    Command("attach", {"count": 1}),
    Command("submit"),
    Command("approve", {"reviewer": "rita"}, actor=REVIEWER),
    Command("archive"),
]


def run_decide(cycles: int) -> int:
    start = SPEC.start()
    for _ in range(cycles):
        snap: Snapshot = start
        for command in CYCLE:
            d = decide(SPEC, snap, command)
            assert d.accepted
            snap = d.snapshot
    return cycles * len(CYCLE)


class Model:
    """The transitions side: a mutable model doing the same work by hand."""

    def __init__(self) -> None:
        self.documents = 0
        self.approved_by: str | None = None

    def has_documents(self, **kw: Any) -> bool:
        return self.documents > 0

    def add_documents(self, count: int = 0, **kw: Any) -> None:
        self.documents += count

    def record_reviewer(self, reviewer: str = "", **kw: Any) -> None:
        self.approved_by = reviewer

    def check_invariant(self, **kw: Any) -> None:
        state: str = self.state  # type: ignore[attr-defined]
        if state == "approved" and self.approved_by is None:
            raise AssertionError("approved without reviewer")


def build_machine() -> tuple[Machine, Model]:
    model = Model()
    machine = Machine(
        model=model,
        states=["draft", "submitted", "approved", "rejected", "archived"],
        initial="draft",
        transitions=[
            {"trigger": "attach", "source": "draft", "dest": "draft", "after": "add_documents"},
            {
                "trigger": "submit",
                "source": "draft",
                "dest": "submitted",
                "conditions": "has_documents",
            },
            {
                "trigger": "approve",
                "source": "submitted",
                "dest": "approved",
                "after": "record_reviewer",
            },
            {"trigger": "reject", "source": "submitted", "dest": "rejected"},
            {"trigger": "archive", "source": ["approved", "rejected"], "dest": "archived"},
        ],
        after_state_change="check_invariant",
        auto_transitions=False,
    )
    return machine, model


def run_transitions(cycles: int) -> int:
    machine, model_ = build_machine()
    model: Any = model_
    for _ in range(cycles):
        machine.set_state("draft", model)
        model.documents = 0
        model.approved_by = None
        assert model.attach(count=1)
        assert model.submit()
        assert model.approve(reviewer="rita")
        assert model.archive()
    return cycles * 4


FLOOR_TABLE = {
    ("draft", "attach"): "draft",
    ("draft", "submit"): "submitted",
    ("submitted", "approve"): "approved",
    ("approved", "archive"): "archived",
}
FLOOR_EVENTS = ["attach", "submit", "approve", "archive"]


def run_floor(cycles: int) -> int:
    table = FLOOR_TABLE
    for _ in range(cycles):
        state = "draft"
        for event in FLOOR_EVENTS:
            state = table[(state, event)]
    return cycles * 4


def measure(fn: Callable[[int], int], events: int, rounds: int) -> float:
    cycles = events // 4
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        n = fn(cycles)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, float] = {}
    # Interleave the contenders round by round so machine noise hits them alike.
    per_round: dict[str, list[float]] = {"decide": [], "transitions": [], "dict floor": []}
    fns = {"decide": run_decide, "transitions": run_transitions, "dict floor": run_floor}
    for _ in range(args.rounds):
        for name, fn in fns.items():
            per_round[name].append(measure(fn, args.events, 1))
    for name, rates in per_round.items():
        results[name] = statistics.median(rates)
        print(f"{name:>12}: {results[name]:>12,.0f} events/s (median of {args.rounds})")
    print(f"ratio dict floor/decide: {results['dict floor'] / results['decide']:.2f}")
    print(f"ratio decide/transitions: {results['decide'] / results['transitions']:.2f}")


if __name__ == "__main__":
    main()
