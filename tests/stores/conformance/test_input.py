"""What a caller hands a store, the same on every store: a malformed argument or command is a
typed error (:class:`InvalidArgument`, both a ``TypeError`` and a ``ValueError``), a payload
that is not plain data within bounds is a rejection (``invalid_payload``), and neither writes
anything, not even under the idempotency key."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import attrs
import pytest

from statekernel.kernel import (
    MAX_INT_DIGITS,
    MAX_PAYLOAD_DEPTH,
    Actor,
    Command,
    InvalidArgument,
    InvalidCommand,
    Rejected,
    Spec,
    Transition,
)

from ..ledger import SPEC


def deposit(cents: int = 1, **payload: Any) -> Command:
    return Command("deposit", {"amount": {"cents": cents}, **payload})


def everything(store: Any) -> tuple[Any, ...]:
    return store.get("a"), list(store.history("a")), list(store.outbox()), store.entities()


def assert_key_is_free(store: Any, key: str) -> None:
    """Nothing was kept under ``key``: a fresh request under it runs as new."""
    assert store.handle("probe", deposit(1), idempotency_key=key).replayed is False


class Shouting:
    """A value whose repr raises (and which is not plain data)."""

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


BAD_COMMANDS = {
    "at as text": attrs.evolve(deposit(), at="2020-01-01"),
    "at as a number": attrs.evolve(deposit(), at=5),
    "at as a date": attrs.evolve(deposit(), at=date(2020, 1, 1)),
    "actor as text": attrs.evolve(deposit(), actor="ann"),
    "actor id as bytes": attrs.evolve(deposit(), actor=Actor(b"ann")),  # type: ignore[arg-type]
    "empty actor id": attrs.evolve(deposit(), actor=Actor("")),
    "long actor id": attrs.evolve(deposit(), actor=Actor("x" * 256)),
    "mixed-type roles": Command("freeze", actor=Actor("ann", roles=["auditor", 1])),  # type: ignore[list-item]
    "expected_version nan": attrs.evolve(deposit(), expected_version=math.nan),
    "expected_version a tuple": attrs.evolve(deposit(), expected_version=(1,)),
    "expected_version a bool": attrs.evolve(deposit(), expected_version=True),
    "expected_version as text": attrs.evolve(deposit(), expected_version="0"),
    "expected_version too long": attrs.evolve(deposit(), expected_version=10**5000),
    "expected_version past 64 bits": attrs.evolve(deposit(), expected_version=2**63),
    "event as a number": Command(5),  # type: ignore[arg-type]
    "event too long": Command("x" * 256),
}


@pytest.mark.parametrize("case", sorted(BAD_COMMANDS))
@pytest.mark.parametrize("key", [None, "k"])
def test_a_malformed_command_is_invalid_command_and_writes_nothing(
    make_store: Any, case: str, key: str | None
) -> None:
    """The envelope of a command is the calling code's: a malformed one raises
    ``InvalidCommand`` on every store (it used to be a raw AttributeError, TypeError or
    ValueError on some stores and accepted by the memory store), before anything is written."""
    store = make_store(SPEC)
    store.handle("a", deposit(5))
    before = everything(store)
    with pytest.raises(InvalidCommand) as caught:
        store.handle("a", BAD_COMMANDS[case], idempotency_key=key)
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValueError)
    assert everything(store) == before
    with pytest.raises(InvalidCommand):
        store.handle_many([("a", deposit(1), None), ("a", BAD_COMMANDS[case], key)])
    assert everything(store) == before  # the batch rolled back as a whole
    if key is not None:
        assert_key_is_free(store, key)


@pytest.mark.parametrize("bad", ["deposit", None, {"event": "deposit"}, deposit])
def test_a_command_that_is_not_a_command_is_invalid_command(make_store: Any, bad: Any) -> None:
    store = make_store(SPEC)
    with pytest.raises(InvalidCommand, match="must be a Command"):
        store.handle("a", bad)
    with pytest.raises(InvalidCommand, match="must be a Command"):
        store.handle_many([("a", bad, None)])
    assert store.entities() == []


def test_a_well_formed_envelope_is_accepted_alike(make_store: Any) -> None:
    """What the checks let through: naive and aware times, any text as an actor id, a
    ``StrEnum``-like event, negative and 64-bit expected versions (stale, so rejected)."""
    store = make_store(SPEC)
    assert store.handle("a", attrs.evolve(deposit(), at=datetime(2020, 1, 1))).accepted
    assert store.handle("a", attrs.evolve(deposit(), at=datetime(2020, 1, 1, tzinfo=UTC))).accepted
    assert store.handle("a", attrs.evolve(deposit(), actor=Actor("é ann"))).accepted
    for stale in (-1, 2**63 - 1, -(2**63)):
        d = store.handle("a", attrs.evolve(deposit(), expected_version=stale), idempotency_key="s")
        assert d.code == "version_conflict"
        store.purge_keys(datetime(2100, 1, 1))
    assert store.get("a").version == 3


# -- payloads a client got wrong ----------------------------------------------------------------


@attrs.frozen
class Box:
    data: Any = None


@attrs.frozen
class Put:
    data: Any


BLOBS = Spec(
    name="blobs",
    version=1,
    context=Box,
    initial="open",
    states=["open", "closed"],
    final=["closed"],
    transitions=[
        Transition("put", "open", "open", payload=Put, update=lambda c, p: Box(p.data)),
        Transition("close", "open", "closed"),
    ],
)

BAD_PAYLOADS = {
    "nested 1000 deep": (nested(1000), "nests deeper than"),
    "nested one level too deep": (nested(MAX_PAYLOAD_DEPTH), "nests deeper than"),
    "a list nested too deep": ([[[nested(MAX_PAYLOAD_DEPTH)]]], "nests deeper than"),
    "an integer of 5000 digits": (10**5000, f"more than {MAX_INT_DIGITS} digits"),
    "an integer one digit too long": (
        {"n": [10**MAX_INT_DIGITS]},
        f"more than {MAX_INT_DIGITS} digits",
    ),
    "a value whose repr raises": ({"x": Shouting()}, "Shouting is not plain data"),
    "bytes": ({"x": b"raw"}, "bytes is not plain data"),
    "nan": ({"x": [1.0, math.nan]}, "nan is not a number JSON can hold"),
    "infinity": (math.inf, "inf is not a number JSON can hold"),
}


@pytest.mark.parametrize("case", sorted(BAD_PAYLOADS))
@pytest.mark.parametrize("key", [None, "k"])
def test_a_payload_that_is_not_plain_data_within_bounds_is_invalid_payload(
    make_store: Any, case: str, key: str | None
) -> None:
    """A client's payload too deep for the stack, with an integer too long to turn into
    text, holding a float JSON cannot hold or a value that is not plain data: the rejection
    ``invalid_payload`` on every store (it used to be a raw RecursionError, ValueError or
    RuntimeError when keyed, or a StoreDataError), not ``spec_fault``, and nothing is kept
    under the key: it cannot be fingerprinted."""
    data, why = BAD_PAYLOADS[case]
    store = make_store(BLOBS)
    store.handle("a", Command("put", {"data": 1}))
    before = everything(store)
    d = store.handle("a", Command("put", {"data": data}), idempotency_key=key)
    assert isinstance(d, Rejected) and d.code == "invalid_payload", d
    assert why in d.message and why in d.details["reason"]
    assert d.details["event"] == "put"
    assert everything(store) == before
    if key is not None:
        assert store.handle("a", Command("put", {"data": 2}), idempotency_key=key).accepted


def test_the_field_at_fault_is_named(make_store: Any) -> None:
    store = make_store(BLOBS)
    d = store.handle("a", Command("put", {"data": {"list": [0, {"deep": math.nan}]}}))
    assert d.details["field"] == "data.list[1].deep"
    assert "field 'data.list[1].deep'" in d.message


@pytest.mark.parametrize("key", [None, "k"])
def test_a_payload_at_the_depth_limit_is_stored(make_store: Any, key: str | None) -> None:
    store = make_store(BLOBS)
    deepest = nested(MAX_PAYLOAD_DEPTH - 1)  # inside {"data": ...}: MAX_PAYLOAD_DEPTH levels
    d = store.handle("a", Command("put", {"data": deepest}), idempotency_key=key)
    assert d.accepted, d
    assert store.get("a").context == Box(deepest)
    big = {"n": 10 ** (MAX_INT_DIGITS - 1)}  # MAX_INT_DIGITS digits
    assert store.handle("b", Command("put", {"data": big}), idempotency_key=key and "k2").accepted
    assert store.get("b").context == Box(big)


# -- arguments of the other methods -------------------------------------------------------------


def test_outbox_limit_and_after_are_checked_and_cut_alike(make_store: Any) -> None:
    """``limit`` and ``after`` are ints (not bools); a limit beyond any row count and a
    cursor beyond any id give the same rows on every store (the memory store used to give
    n-1 rows for ``limit=-1``, SQLite overflowed on ``2**70``, the memory store raised a raw
    TypeError on ``after="x"`` that SQLite accepted)."""
    store = make_store(SPEC)
    for cents in (1, 2, 3):
        store.handle("a", deposit(cents))
    rows = list(store.outbox())
    assert len(rows) == 3
    for bad in (-1, 0, True, False, 1.5, "2", None):
        for read in (store.outbox, store.pending_outbox):
            with pytest.raises(InvalidArgument, match="limit"):
                read(limit=bad)
    for bad in ("x", True, 1.5, None):
        with pytest.raises(InvalidArgument, match="after"):
            store.outbox(after=bad)
    assert list(store.outbox(limit=2**70)) == rows
    assert list(store.pending_outbox(limit=2**70)) == rows
    assert list(store.outbox(after=-1)) == rows
    assert list(store.outbox(after=-(2**70))) == rows
    assert list(store.outbox(after=rows[0].id, limit=2**70)) == rows[1:]
    assert list(store.outbox(after=2**70)) == []
    assert list(store.outbox(after=2**63 - 1)) == []


@pytest.mark.parametrize("bad", ["x", None, 5, date(2020, 1, 1)])
def test_purge_keys_takes_a_datetime(make_store: Any, bad: Any) -> None:
    store = make_store(SPEC)
    store.handle("a", attrs.evolve(deposit(), at=datetime(2020, 1, 1)), idempotency_key="k")
    with pytest.raises(InvalidArgument, match="older_than"):
        store.purge_keys(bad)
    assert store.handle("a", deposit(), idempotency_key="k").replayed is True


@pytest.mark.parametrize(
    "bad",
    [
        [("a", deposit())],
        [("a", deposit(), None, "extra")],
        ["a"],
        [None],
        "abc",
        5,
    ],
)
def test_a_batch_request_that_is_not_a_triple_is_refused_before_anything_runs(
    make_store: Any, bad: Any
) -> None:
    store = make_store(SPEC)
    with pytest.raises(InvalidArgument, match="triple"):
        store.handle_many([("a", deposit(), "k"), *bad] if isinstance(bad, list) else bad)
    assert store.entities() == []
    assert_key_is_free(store, "k")


@pytest.mark.parametrize("bad", [5, None, 1.5])
def test_mark_delivered_takes_an_iterable_of_ints(make_store: Any, bad: Any) -> None:
    store = make_store(SPEC)
    store.handle("a", deposit())
    with pytest.raises(InvalidArgument, match="ids"):
        store.mark_delivered(bad)
    assert len(store.pending_outbox()) == 1
