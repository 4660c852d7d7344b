"""The shared trace format: JSON round trip, readable steps, replay as a regression test."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from statekernel.kernel import (
    TRACE_FORMAT,
    Actor,
    Spec,
    Trace,
    TraceMismatch,
    TraceStep,
    Transition,
    assert_trace_passes,
    invariant,
    replay_trace,
)

from .example import SPEC

STEPS = (
    TraceStep("attach", {"count": 2}, "draft", changed={"documents": 2}),
    TraceStep("submit", None, "submitted", idempotency_key="k1", client="c1"),
    TraceStep("submit", None, "submitted", idempotency_key="k1", client="c1", action="duplicate"),
    TraceStep(action="crash"),
    TraceStep("approve", {"reviewer": "rita"}, "approved", actor=Actor("rita", ["reviewer"])),
)


def test_json_round_trip(tmp_path: Path) -> None:
    trace = Trace("enrollment", STEPS, spec_version=1, property="p", seed=7)
    assert Trace.loads(trace.dumps()) == trace
    data = trace.to_data()
    assert data["format"] == TRACE_FORMAT
    assert [set(s) >= {"event", "payload", "state"} for s in data["steps"]] == [True] * 5
    path = tmp_path / "t.json"
    path.write_text(trace.dumps())
    assert Trace.load(path) == trace


def test_foreign_json_is_refused() -> None:
    with pytest.raises(ValueError, match="not a statekernel trace"):
        Trace.from_data({"format": "other", "spec": "x", "steps": []})


def test_format_numbers_the_steps() -> None:
    text = Trace("enrollment", STEPS, property="invariant x", seed=3).format()
    lines = text.splitlines()
    assert lines[0] == "property: invariant x"
    assert lines[1].strip().startswith("1. attach")
    assert "duplicate submit" in lines[3] and "key=k1" in lines[3]
    assert "crash" in lines[4]
    assert "by rita[reviewer]" in lines[5]
    assert lines[-1] == "seed: 3"


def test_replay_follows_the_kernel_and_keys() -> None:
    result = replay_trace(SPEC, Trace("enrollment", STEPS))
    assert result.ok
    assert result.snapshots["e1"].state == "approved"
    assert result.snapshots["e1"].version == 3  # the duplicate applied nothing
    assert result.decisions[3] is None  # the crash step
    assert result.decisions[1] == result.decisions[2]


@attrs.frozen
class Count:
    n: int = 0


@invariant
def at_most_two(state: str, ctx: Count) -> bool:
    """At most two."""
    return ctx.n <= 2


def counter(guarded: bool) -> Spec:
    from statekernel.kernel import guard

    @guard
    def room(ctx: Count, p: object) -> bool:
        """Room for one more."""
        return ctx.n < 2

    return Spec(
        name="c",
        version=1,
        context=Count,
        initial="on",
        states=["on", "off"],
        final=["off"],
        transitions=[
            Transition(
                "inc",
                "on",
                "on",
                guards=[room] if guarded else [],
                update=lambda c, p: Count(c.n + 1),
            ),
            Transition("stop", "on", "off"),
        ],
        invariants=[at_most_two],
    )


def test_a_counterexample_becomes_a_regression_test(tmp_path: Path) -> None:
    trace = Trace("c", [TraceStep("inc", state="on")] * 3, property="at_most_two")
    path = tmp_path / "cex.json"
    path.write_text(trace.dumps())
    with pytest.raises(AssertionError, match="at_most_two") as info:
        assert_trace_passes(counter(guarded=False), path)
    assert "3. inc" in str(info.value)
    assert assert_trace_passes(counter(guarded=True), path).ok


def test_replay_lists_steps_whose_recorded_outcome_differs() -> None:
    assert replay_trace(SPEC, Trace("enrollment", STEPS)).diverged == ()
    lying = (
        TraceStep("submit", None, "submitted"),  # the kernel rejects it: no documents yet
        TraceStep("attach", {"count": 1}, "draft"),
        TraceStep("submit", None, "draft", code="guard_rejected"),  # the kernel accepts it
        TraceStep("archive"),  # no recorded outcome: not compared
    )
    result = replay_trace(SPEC, Trace("enrollment", lying))
    assert result.diverged == (1, 3)
    assert result.ok  # diverging is not a spec violation


def test_a_trace_of_another_spec_is_refused(tmp_path: Path) -> None:
    # every step of the counter's trace is an unknown event to the enrollment spec, which
    # would "pass" trivially: the replay refuses it instead, naming both specs
    trace = Trace("c", [TraceStep("inc", state="on")] * 3, property="at_most_two")
    path = tmp_path / "cex.json"
    path.write_text(trace.dumps())
    for given in (trace, path):
        with pytest.raises(TraceMismatch) as info:
            assert_trace_passes(SPEC, given)
        assert str(info.value) == "the trace is of spec 'c', not 'enrollment'"
    with pytest.raises(TraceMismatch, match="the trace is of spec 'c', not 'enrollment'"):
        replay_trace(SPEC, trace)
    assert isinstance(info.value, ValueError)
    assert assert_trace_passes(counter(guarded=True), path).ok  # its own spec replays it
