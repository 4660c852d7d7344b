"""Checkout: cart -> placed -> paid -> shipped -> delivered, with cancellation and refunds.

A customer fills a cart from the :data:`CATALOGUE` (prices come from the catalogue, never from
the client, and are locked into the cart line when it is added), then places the order, which
fixes its total. The payment provider reports the captured payment; the warehouse ships the
paid order with a tracking number and the carrier delivers it.

An order may be cancelled until it ships. Cancelling an unpaid order (a cart or a placed
order) simply ends it. Cancelling a *paid* order is a saga with a compensating action: the
order moves to ``refund_pending`` and asks the payment provider to refund the payment; only
when the provider confirms that the whole payment was refunded is the order ``cancelled``.
The refund is recorded in the context, so "a cancelled order that was paid has been refunded
in full" is checkable from the data alone. Once shipped, an order can no longer be cancelled
(returns are another workflow).

Roles:

- ``customer`` edits the cart, places and cancels the order;
- ``support`` may also cancel an order on the customer's behalf;
- ``payment_provider`` reports payments, failed payment attempts and refunds;
- ``warehouse`` ships; ``carrier`` delivers.

Business rules (guards):

- only catalogue items, in positive quantities, at most :data:`MAX_QUANTITY` of each item;
- only items in the cart can be removed; only a non-empty cart can be placed;
- a payment or a refund names its provider reference and covers the order's amount exactly
  (an underpayment or a partial refund is refused, not silently accepted);
- after :data:`MAX_PAYMENT_FAILURES` failed payment attempts no payment is taken any more
  (card testing protection): the order can only be cancelled;
- a shipment has a tracking number.

Invariants:

- ``cancelled_paid_order_refunded``: a cancelled order that was paid records a refund of the
  whole payment, with its reference;
- ``refund_never_exceeds_payment``: 0 <= refunded <= paid, and only cancelled orders have
  refunds;
- ``paid_in_full``: orders from ``paid`` on were paid exactly their total (with a reference);
  carts and placed orders have paid nothing;
- ``total_matches_lines``: a placed (or later) order's total is the sum of its lines and is
  positive; a cart has no total yet;
- ``shipped_has_tracking``: shipped and delivered orders, and only those, have tracking;
- ``payment_failures_bounded``: failed attempts stay within the limit, and no order was paid
  once the limit was reached;
- ``lines_valid``: cart lines are catalogue items at catalogue prices, one line per item, with
  quantities from 1 to :data:`MAX_QUANTITY`;
- ``cancellation_has_reason``: cancelled and refund-pending orders say why they were
  cancelled, and no other order has a cancellation reason.

Effects: ``stock_reserved`` and ``stock_released``, ``receipt_sent``, ``refund_requested``
(the compensation), ``customer_notified`` on failed payments, shipping, delivery and
cancellation.

Explorer bounds: with the transitions' ``examples`` (books and pens added one unit at a
time, one payment and one refund example per reachable cart total, plus amounts and items the
guards reject) a breadth-first search over (state, context) sees 627 distinct snapshots, at
most 11 steps deep, with every transition fired.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

import attrs

from statekernel.kernel import Effect, Spec, Transition, guard, invariant

__all__ = [
    "CATALOGUE",
    "MAX_PAYMENT_FAILURES",
    "MAX_QUANTITY",
    "SPEC",
    "AddItem",
    "Cancel",
    "CancelReason",
    "Line",
    "Order",
    "PaymentCaptured",
    "PaymentFailed",
    "RefundIssued",
    "RemoveItem",
    "Ship",
    "cancellation_has_reason",
    "cancelled_paid_order_refunded",
    "cart_not_empty",
    "in_cart",
    "known_item",
    "lines_valid",
    "paid_in_full",
    "payment_attempts_left",
    "payment_failures_bounded",
    "pays_total",
    "positive_quantity",
    "quantity_within_limit",
    "reference_given",
    "refund_never_exceeds_payment",
    "refunds_payment",
    "shipped_has_tracking",
    "total_matches_lines",
    "tracking_given",
]

CATALOGUE: Final[Mapping[str, int]] = {"book": 1500, "pen": 250}
"""What the shop sells, with unit prices in cents."""

MAX_QUANTITY = 3
"""The most units of one item an order may hold."""

MAX_PAYMENT_FAILURES = 2
"""After this many failed payment attempts the order takes no more payments (card testing
protection); it can only be cancelled."""

CancelReason = Literal["changed_mind", "out_of_stock", "fraud_suspected"]
"""Why an order was cancelled."""


@attrs.frozen
class Line:
    """``quantity`` units of ``item`` at ``unit_price`` cents each (the price when added)."""

    item: str
    quantity: int
    unit_price: int

    @property
    def amount(self) -> int:
        """The line's amount in cents."""
        return self.quantity * self.unit_price


@attrs.frozen
class Order:
    """The order's context: lines, money in and out, and fulfilment details."""

    lines: tuple[Line, ...] = ()
    """The cart's lines, in the order items were first added."""
    total: int = 0
    """The amount due in cents, fixed when the order is placed."""
    paid: int = 0
    """Cents the payment provider captured."""
    payment_ref: str | None = None
    """The provider's payment reference."""
    refunded: int = 0
    """Cents refunded to the customer."""
    refund_ref: str | None = None
    """The provider's refund reference."""
    tracking: str | None = None
    """The shipment's tracking number."""
    cancel_reason: CancelReason | None = None
    """Why the order was cancelled."""
    payment_failures: int = 0
    """How many payment attempts failed."""

    @property
    def subtotal(self) -> int:
        """The sum of the lines, in cents."""
        return sum(line.amount for line in self.lines)

    def quantity(self, item: str) -> int:
        """How many units of ``item`` the cart holds."""
        return sum(line.quantity for line in self.lines if line.item == item)


@attrs.frozen
class AddItem:
    """Add ``quantity`` units of catalogue ``item`` to the cart."""

    item: str
    quantity: int


@attrs.frozen
class RemoveItem:
    """Remove the line for ``item`` from the cart."""

    item: str


@attrs.frozen
class PaymentCaptured:
    """The payment provider captured ``amount`` cents under ``reference``."""

    reference: str
    amount: int


@attrs.frozen
class PaymentFailed:
    """The payment provider reports a failed payment attempt."""

    reason: Literal["card_declined", "insufficient_funds"]


@attrs.frozen
class RefundIssued:
    """The payment provider refunded ``amount`` cents under ``reference``."""

    reference: str
    amount: int


@attrs.frozen
class Ship:
    """The warehouse handed the parcel to the carrier."""

    tracking: str


@attrs.frozen
class Cancel:
    """Cancel the order, saying why."""

    reason: CancelReason


# --- guards ----------------------------------------------------------------------------------


@guard
def known_item(ctx: Order, payload: AddItem) -> bool:
    """The item is in the catalogue."""
    return payload.item in CATALOGUE


@guard
def positive_quantity(ctx: Order, payload: AddItem) -> bool:
    """At least one unit is added."""
    return payload.quantity > 0


@guard
def quantity_within_limit(ctx: Order, payload: AddItem) -> bool:
    """The cart holds at most MAX_QUANTITY units of the item."""
    return ctx.quantity(payload.item) + payload.quantity <= MAX_QUANTITY


@guard
def in_cart(ctx: Order, payload: RemoveItem) -> bool:
    """The item is in the cart."""
    return ctx.quantity(payload.item) > 0


@guard
def cart_not_empty(ctx: Order, payload: object) -> bool:
    """The cart holds at least one item."""
    return bool(ctx.lines)


@guard
def reference_given(ctx: Order, payload: PaymentCaptured | RefundIssued) -> bool:
    """The payment provider gives its reference."""
    return payload.reference != ""


@guard
def pays_total(ctx: Order, payload: PaymentCaptured) -> bool:
    """The captured amount is exactly the order's total."""
    return payload.amount == ctx.total


@guard
def payment_attempts_left(ctx: Order, payload: PaymentCaptured | PaymentFailed) -> bool:
    """Fewer than MAX_PAYMENT_FAILURES payment attempts have failed."""
    return ctx.payment_failures < MAX_PAYMENT_FAILURES


@guard
def refunds_payment(ctx: Order, payload: RefundIssued) -> bool:
    """The refunded amount is exactly what was paid."""
    return payload.amount == ctx.paid


@guard
def tracking_given(ctx: Order, payload: Ship) -> bool:
    """The shipment has a tracking number."""
    return payload.tracking != ""


# --- invariants ------------------------------------------------------------------------------

_PAID = ("paid", "shipped", "delivered", "refund_pending")
_PLACED = ("placed", *_PAID)


@invariant
def cancelled_paid_order_refunded(state: str, ctx: Order) -> bool:
    """A cancelled order that was paid has its whole payment refunded, with a reference."""
    if state != "cancelled" or ctx.paid == 0:
        return True
    return ctx.refunded == ctx.paid and ctx.refund_ref is not None


@invariant
def refund_never_exceeds_payment(state: str, ctx: Order) -> bool:
    """0 <= refunded <= paid, and only cancelled orders have refunds."""
    if not 0 <= ctx.refunded <= ctx.paid:
        return False
    return state == "cancelled" or (ctx.refunded == 0 and ctx.refund_ref is None)


@invariant
def paid_in_full(state: str, ctx: Order) -> bool:
    """Paid (and later) orders were paid exactly their total; earlier ones paid nothing."""
    if state in _PAID:
        return ctx.paid == ctx.total > 0 and ctx.payment_ref is not None
    if state == "cancelled":
        return ctx.paid in (0, ctx.total)
    return ctx.paid == 0 and ctx.payment_ref is None


@invariant
def total_matches_lines(state: str, ctx: Order) -> bool:
    """A placed order's total is the positive sum of its lines; a cart has no total yet."""
    if state in _PLACED:
        return ctx.total == ctx.subtotal > 0
    if state == "cart":
        return ctx.total == 0
    return ctx.total in (0, ctx.subtotal)


@invariant
def shipped_has_tracking(state: str, ctx: Order) -> bool:
    """Shipped and delivered orders, and only those, have a (non-empty) tracking number."""
    return (state in ("shipped", "delivered")) == bool(ctx.tracking)


@invariant
def lines_valid(state: str, ctx: Order) -> bool:
    """Lines are catalogue items at catalogue prices, one per item, 1..MAX_QUANTITY units."""
    items = [line.item for line in ctx.lines]
    if len(items) != len(set(items)):
        return False
    return all(
        line.item in CATALOGUE
        and line.unit_price == CATALOGUE[line.item]
        and 1 <= line.quantity <= MAX_QUANTITY
        for line in ctx.lines
    )


@invariant
def payment_failures_bounded(state: str, ctx: Order) -> bool:
    """Failed payment attempts stay within MAX_PAYMENT_FAILURES; a paid order was paid before
    the limit was reached."""
    if not 0 <= ctx.payment_failures <= MAX_PAYMENT_FAILURES:
        return False
    return ctx.paid == 0 or ctx.payment_failures < MAX_PAYMENT_FAILURES


@invariant
def cancellation_has_reason(state: str, ctx: Order) -> bool:
    """Cancelled and refund-pending orders, and only those, say why they were cancelled."""
    return (state in ("cancelled", "refund_pending")) == (ctx.cancel_reason is not None)


# --- updates and effects ---------------------------------------------------------------------


def _add(ctx: Order, payload: AddItem) -> Order:
    if ctx.quantity(payload.item) == 0:
        line = Line(payload.item, payload.quantity, CATALOGUE[payload.item])
        return attrs.evolve(ctx, lines=(*ctx.lines, line))
    lines = tuple(
        attrs.evolve(line, quantity=line.quantity + payload.quantity)
        if line.item == payload.item
        else line
        for line in ctx.lines
    )
    return attrs.evolve(ctx, lines=lines)


def _remove(ctx: Order, payload: RemoveItem) -> Order:
    return attrs.evolve(ctx, lines=tuple(ln for ln in ctx.lines if ln.item != payload.item))


def _place(ctx: Order, payload: None) -> Order:
    return attrs.evolve(ctx, total=ctx.subtotal)


def _pay(ctx: Order, payload: PaymentCaptured) -> Order:
    return attrs.evolve(ctx, paid=payload.amount, payment_ref=payload.reference)


def _payment_failed(ctx: Order, payload: PaymentFailed) -> Order:
    return attrs.evolve(ctx, payment_failures=ctx.payment_failures + 1)


def _cancel(ctx: Order, payload: Cancel) -> Order:
    return attrs.evolve(ctx, cancel_reason=payload.reason)


def _refund(ctx: Order, payload: RefundIssued) -> Order:
    return attrs.evolve(ctx, refunded=payload.amount, refund_ref=payload.reference)


def _ship(ctx: Order, payload: Ship) -> Order:
    return attrs.evolve(ctx, tracking=payload.tracking)


def _stock(ctx: Order, payload: object) -> Mapping[str, object]:
    return {"items": {line.item: line.quantity for line in ctx.lines}}


def _receipt(ctx: Order, payload: PaymentCaptured) -> Mapping[str, object]:
    return {"amount": ctx.paid, "payment_ref": ctx.payment_ref}


def _refund_request(ctx: Order, payload: Cancel) -> Mapping[str, object]:
    return {"amount": ctx.paid, "payment_ref": ctx.payment_ref}


def _cancelled(ctx: Order, payload: object) -> Mapping[str, object]:
    return {"status": "cancelled", "reason": ctx.cancel_reason, "refunded": ctx.refunded}


def _shipped(ctx: Order, payload: Ship) -> Mapping[str, object]:
    return {"status": "shipped", "tracking": ctx.tracking}


def _payment_failure_notice(ctx: Order, payload: PaymentFailed) -> Mapping[str, object]:
    return {"status": "payment_failed", "reason": payload.reason}


def _delivered(ctx: Order, payload: None) -> Mapping[str, object]:
    return {"status": "delivered", "tracking": ctx.tracking}


# The cart examples add one unit at a time, so a placed order's total is one of these; each
# gets a payment and a refund example (the explorer needs a matching amount to move on), and
# wrong amounts are examples too.
_TOTALS = sorted(
    {books * CATALOGUE["book"] + pens * CATALOGUE["pen"] for books in range(4) for pens in range(4)}
    - {0}
)
_CANCELLERS = ["customer", "support"]
_CANCEL_EXAMPLES = [Cancel("changed_mind"), Cancel("out_of_stock")]

SPEC = Spec(
    name="order",
    version=1,
    context=Order,
    initial="cart",
    states=["cart", "placed", "paid", "shipped", "delivered", "refund_pending", "cancelled"],
    final=["delivered", "cancelled"],
    description=(
        "Checkout: cart -> placed -> paid -> shipped -> delivered. Cancelling before shipping "
        "ends an unpaid order; a paid one is refunded first (a compensating action)."
    ),
    transitions=[
        Transition(
            "add_item",
            "cart",
            "cart",
            payload=AddItem,
            roles=["customer"],
            guards=[known_item, positive_quantity, quantity_within_limit],
            update=_add,
            examples=[
                AddItem("book", 1),
                AddItem("pen", 1),
                AddItem("pen", 0),
                AddItem("caviar", 1),
                AddItem("book", MAX_QUANTITY + 1),
            ],
            description="The customer adds catalogue items to the cart.",
        ),
        Transition(
            "remove_item",
            "cart",
            "cart",
            payload=RemoveItem,
            roles=["customer"],
            guards=[in_cart],
            update=_remove,
            examples=[RemoveItem("book"), RemoveItem("pen")],
            description="The customer removes an item's line from the cart.",
        ),
        Transition(
            "place",
            "cart",
            "placed",
            roles=["customer"],
            guards=[cart_not_empty],
            update=_place,
            effects=[Effect("stock_reserved", _stock)],
            description="The customer places the order; its total is fixed.",
        ),
        Transition(
            "pay",
            "placed",
            "paid",
            payload=PaymentCaptured,
            roles=["payment_provider"],
            guards=[reference_given, payment_attempts_left, pays_total],
            update=_pay,
            effects=[Effect("receipt_sent", _receipt)],
            examples=[
                *(PaymentCaptured("pay-1", amount) for amount in _TOTALS),
                PaymentCaptured("pay-1", 1),
                PaymentCaptured("", 1500),
            ],
            description="The payment provider captured the order's total.",
        ),
        Transition(
            "payment_failed",
            "placed",
            "placed",
            payload=PaymentFailed,
            roles=["payment_provider"],
            guards=[payment_attempts_left],
            update=_payment_failed,
            effects=[Effect("customer_notified", _payment_failure_notice)],
            examples=[PaymentFailed("card_declined"), PaymentFailed("insufficient_funds")],
            description="A payment attempt failed; the customer may try again.",
        ),
        Transition(
            "ship",
            "paid",
            "shipped",
            payload=Ship,
            roles=["warehouse"],
            guards=[tracking_given],
            update=_ship,
            effects=[Effect("customer_notified", _shipped)],
            examples=[Ship("trk-1"), Ship("")],
            description="The warehouse ships the paid order.",
        ),
        Transition(
            "deliver",
            "shipped",
            "delivered",
            roles=["carrier"],
            effects=[Effect("customer_notified", _delivered)],
            description="The carrier delivers the parcel.",
        ),
        Transition(
            "cancel",
            ["cart", "placed"],
            "cancelled",
            payload=Cancel,
            roles=_CANCELLERS,
            update=_cancel,
            effects=[Effect("stock_released", _stock), Effect("customer_notified", _cancelled)],
            examples=_CANCEL_EXAMPLES,
            description="An unpaid order is cancelled.",
        ),
        Transition(
            "cancel",
            "paid",
            "refund_pending",
            payload=Cancel,
            roles=_CANCELLERS,
            update=_cancel,
            effects=[Effect("stock_released", _stock), Effect("refund_requested", _refund_request)],
            examples=_CANCEL_EXAMPLES,
            description="A paid order is cancelled: its payment must be refunded first.",
        ),
        Transition(
            "refund_issued",
            "refund_pending",
            "cancelled",
            payload=RefundIssued,
            roles=["payment_provider"],
            guards=[reference_given, refunds_payment],
            update=_refund,
            effects=[Effect("customer_notified", _cancelled)],
            examples=[
                *(RefundIssued("ref-1", amount) for amount in _TOTALS),
                RefundIssued("ref-1", 1),
                RefundIssued("", 1500),
            ],
            description="The payment provider refunded the whole payment.",
        ),
    ],
    invariants=[
        cancelled_paid_order_refunded,
        refund_never_exceeds_payment,
        paid_in_full,
        total_matches_lines,
        shipped_has_tracking,
        lines_valid,
        payment_failures_bounded,
        cancellation_has_reason,
    ],
)
"""The checkout workflow."""
