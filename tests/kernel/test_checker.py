"""The compiled context checker (``checker_for``) against the round trip it stands in for.

A checker must pass exactly the values that read back equal from their plain form,
``structurer_for(tp)(unstructure(value)) == value``, and report the same failure the round
trip would: a differential test over many types and values, valid and tricky, plus the
subtle cases spelled out.
"""

from __future__ import annotations

import enum
import itertools
import math
import tracemalloc
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statekernel.kernel import (
    PayloadError,
    Spec,
    Transition,
    UnsupportedType,
    checker_for,
    structurer_for,
    unstructure,
)

# --- the reference: the round trip itself -------------------------------------------------


def round_trip(tp: object, value: object) -> tuple[str, PayloadError | None]:
    """``("equal", None)``, ``("unequal", None)``, ``("not plain", None)`` or
    ``("payload", error)``: what storing and reading back ``value`` as a ``tp`` does."""
    try:
        plain = unstructure(value)
    except UnsupportedType:
        return "not plain", None
    try:
        back = structurer_for(tp)(plain)
    except PayloadError as exc:
        return "payload", exc
    # ``==`` as attrs compares a field (``back != ctx`` on a whole context is ``not ==``)
    return ("equal" if back == value else "unequal"), None


def check(tp: object, value: object) -> PayloadError | None:
    try:
        checker_for(tp)(value)
    except PayloadError as exc:
        return exc
    return None


# --- types ------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Num(enum.IntEnum):
    ONE = 1
    TWO = 2


class Shade(enum.StrEnum):
    DARK = "dark"
    BLUE = "blue"  # the same value as Color.BLUE


class Odd(enum.Enum):
    PAIR = (1, 2)  # a tuple comes back as a list, which matches no member
    PLAIN = 3
    FLAG = True


@attrs.frozen
class Point:
    x: int = 0
    y: float = 0.0


@attrs.frozen
class Other:  # the same fields as Point: a union of the two is ambiguous
    x: int = 0
    y: float = 0.0


@attrs.frozen
class SubPoint(Point):
    pass


class BarePoint(Point):  # a subclass that attrs never saw
    pass


@attrs.frozen
class Node:
    value: int = 0
    children: tuple[Node, ...] = ()


@attrs.frozen
class Box:
    p: Point = Point()
    tags: Any = None
    opt: int | None = None
    items: tuple[Point, ...] = ()
    choice: Literal["a", "b", 1, True] = "a"
    color: Color = Color.RED
    num: float | int = 0.0
    names: frozenset[str] = frozenset()
    table: dict[str, int] = attrs.Factory(dict)
    _hidden: str = ""  # aliased "hidden"


@attrs.frozen
class Validated:
    x: int = attrs.field(default=0, validator=attrs.validators.instance_of(int))


@attrs.frozen
class Converted:
    x: int = attrs.field(default=0, converter=lambda v: v)


@attrs.frozen
class Unseen:
    x: int = 0
    note: Any = attrs.field(default=None, eq=False)  # not compared: only has to structure


@attrs.frozen(eq=False)
class Identity:  # compared by identity: never reads back equal
    x: int = 0


class MyInt(int):
    pass


class MyStr(str):
    pass


class MyFloat(float):
    pass


class NeverEqual(int):
    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = int.__hash__


TYPES: list[object] = [
    int,
    float,
    str,
    bool,
    None,
    Any,
    Literal["a", "b", 1, True],
    Literal[1.5, "x"],
    Literal[Color.RED, "red"],
    Color,
    Num,
    Shade,
    Odd,
    int | None,
    float | int,
    int | float,
    str | int | None,
    Point | Other,
    Point | None,
    int | Any,
    Num | int,
    Literal["a"] | str,
    tuple[int, ...],
    tuple[int, str],
    tuple[()],
    tuple[float | None, ...],
    list[float],
    list[Any],
    frozenset[int],
    frozenset[Any],
    dict[str, int],
    dict[str, Any],
    Mapping[str, Point],
    Point,
    Node,
    Box,
    Validated,
    Converted,
    Unseen,
    Identity,
]

_nan_box = float("nan")
TRICKY: list[object] = [
    True,
    False,
    0,
    1,
    -1,
    2**53 + 1,
    2**63,
    10**400,
    1.0,
    -0.0,
    1.5,
    2.0**60,
    _nan_box,
    math.inf,
    -math.inf,
    "",
    "a",
    "red",
    "blue",
    MyInt(1),
    MyStr("a"),
    MyFloat(1.5),
    MyFloat("nan"),
    NeverEqual(3),
    None,
    (),
    [],
    {},
    frozenset(),
    set(),
    (1,),
    [1],
    (1, "a"),
    [1, "a"],
    {"a": 1},
    {1: 1},
    {MyStr("a"): 1},
    {"a": (1,)},
    frozenset({1, 2}),
    {1, 2},
    object(),
    Color.RED,
    Color.BLUE,
    Num.ONE,
    Shade.DARK,
    Shade.BLUE,
    Odd.PAIR,
    Odd.PLAIN,
    Odd.FLAG,
    Point(),
    Point(1, 2),
    Other(),
    SubPoint(),
    BarePoint(),
    Point(True, 1.0),  # type: ignore[arg-type]
    Point(1, 1),  # type: ignore[arg-type]
    Node(1, (Node(2),)),
    Identity(),
]
tricky = st.sampled_from(TRICKY)


def _hashable(v: object) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3) | tricky,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=2) | tricky.filter(_hashable), inner, max_size=3)
    ),
    max_leaves=8,
)


def _build(cls: type, kwargs: dict[str, object]) -> object:
    try:
        return cls(**kwargs)
    except Exception:
        return cls()


def values(tp: object) -> st.SearchStrategy[object]:
    """Mostly values of ``tp`` (so the fast path is exercised), some nearly so, some not."""
    return st.one_of(_values(tp), _values(tp), tricky, plain)


def _values(tp: object) -> st.SearchStrategy[object]:
    if tp is int:
        return st.integers() | st.integers().map(MyInt)
    if tp is float:
        return st.floats() | st.integers()
    if tp is str:
        return st.text(max_size=4) | st.text(max_size=2).map(MyStr)
    if tp is bool:
        return st.booleans()
    if tp is None or tp is type(None):
        return st.none()
    if tp is Any:
        return plain
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if isinstance(tp, type) and attrs.has(tp):
        fields = {
            a.alias: st.deferred(lambda t=t: values(t))  # type: ignore[misc]
            for a, t in zip(attrs.fields(tp), typing.get_type_hints(tp).values(), strict=True)
        }
        built = st.fixed_dictionaries({}, optional=fields).map(lambda kw: _build(tp, kw))
        return built | st.builds(SubPoint) | st.builds(BarePoint)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([values(a) for a in args])
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            items = st.lists(values(args[0]), max_size=3)
            return items.map(tuple) | items
        if args == ((),):
            return st.just(())
        fixed = st.tuples(*(values(a) for a in args))
        return fixed | fixed.map(list)
    if origin is list:
        items = st.lists(values(args[0]), max_size=3)
        return items | items.map(tuple)
    if origin is frozenset:
        items = st.lists(values(args[0]), max_size=3).map(
            lambda xs: [x for x in xs if _hashable(x)]
        )
        return items.map(frozenset) | items.map(set) | items
    if origin in (dict, Mapping):
        keys = st.text(max_size=2) | st.sampled_from(["a", MyStr("a"), 1])
        return st.dictionaries(keys, values(args[1]), max_size=3)
    raise AssertionError(tp)


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_checker_passes_exactly_what_reads_back_equal(data: st.DataObject) -> None:
    tp = data.draw(st.sampled_from(TYPES), label="type")
    value = data.draw(values(tp), label="value")
    outcome, expected = round_trip(tp, value)
    got = check(tp, value)
    if outcome == "equal":
        assert got is None
        return
    assert got is not None, f"{value!r} passed but {outcome}"
    # and it says what the round trip would have said, naming the field
    if outcome == "payload":
        assert expected is not None
        assert (got.path, got.reason) == (expected.path, expected.reason)
    elif outcome == "not plain":
        assert "not plain data" in got.reason
    else:
        assert "does not read back equal" in got.reason


# --- the subtle cases, spelled out ------------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "value", "passes"),
    [
        (int, 1, True),
        (int, True, False),  # a bool is not an int, even though True == 1
        (int, 10**400, True),  # ints of any size store as they are
        (int, MyInt(7), True),  # reads back as int 7, which is equal
        (int, NeverEqual(7), False),  # reads back as int 7, which it says is not equal
        (Box, Box(opt=NeverEqual(7)), False),
        (int, Num.ONE, True),  # an IntEnum member reads back as 1, and Num.ONE == 1
        (float, 1.5, True),
        (float, 1, True),  # reads back as 1.0, and 1.0 == 1: the round trip holds
        (float, 2**53, True),
        (float, 2**53 + 1, False),  # reads back as 2.0**53, which is not equal
        (float, 10**400, False),  # beyond the float range
        (float, math.nan, False),
        (float, -math.inf, False),
        (float, False, False),
        (float, MyFloat(2.5), True),
        (str, "a", True),
        (str, MyStr("a"), True),
        (Literal["a", 1], "a", True),
        (Literal["a", 1], True, False),  # True == 1 but is no Literal 1
        (Literal[Color.RED], Color.RED, False),  # comes back as "red", no such choice
        (Color, Color.RED, True),
        (Color, "red", False),
        (Shade, Shade.BLUE, True),
        (Shade, Color.BLUE, False),  # "blue" -> Shade.BLUE, which is not Color.BLUE
        (Color, Shade.BLUE, False),
        (Shade, MyStr("blue"), True),  # comes back as Shade.BLUE == "blue"
        (Odd, Odd.PLAIN, True),
        (Odd, Odd.PAIR, False),  # its value (1, 2) comes back as [1, 2]
        (Any, [1, "a", None, 1.5, {"k": [True]}], True),
        (Any, (1, 2), False),  # comes back as a list
        (Any, {"a": (1,)}, False),
        (Any, {1: "a"}, False),  # the key comes back as "1"
        (Any, frozenset({1}), False),
        (Any, Color.RED, False),  # comes back as "red"
        (Any, Num.ONE, True),  # comes back as 1, and Num.ONE == 1
        (Any, [math.nan], False),
        (Any, Point(), False),  # comes back as a dict
        (float | int, 3, True),  # comes back as 3.0 == 3
        (float | int, 2**60 + 1, False),  # comes back as a float that is not equal
        (int | float, 2**60 + 1, True),
        (Point | Other, Point(), True),
        (Point | Other, Other(), False),  # its fields structure as a Point first
        (tuple[int, ...], (1, 2), True),
        (tuple[int, ...], [1, 2], False),  # comes back as a tuple
        (list[float], [1.0], True),
        (list[float], (1.0,), False),
        (frozenset[int], frozenset({1}), True),
        (frozenset[int], {1}, True),  # comes back as frozenset({1}) == {1}
        (frozenset[Any], frozenset({(1,)}), False),  # [1] cannot go in a frozenset
        (dict[str, int], {"a": 1}, True),
        (dict[str, int], {MyStr("a"): 1}, True),
        (dict[str, int], {1: 1}, False),
        (Point, Point(1, 2.0), True),
        (Point, Point(1, 2), True),  # type: ignore[arg-type]
        (Point, SubPoint(1, 2.0), False),  # comes back as a Point; attrs compares classes
        (Point, BarePoint(1, 2.0), False),
        (Point, {"x": 1, "y": 2.0}, False),
        (Node, Node(1, (Node(2, (Node(3),)),)), True),
        (Node, Node(1, (Node(2, [Node(3)]),)), False),  # type: ignore[arg-type]
        (Validated, Validated(1), True),
        (Converted, Converted(1), True),
        (Unseen, Unseen(1, note=(1,)), True),  # note is not compared
        (Unseen, Unseen(1, note=object()), False),  # but has to be stored
        (Identity, Identity(), False),
    ],
)
def test_subtle_cases(tp: object, value: object, passes: bool) -> None:
    assert (round_trip(tp, value)[0] == "equal") is passes
    assert (check(tp, value) is None) is passes


def test_errors_name_the_field() -> None:
    err = check(Box, Box(items=(Point(), Point(1, math.inf))))
    assert err is not None and err.field == "items.1.y" and "finite" in err.reason
    err = check(Box, Box(tags={"a": [1, (2,)]}))
    assert err is not None and err.field == "tags.a.1"
    assert "tuple (2,) does not read back equal" in err.reason
    err = check(Box, Box(hidden=MyStr("x"), opt="1"))  # type: ignore[arg-type]
    assert err is not None and (err.field, err.reason) == ("opt", "expected int, got str '1'")


def test_failures_are_reported_in_the_round_trips_order() -> None:
    # no plain form anywhere, then a field that does not structure, then an unequal copy
    box = Box(tags=(1,), opt="1", names=frozenset({object()}))  # type: ignore[arg-type]
    err = check(Box, box)
    assert err is not None and err.field == "names" and "not plain data" in err.reason
    err = check(Box, attrs.evolve(box, names=frozenset()))
    assert err is not None and err.field == "opt"
    err = check(Box, attrs.evolve(box, names=frozenset(), opt=None))
    assert err is not None and err.field == "tags"


def test_unsupported_types_are_refused_like_the_structurer() -> None:
    with pytest.raises(UnsupportedType):
        checker_for(set[int])


@attrs.frozen
class Scalars:
    p: Point = Point()
    opt: int | None = None
    choice: Literal["a", "b", 1, True] = "a"
    color: Color = Color.RED
    num: float | int = 0.0
    tags: Any = None
    name: str = ""


def test_the_fast_path_allocates_nothing() -> None:
    # (walking a container takes an iterator; nothing else is built)
    fn = checker_for(Scalars)
    value = Scalars(Point(1, 2.5), 3, True, Color.BLUE, 7.5, "t", "n")
    fn(value)
    tracemalloc.start()
    try:
        calls = itertools.repeat(value, 1000)
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for v in calls:
            fn(v)
        assert tracemalloc.get_traced_memory()[1] == before
    finally:
        tracemalloc.stop()


def test_context_problem_uses_it_and_keeps_the_round_trip_for_subclasses() -> None:
    spec = Spec(
        name="boxes",
        version=1,
        context=Box,
        initial="a",
        states=["a", "b"],
        final=["b"],
        transitions=[Transition("end", "a", "b")],
    )
    assert spec.context_problem(Box()) is None
    assert spec.context_problem(Box(num=1)) is None
    assert spec.context_problem(Box(opt=True)) == "field 'opt': expected int, got bool True"
    problem = spec.context_problem(Box(tags=(1,)))
    assert problem is not None and problem.startswith("field 'tags': tuple (1,) does not read")

    @attrs.frozen
    class SubBox(Box):
        pass

    assert spec.context_problem(SubBox()) == (
        "it does not read back equal from plain data (check fields typed Any)"
    )
    assert spec.context_problem(Point()) == "it is a Point, not a Box"
