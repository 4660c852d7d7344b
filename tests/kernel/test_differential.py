"""``decide`` through the generated deciders against the plain reference loop.

Each spec is built twice: as usual (generated code per state and event) and as its reference
twin (``STATEKERNEL_DECIDE=reference``, the plain loop). Random walks of commands, most of
them plausible (an event allowed in the current state, a payload from the transition's
examples, an actor with some of the spec's roles, a time or none), some junk, run on every
reference spec, on the kernel tests' example spec, on a spec written to hit every branch of
the generated code (several candidates per key with roles and guards, guards and invariants
that raise or return a non-bool, updates and effects that fail), and on the shared small specs
(``tests/strategies.py``). Each command is decided by both and the decisions must be equal,
down to the type of a ``spec_fault``'s exception.
"""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statekernel.kernel import (
    Accepted,
    Actor,
    AuditRecord,
    Command,
    Effect,
    Snapshot,
    Spec,
    Transition,
    decide,
    guard,
    invariant,
)
from statekernel.kernel._decision import SWITCH, accepted
from statekernel.specs import booking, enrollment, order, payment

from ..strategies import (
    BACKBONE,
    KNOBS,
    STATES,
    T0,
    Knob,
    Tally,
    another_actor,
    before_the_hour,
    commands,
    knob_guard,
    note_the_time,
    plausible_commands,
    record_the_actor,
    small_specs,
    tally_is_sane,
)
from . import example
from .twins import reference_twin, same_decision


@attrs.frozen
class Counter:
    n: int = 0


def _mode(mode: str) -> Any:
    """A guard's answer for ``mode``: raise, a non-bool, or whether ``mode`` is chosen."""

    def check(ctx: Counter, p: Knob) -> Any:
        if p.mode == "boom":
            raise ZeroDivisionError("guard")
        if p.mode == "int":
            return 1
        return p.mode == mode

    check.__name__ = f"mode_is_{mode}"
    check.__doc__ = f"The knob is set to {mode!r}."
    return check


def _set(ctx: Counter, p: Knob) -> Any:
    if p.mode == "raise":
        raise KeyError("update")
    if p.mode == "type":
        return {"n": p.n}
    return Counter(p.n)


def _build(ctx: Counter, p: Knob) -> Any:
    if p.mode == "raise":
        raise ValueError("effect")
    if p.mode == "list":
        return [ctx.n]
    if p.mode == "odd":
        return {"x": object()}
    return {"n": ctx.n, "mode": p.mode}


@invariant
def n_is_sane(state: str, ctx: Counter) -> Any:
    """The counter stays at or below twenty (13 raises, 14 answers None)."""
    if ctx.n == 13:
        raise RuntimeError("invariant")
    if ctx.n == 14:
        return None
    return ctx.n <= 20


HOSTILE = Spec(
    name="hostile",
    version=1,
    context=Counter,
    initial="on",
    states=["on", "off"],
    final=["off"],
    transitions=[
        Transition(
            "poke",
            "on",
            "on",
            payload=Knob,
            guards=[guard(_mode("a"))],
            roles=["admin"],
            update=_set,
            examples=KNOBS,
        ),
        Transition(
            "poke",
            "on",
            "on",
            payload=Knob,
            guards=[guard(_mode("b")), guard(_mode("c"))],
            roles=["user", "admin"],
            update=_set,
            effects=[Effect("poked")],
            examples=KNOBS,
        ),
        Transition("poke", "on", "on", payload=Knob, update=_set, examples=KNOBS),
        Transition(
            "emit",
            "on",
            "on",
            payload=Knob,
            effects=[Effect("built", _build), Effect("plain")],
            update=_set,
            examples=KNOBS,
        ),
        Transition("touch", "on", "on"),
        Transition("stop", "on", "off", roles=["admin"]),
    ],
    invariants=[n_is_sane],
)

SPECS = {
    "enrollment": enrollment.SPEC,
    "payment": payment.SPEC,
    "booking": booking.SPEC,
    "order": order.SPEC,
    "example": example.SPEC,
    "hostile": HOSTILE,
}

TWINS = {name: reference_twin(spec) for name, spec in SPECS.items()}


@pytest.mark.parametrize("name", sorted(SPECS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decide_matches_the_reference(name: str, data: st.DataObject) -> None:
    spec, twin = SPECS[name], TWINS[name]
    snapshot = spec.start()
    for _ in range(data.draw(st.integers(1, 25))):
        if data.draw(st.integers(0, 9)) == 0:  # jump to any state, keeping the context
            states = st.sampled_from([*spec.states, "limbo"])
            snapshot = attrs.evolve(snapshot, state=data.draw(states))
        command = data.draw(commands(spec, snapshot))
        new = decide(spec, snapshot, command)
        same_decision(new, decide(twin, snapshot, command))
        if isinstance(new, Accepted):
            snapshot = new.snapshot


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decide_matches_the_reference_on_small_specs(data: st.DataObject) -> None:
    spec = data.draw(small_specs())
    twin = reference_twin(spec)
    snapshot = spec.start()
    for _ in range(data.draw(st.integers(1, 30))):
        if data.draw(st.integers(0, 9)) == 0:  # jump to any state, keeping the context
            snapshot = attrs.evolve(snapshot, state=data.draw(st.sampled_from(STATES)))
        command = data.draw(plausible_commands(spec, snapshot))
        new = decide(spec, snapshot, command)
        same_decision(new, decide(twin, snapshot, command))
        if isinstance(new, Accepted):
            snapshot = new.snapshot


def test_small_specs_reach_every_kind_of_decision() -> None:
    """The small specs exercise what they claim: shared rows stopping at each step,
    guards and updates reading the command, internal transitions (so the walk above compares
    them all)."""
    spec = Spec(
        name="generated",
        version=1,
        context=Tally,
        initial="s0",
        states=STATES,
        final=["end"],
        transitions=[
            *BACKBONE,
            Transition(
                "poke", ["s0", "end"], None, payload=Knob, roles=["a"], guards=[knob_guard("a")]
            ),
            Transition(
                "poke", "s0", "s1", payload=Knob, guards=[another_actor], update=record_the_actor
            ),
            Transition("tap", ["s0", "s1"], None, guards=[before_the_hour], update=note_the_time),
        ],
        invariants=[tally_is_sane],
    )
    twin = reference_twin(spec)
    ann, bob = Actor("ann", roles=["a"]), Actor("bob")
    start, end = spec.start(), Snapshot("end", Tally(), 3)

    def run(snap: Snapshot, event: str, payload: object, actor: Actor | None, at: Any) -> Any:
        cmd = Command(event, payload, actor=actor, at=at)
        d = decide(spec, snap, cmd)
        same_decision(d, decide(twin, snap, cmd))
        return d

    knob = {"mode": "a", "n": 1}
    d = run(start, "poke", knob, ann, None)
    assert d.accepted and d.snapshot.state == "s0"  # internal: stays
    d = run(end, "poke", knob, ann, None)
    assert d.accepted and d.snapshot.state == "end"  # internal, in a final state
    d = run(end, "poke", knob, bob, None)
    assert d.code == "forbidden" and d.details["roles"] == ["a"]
    d = run(start, "poke", {"mode": "b", "n": 1}, bob, None)
    assert d.accepted and d.snapshot == Snapshot("s1", Tally(1, "bob"), 1)
    d = run(Snapshot("s0", Tally(1, "bob"), 1), "poke", {"mode": "b", "n": 1}, bob, None)
    assert d.code == "guard_rejected" and d.details["guard"] == "another_actor"
    d = run(Snapshot("s0", Tally(1, "ann"), 1), "poke", {"mode": "b", "n": 1}, ann, None)
    assert d.code == "guard_rejected" and d.details["guard"] == "knob_a"  # the first of two
    d = run(start, "tap", None, None, T0)
    assert d.accepted and d.snapshot == Snapshot("s0", Tally(0, "True"), 1)
    d = run(start, "tap", None, None, T0 + timedelta(hours=2))
    assert d.code == "guard_rejected" and d.details["guard"] == "before_the_hour"
    d = run(start, "tap", None, None, None)
    assert d.code == "spec_fault" and isinstance(d.error, TypeError)


def test_the_hostile_spec_reaches_every_kind_of_decision() -> None:
    """The spec above exercises what it claims (so the walk above compares them all)."""
    snap = HOSTILE.start()
    admin, user = Actor("a", roles=["admin"]), Actor("u", roles=["user"])

    def code(event: str, mode: str, n: int = 1, actor: Actor | None = admin) -> str:
        d = decide(HOSTILE, snap, Command(event, {"mode": mode, "n": n}, actor=actor))
        return "accepted" if d.accepted else d.code  # type: ignore[union-attr]

    assert code("poke", "a") == "accepted"
    assert code("poke", "b", actor=user) == "accepted"
    assert code("poke", "c", actor=None) == "accepted"  # the unguarded fallback
    assert code("poke", "boom") == "spec_fault"
    assert code("poke", "int") == "spec_fault"
    assert code("poke", "raise", actor=None) == "spec_fault"
    assert code("poke", "type", actor=None) == "spec_fault"
    assert code("poke", "c", n=30, actor=None) == "invariant_violated"
    assert code("poke", "c", n=13, actor=None) == "spec_fault"
    assert code("emit", "raise") == "spec_fault"
    assert code("emit", "list") == "spec_fault"
    assert code("emit", "odd") == "spec_fault"
    assert code("emit", "c") == "accepted"
    assert code("stop", "c") == "invalid_payload"


def test_results_built_without_fillers_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the interpreter refuses fillers, the generated deciders fill the slots through
    their descriptors; both ways build equal objects of the public classes, equal to the
    reference loop's, built by the classes' own constructors."""
    monkeypatch.delenv(SWITCH, raising=False)  # this test is about the generated deciders
    spec = example.SPEC
    command = Command("attach", {"count": 2}, actor=Actor("ann", roles=["applicant"]))
    with_fillers = decide(spec, spec.start(), command)
    for cls in list(accepted._FILLERS):
        monkeypatch.setitem(accepted._FILLERS, cls, None)
    rebuilt = attrs.evolve(spec)  # generated again, without fillers
    decider = rebuilt._compiled.deciders["draft"]["attach"]
    assert "set_acc_snap_state(acc_snap, target_0)" in inspect.getsource(decider)
    without = decide(rebuilt, spec.start(), command)
    for d in (with_fillers, without):
        assert isinstance(d, Accepted) and type(d) is Accepted and type(d.snapshot) is Snapshot
        assert type(d.record) is AuditRecord
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            d.snapshot.state = "c"  # type: ignore[misc]
        same_decision(d, decide(reference_twin(spec), spec.start(), command))
    assert with_fillers == without
