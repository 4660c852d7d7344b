"""``handle_many`` on every store: several requests in one transaction, each seeing the writes
of those before it, all committed together or none."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from statekernel.adapters.errors import StoreDataError
from statekernel.kernel import Command, InvalidIdentifier

from ..ledger import SPEC
from .test_data import BAD


def deposit(cents: int) -> Command:
    return Command("deposit", {"amount": {"cents": cents}})


def everything(store: Any, *entities: str) -> tuple[Any, ...]:
    """All a caller can read of ``entities``, to compare two stores."""
    return (
        [store.get(e) for e in entities],
        [list(store.history(e)) for e in entities],
        [(m.entity, m.version, m.name, dict(m.data)) for m in store.outbox()],
    )


def test_handle_many_gives_the_answers_handle_gives_one_by_one(make_store: Any) -> None:
    requests = [
        ("a", deposit(5), "k1"),
        ("a", deposit(5), "k1"),
        ("a", Command("withdraw", {"cents": 50}), "k2"),
        ("b", deposit(1), None),
        ("a", Command("withdraw", {"cents": 2}, expected_version=1), "k3"),
        ("a", deposit(9), "k2"),
    ]
    clock = lambda: datetime(2020, 1, 1)  # noqa: E731
    batch, single = make_store(SPEC, clock=clock), make_store(SPEC, clock=clock)
    answers = batch.handle_many(requests)
    assert answers == [single.handle(e, c, idempotency_key=k) for e, c, k in requests]
    assert [d.code if not d.accepted else "ok" for d in answers] == [
        "ok",
        "ok",
        "guard_rejected",
        "ok",
        "ok",
        "idempotency_mismatch",
    ]
    assert everything(batch, "a", "b") == everything(single, "a", "b")
    # the keys remember the same answers in both
    again = [(e, c, k) for e, c, k in requests if k is not None]
    assert batch.handle_many(again) == [single.handle(e, c, idempotency_key=k) for e, c, k in again]


def test_handle_many_is_all_or_nothing(make_store: Any) -> None:
    store = make_store(BAD)
    store.handle("c", Command("ok"))
    before = everything(store, "c")
    # the second request cannot be stored, so the first is not kept either
    with pytest.raises(StoreDataError):
        store.handle_many([("c", Command("ok"), "k9"), ("c", Command("typo"), None)])
    assert everything(store, "c") == before
    assert store.handle("c", Command("ok"), idempotency_key="k9").replayed is False
    assert store.handle_many([]) == []


def test_handle_many_checks_every_id_before_writing(make_store: Any) -> None:
    store = make_store(SPEC)
    with pytest.raises(InvalidIdentifier):
        store.handle_many([("a", deposit(1), None), ("", deposit(1), None)])
    with pytest.raises(InvalidIdentifier):
        store.handle_many([("a", deposit(1), None), ("a", deposit(1), "x" * 300)])
    assert store.get("a") is None


def test_handle_many_marks_replays_like_handle(make_store: Any) -> None:
    store = make_store(SPEC)
    store.handle("a", deposit(5), idempotency_key="k1")
    batch = store.handle_many(
        [
            ("a", deposit(5), "k1"),  # a retry of a command answered before the batch
            ("a", deposit(2), "k2"),
            ("a", deposit(2), "k2"),  # a duplicate within the batch
            ("a", deposit(3), None),
        ]
    )
    assert [d.replayed for d in batch] == [True, False, True, False]
    assert batch[1] == batch[2] and batch[1].snapshot.version == 2
    assert store.get("a").version == 3
