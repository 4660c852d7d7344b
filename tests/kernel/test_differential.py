"""``decide`` (generated code per state and event) against the straightforward reference loop.

Random walks of commands, most of them plausible (an event allowed in the current state, a
payload from the transition's examples, an actor with some of the spec's roles, a time or
none), some junk, on every reference spec, on the kernel tests' example spec, on a spec written
to hit every branch of the generated code (several candidates per key with roles and guards,
guards and invariants that raise or return a non-bool, updates and effects that fail), and on
generated specs: rows sharing ``(state, event)`` with mixed roles, payload types and guards,
guards and updates that read the command (its actor, its time), internal transitions from
several sources and from a final state. Each command is decided by both implementations and
the decisions must be equal, down to the type of a ``spec_fault``'s exception.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TIMES = [T0, T0 + timedelta(minutes=30), T0 + timedelta(hours=2)]

# --- generated specs -----------------------------------------------------------------------


@attrs.frozen
class Tally:
    n: int = 0
    by: str = ""


def _knob_mode(p: object) -> str:
    return p.mode if isinstance(p, Knob) else "none"


def _two(mode: str) -> Any:
    """A guard ``(ctx, payload)``: the knob is set to ``mode`` (raises or answers a non-bool
    for the knob modes ``boom`` and ``int``)."""

    def check(ctx: Tally, p: object) -> Any:
        if _knob_mode(p) == "boom":
            raise ZeroDivisionError("guard")
        if _knob_mode(p) == "int":
            return 1
        return _knob_mode(p) in (mode, "any")

    check.__name__ = f"knob_{mode}"
    check.__doc__ = f"The knob is set to {mode!r}."
    return guard(check)


def _sent_by(actor_id: str) -> Any:
    def check(ctx: Tally, p: object, command: Command) -> bool:
        return command.actor is not None and command.actor.id == actor_id

    check.__name__ = f"sent_by_{actor_id}"
    check.__doc__ = f"The command is sent by {actor_id!r}."
    return guard(check)


@guard
def another_actor(ctx: Tally, p: object, command: Command) -> bool:
    """The command is not sent by the actor recorded last (four eyes)."""
    return command.actor is not None and command.actor.id != ctx.by


@guard
def before_the_hour(ctx: Tally, p: object, command: Command) -> bool:
    """The command happened within an hour of the start (raises without a time)."""
    return command.at - T0 < timedelta(hours=1)  # type: ignore[operator]


@guard
def under_three(ctx: Tally, p: object) -> bool:
    """The counter is under three."""
    return ctx.n < 3


def _row_guard(k: int) -> Any:
    def check(ctx: Tally, p: object) -> bool:
        return (ctx.n + k) % 3 != 0

    check.__name__ = f"row_{k}"
    check.__doc__ = f"The counter plus {k} is not a multiple of three."
    return guard(check)


GUARD_POOL = [
    _two("a"),
    _two("b"),
    _sent_by("ann"),
    another_actor,
    before_the_hour,
    under_three,
]


def _bump(ctx: Tally, p: object) -> Any:
    if _knob_mode(p) == "raise":
        raise KeyError("update")
    if _knob_mode(p) == "type":
        return {"n": 1}
    return attrs.evolve(ctx, n=ctx.n + 1)


def _record(ctx: Tally, p: object, command: Command) -> Tally:
    who = command.actor.id if command.actor is not None else ""
    return attrs.evolve(ctx, n=ctx.n + 1, by=who)


def _note(ctx: Tally, p: object, command: Command) -> Tally:
    return attrs.evolve(ctx, by=f"{ctx.by[:3]}{command.at is not None}")


@invariant
def tally_is_sane(state: str, ctx: Tally) -> Any:
    """The counter stays at or below six (five raises)."""
    if ctx.n == 5:
        raise RuntimeError("invariant")
    return ctx.n <= 6


STATES = ["s0", "s1", "s2", "end"]
_BACKBONE = [
    Transition("go", "s0", "s1"),
    Transition("go", "s1", "s2"),
    Transition("go", "s2", "s0"),
    Transition("stop", ["s0", "s1", "s2"], "end"),
]


@st.composite
def generated_specs(draw: st.DrawFn) -> Spec:
    """A valid spec over ``s0, s1, s2`` and the final ``end``: a backbone (``go`` around,
    ``stop`` to the end) plus random rows of ``poke`` (payload ``Knob``) and ``tap`` (no
    payload): each with several sources, a target or none (internal, the only kind allowed
    from ``end``), roles, guards from a pool (some read the command) plus a guard of its own
    (so rows sharing a key are told apart), an update that may read the command, effects; and
    maybe an unguarded fallback row last."""
    rows = []
    for k in range(draw(st.integers(1, 7))):
        event = draw(st.sampled_from(["poke", "tap"]))
        internal = draw(st.booleans())
        sources = draw(
            st.lists(st.sampled_from(STATES if internal else STATES[:3]), min_size=1, max_size=3)
        )
        target = None if internal else draw(st.sampled_from(STATES))
        guards = [*draw(st.lists(st.sampled_from(GUARD_POOL), max_size=2)), _row_guard(k)]
        rows.append(
            Transition(
                event,
                sorted(set(sources)),
                target,
                payload=Knob if event == "poke" else None,
                roles=draw(st.sampled_from([[], ["a"], ["b"], ["a", "b"]])),
                guards=draw(st.permutations(guards)),
                update=draw(st.sampled_from([None, _bump, _record, _note])),
                effects=draw(st.sampled_from([[], [Effect("poked")], [Effect("built", _build)]])),
                examples=_KNOBS if event == "poke" else [],
            )
        )
    if draw(st.booleans()):
        event = draw(st.sampled_from(["poke", "tap"]))
        rows.append(
            Transition(
                event,
                draw(st.lists(st.sampled_from(STATES), min_size=1, max_size=4, unique=True)),
                None,
                payload=Knob if event == "poke" else None,
                roles=draw(st.sampled_from([[], ["b"]])),
                update=_record,
                examples=_KNOBS if event == "poke" else [],
            )
        )
    return Spec(
        name="generated",
        version=1,
        context=Tally,
        initial="s0",
        states=STATES,
        final=["end"],
        transitions=[*_BACKBONE, *rows],
        invariants=[tally_is_sane],
    )


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
    at = draw(st.none() | st.sampled_from(TIMES))
    return Command(event, payload, actor=actor, expected_version=expected, at=at)  # type: ignore[arg-type]


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


@st.composite
def plausible_commands(draw: st.DrawFn, spec: Spec, snapshot: Snapshot) -> Command:
    """Mostly a command that reaches the rows of its key (an allowed event, a knob payload, no
    expected version) from one of two actors with some of the roles, at some time or none;
    sometimes anything :func:`commands` makes."""
    if draw(st.integers(0, 3)) == 0:
        return draw(commands(spec, snapshot))
    allowed = spec.allowed_events(snapshot.state)
    rows = [e for e in allowed if e in ("poke", "tap")]
    if rows and draw(st.integers(0, 4)):
        event = draw(st.sampled_from(rows))  # the random rows, mostly
    else:
        event = draw(st.sampled_from(allowed or sorted(spec.events)))
    knobs = st.sampled_from(_KNOBS)
    payload = draw(knobs.map(unstructure) | knobs) if event == "poke" else None
    roles = st.lists(st.sampled_from(["a", "b"]), max_size=2)
    actor = draw(st.none() | st.builds(Actor, st.sampled_from(["ann", "bob"]), roles))
    at = draw(st.none() | st.sampled_from(TIMES))
    return Command(event, payload, actor=actor, at=at)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decide_matches_the_reference_on_generated_specs(data: st.DataObject) -> None:
    spec = data.draw(generated_specs())
    snapshot = spec.start()
    for _ in range(data.draw(st.integers(1, 30))):
        if data.draw(st.integers(0, 9)) == 0:  # jump to any state, keeping the context
            snapshot = attrs.evolve(snapshot, state=data.draw(st.sampled_from(STATES)))
        command = data.draw(plausible_commands(spec, snapshot))
        new = decide(spec, snapshot, command)
        _same(new, decide_reference(spec, snapshot, command))
        if isinstance(new, Accepted):
            snapshot = new.snapshot


def test_generated_specs_reach_every_kind_of_decision() -> None:
    """The generated specs exercise what they claim: shared rows stopping at each step,
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
            *_BACKBONE,
            Transition("poke", ["s0", "end"], None, payload=Knob, roles=["a"], guards=[_two("a")]),
            Transition("poke", "s0", "s1", payload=Knob, guards=[another_actor], update=_record),
            Transition("tap", ["s0", "s1"], None, guards=[before_the_hour], update=_note),
        ],
        invariants=[tally_is_sane],
    )
    ann, bob = Actor("ann", roles=["a"]), Actor("bob")
    start, end = spec.start(), Snapshot("end", Tally(), 3)

    def run(snap: Snapshot, event: str, payload: object, actor: Actor | None, at: Any) -> Any:
        cmd = Command(event, payload, actor=actor, at=at)
        d = decide(spec, snap, cmd)
        _same(d, decide_reference(spec, snap, cmd))
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
