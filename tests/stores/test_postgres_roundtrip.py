"""Property: whatever a context or payload holds comes back from PostgreSQL equal, or is
refused with StoreDataError (strings with NUL, which PostgreSQL cannot store) writing nothing.
"""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statekernel.adapters.errors import StoreDataError
from statekernel.adapters.postgres import PostgresStore
from statekernel.kernel import Accepted, Command, Spec, Transition, unstructure

from .pgutil import fresh_pg_schema, raw_counts


@attrs.frozen
class Item:
    n: int
    x: float
    name: str | None = None


@attrs.frozen
class Box:
    items: tuple[Item, ...] = ()
    pair: tuple[int, str] | None = None
    tags: frozenset[str] = frozenset()
    counts: dict[str, int] = attrs.field(factory=dict)
    big: int = 0
    note: str | None = None
    flag: bool = False
    raw: Any = None


@attrs.frozen
class Put:
    box: Box


SPEC = Spec(
    name="boxes",
    version=1,
    context=Box,
    initial="open",
    states=["open"],
    transitions=[Transition("put", "open", "open", payload=Put, update=lambda c, p: p.box)],
)

ints = st.one_of(
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**63 + 2),
    st.integers(min_value=-(2**300), max_value=2**300),
)
floats = st.floats(allow_nan=False, allow_infinity=False)
texts = st.text(max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | ints | floats | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
boxes = st.builds(
    Box,
    items=st.lists(st.builds(Item, ints, floats, st.none() | texts), max_size=3).map(tuple),
    pair=st.none() | st.tuples(ints, texts),
    tags=st.frozensets(texts, max_size=3),
    counts=st.dictionaries(texts, ints, max_size=3),
    big=ints,
    note=st.none() | texts,
    flag=st.booleans(),
    raw=json_values,
)


def typed(data: Any) -> Any:
    """``data`` with every scalar tagged by its type, so ``1`` and ``1.0`` differ (``-0.0``
    and ``0.0`` do not: jsonb keeps no negative zero)."""
    if isinstance(data, bool) or data is None or isinstance(data, str):
        return (type(data).__name__, data)
    if isinstance(data, int):
        return ("int", data)
    if isinstance(data, float):
        return ("float", data + 0.0)
    if isinstance(data, list):
        return ("list", [typed(v) for v in data])
    return ("dict", sorted((k, typed(v)) for k, v in data.items()))


def holds_nul(data: Any) -> bool:
    if isinstance(data, str):
        return "\x00" in data
    if isinstance(data, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in data.items())
    if isinstance(data, list):
        return any(holds_nul(v) for v in data)
    return False


def test_contexts_and_payloads_round_trip(request: pytest.FixtureRequest) -> None:
    dsn, schema = fresh_pg_schema(request)
    store = PostgresStore(SPEC, dsn, schema=schema)
    request.addfinalizer(store.close)
    names = (f"e{i}" for i in itertools.count())

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(box=boxes, as_instance=st.booleans())
    def check(box: Box, as_instance: bool) -> None:
        entity = next(names)
        payload = Put(box) if as_instance else {"box": unstructure(box)}
        command = Command("put", payload)
        if holds_nul(unstructure(box)):
            with pytest.raises(StoreDataError, match="NUL"):
                store.handle(entity, command, idempotency_key=entity)
            assert raw_counts(dsn, schema, entity, entity) == {
                "version": None,
                "audit": 0,
                "outbox": 0,
                "keys": 0,
            }
            return
        first = store.handle(entity, command, idempotency_key=entity)
        assert isinstance(first, Accepted)
        got = store.get(entity).context
        assert got == box
        assert typed(unstructure(got)) == typed(unstructure(box))
        (record,) = store.history(entity)
        assert record.payload == Put(box)
        assert record == first.record
        # the remembered answer (stored as jsonb too) comes back equal
        assert store.handle(entity, command, idempotency_key=entity) == first

    check()
