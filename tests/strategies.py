"""Hypothesis strategies shared by the test suite.

- :func:`small_specs`: small valid specs that reach every kind of decision: rows sharing
  ``(state, event)`` with mixed roles and guards, guards and updates that read the command
  (its actor, its time), internal transitions from several sources and from a final state,
  guards that raise or answer a non-bool, updates that raise or return the wrong type, an
  invariant that raises or breaks, effects that raise or build data that is not a mapping or
  not plain;
- :func:`commands` (anything, junk included) and :func:`plausible_commands` (mostly commands
  that reach the rows of their key) for a snapshot of a spec.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from hypothesis import strategies as st

from statekernel.kernel import (
    Actor,
    Command,
    Effect,
    Snapshot,
    Spec,
    Transition,
    guard,
    invariant,
    unstructure,
)

__all__ = [
    "BACKBONE",
    "KNOBS",
    "STATES",
    "T0",
    "TIMES",
    "Knob",
    "Name",
    "Tally",
    "another_actor",
    "before_the_hour",
    "commands",
    "knob_guard",
    "note_the_time",
    "plausible_commands",
    "record_the_actor",
    "small_specs",
    "tally_is_sane",
]

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TIMES = [T0, T0 + timedelta(minutes=30), T0 + timedelta(hours=2)]


@attrs.frozen
class Tally:
    """The context of the small specs."""

    n: int = 0
    by: str = ""


@attrs.frozen
class Knob:
    """The payload of ``poke``: ``mode`` steers the spec's own code (``boom`` makes a guard
    raise, ``int`` answer a non-bool, ``raise`` and ``type`` break an update, ``raise``,
    ``list`` and ``odd`` break an effect)."""

    mode: str
    n: int


KNOBS = [
    Knob(m, n)
    for m in ("a", "b", "c", "boom", "int", "raise", "type", "list", "odd")
    for n in (1, 13, 14, 30)
]


def _mode(p: object) -> str:
    return p.mode if isinstance(p, Knob) else "none"


def knob_guard(mode: str) -> Any:
    """A guard ``(ctx, payload)``: the knob is set to ``mode`` (raises or answers a non-bool
    for the knob modes ``boom`` and ``int``)."""

    def check(ctx: Tally, p: object) -> Any:
        if _mode(p) == "boom":
            raise ZeroDivisionError("guard")
        if _mode(p) == "int":
            return 1
        return _mode(p) in (mode, "any")

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
    knob_guard("a"),
    knob_guard("b"),
    _sent_by("ann"),
    another_actor,
    before_the_hour,
    under_three,
]


def _bump(ctx: Tally, p: object) -> Any:
    if _mode(p) == "raise":
        raise KeyError("update")
    if _mode(p) == "type":
        return {"n": 1}
    return attrs.evolve(ctx, n=ctx.n + 1)


def record_the_actor(ctx: Tally, p: object, command: Command) -> Tally:
    """An update that counts and records who sent the command."""
    who = command.actor.id if command.actor is not None else ""
    return attrs.evolve(ctx, n=ctx.n + 1, by=who)


def note_the_time(ctx: Tally, p: object, command: Command) -> Tally:
    """An update that notes whether the command carried a time."""
    return attrs.evolve(ctx, by=f"{ctx.by[:3]}{command.at is not None}")


def _build(ctx: Tally, p: object) -> Any:
    if _mode(p) == "raise":
        raise ValueError("effect")
    if _mode(p) == "list":
        return [ctx.n]
    if _mode(p) == "odd":
        return {"x": object()}  # a mapping, but not plain data
    return {"n": ctx.n, "mode": _mode(p)}


@invariant
def tally_is_sane(state: str, ctx: Tally) -> Any:
    """The counter stays at or below six (five raises)."""
    if ctx.n == 5:
        raise RuntimeError("invariant")
    return ctx.n <= 6


STATES = ["s0", "s1", "s2", "end"]
BACKBONE = [
    Transition("go", "s0", "s1"),
    Transition("go", "s1", "s2"),
    Transition("go", "s2", "s0"),
    Transition("stop", ["s0", "s1", "s2"], "end"),
]
"""The rows every small spec has: ``go`` around ``s0, s1, s2``, ``stop`` to the final
``end``."""


@st.composite
def small_specs(draw: st.DrawFn) -> Spec:
    """A valid spec over ``s0, s1, s2`` and the final ``end``: the :data:`BACKBONE` plus
    random rows of ``poke`` (payload :class:`Knob`, examples :data:`KNOBS`) and ``tap`` (no
    payload): each with several sources, a target or none (internal, the only kind allowed
    from ``end``), roles, guards from a pool (some read the command) plus a guard of its own
    (so rows sharing a key are told apart), an update that may read the command, effects; and
    maybe an unguarded fallback row last. The context is :class:`Tally`, the invariant
    :func:`tally_is_sane`."""
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
                update=draw(st.sampled_from([None, _bump, record_the_actor, note_the_time])),
                effects=draw(st.sampled_from([[], [Effect("poked")], [Effect("built", _build)]])),
                examples=KNOBS if event == "poke" else [],
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
                update=record_the_actor,
                examples=KNOBS if event == "poke" else [],
            )
        )
    return Spec(
        name="small",
        version=1,
        context=Tally,
        initial="s0",
        states=STATES,
        final=["end"],
        transitions=[*BACKBONE, *rows],
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


@st.composite
def plausible_commands(draw: st.DrawFn, spec: Spec, snapshot: Snapshot) -> Command:
    """For a small spec, mostly a command that reaches the rows of its key (an allowed
    event, a knob payload, no expected version) from one of two actors with some of the
    roles, at some time or none; sometimes anything :func:`commands` makes."""
    if draw(st.integers(0, 3)) == 0:
        return draw(commands(spec, snapshot))
    allowed = spec.allowed_events(snapshot.state)
    rows = [e for e in allowed if e in ("poke", "tap")]
    if rows and draw(st.integers(0, 4)):
        event = draw(st.sampled_from(rows))  # the random rows, mostly
    else:
        event = draw(st.sampled_from(allowed or sorted(spec.events)))
    knobs = st.sampled_from(KNOBS)
    payload = draw(knobs.map(unstructure) | knobs) if event == "poke" else None
    roles = st.lists(st.sampled_from(["a", "b"]), max_size=2)
    actor = draw(st.none() | st.builds(Actor, st.sampled_from(["ann", "bob"]), roles))
    at = draw(st.none() | st.sampled_from(TIMES))
    return Command(event, payload, actor=actor, at=at)
