"""The store contract, once for every store (see ``make_store`` in conftest.py)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from statekernel.kernel import Accepted, Actor, Command, InvalidIdentifier, Rejected

from ..ledger import SPEC, Deposit, Ledger, Money

AUDITOR = Actor("ada", roles=["auditor"])


def deposit(cents: int, **extra: Any) -> Command:
    return Command("deposit", {"amount": {"cents": cents}, **extra})


def test_new_entity_starts_at_initial_state(make_store: Any) -> None:
    store = make_store(SPEC)
    assert store.get("acct-1") is None
    assert list(store.history("acct-1")) == []
    d = store.handle("acct-1", deposit(5))
    assert isinstance(d, Accepted)
    snap = store.get("acct-1")
    assert snap == d.snapshot
    assert (snap.state, snap.version, snap.context.balance) == ("open", 1, 5)
    assert list(store.entities()) == ["acct-1"]


def test_history_records_every_accepted_command_in_order(make_store: Any) -> None:
    store = make_store(SPEC)
    store.handle("a", deposit(10, note="first", tags=["x", "y"]))
    store.handle("a", Command("withdraw", {"cents": 3}))
    assert store.handle("a", Command("withdraw", {"cents": 300})).code == "guard_rejected"
    store.handle("a", Command("freeze", actor=AUDITOR))
    hist = list(store.history("a"))
    assert [(r.version, r.event, r.from_state, r.to_state) for r in hist] == [
        (1, "deposit", "open", "open"),
        (2, "withdraw", "open", "open"),
        (3, "freeze", "open", "frozen"),
    ]
    assert hist[0].payload == Deposit(Money(10), note="first", tags=("x", "y"))
    assert hist[2].actor == AUDITOR
    assert all(r.at is not None for r in hist)


def test_context_round_trips_exactly(make_store: Any) -> None:
    store = make_store(SPEC)
    big = 2**70
    store.handle("a", Command("deposit", {"amount": {"cents": big, "currency": "USD"}}))
    store.handle("a", deposit(1, note=None, tags=("t",)))
    expected = Ledger(
        balance=big + 1, entries=(Money(big, "USD"), Money(1)), note=None, tags=("t",)
    )
    assert store.get("a").context == expected


def test_rejection_writes_nothing(make_store: Any) -> None:
    store = make_store(SPEC)
    store.handle("a", deposit(5))
    before = (store.get("a"), list(store.history("a")), list(store.outbox()))
    for cmd in [
        Command("nope"),
        Command("thaw", actor=AUDITOR),
        Command("freeze"),
        Command("withdraw", {"cents": "1"}),
        Command("withdraw", {"cents": 6}),
        deposit(1, unknown=1),
    ]:
        assert isinstance(store.handle("a", cmd), Rejected)
    assert (store.get("a"), list(store.history("a")), list(store.outbox())) == before


def test_retry_with_same_key_returns_first_answer_and_writes_once(make_store: Any) -> None:
    store = make_store(SPEC)
    first = store.handle("a", deposit(5), idempotency_key="k1")
    again = store.handle("a", deposit(5), idempotency_key="k1")
    assert first == again
    assert store.get("a").context.balance == 5
    assert len(store.history("a")) == 1
    assert store.history("a")[0].idempotency_key == "k1"
    assert len(store.outbox()) == 1


def test_retry_after_entity_moved_on_still_gets_first_answer(make_store: Any) -> None:
    """The key lookup precedes the version check."""
    store = make_store(SPEC)
    first = store.handle(
        "a", Command("deposit", {"amount": {"cents": 5}}, expected_version=0), idempotency_key="k1"
    )
    store.handle("a", deposit(7))
    again = store.handle(
        "a", Command("deposit", {"amount": {"cents": 5}}, expected_version=0), idempotency_key="k1"
    )
    assert first == again and isinstance(again, Accepted)
    assert store.get("a").context.balance == 12


def test_rejections_are_remembered_under_their_key(make_store: Any) -> None:
    store = make_store(SPEC)
    first = store.handle("a", Command("withdraw", {"cents": 5}), idempotency_key="k")
    assert first.code == "guard_rejected"
    store.handle("a", deposit(10))
    assert store.handle("a", Command("withdraw", {"cents": 5}), idempotency_key="k") == first
    assert store.get("a").context.balance == 10


def test_same_key_different_request_is_a_mismatch(make_store: Any) -> None:
    store = make_store(SPEC)
    store.handle("a", deposit(5), idempotency_key="k1")
    for entity, cmd in [
        ("a", deposit(6)),
        ("b", deposit(5)),
        ("a", attrs.evolve(deposit(5), actor=AUDITOR)),
    ]:
        d = store.handle(entity, cmd, idempotency_key="k1")
        assert isinstance(d, Rejected) and d.code == "idempotency_mismatch"
    assert store.get("a").context.balance == 5
    assert store.get("b") is None


def test_stale_expected_version_is_a_conflict(make_store: Any) -> None:
    store = make_store(SPEC)
    assert store.handle(
        "a", Command("deposit", {"amount": {"cents": 1}}, expected_version=0)
    ).accepted
    d = store.handle("a", Command("deposit", {"amount": {"cents": 1}}, expected_version=0))
    assert isinstance(d, Rejected) and d.code == "version_conflict"
    assert store.get("a").version == 1


def test_outbox_holds_effects_of_accepted_transitions(make_store: Any) -> None:
    store = make_store(SPEC)
    store.handle("a", deposit(5))
    store.handle("a", Command("withdraw", {"cents": 1}))
    store.handle("b", deposit(9))
    rows = list(store.outbox())
    assert [(r.entity, r.version, r.name, dict(r.data)) for r in rows] == [
        ("a", 1, "ledger.deposited", {"cents": 5}),
        ("b", 1, "ledger.deposited", {"cents": 9}),
    ]
    assert rows[0].id < rows[1].id
    assert list(store.outbox(after=rows[0].id)) == rows[1:]


@pytest.mark.parametrize("bad", ["", "x" * 256, 42, None, b"a", "a\nb", "a\x00b"])
def test_bad_entity_ids_are_typed_errors(make_store: Any, bad: object) -> None:
    store = make_store(SPEC)
    with pytest.raises(InvalidIdentifier):
        store.handle(bad, deposit(1))
    with pytest.raises(InvalidIdentifier):
        store.handle("a", deposit(1), idempotency_key=bad if bad is not None else "")
    assert list(store.entities()) == []


@pytest.mark.parametrize("bad", ["", "x" * 256, 42, None, b"a", "a\nb", "a\x00b"])
def test_reads_validate_entity_ids(make_store: Any, bad: object) -> None:
    store = make_store(SPEC)
    with pytest.raises(InvalidIdentifier):
        store.get(bad)
    with pytest.raises(InvalidIdentifier):
        store.history(bad)


def test_purge_keys_forgets_old_keys_only(make_store: Any) -> None:
    from datetime import UTC, datetime

    store = make_store(SPEC)
    old = datetime(2020, 1, 1, tzinfo=UTC)
    new = datetime(2030, 1, 1, tzinfo=UTC)
    store.handle("a", attrs.evolve(deposit(1), at=old), idempotency_key="old")
    store.handle("a", attrs.evolve(deposit(2), at=new), idempotency_key="new")
    assert store.purge_keys(datetime(2025, 1, 1, tzinfo=UTC)) == 1
    # the purged key is a fresh request again; the kept one still replays
    assert store.handle("a", attrs.evolve(deposit(1), at=new), idempotency_key="old").accepted
    assert store.handle("a", deposit(2), idempotency_key="new").snapshot.version == 2
    assert store.get("a").context.balance == 4


def test_naive_and_aware_times_purge_alike(make_store: Any) -> None:
    """A naive time is taken as UTC by every store."""
    from datetime import UTC, datetime

    store = make_store(SPEC)
    store.handle("a", attrs.evolve(deposit(1), at=datetime(2020, 1, 1)), idempotency_key="naive")
    store.handle(
        "a", attrs.evolve(deposit(2), at=datetime(2020, 1, 1, tzinfo=UTC)), idempotency_key="aware"
    )
    assert store.purge_keys(datetime(2019, 12, 31)) == 0
    assert store.purge_keys(datetime(2025, 1, 1, tzinfo=UTC)) == 2


def test_a_caller_mutating_an_answer_rewrites_nothing(make_store: Any) -> None:
    store = make_store(SPEC)
    first = store.handle("a", deposit(5), idempotency_key="k")
    first.effects[0].data["cents"] = -1  # a careless caller
    assert store.handle("a", deposit(5), idempotency_key="k").effects[0].data == {"cents": 5}
    assert dict(store.outbox()[0].data) == {"cents": 5}


def test_retry_answer_equals_first_answer_with_non_json_values(make_store: Any) -> None:
    """Tuples and nested values in payloads and effects, and the details of a rejection, come
    back from a retry exactly as the first answer had them."""
    store = make_store(SPEC)
    cmd = Command("deposit", {"amount": {"cents": 3}, "tags": ("x", "y")})
    first = store.handle("a", cmd, idempotency_key="k1")
    assert store.handle("a", cmd, idempotency_key="k1") == first
    stale = Command("withdraw", {"cents": 1}, expected_version=7)
    rejected = store.handle("a", stale, idempotency_key="k2")
    assert rejected.code == "version_conflict"
    assert rejected.details == {"expected": 7, "actual": 1}
    assert store.handle("a", stale, idempotency_key="k2") == rejected


def test_a_replayed_answer_says_so_and_still_equals_the_first(make_store: Any) -> None:
    """``replayed`` tells a retry's answer from a fresh one (an HTTP API's
    ``Idempotency-Replayed``) without taking part in equality."""
    store = make_store(SPEC)
    first = store.handle("a", deposit(5), idempotency_key="k1")
    again = store.handle("a", deposit(5), idempotency_key="k1")
    assert isinstance(first, Accepted) and isinstance(again, Accepted)
    assert (first.replayed, again.replayed) == (False, True)
    assert again == first
    refused = store.handle("a", Command("withdraw", {"cents": 50}), idempotency_key="k2")
    refused_again = store.handle("a", Command("withdraw", {"cents": 50}), idempotency_key="k2")
    assert refused.code == "guard_rejected"
    assert (refused.replayed, refused_again.replayed) == (False, True)
    assert refused_again == refused
    # not replays: a fresh command, one without a key, and a key reused for another request
    assert store.handle("a", deposit(1), idempotency_key="k3").replayed is False
    assert store.handle("a", deposit(1)).replayed is False
    mismatch = store.handle("a", deposit(6), idempotency_key="k1")
    assert mismatch.code == "idempotency_mismatch" and mismatch.replayed is False
    assert store.get("a").version == 3


def test_a_snapshot_read_back_unchanged_is_not_decoded_again(make_store: Any) -> None:
    """Every store keeps the snapshot it last wrote or read, keyed by the stored text: a read
    of the unchanged row returns that very value (an edited row is decoded again, see
    test_data.py)."""
    store = make_store(SPEC)
    d = store.handle("a", deposit(5), idempotency_key="k")
    assert store.get("a") is d.snapshot
    assert store.get("a") is store.get("a")


def test_clock_stamps_commands_without_a_time(make_store: Any) -> None:
    from datetime import datetime, timedelta, timezone

    when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    store = make_store(SPEC, clock=lambda: when)
    first = store.handle("a", deposit(1))
    given = when - timedelta(days=1)
    second = store.handle("a", attrs.evolve(deposit(1), at=given))
    assert (first.record.at, second.record.at) == (when, given)
    assert [r.at for r in store.history("a")] == [when, given]


def test_purge_compares_instants_not_text(make_store: Any) -> None:
    from datetime import UTC, datetime, timedelta, timezone

    store = make_store(SPEC)
    plus2 = timezone(timedelta(hours=2))
    early = datetime(2020, 1, 1, 10, 0, tzinfo=plus2)  # 08:00 UTC, but sorts after "09:..."
    late = datetime(2020, 1, 1, 9, 30, tzinfo=UTC)
    store.handle("a", attrs.evolve(deposit(1), at=early), idempotency_key="early")
    store.handle("a", attrs.evolve(deposit(2), at=late), idempotency_key="late")
    assert store.purge_keys(datetime(2020, 1, 1, 9, 0)) == 1  # naive: taken as UTC
    assert store.handle("a", deposit(2), idempotency_key="late").replayed is True
    assert store.handle("a", deposit(1), idempotency_key="early").replayed is False  # purged
    assert [r.idempotency_key for r in store.history("a")] == ["early", "late", "early"]
