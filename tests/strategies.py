"""Hypothesis strategies shared by the test suite.

- :func:`small_specs`: small valid specs that reach every kind of decision: rows sharing
  ``(state, event)`` with mixed roles and guards, guards and updates that read the command
  (its actor, its time), internal transitions from several sources and from a final state,
  guards that raise or answer a non-bool, updates that raise or return the wrong type, an
  invariant that raises or breaks, effects that raise or build data that is not a mapping or
  not plain;
- :func:`commands` (anything, junk included) and :func:`plausible_commands` (mostly commands
  that reach the rows of their key) for a snapshot of a spec.
- :func:`supported_types`: type annotations the codec supports, as written in payload and
  context classes (scalars, enums, ``Literal``, unions in both spellings, tuples, lists,
  frozensets, str-keyed mappings, attrs classes built on the fly, a self-referencing class),
  each with a factory of a valid value for use as a field default.
- :func:`unsupported_types`: annotations the codec refuses, bare or buried inside supported
  ones.

The supported types are the ones whose values read back equal from their plain form: no
``Literal`` of enum members or floats, no frozenset of lists, and union members a value
cannot move between on the way back (scalars first, at most one container, last).
"""

from __future__ import annotations

import enum
import functools
import itertools
import operator
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

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
    "TypeCase",
    "another_actor",
    "before_the_hour",
    "commands",
    "knob_guard",
    "note_the_time",
    "plausible_commands",
    "record_the_actor",
    "small_specs",
    "supported_types",
    "tally_is_sane",
    "unsupported_types",
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


# --- type annotations -------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Flag(enum.Enum):
    ON = True
    OFF = 0


@attrs.frozen
class Node:
    """A class that refers to itself, directly and through a container."""

    value: int
    child: Node | None = None
    children: tuple[Node, ...] = ()


@attrs.frozen
class TypeCase:
    """A supported annotation and how to make a valid value of it (``None``: no default)."""

    tp: object
    zero: Callable[[], object] | None
    hashable: bool
    """Whether its structured values are hashable (so it may go in a frozenset)."""

    def __repr__(self) -> str:
        return f"TypeCase({_show(self.tp)})"


def _show(tp: object) -> str:
    if attrs.has(tp) and isinstance(tp, type) and tp is not Node:
        inner = ", ".join(f"{a.name}: {_show(a.type)}" for a in attrs.fields(tp))
        return f"{tp.__name__}({inner})"
    if isinstance(tp, type):
        return tp.__qualname__
    return repr(tp).replace("typing.", "")


def _const(value: object) -> Callable[[], object]:
    return lambda: value


_SCALARS = [
    TypeCase(int, _const(0), True),
    TypeCase(float, _const(0.0), True),
    TypeCase(str, _const(""), True),
    TypeCase(bool, _const(False), True),
    TypeCase(type(None), _const(None), True),
    TypeCase(None, _const(None), True),
    TypeCase(Any, _const(None), False),
    TypeCase(object, _const(None), False),
    TypeCase(Color, _const(Color.RED), True),
    TypeCase(Level, _const(Level.LOW), True),
    TypeCase(Flag, _const(Flag.ON), True),
]

_CHOICES = st.lists(
    st.sampled_from(["a", "b", "", 0, 1, -7, 2**40, True, False, None]),
    min_size=1,
    max_size=4,
    unique_by=lambda c: (type(c), c),
)


def _literal(choices: list[object]) -> TypeCase:
    return TypeCase(Literal[tuple(choices)], _const(choices[0]), True)


_LEAVES = st.sampled_from(_SCALARS) | _CHOICES.map(_literal)
_NODE = TypeCase(Node, None, True)


def _either(types: list[object], spelling: int) -> object:
    """The union of ``types``, as ``typing.Union[...]`` (1) or with ``|`` (0)."""
    if spelling:
        return typing.Union[tuple(types)]  # noqa: UP007
    return functools.reduce(operator.or_, [type(None) if t is None else t for t in types])


def _optional(inner: TypeCase, spelling: int) -> TypeCase:
    return TypeCase(_either([inner.tp, None], spelling), _const(None), inner.hashable)


def _union(members: list[TypeCase], last: TypeCase | None, spelling: int) -> TypeCase:
    everything = [*members, *([last] if last is not None else [])]
    tp = _either([m.tp for m in everything], spelling)
    return TypeCase(tp, everything[0].zero, all(m.hashable for m in everything))


def _sequence(item: TypeCase, kind: int) -> TypeCase:
    if kind == 0:
        return TypeCase(tuple[item.tp, ...], _const(()), item.hashable)  # type: ignore[name-defined]
    if kind == 1:
        return TypeCase(typing.Tuple[item.tp, ...], _const(()), item.hashable)  # noqa: UP006
    if kind == 2:
        return TypeCase(list[item.tp], list, False)  # type: ignore[name-defined]
    return TypeCase(typing.List[item.tp], list, False)  # noqa: UP006


def _frozenset(item: TypeCase, spelling: int) -> TypeCase:
    tp = typing.FrozenSet[item.tp] if spelling else frozenset[item.tp]  # type: ignore[name-defined]  # noqa: UP006
    return TypeCase(tp, frozenset, True)


def _fixed_tuple(items: list[TypeCase]) -> TypeCase:
    if not items:
        return TypeCase(tuple[()], _const(()), True)
    tp = tuple.__class_getitem__(tuple(i.tp for i in items))
    zeros = [i.zero for i in items]
    zero = None if any(z is None for z in zeros) else (lambda: tuple(z() for z in zeros))  # type: ignore[misc]
    return TypeCase(tp, zero, all(i.hashable for i in items))


def _mapping(value: TypeCase, kind: int) -> TypeCase:
    origin: Any = (dict, Mapping, typing.Dict)[kind]  # noqa: UP006
    return TypeCase(origin[str, value.tp], dict, False)


_class_names = itertools.count()


def _attrs_class(fields: list[tuple[TypeCase, bool, bool]]) -> TypeCase:
    """An attrs class with one field per ``(type, wants a default, private name)``: fields
    without a usable default come first, as attrs requires."""
    required = [(c, p) for c, d, p in fields if not d or c.zero is None]
    optional = [(c, p) for c, d, p in fields if d and c.zero is not None]
    these: dict[str, Any] = {}
    # (a field annotated None is one annotated NoneType: attrs takes type=None for "none")
    for i, (case, private) in enumerate(required):
        tp = type(None) if case.tp is None else case.tp
        these[f"{'_' if private else ''}r{i}"] = attrs.field(type=tp)
    for i, (case, private) in enumerate(optional):
        assert case.zero is not None
        tp = type(None) if case.tp is None else case.tp
        these[f"{'_' if private else ''}o{i}"] = attrs.field(
            type=tp, default=attrs.Factory(case.zero)
        )
    cls = attrs.make_class(f"Generated{next(_class_names)}", these, frozen=True)
    zero = (lambda: cls()) if not required else None
    return TypeCase(cls, zero, all(c.hashable for c, _ in [*required, *optional]))


def _extend(children: st.SearchStrategy[TypeCase]) -> st.SearchStrategy[TypeCase]:
    hashable = children.filter(lambda c: c.hashable)
    return st.one_of(
        st.builds(_optional, children, st.integers(0, 1)),
        st.builds(
            _union,
            st.lists(_LEAVES, min_size=1, max_size=3),
            st.none() | children,
            st.integers(0, 1),
        ),
        st.builds(_sequence, children, st.integers(0, 3)),
        st.builds(_frozenset, hashable, st.integers(0, 1)),
        st.builds(_fixed_tuple, st.lists(children, max_size=3)),
        st.builds(_mapping, children, st.integers(0, 2)),
        st.builds(
            _attrs_class,
            st.lists(st.tuples(children, st.booleans(), st.booleans()), max_size=4),
        ),
    )


def supported_types() -> st.SearchStrategy[TypeCase]:
    """Annotations the codec supports, nested a few levels deep."""
    return st.recursive(_LEAVES | st.just(_NODE), _extend, max_leaves=6)


# --- what the codec refuses ------------------------------------------------------------


class NotAttrs:
    """A plain class: the codec cannot know its fields."""


_REFUSED: list[object] = [
    complex,
    bytes,
    set[int],
    dict[int, str],
    NotAttrs,
    type,
    typing.Callable[[int], int],
    typing.NewType("UserId", int),
    "NoSuchType",  # a forward reference that resolves to nothing
]


def _bury(refused: object, where: int) -> object:
    if where == 0:
        return refused
    if where == 1:
        return list[refused]  # type: ignore[valid-type]
    if where == 2:
        return typing.Optional[refused]  # noqa: UP045
    if where == 3:
        return tuple[int, refused]  # type: ignore[valid-type]
    if where == 4:
        return dict[str, refused]  # type: ignore[valid-type]
    return attrs.make_class(
        f"Refusing{next(_class_names)}",
        {"ok": attrs.field(type=int), "bad": attrs.field(type=refused)},
        frozen=True,
    )


def unsupported_types() -> st.SearchStrategy[object]:
    """Annotations the codec refuses: an unsupported type, bare or inside a supported one."""
    return st.builds(_bury, st.sampled_from(_REFUSED), st.integers(0, 5))
