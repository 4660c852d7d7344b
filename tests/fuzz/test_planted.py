"""The fuzzer bites: every planted bug is caught with a short trace that replays, and the
honest twins pass. Seeds are fixed so that the suite is deterministic."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from statekernel.adapters.memory import MemoryStore
from statekernel.kernel import Spec, Trace, assert_trace_passes, replay_trace
from statekernel.kernel.testing import FuzzViolation, assert_store_passes, run_fuzz

from . import planted

SEEDS = [0, 1]

SPEC_BUGS = [
    # spec, its fixed twin, the property, the most steps a minimal trace needs
    (planted.OVERDRAFT, planted.OVERDRAFT_FIXED, "invariant_violated: never_negative", 1),
    (planted.PROMOTION, planted.PROMOTION_FIXED, "invariant_violated: seniors_are_trained", 4),
    (planted.SPLITTER, planted.SPLITTER_FIXED, "spec_fault: update", 1),
    (planted.FOUR_EYES, planted.FOUR_EYES_FIXED, "invariant_violated: four_eyes", 2),
    (planted.DEADLINE, planted.DEADLINE_FIXED, "invariant_violated: confirmed_within_a_day", 8),
]

STORE_BUGS = [
    (planted.ForgetsKeys, "store: retry_returns_first_answer", 3),
    (planted.AppliesTwice, "store: takes_effect_once", 1),
    (planted.StaleReads, "store: reads_are_current", 3),
    (planted.NoAuditForSelfLoops, "store: audit_replays_to_snapshot", 1),
    (planted.LosesWritesOnCrash, "store: acknowledged_writes_survive_crash", 3),
    (planted.WritesOnMismatch, "store: mismatch_changes_nothing", 3),
]


def caught(spec: Spec, factory: Callable[[Spec], Any], seed: int) -> FuzzViolation:
    report = run_fuzz(spec, factory, seed=seed)
    assert report.violation is not None, report.format()
    return report.violation


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("spec", "fixed", "prop", "most"), SPEC_BUGS, ids=lambda v: str(v)[:20])
def test_spec_bug_is_caught_with_a_minimal_replayable_trace(
    spec: Spec, fixed: Spec, prop: str, most: int, seed: int
) -> None:
    v = caught(spec, MemoryStore, seed)
    assert v.property == prop
    assert v.is_spec_violation
    assert 1 <= len(v.trace.steps) <= most
    # the JSON trace replays through the pure kernel: it fails on the bug, passes on the fix
    trace = Trace.loads(v.trace.dumps())
    assert trace.property == prop and trace.seed == seed
    with pytest.raises(AssertionError, match="still violates"):
        assert_trace_passes(spec, trace)
    assert replay_trace(fixed, trace).ok


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("factory", "prop", "most"), STORE_BUGS, ids=lambda v: str(v)[:30])
def test_store_bug_is_caught_with_a_minimal_replayable_trace(
    factory: Callable[[Spec], Any], prop: str, most: int, seed: int
) -> None:
    spec = planted.OVERDRAFT_FIXED
    v = caught(spec, factory, seed)
    assert v.property == prop
    assert not v.is_spec_violation
    assert 1 <= len(v.trace.steps) <= most
    trace = Trace.loads(v.trace.dumps())
    with pytest.raises(FuzzViolation) as again:
        assert_store_passes(spec, factory, trace)
    assert again.value.property == prop
    assert_store_passes(spec, MemoryStore, trace)  # the reference store passes it
    assert replay_trace(spec, trace).ok  # and the spec is not to blame


@pytest.mark.parametrize(
    "spec",
    [
        planted.OVERDRAFT_FIXED,
        planted.PROMOTION_FIXED,
        planted.SPLITTER_FIXED,
        planted.FOUR_EYES_FIXED,
        planted.DEADLINE_FIXED,
    ],
)
def test_honest_specs_pass(spec: Spec) -> None:
    report = run_fuzz(spec, MemoryStore, seed=3)
    assert report.ok, report.violation
    assert report.steps > 1000
    assert all(report.state_hits.values()), report.format()


def test_an_honest_wrapper_store_passes() -> None:
    report = run_fuzz(planted.OVERDRAFT_FIXED, planted.Wrapper, seed=4)
    assert report.ok, report.violation


def test_failure_output_names_property_steps_seed_and_json() -> None:
    v = caught(planted.PROMOTION, MemoryStore, 0)
    text = str(v)
    lines = text.splitlines()
    assert lines[0] == "property violated: invariant_violated: seniors_are_trained"
    assert "seniors_are_trained" in lines[1] and "promote" in lines[1]
    numbered = [line for line in lines if re.match(r"\s+\d+\. ", line)]
    assert [line.split(".")[0].strip() for line in numbered] == ["1", "2", "3", "4"]
    assert re.search(r"\[c2\] promote\(\) on e\d by user2\[manager\] key=c2-\d", numbered[-1])
    assert "rejected invariant_violated" in numbered[-1]
    assert "seed: 0" in lines
    assert "assert_trace_passes(SPEC, 'trace.json')" in text
    data = json.loads(text[text.index("\n{") + 1 :])
    assert data["format"] == "statekernel-trace/1"
    assert [s["event"] for s in data["steps"]] == ["train", "train", "certify", "promote"]
    assert all({"event", "payload", "state"} <= s.keys() for s in data["steps"])


def test_store_failure_output_shows_the_network() -> None:
    v = caught(planted.OVERDRAFT_FIXED, planted.ForgetsKeys, 0)
    actions = [s.action for s in v.trace.steps]
    assert actions[-1] in ("retry", "duplicate", "deliver", "lose_reply")
    assert len({s.idempotency_key for s in v.trace.steps}) == 1  # one request, twice
    words = {"hold": "delayed in the network", "lose_reply": "reply lost", "retry": "retry "}
    for step in v.trace.steps:
        if step.action in words:
            assert words[step.action] in step.describe()
    assert "assert_store_passes(SPEC, store_factory, 'trace.json')" in str(v)


def test_same_seed_same_counterexample() -> None:
    a = caught(planted.PROMOTION, MemoryStore, 5)
    b = caught(planted.PROMOTION, MemoryStore, 5)
    assert a.trace == b.trace
