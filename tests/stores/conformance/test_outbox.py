"""The outbox relay contract, once for every store: ``pending_outbox`` and ``mark_delivered``,
rows of a write that fails part way, and two specs sharing one database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from statekernel.adapters.errors import StoreError
from statekernel.adapters.sqlite import SqliteStore
from statekernel.kernel import Accepted, Command, Effect, Rejected, Spec, Transition

from ..ledger import SPEC
from ..pgutil import fresh_pg_schema


def deposit(cents: int, **extra: Any) -> Command:
    return Command("deposit", {"amount": {"cents": cents}, **extra})


@attrs.frozen
class Parcel:
    shipped: int = 0


SHIPPING = Spec(
    name="shipping",
    version=1,
    context=Parcel,
    initial="packing",
    states=["packing", "sent"],
    final=["sent"],
    transitions=[
        Transition(
            "pack",
            "packing",
            "packing",
            update=lambda c, p: attrs.evolve(c, shipped=c.shipped + 1),
            effects=[
                Effect("parcel.packed", lambda c, p: {"n": c.shipped}),
                Effect("invoice.due", lambda c, p: {"n": c.shipped}),
            ],
        ),
        Transition("send", "packing", "sent"),
    ],
)


def keys(entries: Any) -> list[tuple[str, int, str]]:
    return [(e.entity, e.version, e.name) for e in entries]


# --- the contract, every store -------------------------------------------------------------


def test_pending_returns_undelivered_rows_oldest_first(make_store: Any) -> None:
    store = make_store(SPEC)
    assert list(store.pending_outbox()) == []
    store.handle("b", deposit(1))
    store.handle("a", deposit(2))
    store.handle("a", Command("withdraw", {"cents": 1}))  # emits nothing
    store.handle("b", deposit(3))
    pending = list(store.pending_outbox())
    assert keys(pending) == [
        ("b", 1, "ledger.deposited"),
        ("a", 1, "ledger.deposited"),
        ("b", 2, "ledger.deposited"),
    ]
    assert [dict(e.data) for e in pending] == [{"cents": 1}, {"cents": 2}, {"cents": 3}]
    assert [e.id for e in pending] == sorted(e.id for e in pending)
    assert len({e.id for e in pending}) == 3
    assert pending == list(store.outbox())  # nothing delivered yet: the same rows
    assert {e.spec for e in pending} == {"ledger"}
    assert pending[0].dedupe_key == ("ledger", "b", 1, "ledger.deposited")


def test_messages_of_one_transition_are_pending_in_order_with_distinct_dedupe_keys(
    make_store: Any,
) -> None:
    store = make_store(SHIPPING)
    store.handle("p-1", Command("pack"))
    store.handle("p-1", Command("pack"))
    pending = list(store.pending_outbox())
    assert keys(pending) == [
        ("p-1", 1, "parcel.packed"),
        ("p-1", 1, "invoice.due"),
        ("p-1", 2, "parcel.packed"),
        ("p-1", 2, "invoice.due"),
    ]
    assert len({e.dedupe_key for e in pending}) == 4


def test_limit_pages_through_pending_rows(make_store: Any) -> None:
    store = make_store(SPEC)
    for cents in range(1, 6):
        store.handle(f"e{cents}", deposit(cents))
    first = list(store.pending_outbox(limit=2))
    assert [e.data["cents"] for e in first] == [1, 2]
    assert list(store.pending_outbox(limit=2)) == first  # reading marks nothing
    assert store.mark_delivered(e.id for e in first) == 2
    assert [e.data["cents"] for e in store.pending_outbox(limit=2)] == [3, 4]
    assert [e.data["cents"] for e in store.pending_outbox(limit=100)] == [3, 4, 5]
    for read in (store.pending_outbox, store.outbox):
        for bad in (0, -1):
            with pytest.raises(ValueError, match="limit"):
                read(limit=bad)
        with pytest.raises(TypeError, match="limit"):
            read(limit="2")


def test_marking_is_idempotent_and_touches_only_the_given_ids(make_store: Any) -> None:
    store = make_store(SPEC)
    for cents in range(1, 5):
        store.handle("a", deposit(cents))
    r1, r2, r3, r4 = store.pending_outbox()
    assert store.mark_delivered([r2.id]) == 1
    assert list(store.pending_outbox()) == [r1, r3, r4]
    assert store.mark_delivered([r2.id]) == 0
    assert store.mark_delivered([r2.id, r3.id, r3.id, r4.id + 1000, -5, 2**80]) == 1
    assert list(store.pending_outbox()) == [r1, r4]
    assert store.mark_delivered([]) == 0
    assert store.mark_delivered(iter([r1.id])) == 1
    assert list(store.pending_outbox()) == [r4]
    # delivered rows stay in the outbox's history
    assert list(store.outbox()) == [r1, r2, r3, r4]


def test_bad_ids_are_refused_before_anything_is_marked(make_store: Any) -> None:
    store = make_store(SPEC)
    store.handle("a", deposit(1))
    (row,) = store.pending_outbox()
    for bad in ([row.id, "2"], [row.id, True], [row.id, 1.0], str(row.id)):
        with pytest.raises(TypeError):
            store.mark_delivered(bad)
    assert list(store.pending_outbox()) == [row]


def test_rejected_and_replayed_commands_add_no_rows(make_store: Any) -> None:
    store = make_store(SPEC)
    first = store.handle("a", deposit(5), idempotency_key="k1")
    assert isinstance(first, Accepted)
    (row,) = store.pending_outbox()
    assert store.handle("a", deposit(5), idempotency_key="k1") == first  # replay
    mismatch = store.handle("a", deposit(6), idempotency_key="k1")
    stale = store.handle("a", Command("deposit", {"amount": {"cents": 1}}, expected_version=0))
    guarded = store.handle("a", deposit(-1))
    for d in (mismatch, stale, guarded):
        assert isinstance(d, Rejected)
    assert list(store.pending_outbox()) == [row]
    assert store.mark_delivered([row.id]) == 1
    assert store.handle("a", deposit(5), idempotency_key="k1") == first  # replay after delivery
    assert list(store.pending_outbox()) == []
    assert list(store.outbox()) == [row]


# --- a write that fails part way leaves no row -----------------------------------------------


def test_rows_of_a_rolled_back_write_never_appear(make_store: Any) -> None:
    """Inserting the key record, the last write of a keyed command, fails after the outbox
    rows were written: none of them appears."""
    store = make_store(SPEC)
    store.handle("a", deposit(1))
    (before,) = store.pending_outbox()
    lift = make_store.backdoor.refuse_key_records(store)
    with pytest.raises(StoreError):
        store.handle("a", deposit(2), idempotency_key="k")
    assert list(store.pending_outbox()) == [before]
    assert list(store.outbox()) == [before]
    assert store.get("a").version == 1
    assert len(store.history("a")) == 1
    lift()
    assert store.handle("a", deposit(2), idempotency_key="k").accepted
    assert [e.data["cents"] for e in store.pending_outbox()] == [1, 2]


def test_delivery_is_stamped_with_the_store_clock(make_store: Any) -> None:
    when = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    store = make_store(SPEC, clock=lambda: when)
    store.handle("a", deposit(1))
    (row,) = store.pending_outbox()
    assert make_store.backdoor.delivered_at(store, row.id) is None
    assert store.mark_delivered([row.id]) == 1
    assert make_store.backdoor.delivered_at(store, row.id) == when


# --- two specs in one database ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_marking_leaves_other_specs_rows_alone(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two specs share one database; each store relays only its own rows."""
    if kind == "sqlite":
        ledger: Any = SqliteStore(SPEC, tmp_path / "shared.db")
        shipping: Any = SqliteStore(SHIPPING, tmp_path / "shared.db")
    else:
        from statekernel.adapters.postgres import PostgresStore

        dsn, schema = fresh_pg_schema(request)
        ledger = PostgresStore(SPEC, dsn, schema=schema)
        shipping = PostgresStore(SHIPPING, dsn, schema=schema)
    try:
        ledger.handle("x", deposit(1))
        shipping.handle("x", Command("pack"))
        (mine,) = ledger.pending_outbox()
        theirs = list(shipping.pending_outbox())
        assert [e.spec for e in theirs] == ["shipping", "shipping"]
        assert ledger.mark_delivered([e.id for e in theirs]) == 0
        assert list(shipping.pending_outbox()) == theirs
        assert shipping.mark_delivered([mine.id]) == 0
        assert list(ledger.pending_outbox()) == [mine]
    finally:
        ledger.close()
        shipping.close()
