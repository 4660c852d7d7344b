"""The checkout order reference spec: every transition, guard, role and invariant."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statekernel.kernel import Accepted, Actor, Command, Decision, Snapshot, Spec, decide
from statekernel.specs import order as o
from statekernel.specs.order import (
    CATALOGUE,
    SPEC,
    AddItem,
    Cancel,
    Line,
    Order,
    PaymentCaptured,
    PaymentFailed,
    RefundIssued,
    RemoveItem,
    Ship,
)

Walk = Callable[[Spec, st.DataObject], list[Snapshot]]

BOOK, PEN = CATALOGUE["book"], CATALOGUE["pen"]


def send(snap: Snapshot, event: str, payload: object = None, role: str | None = None) -> Decision:
    """Send ``event`` as an actor holding ``role`` (default: the transition's first role)."""
    if role is None:
        role = SPEC.candidates(snap.state, event)[0].roles[0]
    return decide(SPEC, snap, Command(event, payload, actor=Actor(f"{role}-1", roles=[role])))


def fire(snap: Snapshot, event: str, payload: object = None) -> Accepted:
    decision = send(snap, event, payload)
    assert isinstance(decision, Accepted), decision
    return decision


def ok(snap: Snapshot, event: str, payload: object = None) -> Snapshot:
    return fire(snap, event, payload).snapshot


def effects(decision: Accepted) -> list[tuple[str, dict[str, object]]]:
    return [(m.name, dict(m.data)) for m in decision.effects]


def cart() -> Snapshot:
    """Two books and a pen."""
    snap = ok(SPEC.start(), "add_item", AddItem("book", 2))
    return ok(snap, "add_item", AddItem("pen", 1))


def placed() -> Snapshot:
    return ok(cart(), "place")


def paid() -> Snapshot:
    return ok(placed(), "pay", PaymentCaptured("pay-1", 2 * BOOK + PEN))


def shipped() -> Snapshot:
    return ok(paid(), "ship", Ship("trk-1"))


def refund_pending() -> Snapshot:
    return ok(paid(), "cancel", Cancel("changed_mind"))


REACH: dict[str, Callable[[], Snapshot]] = {
    "cart": cart,
    "placed": placed,
    "paid": paid,
    "shipped": shipped,
    "refund_pending": refund_pending,
}


# --- transitions -----------------------------------------------------------------------------


def test_add_item_prices_from_the_catalogue_and_merges_lines() -> None:
    snap = cart()
    assert snap.context.lines == (Line("book", 2, BOOK), Line("pen", 1, PEN))
    snap = ok(snap, "add_item", AddItem("book", 1))
    assert snap.context.lines == (Line("book", 3, BOOK), Line("pen", 1, PEN))
    assert (snap.state, snap.context.subtotal, snap.context.total) == ("cart", 3 * BOOK + PEN, 0)


def test_remove_item_drops_its_line() -> None:
    snap = ok(cart(), "remove_item", RemoveItem("book"))
    assert (snap.state, snap.context.lines) == ("cart", (Line("pen", 1, PEN),))


def test_place_fixes_the_total_and_reserves_stock() -> None:
    decision = fire(cart(), "place")
    assert (decision.snapshot.state, decision.snapshot.context.total) == ("placed", 2 * BOOK + PEN)
    assert effects(decision) == [("stock_reserved", {"items": {"book": 2, "pen": 1}})]


def test_pay_records_the_payment_and_sends_a_receipt() -> None:
    decision = fire(placed(), "pay", {"reference": "pay-9", "amount": 2 * BOOK + PEN})
    ctx = decision.snapshot.context
    assert (decision.snapshot.state, ctx.paid, ctx.payment_ref) == ("paid", 2 * BOOK + PEN, "pay-9")
    assert effects(decision) == [
        ("receipt_sent", {"amount": 2 * BOOK + PEN, "payment_ref": "pay-9"})
    ]


def test_payment_failed_counts_attempts_and_notifies() -> None:
    decision = fire(placed(), "payment_failed", PaymentFailed("card_declined"))
    assert (decision.snapshot.state, decision.snapshot.context.payment_failures) == ("placed", 1)
    assert effects(decision) == [
        ("customer_notified", {"status": "payment_failed", "reason": "card_declined"})
    ]
    assert ok(decision.snapshot, "pay", PaymentCaptured("p", 2 * BOOK + PEN)).state == "paid"


def test_ship_and_deliver() -> None:
    decision = fire(paid(), "ship", Ship("trk-7"))
    assert (decision.snapshot.state, decision.snapshot.context.tracking) == ("shipped", "trk-7")
    assert effects(decision) == [("customer_notified", {"status": "shipped", "tracking": "trk-7"})]
    delivered = fire(decision.snapshot, "deliver")
    assert delivered.snapshot.state == "delivered"
    assert effects(delivered) == [
        ("customer_notified", {"status": "delivered", "tracking": "trk-7"})
    ]


@pytest.mark.parametrize("source", ["cart", "placed"])
def test_cancel_an_unpaid_order(source: str) -> None:
    decision = fire(REACH[source](), "cancel", Cancel("out_of_stock"))
    ctx = decision.snapshot.context
    assert (decision.snapshot.state, ctx.cancel_reason, ctx.paid, ctx.refunded) == (
        "cancelled",
        "out_of_stock",
        0,
        0,
    )
    assert [name for name, _ in effects(decision)] == ["stock_released", "customer_notified"]


def test_cancel_a_paid_order_requests_a_refund_first() -> None:
    decision = fire(paid(), "cancel", Cancel("changed_mind"))
    assert decision.snapshot.state == "refund_pending"
    assert decision.snapshot.context.refunded == 0
    assert effects(decision)[1] == (
        "refund_requested",
        {"amount": 2 * BOOK + PEN, "payment_ref": "pay-1"},
    )


def test_refund_issued_completes_the_cancellation() -> None:
    decision = fire(refund_pending(), "refund_issued", RefundIssued("ref-1", 2 * BOOK + PEN))
    ctx = decision.snapshot.context
    assert (decision.snapshot.state, ctx.refunded, ctx.refund_ref) == (
        "cancelled",
        2 * BOOK + PEN,
        "ref-1",
    )
    assert effects(decision) == [
        (
            "customer_notified",
            {"status": "cancelled", "reason": "changed_mind", "refunded": 2 * BOOK + PEN},
        )
    ]


def test_no_cancel_after_shipping() -> None:
    decision = send(shipped(), "cancel", Cancel("changed_mind"), role="customer")
    assert not decision.accepted and decision.code == "invalid_transition"


# --- guards ----------------------------------------------------------------------------------

TOTAL = 2 * BOOK + PEN
GUARD_CASES = [
    ("cart", "add_item", AddItem("caviar", 1), "known_item"),
    ("cart", "add_item", AddItem("pen", 0), "positive_quantity"),
    ("cart", "add_item", AddItem("book", 2), "quantity_within_limit"),
    ("cart", "remove_item", RemoveItem("mug"), "in_cart"),
    ("placed", "pay", PaymentCaptured("", TOTAL), "reference_given"),
    ("placed", "pay", PaymentCaptured("pay-1", TOTAL - 1), "pays_total"),
    ("placed", "pay", PaymentCaptured("pay-1", TOTAL + 1), "pays_total"),
    ("paid", "ship", Ship(""), "tracking_given"),
    ("refund_pending", "refund_issued", RefundIssued("", TOTAL), "reference_given"),
    ("refund_pending", "refund_issued", RefundIssued("ref-1", TOTAL - 1), "refunds_payment"),
]


@pytest.mark.parametrize(("source", "event", "payload", "guard"), GUARD_CASES)
def test_guard_rejects(source: str, event: str, payload: object, guard: str) -> None:
    decision = send(REACH[source](), event, payload)
    assert not decision.accepted
    assert decision.code == "guard_rejected"
    assert decision.details["guard"] == guard


def test_place_needs_a_non_empty_cart() -> None:
    decision = send(SPEC.start(), "place")
    assert not decision.accepted
    assert (decision.code, decision.details["guard"]) == ("guard_rejected", "cart_not_empty")


@pytest.mark.parametrize("event", ["pay", "payment_failed"])
def test_no_payment_after_too_many_failures(event: str) -> None:
    snap = placed()
    for _ in range(o.MAX_PAYMENT_FAILURES):
        snap = ok(snap, "payment_failed", PaymentFailed("insufficient_funds"))
    payload = PaymentCaptured("pay-1", TOTAL) if event == "pay" else PaymentFailed("card_declined")
    decision = send(snap, event, payload)
    assert not decision.accepted
    assert (decision.code, decision.details["guard"]) == ("guard_rejected", "payment_attempts_left")
    assert ok(snap, "cancel", Cancel("fraud_suspected")).state == "cancelled"


# --- roles -----------------------------------------------------------------------------------

ROLE_CASES = [(s, t.event, t.roles) for t in SPEC.transitions for s in t.source]
ALL_ROLES = {"customer", "support", "payment_provider", "warehouse", "carrier"}


@pytest.mark.parametrize(("source", "event", "roles"), ROLE_CASES)
def test_transition_forbidden_without_its_role(
    source: str, event: str, roles: tuple[str, ...]
) -> None:
    snap = REACH[source]()
    for actor in [None, Actor("eve", roles=sorted(ALL_ROLES - set(roles)))]:
        decision = decide(SPEC, snap, Command(event, None, actor=actor))
        assert not decision.accepted
        assert decision.code == "forbidden"
        assert decision.details["roles"] == sorted(roles)


@pytest.mark.parametrize("source", ["cart", "placed", "paid"])
def test_support_may_cancel_for_the_customer(source: str) -> None:
    decision = send(REACH[source](), "cancel", Cancel("fraud_suspected"), role="support")
    assert decision.accepted


# --- invariants ------------------------------------------------------------------------------

PATHS: list[list[tuple[str, object]]] = [
    [
        ("add_item", AddItem("pen", 1)),
        ("add_item", AddItem("book", 1)),
        ("remove_item", RemoveItem("pen")),
        ("place", None),
        ("payment_failed", PaymentFailed("card_declined")),
        ("pay", PaymentCaptured("pay-1", BOOK)),
        ("ship", Ship("trk-1")),
        ("deliver", None),
    ],
    [
        ("add_item", AddItem("book", 3)),
        ("place", None),
        ("pay", PaymentCaptured("pay-1", 3 * BOOK)),
        ("cancel", Cancel("changed_mind")),
        ("refund_issued", RefundIssued("ref-1", 3 * BOOK)),
    ],
    [("add_item", AddItem("pen", 2)), ("place", None), ("cancel", Cancel("changed_mind"))],
]


@pytest.mark.parametrize("path", PATHS)
def test_invariants_hold_along_realistic_paths(path: list[tuple[str, object]]) -> None:
    snap = SPEC.start()
    for event, payload in path:
        snap = ok(snap, event, payload)
        assert all(inv(snap.state, snap.context) for inv in SPEC.invariants), snap
    assert SPEC.is_final(snap.state)


LINES = (Line("book", 1, BOOK),)
BAD_SNAPSHOTS = [
    (
        o.cancelled_paid_order_refunded,
        "cancelled",
        Order(LINES, BOOK, BOOK, "p", cancel_reason="changed_mind"),
    ),
    (
        o.cancelled_paid_order_refunded,
        "cancelled",
        Order(LINES, BOOK, BOOK, "p", refunded=BOOK, cancel_reason="changed_mind"),
    ),
    (o.refund_never_exceeds_payment, "cancelled", Order(LINES, BOOK, BOOK, "p", BOOK + 1, "r")),
    (o.refund_never_exceeds_payment, "paid", Order(LINES, BOOK, BOOK, "p", refunded=1)),
    (o.paid_in_full, "paid", Order(LINES, BOOK, BOOK - 1, "p")),
    (o.paid_in_full, "shipped", Order(LINES, BOOK, BOOK, None)),
    (o.paid_in_full, "placed", Order(LINES, BOOK, BOOK, "p")),
    (o.total_matches_lines, "placed", Order(LINES, BOOK - 1)),
    (o.total_matches_lines, "placed", Order()),
    (o.total_matches_lines, "cart", Order(LINES, BOOK)),
    (o.shipped_has_tracking, "shipped", Order(LINES, BOOK, BOOK, "p")),
    (o.shipped_has_tracking, "paid", Order(LINES, BOOK, BOOK, "p", tracking="t")),
    (o.lines_valid, "cart", (Order((Line("book", 1, 1),)))),
    (o.lines_valid, "cart", (Order((Line("caviar", 1, 1),)))),
    (o.lines_valid, "cart", (Order((*LINES, *LINES)))),
    (o.lines_valid, "cart", (Order((Line("pen", o.MAX_QUANTITY + 1, PEN),)))),
    (o.payment_failures_bounded, "placed", Order(LINES, BOOK, payment_failures=-1)),
    (
        o.payment_failures_bounded,
        "paid",
        Order(LINES, BOOK, BOOK, "p", payment_failures=o.MAX_PAYMENT_FAILURES),
    ),
    (o.cancellation_has_reason, "cancelled", Order()),
    (o.cancellation_has_reason, "cart", Order(cancel_reason="changed_mind")),
]


@pytest.mark.parametrize(("inv", "state", "ctx"), BAD_SNAPSHOTS)
def test_each_invariant_rejects_a_bad_snapshot(inv: object, state: str, ctx: Order) -> None:
    assert inv in SPEC.invariants
    assert callable(inv)
    assert inv(state, ctx) is False


def test_every_invariant_has_a_bad_snapshot_case() -> None:
    assert {inv for inv, _, _ in BAD_SNAPSHOTS} == set(SPEC.invariants)


def test_a_refund_that_is_not_recorded_is_caught() -> None:
    """A spec whose refund confirmation forgets to record the refund breaks the invariant."""
    transitions = [
        attrs.evolve(t, update=None) if t.event == "refund_issued" else t for t in SPEC.transitions
    ]
    broken = attrs.evolve(SPEC, transitions=transitions)
    command = Command(
        "refund_issued", RefundIssued("ref-1", TOTAL), actor=Actor("p", "payment_provider")
    )
    assert decide(SPEC, refund_pending(), command).accepted
    decision = decide(broken, refund_pending(), command)
    assert not decision.accepted
    assert decision.details["invariant"] == "cancelled_paid_order_refunded"


def without_guard(name: str) -> Spec:
    """SPEC with guard ``name`` removed from every transition."""
    transitions = [
        attrs.evolve(t, guards=[g for g in t.guards if g.name != name]) for t in SPEC.transitions
    ]
    return attrs.evolve(SPEC, transitions=transitions)


@pytest.mark.parametrize(
    ("guard", "path", "event", "payload", "invariant"),
    [
        ("pays_total", placed, "pay", PaymentCaptured("p", TOTAL - 1), "paid_in_full"),
        (
            "refunds_payment",
            refund_pending,
            "refund_issued",
            RefundIssued("r", TOTAL - 1),
            "cancelled_paid_order_refunded",
        ),
        ("quantity_within_limit", cart, "add_item", AddItem("book", 2), "lines_valid"),
        ("cart_not_empty", SPEC.start, "place", None, "total_matches_lines"),
        ("tracking_given", paid, "ship", Ship(""), "shipped_has_tracking"),
    ],
)
def test_invariants_bite_when_a_guard_is_missing(
    guard: str, path: Callable[[], Snapshot], event: str, payload: object, invariant: str
) -> None:
    guarded = send(path(), event, payload)
    assert not guarded.accepted
    assert (guarded.code, guarded.details["guard"]) == ("guard_rejected", guard)
    role = SPEC.candidates(path().state, event)[0].roles[0]
    decision = decide(without_guard(guard), path(), Command(event, payload, Actor("x", role)))
    assert not decision.accepted
    assert (decision.code, decision.details["invariant"]) == ("invariant_violated", invariant)


# --- fuzz ------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_commands_keep_invariants(random_walk: Walk, data: st.DataObject) -> None:
    snapshots = random_walk(SPEC, data)
    assert all(s.context.refunded <= s.context.paid for s in snapshots)
