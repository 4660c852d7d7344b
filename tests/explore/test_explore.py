"""The explorer: verdicts, shortest traces, warnings, bounds and agreement with ``decide``."""

from __future__ import annotations

import json
import typing
from collections import deque
from typing import Any, Literal

import attrs
import pytest

from statekernel.kernel import (
    Accepted,
    Actor,
    Command,
    Effect,
    Snapshot,
    Spec,
    Trace,
    Transition,
    assert_trace_passes,
    decide,
    explore,
    replay_trace,
    sample_payloads,
)
from statekernel.kernel._explore import ALL_ROLES, EXPLORE_TIMES, GUEST
from statekernel.kernel._explore import engine as explore_module

from . import explore_specs as specs


def _shortest_past_nine() -> int:
    """Independent integer BFS for DOUBLING: +1 (up to 20) or *2 (from 1) until >= 10."""
    seen = {0}
    frontier = deque([(0, 0)])
    while frontier:
        n, d = frontier.popleft()
        nexts = ([n + 1] if n < 20 else []) + ([n * 2] if n >= 1 else [])
        for m in nexts:
            if m >= 10:
                return d + 1
            if m not in seen:
                seen.add(m)
                frontier.append((m, d + 1))
    raise AssertionError("no way past nine")


@pytest.mark.parametrize("n", [1, 2, 5, 13])
def test_violation_at_known_depth_has_exactly_that_many_steps(n: int) -> None:
    spec = specs.chain_spec(n)
    report = explore(spec)
    assert report.verdict == "violated"
    [v] = report.violations
    assert v.property == "invariant_violated: stays_below"
    assert v.code == "invariant_violated"
    assert v.depth == n
    assert [s.event for s in v.trace.steps] == ["inc"] * n
    assert v.trace.steps[-1].code == "invariant_violated"
    assert all(s.code is None for s in v.trace.steps[:-1])
    assert [s.changed for s in v.trace.steps[:-1]] == [{"count": i} for i in range(1, n)]


def test_counterexample_is_the_shortest_not_the_obvious_one() -> None:
    report = explore(specs.DOUBLING)
    [v] = report.violations
    expected = _shortest_past_nine()
    assert v.depth == expected
    assert expected < 10  # ten increments would also break it: BFS must find the shorter way
    assert v.trace.steps[-1].event == "double"


def test_counterexample_replays_through_the_kernel_and_as_json() -> None:
    spec = specs.ACCOUNT
    report = explore(spec)
    [v] = report.violations
    assert v.depth == 3
    result = replay_trace(spec, v.trace)
    assert result.violation == v.property
    assert result.violation_step == v.depth
    restored = Trace.loads(v.trace.dumps())
    assert replay_trace(spec, restored).violation == v.property
    with pytest.raises(AssertionError, match="never_negative"):
        assert_trace_passes(spec, restored)
    data = json.loads(json.dumps(v.to_data()))
    assert [s["event"] for s in data["trace"]] == ["deposit", "raise_limit", "withdraw"]
    assert {"event", "payload", "state"} <= set(data["trace"][0])


def test_spec_fault_is_a_violation_with_its_shortest_trace() -> None:
    report = explore(specs.FAULTY)
    assert report.verdict == "violated"
    [v] = report.violations
    assert v.code == "spec_fault"
    assert v.property == "spec_fault: guard fragile"
    assert v.depth == 3
    assert replay_trace(specs.FAULTY, v.trace).violation == v.property


def test_safe_spec_is_proved_with_every_state_counted() -> None:
    report = explore(specs.SAFE)
    assert report.verdict == "proved"
    assert report.bound is None
    assert report.violations == ()
    # counts 0..20 in "open", each closable into "closed" with the same count
    assert report.states == 21 * 2
    assert report.depth == 21
    assert report.ok
    assert [w.kind for w in report.warnings] == []
    assert "PROVED" in report.format()


def test_deadlock_unreachable_never_fired_and_dead_guards() -> None:
    report = explore(specs.STUCK)
    assert report.verdict == "proved"
    kinds: dict[str, list[Any]] = {}
    for w in report.warnings:
        kinds.setdefault(w.kind, []).append(w)
    [deadlock] = kinds["deadlock"]
    assert deadlock.subject == "state 'middle'"
    assert deadlock.witness is not None
    assert [s.event for s in deadlock.witness.steps] == ["prepare", "go"]
    assert replay_trace(specs.STUCK, deadlock.witness).snapshots["e1"].state == "middle"
    assert sorted(w.subject for w in kinds["unreachable_state"]) == ["state 'done'", "state 'end'"]
    fired = sorted(w.subject for w in kinds["transition_never_fired"])
    assert fired == ["transition 'close' (end -> done)", "transition 'finish' (middle -> end)"]
    [never_true] = kinds["guard_never_true"]
    assert "is_big" in never_true.subject and never_true.message.startswith("never true")
    assert never_true.witness is not None
    assert never_true.witness.steps[-1].code == "guard_rejected"
    [never_false] = kinds["guard_never_false"]
    assert "'always'" in never_false.subject
    # is_ready is both true (after prepare) and false (before): no warning for it
    assert not any("is_ready" in w.subject for w in report.warnings)


def test_guard_never_evaluated_is_reported_as_never_true() -> None:
    @attrs.frozen
    class Ctx:
        n: int = 0

    from statekernel.kernel import Transition, guard

    @guard
    def no(ctx: Ctx, payload: object) -> bool:
        """Never."""
        return False

    @guard
    def unseen(ctx: Ctx, payload: object) -> bool:
        """Evaluated only after ``no``."""
        return True

    spec = Spec(
        name="shadow",
        version=1,
        context=Ctx,
        initial="a",
        states=["a", "b"],
        final=["b"],
        transitions=[Transition("go", "a", "b", guards=[no, unseen]), Transition("end", "a", "b")],
    )
    report = explore(spec)
    messages = {w.subject: w.message for w in report.warnings if w.kind == "guard_never_true"}
    assert messages["guard 'unseen' of transition 'go' (a -> b)"] == "never evaluated"
    assert messages["guard 'no' of transition 'go' (a -> b)"] == "never true"


def test_max_depth_makes_an_infinite_space_undetermined() -> None:
    report = explore(specs.UNBOUNDED, max_depth=5)
    assert report.verdict == "undetermined"
    assert report.bound == "max_depth"
    assert report.depth == 5
    assert not report.violations
    assert "NOT a proof" in report.format()


def test_max_depth_that_covers_the_space_still_proves() -> None:
    assert explore(specs.SAFE, max_depth=22).verdict == "proved"
    assert explore(specs.SAFE, max_depth=21).verdict == "proved"  # depth 21 is all final
    assert explore(specs.SAFE, max_depth=20).verdict == "undetermined"


def test_max_states_and_time_budget_make_it_undetermined() -> None:
    report = explore(specs.UNBOUNDED, max_states=100)
    assert (report.verdict, report.bound, report.states) == ("undetermined", "max_states", 100)
    report = explore(specs.UNBOUNDED, time_budget=0.0, max_states=None)
    assert (report.verdict, report.bound) == ("undetermined", "time_budget")


def test_violation_within_bounds_wins_over_undetermined() -> None:
    shortest = _shortest_past_nine()
    report = explore(specs.DOUBLING, max_depth=shortest)
    assert report.bound == "max_depth"
    assert report.verdict == "violated"
    assert report.violations[0].depth == shortest


def test_violation_beyond_the_depth_bound_is_not_found_and_not_proved() -> None:
    report = explore(specs.chain_spec(6), max_depth=5)
    assert report.verdict == "undetermined"


@pytest.mark.parametrize("bad", [{"max_depth": 0}, {"max_states": -1}, {"clients": 0}])
def test_bad_bounds_are_refused(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        explore(specs.SAFE, **bad)  # type: ignore[arg-type]


def test_unhashable_context_is_refused_with_a_fix() -> None:
    @attrs.frozen
    class Bag:
        items: list[int] = attrs.Factory(list)

    spec = Spec(name="bag", version=1, context=Bag, initial="a", states=["a"], final=["a"])
    with pytest.raises(TypeError, match="tuple, frozenset"):
        explore(spec)


def test_progress_callback_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explore_module, "PROGRESS_EVERY", 0.0)
    calls: list[tuple[int, int, float]] = []
    explore(specs.UNBOUNDED, max_states=5000, progress=lambda *a: calls.append(a))
    assert len(calls) >= 5000 // explore_module.CHECK_EVERY
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert all(states <= 5000 for states, _, _ in calls)


# --- agreement with decide ---------------------------------------------------------------


def _reference(spec: Spec) -> tuple[set[tuple[str, Any]], dict[str, int], set[str]]:
    """A naive BFS that sends every command through ``decide``: each event from the guest and
    one actor per role; an event with a row that reads the command also from the actor
    holding every role, at each of the explorer's times."""
    roles = sorted({r for t in spec.transitions for r in t.roles})
    actors = [GUEST, *(Actor(r, roles=[r]) for r in roles)]
    everyone = [*actors, Actor(ALL_ROLES, roles=roles)]
    reading = {t.event for t in spec.transitions if t.reads_command}
    commands = []
    for t in spec.transitions:
        if t.payload is None:
            payloads: list[Any] = [None]
        else:
            payloads = list(t.examples) or list(sample_payloads(t.payload))
        senders, times = (everyone, EXPLORE_TIMES) if t.event in reading else (actors, (None,))
        commands += [
            Command(t.event, p, actor=a, at=at) for p in payloads for a in senders for at in times
        ]
    start = spec.start()
    seen = {(start.state, start.context)}
    frontier = deque([(start, 0)])
    violations: dict[str, int] = {}
    deadlocks: set[str] = set()
    while frontier:
        snap, depth = frontier.popleft()
        enabled = False
        for cmd in commands:
            d = decide(spec, snap, cmd)
            if isinstance(d, Accepted):
                enabled = True
                key = (d.snapshot.state, d.snapshot.context)
                if key not in seen:
                    seen.add(key)
                    frontier.append((Snapshot(*key, depth + 1), depth + 1))
            elif d.code in ("invariant_violated", "spec_fault"):
                name = d.details.get("invariant") or d.details.get("where")
                violations.setdefault(f"{d.code}: {name}", depth + 1)
        if not enabled and not spec.is_final(snap.state):
            deadlocks.add(snap.state)
    return seen, violations, deadlocks


@pytest.mark.parametrize(
    "spec",
    [
        specs.chain_spec(4),
        specs.DOUBLING,
        specs.SAFE,
        specs.STUCK,
        specs.FAULTY,
        specs.ACCOUNT,
        specs.expense_spec(honest=True),
        specs.expense_spec(honest=False),
        specs.WIRE,
        specs.COMPLEMENT,
    ],
    ids=lambda s: s.name,
)
def test_explorer_agrees_with_decide(spec: Spec) -> None:
    seen, violations, deadlocks = _reference(spec)
    report = explore(spec)
    assert report.states == len(seen)
    assert {v.property: v.depth for v in report.violations} == violations
    assert {w.subject for w in report.warnings if w.kind == "deadlock"} == {
        f"state {s!r}" for s in deadlocks
    }


def test_every_step_of_a_trace_is_what_decide_does() -> None:
    report = explore(specs.ACCOUNT)
    for v in report.violations:
        result = replay_trace(specs.ACCOUNT, v.trace)
        for step, decision in zip(v.trace.steps, result.decisions, strict=True):
            assert decision is not None
            assert step.code == (None if decision.accepted else decision.code)


# --- guards and updates that read the command ---------------------------------------------


def test_a_four_eyes_rule_on_a_name_in_the_payload_is_caught() -> None:
    """The planted rule compares a name anyone can type with the submitter: the one person
    holding both roles submits and approves, naming someone else."""
    spec = specs.expense_spec(honest=False)
    report = explore(spec)
    assert report.verdict == "violated"
    [v] = report.violations
    assert v.property == "invariant_violated: four_eyes" and v.depth == 2
    assert [(s.event, s.actor) for s in v.trace.steps] == [
        ("submit", Actor(ALL_ROLES, roles=["clerk", "reviewer"])),
        ("approve", Actor(ALL_ROLES, roles=["clerk", "reviewer"])),
    ]
    assert all(s.at in EXPLORE_TIMES for s in v.trace.steps)
    again = Trace.loads(v.trace.dumps())  # the times survive JSON, so the trace replays
    assert [s.at for s in again.steps] == [s.at for s in v.trace.steps]
    assert again.to_data() == v.trace.to_data()
    result = replay_trace(spec, again)
    assert (result.violation, result.violation_step) == (v.property, 2)


def test_a_four_eyes_rule_on_the_actors_is_proved() -> None:
    report = explore(specs.expense_spec(honest=True))
    assert report.verdict == "proved", report.format()
    # both guards were seen true and false: the actors sent make the four-eyes rule decide,
    # the times sent (a minute to a year apart, in any order) make the week's deadline decide
    assert not [w for w in report.warnings if w.kind.startswith("guard_")], report.format()
    assert not [w for w in report.warnings if w.kind == "transition_never_fired"]


# --- internal transitions ------------------------------------------------------------------


def test_internal_transitions_stay_in_their_state_and_a_final_state_admits_them() -> None:
    report = explore(specs.WIRE)
    assert report.verdict == "proved"
    assert report.states == 10  # idle; open with 0-2 sent; closed with 0-2 sent, 0-1 closes
    assert not report.warnings, report.format()


# --- guards that an earlier row makes redundant ---------------------------------------------


def test_a_guard_complementary_to_an_earlier_row_says_why_and_what_to_do() -> None:
    report = explore(specs.COMPLEMENT)
    [w] = [w for w in report.warnings if w.kind == "guard_never_false"]
    assert w.subject == "guard 'large' of transition 'step' (low -> high)"
    assert w.message.startswith("never false: it is only evaluated once the earlier row ")
    assert "transition 'step' (low -> low)" in w.message
    assert "already takes the other case" in w.message
    assert "drop it" in w.message
    assert w.witness is not None and w.witness.steps[-1].state == "high"


def test_a_guard_that_is_never_false_on_its_own_gets_no_such_explanation() -> None:
    [w] = [w for w in explore(specs.STUCK).warnings if w.kind == "guard_never_false"]
    assert w.message == "never false"


# --- payload samples ---------------------------------------------------------------------


def test_sample_payloads_vary_one_field_at_a_time() -> None:
    @attrs.frozen
    class P:
        kind: Literal["a", "b", "c"]
        flag: bool
        count: int = 0
        note: str | None = None
        tags: tuple[str, ...] = ()

    samples = sample_payloads(P)
    base = {"kind": "a", "flag": False, "count": 0, "note": None, "tags": []}
    assert samples[0] == base
    # 1 + (3-1) + (2-1) + (3-1) + (3-1) + (2-1)
    assert len(samples) == 9
    for s in samples[1:]:
        assert sum(s[k] != base[k] for k in base) == 1
    assert {s["kind"] for s in samples} == {"a", "b", "c"}
    assert {s["note"] for s in samples} == {None, "", "a"}


def test_sampled_payloads_are_used_when_there_are_no_examples() -> None:
    report = explore(specs.ACCOUNT)
    # "note" has a payload type and no examples; it fires (clerk or manager), so it was sent
    assert not any("'note'" in w.subject for w in report.warnings)
    assert report.fired > 0


@attrs.frozen
class _Note:
    text: str


def test_the_report_says_how_payloads_were_chosen_and_what_it_covered() -> None:
    # "note" has examples where it leaves "a" and none where it leaves "b": listed per state
    spec = Spec(
        name="notes",
        version=1,
        context=_Loose,
        initial="a",
        states=["a", "b", "c"],
        final=["c"],
        transitions=[
            Transition("note", "a", "b", payload=_Note, examples=[_Note("x"), _Note("y")]),
            Transition("note", "b", "b", payload=_Note),
            Transition("end", "b", "c"),
        ],
    )
    report = explore(spec, max_depth=9, time_budget=30.0)
    assert report.verdict == "proved"
    assert report.payloads == {
        "end": ("none", 0),
        "note (from a)": ("examples", 2),
        "note (from b)": ("samples", len(sample_payloads(_Note))),
    }
    assert report.bounds == {"max_depth": 9, "max_states": 1_000_000, "time_budget": 30.0}
    assert report.invariants == ()
    lines = report.format().splitlines()
    assert lines[2:5] == [
        "  bounds: max depth 9, max states 1,000,000, time budget 30 s; none was hit",
        "  payloads: from examples: note (from a) (2); from samples of the payload type: "
        f"note (from b) ({len(sample_payloads(_Note))}); none: end",
        "  invariants: none declared (only spec_fault is checked)",
    ]
    data = report.to_data()
    assert data["payloads"]["note (from a)"] == {"from": "examples", "count": 2}
    assert data["bounds"]["time_budget"] == 30.0 and data["invariants"] == []


@attrs.frozen
class _Loose:
    tags: typing.Any = ()
    n: int = 0


def _loose_spec(update: typing.Callable[[_Loose, object], _Loose]) -> Spec:
    return Spec(
        name="loose",
        version=1,
        context=_Loose,
        initial="a",
        states=["a", "b"],
        final=["b"],
        transitions=[Transition("go", "a", "a", update=update), Transition("end", "a", "b")],
    )


@pytest.mark.parametrize(
    ("update", "needle"),
    [
        (lambda c, p: _Loose(tags=[1]), "not hashable"),
        (lambda c, p: _Loose(n="7"), "field 'n': expected int"),
        (lambda c, p: _Loose(n=float("nan")), "field 'n'"),
        (lambda c, p: _Loose(tags=(1, 2)), "does not read back equal"),
    ],
)
def test_updates_returning_unstorable_contexts_are_spec_faults(
    update: typing.Callable[[_Loose, object], _Loose], needle: str
) -> None:
    report = explore(_loose_spec(update))
    assert report.verdict == "violated"
    [violation] = report.violations
    assert violation.property == "spec_fault: update"
    assert needle in violation.message
    assert [s.event for s in violation.trace.steps] == ["go"]


@attrs.frozen
class _Plain:
    n: int = 0


def test_an_effect_that_builds_data_that_is_not_plain_is_a_violation() -> None:
    """``decide`` turns down an effect whose data is not plain (``spec_fault``); the explorer
    must say so too, not prove the spec."""
    spec = Spec(
        name="odd-effect",
        version=1,
        context=_Plain,
        initial="open",
        states=["open", "closed"],
        final=["closed"],
        transitions=[
            Transition(
                "close", "open", "closed", effects=[Effect("closed", lambda c, p: {"x": object()})]
            )
        ],
    )
    assert decide(spec, spec.start(), Command("close")).code == "spec_fault"  # type: ignore[union-attr]
    report = explore(spec)
    assert report.verdict == "violated"
    [violation] = report.violations
    assert violation.property == "spec_fault: effect closed"
    assert [s.event for s in violation.trace.steps] == ["close"]
