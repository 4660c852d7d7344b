"""``verify`` and ``explain`` on every store."""

from __future__ import annotations

from typing import Any

from statekernel.kernel import Actor, Command

from ..ledger import SPEC


def test_verify_and_explain_read_every_store(make_store: Any) -> None:
    store = make_store(SPEC)
    store.handle("a", Command("deposit", {"amount": {"cents": 5}}), idempotency_key="k")
    store.handle("a", Command("withdraw", {"cents": 2}))
    store.handle("a", Command("freeze", actor=Actor("ada", roles=["auditor"])))
    store.handle("b", Command("deposit", {"amount": {"cents": 1}}))
    report = store.verify()
    assert (report.entities, report.ok, report.mismatches) == (2, True, ())
    text = store.explain("a")
    assert text.startswith("a (ledger v1): 3 transition(s)")
    assert "balance: 0 -> 5" in text and "balance: 5 -> 3" in text
    assert "key=k" in text and "ada [auditor]" in text and "open -> frozen" in text
    assert text.endswith("now: frozen at version 3")
    assert store.explain("nobody") == "nobody: no history (never written)"
