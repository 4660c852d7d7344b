"""The planner: idempotency and versions as kernel semantics."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statekernel.kernel import (
    Accepted,
    Actor,
    Command,
    InvalidIdentifier,
    KeyRecord,
    Plan,
    Rejected,
    Snapshot,
    plan,
)

from .example import SPEC, Application

AT = datetime(2026, 1, 1, tzinfo=UTC)


def attach(n: int = 1, **kw: object) -> Command:
    kw.setdefault("at", AT)
    return Command("attach", {"count": n}, **kw)  # type: ignore[arg-type]


def test_new_entity_plans_from_the_start_snapshot() -> None:
    p = plan(SPEC, "e", None, attach())
    assert isinstance(p.decision, Accepted) and p.writes and not p.replayed
    assert p.snapshot == Snapshot("draft", Application(1), 1)
    assert p.record is not None and p.record.version == 1 and p.key_record is None


def test_key_record_holds_the_answer_and_the_record_carries_the_key() -> None:
    p = plan(SPEC, "e", None, attach(), key="k")
    assert p.key_record is not None and p.record is not None
    assert p.record.idempotency_key == "k"
    assert p.key_record.decision == p.decision and p.key_record.entity == "e"
    assert p.key_record.at == AT


def test_same_request_replays_the_first_answer_writing_nothing() -> None:
    first = plan(SPEC, "e", None, attach(), key="k")
    assert first.key_record is not None
    later = Snapshot("submitted", Application(3), 4)
    retry = plan(SPEC, "e", later, attach(at=None), key="k", stored=first.key_record)
    assert retry == Plan(first.decision, replayed=True)
    assert not retry.writes


@pytest.mark.parametrize(
    ("entity", "command"),
    [
        ("e", attach(2)),
        ("other", attach()),
        ("e", attach(actor=Actor("x"))),
        ("e", attach(expected_version=0)),
        ("e", Command("submit", at=AT)),
    ],
)
def test_different_request_under_a_key_is_a_mismatch(entity: str, command: Command) -> None:
    first = plan(SPEC, "e", None, attach(), key="k")
    p = plan(SPEC, entity, None, command, key="k", stored=first.key_record)
    assert isinstance(p.decision, Rejected) and p.decision.code == "idempotency_mismatch"
    assert not p.writes


def test_key_lookup_precedes_the_version_check() -> None:
    cmd = attach(expected_version=0)
    first = plan(SPEC, "e", None, cmd, key="k")
    moved_on = Snapshot("draft", Application(5), 7)
    assert plan(SPEC, "e", moved_on, cmd, key="k", stored=first.key_record).decision == (
        first.decision
    )
    assert plan(SPEC, "e", moved_on, cmd).decision.code == "version_conflict"  # type: ignore[union-attr]


def test_rejections_are_recorded_under_the_key_but_spec_faults_are_not() -> None:
    p = plan(SPEC, "e", None, Command("submit"), key="k")
    assert isinstance(p.decision, Rejected) and p.decision.code == "guard_rejected"
    assert p.key_record is not None and p.snapshot is None and p.record is None
    bad_state = Snapshot("draft", "not a context", 0)
    fault = plan(SPEC, "e", bad_state, Command("submit"), key="k2")
    assert isinstance(fault.decision, Rejected) and fault.decision.code == "spec_fault"
    assert not fault.writes


@pytest.mark.parametrize("bad", ["", "x" * 256, 5, None, b"k", "a\x00b"])
def test_bad_identifiers_raise_before_anything(bad: object) -> None:
    with pytest.raises(InvalidIdentifier):
        plan(SPEC, bad, None, attach())  # type: ignore[arg-type]
    if bad is not None:
        with pytest.raises(InvalidIdentifier):
            plan(SPEC, "e", None, attach(), key=bad)  # type: ignore[arg-type]


def test_stored_record_for_another_key_is_a_caller_bug() -> None:
    first = plan(SPEC, "e", None, attach(), key="k")
    with pytest.raises(ValueError, match="not 'j'"):
        plan(SPEC, "e", None, attach(), key="j", stored=first.key_record)


@settings(max_examples=150)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(-1, 4)), max_size=15))
def test_each_key_takes_effect_at_most_once(sends: list[tuple[int, int]]) -> None:
    """Model a store with dicts: sending any mix of keyed requests, each key is applied at most
    once and every retry gets the first answer."""
    snap: Snapshot | None = None
    keys: dict[str, KeyRecord] = {}
    applied: list[str] = []
    for key_no, count in sends:
        key = f"k{key_no}"
        cmd = attach(count)
        p = plan(SPEC, "e", snap, cmd, key=key, stored=keys.get(key))
        if key in keys:
            assert p.replayed or p.decision.code == "idempotency_mismatch"  # type: ignore[union-attr]
            if p.replayed:
                assert p.decision == keys[key].decision
        if p.snapshot is not None:
            snap = p.snapshot
            applied.append(key)
        if p.key_record is not None:
            keys[key] = p.key_record
    assert len(applied) == len(set(applied))
    assert (snap.version if snap else 0) == len(applied)
