"""Benchmark: steps per second of the generated fuzz test against a bare Hypothesis
stateful test doing trivial steps, side by side in one process.

Run from the repository root::

    python tests/benchmarks/bench_fuzz.py [--rounds 5] [--examples 200] [--steps 50]

The generated test runs on the reference ``enrollment`` spec with ``MemoryStore``; every step
is a network move checked against the kernel's model. The bare test is a
``RuleBasedStateMachine`` with one rule that increments a counter, run with the same
Hypothesis settings until it has taken at least as many steps; Hypothesis itself is the
ceiling. Rounds alternate between the two and
the medians are compared. The last line is ``ratio harness/bare_hypothesis: X.XX``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for part in ("kernel", "adapters", "specs"):
    if str(ROOT / part) not in sys.path:
        sys.path.insert(0, str(ROOT / part))

from hypothesis import HealthCheck, Phase, Verbosity, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test  # noqa: E402

from statekernel.adapters.memory import MemoryStore  # noqa: E402
from statekernel.kernel import Spec  # noqa: E402
from statekernel.kernel.testing import run_fuzz  # noqa: E402


def reference_spec() -> Spec:
    """The reference enrollment spec."""
    from statekernel.specs.enrollment import SPEC

    return SPEC


class Bare(RuleBasedStateMachine):
    """The ceiling: one trivial rule."""

    steps = 0

    @rule()
    def step(self) -> None:
        Bare.steps += 1


def bare_rate(target: int, examples: int, steps: int, seed: int) -> tuple[int, float]:
    """Steps and seconds of the bare machine with the fuzzer's Hypothesis settings, run (with
    successive seeds) until it has taken at least ``target`` steps."""
    Bare.steps = 0
    s = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        print_blob=False,
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    spent = 0.0
    while Bare.steps < target:
        started = time.perf_counter()
        run_state_machine_as_test(hypothesis_seed(seed)(Bare), settings=s)
        spent += time.perf_counter() - started
        seed += 1_000_003
    return Bare.steps, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    spec = reference_spec()
    harness: list[float] = []
    bare: list[float] = []
    for r in range(args.rounds):
        report = run_fuzz(spec, MemoryStore, examples=args.examples, steps=args.steps, seed=r)
        if report.violation is not None:
            raise SystemExit(f"unexpected violation:\n{report.violation}")
        harness.append(report.steps / report.seconds)
        n, secs = bare_rate(report.steps, args.examples, args.steps, r)
        bare.append(n / secs)
        print(
            f"round {r + 1}: harness {report.steps} steps in {report.seconds:.2f}s "
            f"({harness[-1]:.0f}/s), bare {n} steps in {secs:.2f}s ({bare[-1]:.0f}/s)"
        )
    h, b = statistics.median(harness), statistics.median(bare)
    print(f"spec {spec.name}, store MemoryStore, {args.examples} examples x {args.steps} steps")
    print(f"median harness: {h:.0f} steps/s")
    print(f"median bare hypothesis: {b:.0f} steps/s")
    print(f"ratio harness/bare_hypothesis: {h / b:.2f}")


if __name__ == "__main__":
    main()
