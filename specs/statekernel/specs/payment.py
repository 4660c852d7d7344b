"""A payment intent: authorize, capture (in parts), refund (in parts), void or fail.

"If your system says *payment completed*, that statement must be provably true." This spec
is the ledger side of that sentence. A payment intent starts in ``requires_authorization``.
The card processor either authorizes an amount (``authorize``) or declines it (``decline``,
final state ``failed``). The merchant then captures money against the authorization, all at
once or in several partial captures (``partially_captured``); capturing the whole remainder
settles the intent as ``succeeded``, and so does releasing the uncaptured remainder of a
partial capture (``release``, which either party may do; the processor does it when the
authorization expires). An authorization that nothing was captured from can be voided (final
state ``voided``); once money is captured it can only be refunded. Refunds are issued against
a settled (``succeeded``) intent, in parts and repeatedly; refunding the last captured cent
ends in the final state ``refunded``. The cardholder's bank may dispute a succeeded payment
once (``disputed``): no refund can be issued while the dispute is open; if the merchant wins,
the payment is ``succeeded`` again; if it loses, whatever was not yet refunded is charged back
(final state ``charged_back``).

All amounts are integer cents (never floats). Money moves only through guarded transitions,
so the ledger identities below hold after any sequence of retries, duplicates and reorders.

Roles:

- ``processor`` (the card network) authorizes, declines, voids and releases expired
  authorizations, and opens and settles disputes;
- ``merchant`` captures, releases, refunds and voids.

Business rules (guards):

- every amount is positive; an authorization is at most :data:`MAX_AMOUNT`;
- a capture takes at most what is still authorized and not yet captured; when it takes
  exactly that, the intent succeeds, otherwise it is partially captured;
- a refund gives back at most what was captured and not yet refunded; when it gives back
  exactly that, the intent is refunded;
- a payment is disputed at most once.

Invariants:

- ``amounts_non_negative``: no amount is ever negative;
- ``refunds_within_captures_within_authorization``: refunded + charged back <= captured
  and captured + released <= authorized (no cent goes back twice);
- ``succeeded_means_captured``: a succeeded (or later) intent captured money;
- ``settled_authorization_accounted``: once settled (succeeded or any state after it, or
  voided), every authorized cent was either captured or released;
- ``voided_captured_nothing``: a voided intent never captured or refunded money;
- ``refund_state_matches_amounts``: ``refunded`` means every captured cent was refunded,
  ``charged_back`` means every captured cent was refunded or charged back, and only settled
  intents have refunds;
- ``state_matches_amounts``: the other states agree with the amounts (nothing moves before
  authorization, ``authorized`` has captured nothing, ``partially_captured`` has captured
  some but not all, a failed intent says why).

Effects: ``ledger_entry`` for every capture and refund (the amount and the running total),
``authorization_released`` for releases and voids, ``merchant_notified`` on a decline and
on a dispute, and a ``ledger_entry`` for a chargeback.

Explorer bounds: with the transitions' ``examples`` (authorizations of 1,000 and 1,500
cents, captures and refunds of 100, 400 and 1,000 cents, plus amounts the guards reject) a
breadth-first search over (state, context) sees 781 distinct snapshots, at most 12 steps deep;
every transition fires and every non-final snapshot has an accepted move. Amounts are
multiples of 100, so a 100-cent capture or refund can always finish the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs

from statekernel.kernel import Effect, Spec, Transition, guard, invariant

__all__ = [
    "MAX_AMOUNT",
    "MAX_DISPUTES",
    "SPEC",
    "Authorize",
    "Capture",
    "Decline",
    "PaymentIntent",
    "Refund",
    "amount_within_limit",
    "amounts_non_negative",
    "captures_remainder",
    "disputes_left",
    "leaves_capturable",
    "leaves_refundable",
    "positive_amount",
    "refund_state_matches_amounts",
    "refunds_remainder",
    "refunds_within_captures_within_authorization",
    "settled_authorization_accounted",
    "state_matches_amounts",
    "succeeded_means_captured",
    "voided_captured_nothing",
    "within_capturable",
    "within_refundable",
]

MAX_AMOUNT = 1_000_000
"""The largest authorization accepted, in cents."""

MAX_DISPUTES = 1
"""How many times a payment may be disputed."""

DeclineReason = Literal["insufficient_funds", "card_declined", "fraud_suspected"]
"""Why the processor declined an authorization."""


@attrs.frozen
class PaymentIntent:
    """The payment's context: how many cents moved where."""

    authorized: int = 0
    """Cents the processor authorized."""
    captured: int = 0
    """Cents captured so far."""
    released: int = 0
    """Authorized cents given back uncaptured (by a void or a release)."""
    refunded: int = 0
    """Cents refunded so far."""
    charged_back: int = 0
    """Cents taken back by a lost dispute."""
    disputes: int = 0
    """How many disputes were opened."""
    decline_reason: DeclineReason | None = None
    """Why the processor declined, for a failed intent."""

    @property
    def capturable(self) -> int:
        """Cents still authorized and neither captured nor released."""
        return self.authorized - self.captured - self.released

    @property
    def refundable(self) -> int:
        """Cents captured and neither refunded nor charged back."""
        return self.captured - self.refunded - self.charged_back


@attrs.frozen
class Authorize:
    """The processor authorized ``amount`` cents."""

    amount: int


@attrs.frozen
class Decline:
    """The processor declined the authorization."""

    reason: DeclineReason


@attrs.frozen
class Capture:
    """The merchant captures ``amount`` cents of the authorization."""

    amount: int


@attrs.frozen
class Refund:
    """The merchant refunds ``amount`` cents of the captured money."""

    amount: int


# --- guards ----------------------------------------------------------------------------------


@guard
def positive_amount(ctx: PaymentIntent, payload: Authorize | Capture | Refund) -> bool:
    """The amount is a positive number of cents."""
    return payload.amount > 0


@guard
def amount_within_limit(ctx: PaymentIntent, payload: Authorize) -> bool:
    """An authorization is at most MAX_AMOUNT cents."""
    return payload.amount <= MAX_AMOUNT


@guard
def within_capturable(ctx: PaymentIntent, payload: Capture) -> bool:
    """A capture takes at most the authorized cents not yet captured or released."""
    return payload.amount <= ctx.capturable


@guard
def leaves_capturable(ctx: PaymentIntent, payload: Capture) -> bool:
    """The capture leaves part of the authorization uncaptured."""
    return payload.amount < ctx.capturable


@guard
def captures_remainder(ctx: PaymentIntent, payload: Capture) -> bool:
    """The capture takes exactly what remains of the authorization."""
    return payload.amount == ctx.capturable


@guard
def within_refundable(ctx: PaymentIntent, payload: Refund) -> bool:
    """A refund gives back at most the captured cents not yet refunded."""
    return payload.amount <= ctx.refundable


@guard
def leaves_refundable(ctx: PaymentIntent, payload: Refund) -> bool:
    """The refund leaves some captured money with the merchant."""
    return payload.amount < ctx.refundable


@guard
def refunds_remainder(ctx: PaymentIntent, payload: Refund) -> bool:
    """The refund gives back exactly what remains captured."""
    return payload.amount == ctx.refundable


@guard
def disputes_left(ctx: PaymentIntent, payload: object) -> bool:
    """The payment has been disputed fewer than MAX_DISPUTES times."""
    return ctx.disputes < MAX_DISPUTES


# --- invariants ------------------------------------------------------------------------------

_CAPTURED = ("succeeded", "disputed", "refunded", "charged_back")
_SETTLED = (*_CAPTURED, "voided")


@invariant
def amounts_non_negative(state: str, ctx: PaymentIntent) -> bool:
    """No amount is ever negative."""
    amounts = (ctx.authorized, ctx.captured, ctx.released, ctx.refunded, ctx.charged_back)
    return min(amounts) >= 0 and ctx.disputes >= 0


@invariant
def refunds_within_captures_within_authorization(state: str, ctx: PaymentIntent) -> bool:
    """Refunded + charged back <= captured, and captured + released <= authorized."""
    return (
        ctx.refunded + ctx.charged_back <= ctx.captured
        and ctx.captured + ctx.released <= ctx.authorized
    )


@invariant
def succeeded_means_captured(state: str, ctx: PaymentIntent) -> bool:
    """A succeeded payment (or one refunded, disputed or charged back) captured money."""
    return state not in _CAPTURED or ctx.captured > 0


@invariant
def settled_authorization_accounted(state: str, ctx: PaymentIntent) -> bool:
    """A settled payment accounts for every authorized cent: captured or released."""
    return state not in _SETTLED or ctx.captured + ctx.released == ctx.authorized


@invariant
def voided_captured_nothing(state: str, ctx: PaymentIntent) -> bool:
    """A voided payment never captured (so never refunded) any money."""
    return state != "voided" or (ctx.captured == 0 and ctx.refunded == 0)


@invariant
def refund_state_matches_amounts(state: str, ctx: PaymentIntent) -> bool:
    """Refunded means every captured cent went back, charged back that every captured cent
    went back by refund or chargeback; a succeeded or disputed payment still keeps some.

    Only captured payments have refunds, and only charged-back ones have chargebacks."""
    if (ctx.charged_back > 0) != (state == "charged_back"):
        return False
    if state == "refunded":
        return ctx.refunded == ctx.captured
    if state == "charged_back":
        return ctx.refunded + ctx.charged_back == ctx.captured
    if state in ("succeeded", "disputed"):
        return ctx.refunded < ctx.captured
    return ctx.refunded == 0


@invariant
def state_matches_amounts(state: str, ctx: PaymentIntent) -> bool:
    """Each state agrees with the amounts and the dispute count.

    Nothing moves before authorization; an authorized payment has captured nothing, a
    partially captured one some but not all; a failed one says why; a disputed one counts
    its dispute."""
    if state in ("requires_authorization", "failed"):
        moved = ctx.authorized or ctx.captured or ctx.released or ctx.refunded
        return not moved and (state == "failed") == (ctx.decline_reason is not None)
    if ctx.decline_reason is not None:
        return False
    if state == "authorized":
        return ctx.authorized > 0 and ctx.captured == 0 and ctx.released == 0
    if state == "partially_captured":
        return 0 < ctx.captured < ctx.authorized and ctx.released == 0
    if state == "disputed":
        return ctx.disputes > 0
    return ctx.disputes <= MAX_DISPUTES


# --- updates and effects ---------------------------------------------------------------------


def _authorize(ctx: PaymentIntent, payload: Authorize) -> PaymentIntent:
    return attrs.evolve(ctx, authorized=payload.amount)


def _decline(ctx: PaymentIntent, payload: Decline) -> PaymentIntent:
    return attrs.evolve(ctx, decline_reason=payload.reason)


def _capture(ctx: PaymentIntent, payload: Capture) -> PaymentIntent:
    return attrs.evolve(ctx, captured=ctx.captured + payload.amount)


def _release(ctx: PaymentIntent, payload: None) -> PaymentIntent:
    return attrs.evolve(ctx, released=ctx.released + ctx.capturable)


def _refund(ctx: PaymentIntent, payload: Refund) -> PaymentIntent:
    return attrs.evolve(ctx, refunded=ctx.refunded + payload.amount)


def _dispute(ctx: PaymentIntent, payload: None) -> PaymentIntent:
    return attrs.evolve(ctx, disputes=ctx.disputes + 1)


def _charge_back(ctx: PaymentIntent, payload: None) -> PaymentIntent:
    return attrs.evolve(ctx, charged_back=ctx.refundable)


def _capture_entry(ctx: PaymentIntent, payload: Capture) -> Mapping[str, object]:
    return {"entry": "capture", "amount": payload.amount, "captured": ctx.captured}


def _refund_entry(ctx: PaymentIntent, payload: Refund) -> Mapping[str, object]:
    return {"entry": "refund", "amount": payload.amount, "refunded": ctx.refunded}


def _released(ctx: PaymentIntent, payload: None) -> Mapping[str, object]:
    return {"released": ctx.released}


def _dispute_notice(ctx: PaymentIntent, payload: None) -> Mapping[str, object]:
    return {"dispute": "opened", "amount": ctx.refundable}


def _chargeback_entry(ctx: PaymentIntent, payload: None) -> Mapping[str, object]:
    return {"entry": "chargeback", "amount": ctx.charged_back}


def _declined(ctx: PaymentIntent, payload: Decline) -> Mapping[str, object]:
    return {"reason": payload.reason}


_CAPTURE_EXAMPLES = [Capture(100), Capture(400), Capture(1000), Capture(0), Capture(5000)]
_REFUND_EXAMPLES = [Refund(100), Refund(400), Refund(1000), Refund(-100), Refund(5000)]

SPEC = Spec(
    name="payment",
    version=1,
    context=PaymentIntent,
    initial="requires_authorization",
    states=[
        "requires_authorization",
        "authorized",
        "partially_captured",
        "succeeded",
        "disputed",
        "refunded",
        "charged_back",
        "voided",
        "failed",
    ],
    final=["refunded", "charged_back", "voided", "failed"],
    description=(
        "A payment intent: authorized by the processor, captured and refunded in parts by "
        "the merchant, voided before any capture, or declined."
    ),
    transitions=[
        Transition(
            "authorize",
            "requires_authorization",
            "authorized",
            payload=Authorize,
            roles=["processor"],
            guards=[positive_amount, amount_within_limit],
            update=_authorize,
            examples=[Authorize(1000), Authorize(1500), Authorize(0), Authorize(MAX_AMOUNT + 1)],
            description="The processor authorizes an amount on the customer's card.",
        ),
        Transition(
            "decline",
            "requires_authorization",
            "failed",
            payload=Decline,
            roles=["processor"],
            update=_decline,
            effects=[Effect("merchant_notified", _declined)],
            examples=[Decline("insufficient_funds"), Decline("fraud_suspected")],
            description="The processor declines the authorization.",
        ),
        Transition(
            "void",
            ["requires_authorization", "authorized"],
            "voided",
            roles=["merchant", "processor"],
            update=_release,
            effects=[Effect("authorization_released", _released)],
            description="The authorization is cancelled before anything was captured.",
        ),
        Transition(
            "capture",
            ["authorized", "partially_captured"],
            "partially_captured",
            payload=Capture,
            roles=["merchant"],
            guards=[positive_amount, within_capturable, leaves_capturable],
            update=_capture,
            effects=[Effect("ledger_entry", _capture_entry)],
            examples=_CAPTURE_EXAMPLES,
            description="The merchant captures part of the authorization.",
        ),
        Transition(
            "capture",
            ["authorized", "partially_captured"],
            "succeeded",
            payload=Capture,
            roles=["merchant"],
            guards=[positive_amount, within_capturable, captures_remainder],
            update=_capture,
            effects=[Effect("ledger_entry", _capture_entry)],
            examples=_CAPTURE_EXAMPLES,
            description="The merchant captures the rest of the authorization.",
        ),
        Transition(
            "release",
            "partially_captured",
            "succeeded",
            roles=["merchant", "processor"],
            update=_release,
            effects=[Effect("authorization_released", _released)],
            description="The uncaptured rest of the authorization is given back.",
        ),
        Transition(
            "refund",
            "succeeded",
            "succeeded",
            payload=Refund,
            roles=["merchant"],
            guards=[positive_amount, within_refundable, leaves_refundable],
            update=_refund,
            effects=[Effect("ledger_entry", _refund_entry)],
            examples=_REFUND_EXAMPLES,
            description="The merchant refunds part of the captured money.",
        ),
        Transition(
            "refund",
            "succeeded",
            "refunded",
            payload=Refund,
            roles=["merchant"],
            guards=[positive_amount, within_refundable, refunds_remainder],
            update=_refund,
            effects=[Effect("ledger_entry", _refund_entry)],
            examples=_REFUND_EXAMPLES,
            description="The merchant refunds the rest of the captured money.",
        ),
        Transition(
            "dispute",
            "succeeded",
            "disputed",
            roles=["processor"],
            guards=[disputes_left],
            update=_dispute,
            effects=[Effect("merchant_notified", _dispute_notice)],
            description="The cardholder's bank disputes the payment.",
        ),
        Transition(
            "win_dispute",
            "disputed",
            "succeeded",
            roles=["processor"],
            description="The dispute is settled in the merchant's favour.",
        ),
        Transition(
            "lose_dispute",
            "disputed",
            "charged_back",
            roles=["processor"],
            update=_charge_back,
            effects=[Effect("ledger_entry", _chargeback_entry)],
            description="The dispute is lost: the unrefunded money is charged back.",
        ),
    ],
    invariants=[
        amounts_non_negative,
        refunds_within_captures_within_authorization,
        succeeded_means_captured,
        settled_authorization_accounted,
        voided_captured_nothing,
        refund_state_matches_amounts,
        state_matches_amounts,
    ],
)
"""The payment intent workflow."""
