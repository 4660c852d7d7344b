"""The public face of ``statekernel.kernel.testing``: small, typed, lazy about Hypothesis,
and usable in one line per spec."""

from __future__ import annotations

import subprocess
import sys
import unittest
from pathlib import Path

import pytest

from statekernel.adapters.memory import MemoryStore
from statekernel.kernel import Trace, TraceMismatch, TraceStep, testing
from statekernel.kernel.testing import Faults, FuzzReport, FuzzViolation, fuzz_test, run_fuzz

from ..stores.ledger import SPEC as LEDGER
from . import planted

ROOT = Path(__file__).resolve().parents[2]

# What a user writes: one line per spec. Pytest collects it as a unittest test case.
TestLedgerOnMemory = fuzz_test(LEDGER, MemoryStore)


def test_public_names_are_pinned() -> None:
    assert testing.__all__ == [
        "DEFAULT_EXAMPLES",
        "DEFAULT_STEPS",
        "Faults",
        "FuzzReport",
        "FuzzViolation",
        "FuzzableStore",
        "StoreFactory",
        "assert_store_passes",
        "fuzz_test",
        "run_fuzz",
    ]
    for name in ["Faults", "FuzzReport", "FuzzViolation", "FuzzableStore"]:
        assert getattr(testing, name).__doc__, name
    for name in ["assert_store_passes", "fuzz_test", "run_fuzz"]:
        assert getattr(testing, name).__doc__, name


def test_importing_the_kernel_does_not_import_hypothesis() -> None:
    code = (
        "import sys, statekernel.kernel\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'hypothesis')\n"
        "assert not bad, bad\n"
        "import statekernel.kernel.testing\n"
        "assert 'hypothesis' in sys.modules\n"
    )
    env_path = ":".join(str(ROOT / p) for p in ("kernel", "adapters", "specs"))
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": env_path},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_fuzz_test_is_a_unittest_case_that_fails_with_the_trace() -> None:
    cls = fuzz_test(planted.OVERDRAFT, MemoryStore, seed=0)
    assert issubclass(cls, unittest.TestCase)
    assert cls.__name__ == "TestOverdraftFuzz"
    assert "overdraft" in (cls.__doc__ or "")
    result = unittest.TestResult()
    cls().run(result)
    assert len(result.failures) == 1
    _, text = result.failures[0]
    assert "property violated: invariant_violated: never_negative" in text
    assert "1. [c" in text and "withdraw" in text


def test_fuzz_test_passes_an_honest_spec() -> None:
    cls = fuzz_test(planted.OVERDRAFT_FIXED, MemoryStore, examples=20, steps=20, seed=1)
    result = unittest.TestResult()
    cls().run(result)
    assert result.wasSuccessful(), result.failures


def test_report_counts_states_and_transitions() -> None:
    report = run_fuzz(LEDGER, MemoryStore, examples=30, seed=2)
    assert isinstance(report, FuzzReport)
    assert report.ok and report.violation is None
    assert set(report.state_hits) == set(LEDGER.states)
    assert "withdraw (open -> open)" in report.transition_hits
    assert "close (frozen -> closed)" in report.transition_hits
    assert report.state_hits["open"] > 0 and report.transition_hits["deposit (open -> open)"] > 0
    assert report.examples == 30 and report.steps > 30 and report.states > 1
    assert report.seed == 2 and report.seconds > 0
    text = report.format()
    assert "deposit (open -> open)" in text and "seed 2" in text
    data = report.to_data()
    assert data["violation"] is None and data["states"] == report.states


def test_a_random_seed_is_chosen_and_reported() -> None:
    report = run_fuzz(planted.OVERDRAFT, MemoryStore, examples=50)
    assert isinstance(report.seed, int)
    assert report.violation is not None and report.violation.seed == report.seed
    again = run_fuzz(planted.OVERDRAFT, MemoryStore, examples=50, seed=report.seed)
    assert again.violation is not None and again.violation.trace == report.violation.trace


def test_faults_can_be_switched_off() -> None:
    quiet = Faults(
        reorder=False,
        duplicates=False,
        lost_replies=False,
        early_retries=False,
        stale_versions=False,
        crashes=False,
        invalid=False,
        clients=1,
        entities=1,
    )
    report = run_fuzz(planted.OVERDRAFT_FIXED, planted.ForgetsKeys, faults=quiet, seed=0)
    assert report.ok  # nothing retries, so forgetting keys goes unseen
    loud = run_fuzz(planted.OVERDRAFT_FIXED, planted.ForgetsKeys, seed=0)
    assert loud.violation is not None


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_faults_validate_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match="clients"):
        Faults(clients=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("arg", ["examples", "steps"])
def test_budget_must_be_positive(arg: str) -> None:
    with pytest.raises(ValueError, match=arg):
        run_fuzz(LEDGER, MemoryStore, **{arg: 0})  # type: ignore[arg-type]


def test_violation_is_an_assertion_error_carrying_its_parts() -> None:
    v = run_fuzz(planted.OVERDRAFT, MemoryStore, seed=0).violation
    assert isinstance(v, FuzzViolation) and isinstance(v, AssertionError)
    assert v.property == "invariant_violated: never_negative"
    assert v.trace.property == v.property and v.trace.seed == 0
    assert "never_negative" in v.detail


def test_new_trace_actions_describe_and_replay() -> None:
    steps = [
        TraceStep("deposit", {"amount": {"cents": 5}}, "open", action="hold", client="c1",
                  idempotency_key="k1"),
        TraceStep("deposit", {"amount": {"cents": 5}}, "open", action="lose_reply", client="c1",
                  idempotency_key="k1"),
        TraceStep(action="crash", entity=""),
        TraceStep("deposit", {"amount": {"cents": 5}}, "open", action="retry", client="c1",
                  idempotency_key="k1"),
    ]  # fmt: skip
    trace = Trace("ledger", steps)
    text = trace.format()
    assert "sent, delayed in the network: deposit" in text and "-> in flight" in text
    assert "reply lost: deposit" in text and "retry deposit" in text
    from statekernel.kernel import replay_trace

    result = replay_trace(LEDGER, trace)
    assert result.ok
    assert result.decisions[0] is None and result.decisions[2] is None
    assert result.snapshots["e1"].context.balance == 5  # the hold did nothing, the retry replayed
    assert Trace.loads(trace.dumps()) == trace
    testing.assert_store_passes(LEDGER, MemoryStore, trace)


def test_a_store_trace_of_another_spec_is_refused() -> None:
    # a ledger trace replayed on the overdraft spec would be nothing but unknown events, on
    # which any store agrees with the kernel: refused instead of passed
    v = run_fuzz(planted.OVERDRAFT_FIXED, planted.ForgetsKeys, seed=0).violation
    assert v is not None and v.trace.spec == "overdraft"
    with pytest.raises(TraceMismatch) as info:
        testing.assert_store_passes(LEDGER, planted.ForgetsKeys, v.trace)
    assert str(info.value) == "the trace is of spec 'overdraft', not 'ledger'"
