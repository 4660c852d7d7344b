"""Hypothesis strategies shared by the test suite.

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
from typing import Any, Literal

import attrs
from hypothesis import strategies as st

__all__ = ["TypeCase", "supported_types", "unsupported_types"]


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
