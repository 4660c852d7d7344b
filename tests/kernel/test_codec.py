"""The strict codec: what it accepts, what it refuses, and exact round trips."""

from __future__ import annotations

import enum
import math
from typing import Any, Literal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from statekernel.kernel import PayloadError, UnsupportedType, structurer_for, unstructure


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Inner:
    n: int
    label: str | None = None


@attrs.frozen
class Outer:
    inner: Inner
    items: tuple[Inner, ...] = ()
    pair: tuple[int, str] = (0, "")
    mode: Literal["a", "b"] = "a"
    color: Color = Color.RED
    ratio: float = 0.0
    flag: bool = False
    tags: frozenset[str] = frozenset()
    extra: dict[str, int] = attrs.field(factory=dict)
    names: list[str] = attrs.field(factory=list)
    anything: Any = None


@attrs.frozen
class Node:
    value: int
    child: Node | None = None


def fails(tp: object, value: object) -> PayloadError:
    with pytest.raises(PayloadError) as info:
        structurer_for(tp)(value)
    return info.value


def test_nested_structure() -> None:
    data = {
        "inner": {"n": 1},
        "items": [{"n": 2, "label": "x"}],
        "pair": [3, "y"],
        "mode": "b",
        "color": "blue",
        "ratio": 2,
        "flag": True,
        "tags": ["b", "a"],
        "extra": {"k": 1},
        "names": ("p",),
        "anything": [1, {"x": None}],
    }
    out = structurer_for(Outer)(data)
    assert out == Outer(
        Inner(1),
        (Inner(2, "x"),),
        (3, "y"),
        "b",
        Color.BLUE,
        2.0,
        True,
        frozenset({"a", "b"}),
        {"k": 1},
        ["p"],
        [1, {"x": None}],
    )
    assert type(out.items) is tuple and type(out.ratio) is float
    assert structurer_for(Outer)(unstructure(out)) == out


def test_self_referencing_class() -> None:
    value = structurer_for(Node)({"value": 1, "child": {"value": 2}})
    assert value == Node(1, Node(2))


@pytest.mark.parametrize(
    ("tp", "value", "needle"),
    [
        (int, True, "got bool"),
        (int, 1.0, "expected int"),
        (int, "1", "expected int"),
        (float, math.nan, "finite"),
        (float, math.inf, "finite"),
        (float, -math.inf, "finite"),
        (float, False, "expected float"),
        (float, 10**400, "finite"),
        (str, 1, "expected str"),
        (bool, 1, "expected bool"),
        (bool, "true", "expected bool"),
        (Literal["a", "b"], "c", "one of"),
        (Literal[1], True, "one of"),
        (Color, "green", "one of"),
        (tuple[int, str], [1], "expected 2 items"),
        (tuple[int, ...], "12", "expected tuple"),
        (dict[str, int], {"a": "b"}, "expected int"),
        (dict[str, int], [], "expected an object"),
        (int | None, "x", "expected int"),
        (int | str, 1.5, "expected int | str"),
        (frozenset[Any], [[1], [2]], "hashable"),
        (frozenset[dict[str, int]], [{"a": 1}], "hashable"),
    ],
)
def test_refusals(tp: object, value: object, needle: str) -> None:
    assert needle in fails(tp, value).reason


def test_error_paths_name_the_field() -> None:
    assert fails(Outer, {"inner": {"n": "x"}}).field == "inner.n"
    assert fails(Outer, {"inner": {"n": 1}, "items": [{"n": 1}, {}]}).field == "items.1.n"
    assert fails(Outer, {"inner": {"n": 1}, "extra": {"k": None}}).field == "extra.k"
    err = fails(Outer, {"inner": {"n": 1}, "bogus": 1})
    assert (err.field, err.reason) == ("bogus", "unknown field")
    err = fails(Outer, {})
    assert (err.field, err.reason) == ("inner", "missing")


def test_unsupported_types_fail_at_compile_time() -> None:
    with pytest.raises(UnsupportedType):
        structurer_for(complex)
    with pytest.raises(UnsupportedType):
        structurer_for(dict[int, str])


def test_instances_are_revalidated() -> None:
    bad = Inner("not an int")  # type: ignore[arg-type]
    assert fails(Inner, bad).field == "n"
    good = Outer(Inner(1), items=[Inner(2)])  # type: ignore[arg-type]
    assert structurer_for(Outer)(good).items == (Inner(2),)


def test_unstructure_plain_values() -> None:
    assert unstructure(Color.BLUE) == "blue"
    assert unstructure(frozenset({"b", "a"})) == ["a", "b"]
    assert unstructure((1, (2,))) == [1, [2]]
    with pytest.raises(UnsupportedType):
        unstructure(object())


inners = st.builds(Inner, st.integers(), st.none() | st.text())
outers = st.builds(
    Outer,
    inners,
    st.lists(inners, max_size=3).map(tuple),
    st.tuples(st.integers(min_value=-(2**80), max_value=2**80), st.text()),
    st.sampled_from(["a", "b"]),
    st.sampled_from(Color),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.frozensets(st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    st.lists(st.text(max_size=3), max_size=3),
    st.none() | st.integers() | st.text(),
)


@given(outers)
def test_round_trip_is_exact(value: Outer) -> None:
    assert structurer_for(Outer)(unstructure(value)) == value


def test_unions_in_another_order_are_other_types() -> None:
    # int | float == float | int, but the first member that fits wins
    assert type(structurer_for(float | int)(3)) is float
    assert type(structurer_for(int | float)(3)) is int
    assert structurer_for(list[float | int])([3]) == [3.0]
    assert type(structurer_for(list[int | float])([3])[0]) is int
