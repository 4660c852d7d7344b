"""``decide`` (generated code per state and event) against the straightforward reference loop.

Random walks of commands, most of them plausible (an event allowed in the current state, a
payload from the transition's examples, an actor with some of the spec's roles), some junk, on
every reference spec, on the kernel tests' example spec and on a spec written to hit every
branch of the generated code: several candidates per key with roles and guards, guards and
invariants that raise or return a non-bool, updates and effects that fail. Each command is
decided by both implementations and the decisions must be equal, down to the type of a
``spec_fault``'s exception.
"""

from __future__ import annotations

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
    Decision,
    Effect,
    Rejected,
    Snapshot,
    Spec,
    Transition,
    _model,
    decide,
    guard,
    invariant,
)
from statekernel.kernel._codec import unstructure
from statekernel.specs import booking, enrollment, order, payment

from . import example
from .reference_decide import decide_reference


@attrs.frozen
class Counter:
    n: int = 0


@attrs.frozen
class Knob:
    mode: str
    n: int


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


_KNOBS = [
    Knob(m, n)
    for m in ("a", "b", "c", "boom", "int", "raise", "type", "list", "odd")
    for n in (1, 13, 14, 30)
]

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
            examples=_KNOBS,
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
            examples=_KNOBS,
        ),
        Transition("poke", "on", "on", payload=Knob, update=_set, examples=_KNOBS),
        Transition(
            "emit",
            "on",
            "on",
            payload=Knob,
            effects=[Effect("built", _build), Effect("plain")],
            update=_set,
            examples=_KNOBS,
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

junk = (
    st.none()
    | st.integers()
    | st.text(max_size=4)
    | st.builds(object)
    | st.lists(st.integers(), max_size=2)
)


class Name(str):
    """A ``str`` subclass (as a ``StrEnum`` member is): decide reads it as its plain value."""


@st.composite
def commands(draw: st.DrawFn, spec: Spec, snapshot: Snapshot) -> Command:
    """One command for ``snapshot``: usually plausible, sometimes junk in one field."""
    allowed = spec.allowed_events(snapshot.state)
    event = draw(
        st.sampled_from(allowed or sorted(spec.events))
        if draw(st.integers(0, 9)) < 8
        else st.sampled_from(sorted(spec.events)).map(Name) | st.text(max_size=5) | junk
    )
    examples = [
        ex for t in spec.transitions if t.event == event for ex in t.examples if ex is not None
    ]
    example_payloads = st.sampled_from(examples) if examples else st.nothing()
    payload = draw(
        example_payloads.map(unstructure)
        | example_payloads
        | st.none()
        | st.just({})
        | st.dictionaries(
            st.sampled_from(["count", "reviewer", "n", "mode", "x"]), junk, max_size=2
        )
        | junk
    )
    roles = sorted({r for t in spec.transitions for r in t.roles} | {"nobody"})
    actor = draw(
        st.none()
        | st.builds(Actor, st.sampled_from(["ann", "bob"]), st.lists(st.sampled_from(roles)))
        | st.just("not an actor")
    )
    expected = draw(
        st.none() | st.just(snapshot.version) | st.integers(-1, 5) | st.just(True) | junk
    )
    return Command(event, payload, actor=actor, expected_version=expected)  # type: ignore[arg-type]


def _same(new: Decision, ref: Decision) -> None:
    assert type(new) is type(ref)
    assert new == ref, (new, ref)
    assert repr(new) == repr(ref)
    if isinstance(new, Rejected):
        assert isinstance(ref, Rejected)
        assert type(new.error) is type(ref.error)
        assert type(new.details) is type(ref.details)
    else:
        assert isinstance(ref, Accepted)
        assert type(new.snapshot) is Snapshot and type(new.record) is AuditRecord
        assert type(new.snapshot.context) is type(ref.snapshot.context)
        assert type(new.record.payload) is type(ref.record.payload)


@pytest.mark.parametrize("name", sorted(SPECS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decide_matches_the_reference(name: str, data: st.DataObject) -> None:
    spec = SPECS[name]
    snapshot = spec.start()
    for _ in range(data.draw(st.integers(1, 25))):
        if data.draw(st.integers(0, 9)) == 0:  # jump to any state, keeping the context
            states = st.sampled_from([*spec.states, "limbo"])
            snapshot = attrs.evolve(snapshot, state=data.draw(states))
        command = data.draw(commands(spec, snapshot))
        new = decide(spec, snapshot, command)
        _same(new, decide_reference(spec, snapshot, command))
        if isinstance(new, Accepted):
            snapshot = new.snapshot


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
    """Where the interpreter refuses fillers, the slots are filled through their descriptors;
    both ways build equal objects of the public classes."""
    args = ("b", Counter(1), 3, "go", None, Actor("x"), "a", None, ())
    with_fillers = _model.make_accepted(*args)
    for cls in list(_model._FILLERS):
        monkeypatch.setitem(_model._FILLERS, cls, None)
    without = _model._accepted_builder()(*args)
    for d in (with_fillers, without):
        assert type(d) is Accepted and type(d.snapshot) is Snapshot
        assert type(d.record) is AuditRecord
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            d.snapshot.state = "c"  # type: ignore[misc]
    assert (
        with_fillers
        == without
        == Accepted(
            Snapshot("b", Counter(1), 3), AuditRecord(3, "go", None, Actor("x"), "a", "b"), ()
        )
    )
