"""The size limits, the same on every store: a payload larger than ``max_payload`` (measured
as canonical JSON, so every store agrees to the character) is ``payload_too_large``; an
accepted transition whose context would encode to more than ``max_context`` characters is
``context_too_large``; either is refused before anything is written, even under the key."""

from __future__ import annotations

import json
import time
import tracemalloc
from typing import Any

import attrs
import pytest

from statekernel.adapters.base import MAX_CONTEXT
from statekernel.kernel import (
    CODES,
    MAX_PAYLOAD,
    Command,
    InvalidArgument,
    Rejected,
    Spec,
    Transition,
    unstructure,
)

from .test_input import BLOBS, Box


def canonical(value: object) -> int:
    """The size the limit measures: the payload's compact, ASCII JSON."""
    return len(json.dumps(unstructure(value), separators=(",", ":")))


def everything(store: Any) -> tuple[Any, ...]:
    return store.get("a"), list(store.history("a")), list(store.outbox()), store.entities()


def payload_of_size(size: int, char: str = "x") -> dict[str, Any]:
    """A ``put`` payload whose canonical JSON is exactly ``size`` characters long."""
    overhead = canonical({"data": ""})
    unit = canonical(char) - 2
    count, rest = divmod(size - overhead, unit)
    payload = {"data": char * count + "y" * rest}
    assert canonical(payload) == size
    return payload


@attrs.frozen
class Tally:
    count: int = 0


@attrs.frozen
class Note:
    text: str


NOTES = Spec(
    name="notes",
    version=1,
    context=Tally,
    initial="open",
    states=["open", "closed"],
    final=["closed"],
    transitions=[
        Transition("note", "open", "open", payload=Note, update=lambda c, p: Tally(c.count + 1)),
        Transition("close", "open", "closed"),
    ],
)
"""Payloads that leave the context small: for the payload limit alone."""


def test_the_new_codes_are_stable_codes() -> None:
    assert {"payload_too_large", "context_too_large"} <= set(CODES)


@pytest.mark.parametrize("char", ["x", "é", '"', "\U0001f600"])
@pytest.mark.parametrize("key", [None, "k"])
def test_a_payload_at_the_limit_is_accepted_and_one_character_more_is_too_large(
    make_store: Any, char: str, key: str | None
) -> None:
    """The limit counts canonical JSON characters (``é`` is six, ``\\u00e9``), so the memory,
    SQLite and PostgreSQL stores, which encode differently, draw the line at the same
    character."""
    limit = 2_000
    store = make_store(BLOBS, max_payload=limit, max_context=None)
    store.handle("a", Command("put", {"data": 0}))
    before = everything(store)
    over = store.handle("a", Command("put", payload_of_size(limit + 1, char)), idempotency_key=key)
    assert isinstance(over, Rejected) and over.code == "payload_too_large", over
    assert over.details == {"event": "put", "limit": limit}
    assert f"limit of {limit} characters" in over.message
    assert everything(store) == before
    at = store.handle("a", Command("put", payload_of_size(limit, char)), idempotency_key=key)
    assert at.accepted and at.replayed is False  # nothing was kept under the key before
    assert store.get("a").context == Box(payload_of_size(limit, char)["data"])


@pytest.mark.parametrize("key", [None, "k"])
def test_the_default_limit_is_one_mebibyte_on_every_store(make_store: Any, key: str | None) -> None:
    assert MAX_PAYLOAD == MAX_CONTEXT == 1 << 20
    store = make_store(NOTES)
    overhead = canonical({"text": ""})
    fits = Command("note", {"text": "x" * (MAX_PAYLOAD - overhead)})
    assert (
        store.handle(
            "a",
            attrs.evolve(fits, payload={"text": "x" * (MAX_PAYLOAD - overhead + 1)}),
            idempotency_key=key,
        ).code
        == "payload_too_large"
    )
    assert store.get("a") is None
    d = store.handle("a", fits, idempotency_key=key)
    assert d.accepted and store.history("a")[0].payload == Note("x" * (MAX_PAYLOAD - overhead))


def test_a_fifty_megabyte_payload_is_refused_at_once_without_copies(make_store: Any) -> None:
    """It used to be stored six times over (844 MB at the peak), and to fail after 36 s on
    PostgreSQL as StoreUnavailable."""
    store = make_store(NOTES)
    huge = Command("note", {"text": "x" * (50 << 20)})
    store.handle("warm", Command("note", {"text": "a"}))
    tracemalloc.start()
    try:
        started = time.perf_counter()
        for key in (None, "k"):
            d = store.handle("a", huge, idempotency_key=key)
            assert d.code == "payload_too_large"
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak} bytes allocated refusing it"
    assert elapsed < 2.0
    assert store.get("a") is None


@pytest.mark.parametrize("key", [None, "k"])
def test_a_context_over_the_limit_is_context_too_large(make_store: Any, key: str | None) -> None:
    """The context limit counts the characters of the context's JSON as the store encodes
    it (the same for ASCII text on every store)."""
    limit = 500
    store = make_store(BLOBS, max_context=limit)
    store.handle("a", Command("put", {"data": "x"}))
    before = everything(store)
    overhead = len('{"data":""}')
    d = store.handle(
        "a", Command("put", {"data": "x" * (limit - overhead + 1)}), idempotency_key=key
    )
    assert isinstance(d, Rejected) and d.code == "context_too_large", d
    assert d.details == {"event": "put", "size": limit + 1, "limit": limit}
    assert everything(store) == before
    fits = store.handle(
        "a", Command("put", {"data": "x" * (limit - overhead)}), idempotency_key=key
    )
    assert fits.accepted and fits.replayed is False
    assert store.get("a").context == Box("x" * (limit - overhead))


def test_no_limit_can_be_asked_for(make_store: Any) -> None:
    store = make_store(BLOBS, max_payload=None, max_context=None)
    big = "x" * ((1 << 20) + 10)
    assert store.handle("a", Command("put", {"data": big})).accepted
    assert store.get("a").context == Box(big)


@pytest.mark.parametrize("option", ["max_payload", "max_context"])
@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "1"])
def test_a_limit_must_be_a_positive_int(make_store: Any, option: str, bad: Any) -> None:
    with pytest.raises(InvalidArgument, match=option):
        make_store(BLOBS, **{option: bad})
