"""What a store refuses to write, what it keeps under a key, and a stored row that no longer
fits the spec: the same on every store."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import attrs
import pytest

from statekernel.adapters.base import verify
from statekernel.adapters.errors import StoreDataError
from statekernel.kernel import Command, Effect, Spec, Transition, decision_to_data

from ..ledger import SPEC, Ledger

BAD = Spec(
    name="bad",
    version=1,
    context=Ledger,
    initial="open",
    states=["open"],
    transitions=[
        Transition("typo", "open", "open", update=lambda c, p: attrs.evolve(c, note=5)),
        Transition(
            "stamp",
            "open",
            "open",
            effects=[Effect("when", lambda c, p: {"at": datetime(2020, 1, 1)})],
        ),
        Transition("listy", "open", "open", update=lambda c, p: attrs.evolve(c, tags=["x"])),
        Transition("huge", "open", "open", effects=[Effect("loud", lambda c, p: {"x": math.inf})]),
        Transition("ok", "open", "open"),
    ],
)


def everything(store: Any, entity: str) -> tuple[Any, ...]:
    return store.get(entity), list(store.history(entity)), list(store.outbox())


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ("typo", "field 'note': expected str, got int"),
        ("listy", "read back equal"),
        ("huge", "inf"),
    ],
)
def test_a_value_that_would_not_read_back_is_refused_and_nothing_is_written(
    make_store: Any, event: str, why: str
) -> None:
    """A context holding a value of the wrong type (an update that set ``note=5`` in a
    ``str | None`` field), one that would come back different (a list in a tuple field), or
    effect data JSON cannot hold: refused before anything is written, on every store."""
    store = make_store(BAD)
    store.handle("a", Command("ok"))
    before = everything(store, "a")
    for key in (None, "k"):
        with pytest.raises(StoreDataError, match=why):
            store.handle("a", Command(event), idempotency_key=key)
    assert everything(store, "a") == before
    assert store.verify().ok
    # nothing was kept under the key either: it is still free
    assert store.handle("a", Command("ok"), idempotency_key="k").replayed is False


def test_effect_data_that_is_not_plain_data_is_the_specs_fault(make_store: Any) -> None:
    store = make_store(BAD)
    fault = store.handle("a", Command("stamp"), idempotency_key="k")
    assert fault.code == "spec_fault" and "not plain" in fault.message
    assert store.get("a") is None and list(store.outbox()) == []


def test_the_answer_kept_under_a_key_is_the_kernels_plain_data(make_store: Any) -> None:
    """The store composes the remembered answer from the texts it already wrote for the
    snapshot, record and outbox; it must equal what the kernel's serializer gives."""
    store = make_store(SPEC)
    cmd = Command("deposit", {"amount": {"cents": 3}, "tags": ["t"], "note": "é\u2028"})
    accepted = store.handle("a", cmd, idempotency_key="k")
    rejected = store.handle("a", Command("withdraw", {"cents": 99}), idempotency_key="r")
    assert make_store.backdoor.stored_answer(store, "k") == decision_to_data(accepted)
    assert make_store.backdoor.stored_answer(store, "r") == decision_to_data(rejected)


# -- a stored row that no longer fits the spec -------------------------------------------------


def test_a_stored_context_that_no_longer_fits_is_a_data_error(make_store: Any) -> None:
    store = make_store(SPEC)
    store.handle("a", Command("deposit", {"amount": {"cents": 5}}))
    store.get("a")  # whatever the store keeps of it, the edit below must show
    make_store.backdoor.corrupt_context(store, "a", '{"balance": "five"}')
    with pytest.raises(StoreDataError, match="stored context of 'a' no longer fits"):
        store.get("a")
    with pytest.raises(StoreDataError, match="no longer fits"):
        store.handle("a", Command("deposit", {"amount": {"cents": 1}}))


def test_verify_reports_a_row_that_no_longer_fits_as_a_mismatch(make_store: Any) -> None:
    """One verify for every store: an unreadable row is a mismatch of its entity (so the CLI
    exits 1), never an error that stops the check of the others."""
    store = make_store(SPEC)
    store.handle("a", Command("deposit", {"amount": {"cents": 5}}))
    store.handle("b", Command("deposit", {"amount": {"cents": 7}}))
    make_store.backdoor.corrupt_context(store, "a", '{"balance": "five"}')
    report = store.verify()
    assert report.entities == 2 and not report.ok
    (mismatch,) = report.mismatches
    assert mismatch.entity == "a" and "no longer fits" in mismatch.problem
    assert verify(store) == report  # the function for any store says the same
