"""The payment intent reference spec: every transition, guard, role and invariant."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statekernel.kernel import Accepted, Actor, Command, Decision, Snapshot, Spec, decide
from statekernel.specs import payment as p
from statekernel.specs.payment import SPEC, Authorize, Capture, Decline, PaymentIntent, Refund

Walk = Callable[[Spec, st.DataObject], list[Snapshot]]


def send(snap: Snapshot, event: str, payload: object = None, role: str | None = None) -> Decision:
    """Send ``event`` as an actor holding ``role`` (default: the transition's first role)."""
    if role is None:
        role = SPEC.candidates(snap.state, event)[0].roles[0]
    return decide(SPEC, snap, Command(event, payload, actor=Actor(f"{role}-1", roles=[role])))


def ok(snap: Snapshot, event: str, payload: object = None) -> Snapshot:
    decision = send(snap, event, payload)
    assert decision.accepted, decision
    return decision.snapshot


def authorized() -> Snapshot:
    return ok(SPEC.start(), "authorize", Authorize(1000))


def partially_captured() -> Snapshot:
    return ok(authorized(), "capture", Capture(400))


def succeeded() -> Snapshot:
    return ok(authorized(), "capture", Capture(1000))


def disputed() -> Snapshot:
    return ok(ok(succeeded(), "refund", Refund(300)), "dispute")


REACH: dict[str, Callable[[], Snapshot]] = {
    "requires_authorization": SPEC.start,
    "authorized": authorized,
    "partially_captured": partially_captured,
    "succeeded": succeeded,
    "disputed": disputed,
}


def amounts(snap: Snapshot) -> tuple[str, int, int, int, int, int]:
    c = snap.context
    return (snap.state, c.authorized, c.captured, c.released, c.refunded, c.charged_back)


def fire(snap: Snapshot, event: str, payload: object = None) -> Accepted:
    decision = send(snap, event, payload)
    assert isinstance(decision, Accepted), decision
    return decision


def effects(decision: Decision) -> list[tuple[str, dict[str, object]]]:
    assert decision.accepted
    return [(m.name, dict(m.data)) for m in decision.effects]


# --- transitions -----------------------------------------------------------------------------


def test_authorize_records_the_amount() -> None:
    assert amounts(authorized()) == ("authorized", 1000, 0, 0, 0, 0)


def test_decline_fails_with_a_reason_and_notifies() -> None:
    decision = send(SPEC.start(), "decline", {"reason": "card_declined"})
    assert decision.accepted
    assert decision.snapshot.state == "failed"
    assert decision.snapshot.context.decline_reason == "card_declined"
    assert effects(decision) == [("merchant_notified", {"reason": "card_declined"})]


def test_partial_captures_then_the_rest_succeeds() -> None:
    decision = fire(authorized(), "capture", Capture(400))
    assert amounts(decision.snapshot) == ("partially_captured", 1000, 400, 0, 0, 0)
    assert effects(decision) == [
        ("ledger_entry", {"entry": "capture", "amount": 400, "captured": 400})
    ]
    snap = ok(decision.snapshot, "capture", Capture(100))
    assert amounts(snap) == ("partially_captured", 1000, 500, 0, 0, 0)
    snap = ok(snap, "capture", Capture(500))
    assert amounts(snap) == ("succeeded", 1000, 1000, 0, 0, 0)


def test_capturing_everything_at_once_succeeds() -> None:
    assert amounts(succeeded()) == ("succeeded", 1000, 1000, 0, 0, 0)


def test_release_settles_a_partial_capture() -> None:
    decision = fire(partially_captured(), "release")
    assert amounts(decision.snapshot) == ("succeeded", 1000, 400, 600, 0, 0)
    assert effects(decision) == [("authorization_released", {"released": 600})]


@pytest.mark.parametrize(
    ("source", "released"), [("requires_authorization", 0), ("authorized", 1000)]
)
def test_void_before_capture(source: str, released: int) -> None:
    before = REACH[source]()
    decision = send(before, "void")
    assert decision.accepted
    assert amounts(decision.snapshot)[0] == "voided"
    assert decision.snapshot.context.released == released
    assert effects(decision) == [("authorization_released", {"released": released})]


def test_partial_and_repeated_refunds_then_refunded() -> None:
    decision = fire(succeeded(), "refund", Refund(400))
    assert amounts(decision.snapshot) == ("succeeded", 1000, 1000, 0, 400, 0)
    assert effects(decision) == [
        ("ledger_entry", {"entry": "refund", "amount": 400, "refunded": 400})
    ]
    snap = ok(decision.snapshot, "refund", Refund(100))
    assert amounts(snap) == ("succeeded", 1000, 1000, 0, 500, 0)
    snap = ok(snap, "refund", Refund(500))
    assert amounts(snap) == ("refunded", 1000, 1000, 0, 500 + 500, 0)


def test_dispute_blocks_refunds_until_won() -> None:
    snap = disputed()
    assert (snap.state, snap.context.disputes) == ("disputed", 1)
    refund = send(snap, "refund", Refund(100), role="merchant")
    assert not refund.accepted and refund.code == "invalid_transition"
    won = ok(snap, "win_dispute")
    assert amounts(won) == ("succeeded", 1000, 1000, 0, 300, 0)
    assert ok(won, "refund", Refund(700)).state == "refunded"


def test_lost_dispute_charges_back_what_was_not_refunded() -> None:
    decision = fire(disputed(), "lose_dispute")
    assert amounts(decision.snapshot) == ("charged_back", 1000, 1000, 0, 300, 700)
    assert effects(decision) == [("ledger_entry", {"entry": "chargeback", "amount": 700})]


def test_dispute_notifies_the_merchant() -> None:
    decision = send(succeeded(), "dispute")
    assert effects(decision) == [("merchant_notified", {"dispute": "opened", "amount": 1000})]


def test_no_void_after_capture() -> None:
    decision = send(partially_captured(), "void", role="merchant")
    assert not decision.accepted and decision.code == "invalid_transition"


# --- guards ----------------------------------------------------------------------------------

GUARD_CASES = [
    ("requires_authorization", "authorize", Authorize(0), "positive_amount"),
    ("requires_authorization", "authorize", Authorize(p.MAX_AMOUNT + 1), "amount_within_limit"),
    ("authorized", "capture", Capture(0), "positive_amount"),
    ("authorized", "capture", Capture(1001), "within_capturable"),
    ("partially_captured", "capture", Capture(601), "within_capturable"),
    ("succeeded", "refund", Refund(-1), "positive_amount"),
    ("succeeded", "refund", Refund(1001), "within_refundable"),
]


@pytest.mark.parametrize(("source", "event", "payload", "guard"), GUARD_CASES)
def test_guard_rejects(source: str, event: str, payload: object, guard: str) -> None:
    decision = send(REACH[source](), event, payload)
    assert not decision.accepted
    assert decision.code == "guard_rejected"
    assert decision.details["guard"] == guard


def test_a_payment_is_disputed_once() -> None:
    won = ok(disputed(), "win_dispute")
    decision = send(won, "dispute")
    assert not decision.accepted
    assert (decision.code, decision.details["guard"]) == ("guard_rejected", "disputes_left")


def test_separating_guards_pick_the_target() -> None:
    # leaves_capturable / captures_remainder and leaves_refundable / refunds_remainder decide
    # which of the two same-event transitions fires; check each one directly.
    ctx = PaymentIntent(authorized=1000, captured=400)
    assert p.leaves_capturable(ctx, Capture(599)) and not p.leaves_capturable(ctx, Capture(600))
    assert p.captures_remainder(ctx, Capture(600)) and not p.captures_remainder(ctx, Capture(599))
    ctx = PaymentIntent(authorized=1000, captured=1000, refunded=300)
    assert p.leaves_refundable(ctx, Refund(699)) and not p.leaves_refundable(ctx, Refund(700))
    assert p.refunds_remainder(ctx, Refund(700)) and not p.refunds_remainder(ctx, Refund(699))


# --- roles -----------------------------------------------------------------------------------

ROLE_CASES = [(s, t.event, t.roles) for t in SPEC.transitions for s in t.source]


@pytest.mark.parametrize(("source", "event", "roles"), ROLE_CASES)
def test_transition_forbidden_without_its_role(
    source: str, event: str, roles: tuple[str, ...]
) -> None:
    snap = REACH[source]()
    others = {"merchant", "processor", "customer"} - set(roles)
    for actor in [None, Actor("eve", roles=sorted(others))]:
        decision = decide(SPEC, snap, Command(event, None, actor=actor))
        assert not decision.accepted
        assert decision.code == "forbidden"
        assert decision.details["roles"] == sorted(roles)


def test_the_merchant_cannot_authorize_its_own_payment() -> None:
    decision = send(SPEC.start(), "authorize", Authorize(1000), role="merchant")
    assert not decision.accepted and decision.code == "forbidden"


# --- invariants ------------------------------------------------------------------------------

PATHS: list[list[tuple[str, object]]] = [
    [
        ("authorize", Authorize(1500)),
        ("capture", Capture(400)),
        ("capture", Capture(100)),
        ("release", None),
        ("refund", Refund(100)),
        ("dispute", None),
        ("win_dispute", None),
        ("refund", Refund(400)),
    ],
    [
        ("authorize", Authorize(1000)),
        ("capture", Capture(1000)),
        ("dispute", None),
        ("lose_dispute", None),
    ],
    [("authorize", Authorize(1000)), ("void", None)],
    [("decline", Decline("fraud_suspected"))],
]


@pytest.mark.parametrize("path", PATHS)
def test_invariants_hold_along_realistic_paths(path: list[tuple[str, object]]) -> None:
    snap = SPEC.start()
    for event, payload in path:
        snap = ok(snap, event, payload)
        assert all(inv(snap.state, snap.context) for inv in SPEC.invariants), snap
    assert SPEC.is_final(snap.state)


PI = PaymentIntent
BAD_SNAPSHOTS = [
    (p.amounts_non_negative, "succeeded", PI(authorized=1000, captured=1000, refunded=-5)),
    (p.refunds_within_captures_within_authorization, "succeeded", PI(authorized=100, captured=200)),
    (
        p.refunds_within_captures_within_authorization,
        "succeeded",
        PI(authorized=100, captured=100, refunded=100, charged_back=1),
    ),
    (p.refunds_within_captures_within_authorization, "succeeded", PI(100, 100, released=1)),
    (p.succeeded_means_captured, "succeeded", PI(authorized=100, released=100)),
    (p.settled_authorization_accounted, "succeeded", PI(authorized=1000, captured=400)),
    (p.voided_captured_nothing, "voided", PI(authorized=100, captured=100)),
    (p.refund_state_matches_amounts, "refunded", PI(100, 100, refunded=50)),
    (p.refund_state_matches_amounts, "succeeded", PI(100, 100, refunded=100)),
    (p.refund_state_matches_amounts, "authorized", PI(100, refunded=10)),
    (p.refund_state_matches_amounts, "succeeded", PI(100, 100, charged_back=10)),
    (p.state_matches_amounts, "requires_authorization", PI(authorized=100)),
    (p.state_matches_amounts, "failed", PI()),
    (p.state_matches_amounts, "authorized", PI(authorized=100, captured=10)),
    (p.state_matches_amounts, "partially_captured", PI(authorized=100, captured=100)),
    (p.state_matches_amounts, "disputed", PI(100, 100)),
]


@pytest.mark.parametrize(("inv", "state", "ctx"), BAD_SNAPSHOTS)
def test_each_invariant_rejects_a_bad_snapshot(inv: object, state: str, ctx: PaymentIntent) -> None:
    assert inv in SPEC.invariants
    assert callable(inv)
    assert inv(state, ctx) is False


def test_every_invariant_has_a_bad_snapshot_case() -> None:
    assert {inv for inv, _, _ in BAD_SNAPSHOTS} == set(SPEC.invariants)


def sloppy(event: str, target: str, keep: str) -> Spec:
    """SPEC where ``event`` into ``target`` keeps only guard ``keep``: a sloppy fallback."""
    transitions = [
        attrs.evolve(t, guards=[g for g in t.guards if g.name == keep])
        if (t.event, t.target) == (event, target)
        else t
        for t in SPEC.transitions
    ]
    return attrs.evolve(SPEC, transitions=transitions)


@pytest.mark.parametrize(
    ("path", "event", "target", "payload", "invariant"),
    [
        (
            authorized,
            "capture",
            "succeeded",
            Capture(1500),
            "refunds_within_captures_within_authorization",
        ),
        (
            succeeded,
            "refund",
            "refunded",
            Refund(1500),
            "refunds_within_captures_within_authorization",
        ),
        (SPEC.start, "authorize", "authorized", Authorize(-100), "amounts_non_negative"),
    ],
)
def test_invariants_bite_when_guards_are_missing(
    path: Callable[[], Snapshot], event: str, target: str, payload: object, invariant: str
) -> None:
    guarded = send(path(), event, payload)
    assert not guarded.accepted and guarded.code == "guard_rejected"
    role = SPEC.candidates(path().state, event)[0].roles[0]
    broken = sloppy(event, target, keep="no such guard")
    decision = decide(broken, path(), Command(event, payload, Actor("x", role)))
    assert not decision.accepted
    assert (decision.code, decision.details["invariant"]) == ("invariant_violated", invariant)


# --- fuzz ------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_commands_keep_invariants(random_walk: Walk, data: st.DataObject) -> None:
    snapshots = random_walk(SPEC, data)
    assert all(s.context.refunded <= s.context.captured for s in snapshots)
