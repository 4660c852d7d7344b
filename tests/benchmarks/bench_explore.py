"""Explorer throughput: distinct states per second on a spec with 128,000 reachable states,
measured side by side with a hand-written plain-Python BFS over the same model (the same
guard, update and invariant functions, a set of seen states and parent links), plus bytes
of memory per state.

Run from the repository root::

    python tests/benchmarks/bench_explore.py [--rounds 3] [--size 40]

The last line is ``states/s: N`` (the explorer's median).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from array import array
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[2]
for part in ("kernel", "adapters", "specs"):
    sys.path.insert(0, str(ROOT / part))

from statekernel.kernel import Spec, Transition, explore, guard, invariant  # noqa: E402


@attrs.frozen
class Bins:
    a: int = 0
    b: int = 0
    c: int = 0


def build(size: int) -> Spec:
    """Three counters below ``size`` in ``open``, and a ``close`` that keeps them: 2 * size**3
    reachable states."""
    top = size - 1

    @guard
    def a_room(ctx: Bins, payload: object) -> bool:
        """Bin a has room."""
        return ctx.a < top

    @guard
    def b_room(ctx: Bins, payload: object) -> bool:
        """Bin b has room."""
        return ctx.b < top

    @guard
    def c_room(ctx: Bins, payload: object) -> bool:
        """Bin c has room."""
        return ctx.c < top

    @invariant
    def bounded(state: str, ctx: Bins) -> bool:
        """No bin overflows."""
        return ctx.a + ctx.b + ctx.c <= 3 * top

    return Spec(
        name="bins",
        version=1,
        context=Bins,
        initial="open",
        states=["open", "closed"],
        final=["closed"],
        transitions=[
            Transition(
                "add_a",
                "open",
                "open",
                guards=[a_room],
                update=lambda x, p: Bins(x.a + 1, x.b, x.c),
            ),
            Transition(
                "add_b",
                "open",
                "open",
                guards=[b_room],
                update=lambda x, p: Bins(x.a, x.b + 1, x.c),
            ),
            Transition(
                "add_c",
                "open",
                "open",
                guards=[c_room],
                update=lambda x, p: Bins(x.a, x.b, x.c + 1),
            ),
            Transition("close", "open", "closed"),
        ],
        invariants=[bounded],
    )


def baseline(spec: Spec) -> int:
    """The plain BFS: the spec's own functions, no kernel machinery."""
    edges: dict[str, list[tuple[Any, ...]]] = {}
    for t in spec.transitions:
        for s in t.source:
            edges.setdefault(s, []).append((tuple(g.fn for g in t.guards), t.update, t.target))
    invariants = [inv.fn for inv in spec.invariants]
    start = spec.start()
    first = (start.state, start.context)
    seen = {first}
    nodes = [first]
    parent = array("q", [-1])
    head = 0
    while head < len(nodes):
        state, ctx = nodes[head]
        for guards, update, target in edges.get(state, ()):
            if not all(g(ctx, None) for g in guards):
                continue
            new = ctx if update is None else update(ctx, None)
            if not all(inv(target, new) for inv in invariants):
                raise AssertionError("violation")
            key = (target, new)
            if key not in seen:
                seen.add(key)
                nodes.append(key)
                parent.append(head)
        head += 1
    return len(nodes)


def timed(fn: Any, *args: Any) -> tuple[int, float]:
    gc.collect()
    started = time.perf_counter()
    states = fn(*args)
    return states, time.perf_counter() - started


def explorer(spec: Spec) -> int:
    report = explore(spec, max_states=None)
    assert report.verdict == "proved", report.headline()
    return report.states


def bytes_per_state(spec: Spec) -> float:
    gc.collect()
    tracemalloc.start()
    report = explore(spec, max_states=None)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / report.states


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=40)
    args = parser.parse_args()
    spec = build(args.size)
    print(f"spec: bins, {2 * args.size**3:,} reachable states, {args.rounds} rounds")
    ours: list[float] = []
    plain: list[float] = []
    for i in range(args.rounds):
        n_ours, t_ours = timed(explorer, spec)
        n_plain, t_plain = timed(baseline, spec)
        assert n_ours == n_plain == 2 * args.size**3, (n_ours, n_plain)
        ours.append(n_ours / t_ours)
        plain.append(n_plain / t_plain)
        print(
            f"round {i + 1}: explorer {ours[-1]:,.0f} states/s ({t_ours:.2f} s), "
            f"plain BFS {plain[-1]:,.0f} states/s ({t_plain:.2f} s)"
        )
    med_ours = statistics.median(ours)
    med_plain = statistics.median(plain)
    print(f"median plain BFS: {med_plain:,.0f} states/s")
    print(f"explorer / plain BFS: {med_ours / med_plain:.2f}")
    small = build(max(2, args.size // 2))
    print(f"memory: {bytes_per_state(small):,.0f} bytes per state (tracemalloc peak, separate run)")
    print(f"states/s: {med_ours:.0f}")


if __name__ == "__main__":
    main()
