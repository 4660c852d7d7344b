"""Seat booking for one session (a concert, a class, a flight) with expiring holds.

The organizer schedules a session and opens sales with a capacity. Customers place *holds*:
a hold reserves seats for a short while (it carries its expiry time) so the customer can pay;
confirming a hold before it expires turns it into a *booking*. A hold that is released by the
customer, or that expires, gives its seats back. The session is ``open`` while seats are left
and ``full`` when holds and bookings take every seat; a booking cancellation, a release or an
expiry reopens it. The organizer finally closes sales (outstanding holds are dropped; bookings
stand) or cancels the whole session (every booking is refunded).

Time is data. The kernel never reads a clock, so a ``scheduler`` reports the time with an
``expire`` event carrying ``now`` in its payload; that event drops every hold whose expiry has
passed and moves the session's ``clock`` forward (it never goes back: clocks drift and
messages arrive late, so an older time is refused). Confirmations carry the customer's ``at``
time too, and a hold cannot be confirmed at or after its expiry even if the scheduler has not
yet swept it.

Roles:

- ``organizer`` opens and closes sales and cancels the session;
- ``customer`` places, confirms and releases holds and cancels bookings;
- ``scheduler`` reports the time (``expire``).

Business rules (guards):

- the capacity is between 1 and :data:`MAX_CAPACITY` seats;
- a hold asks for at least one seat, no more than are available, under a reference not used
  by any live hold or booking, and expires after the session's clock;
- a hold that takes the last seats makes the session ``full``;
- a confirmation names a live hold, is not older than the clock and comes before the hold's
  expiry;
- releases and cancellations name a live hold or booking;
- an ``expire`` is not older than the clock and finds at least one expired hold.

Invariants:

- ``no_overbooking``: held seats + booked seats <= capacity;
- ``full_means_sold_out``: the session is ``full`` exactly when no seat is left (``open``
  always has a seat);
- ``references_unique``: no reference names two live holds or bookings;
- ``live_holds_unexpired``: every live hold expires after the clock;
- ``seats_positive``: every hold and booking takes at least one seat;
- ``capacity_set_when_selling``: a scheduled session has no capacity and no seats taken;
  every other session has a capacity between 1 and :data:`MAX_CAPACITY`;
- ``closed_sessions_hold_nothing``: closed and cancelled sessions have no holds, a cancelled
  session has no bookings left, and refunds exist only for a cancelled session.

Effects: ``booking_confirmed``, ``booking_cancelled``, ``sales_closed`` (seats booked when
sales close) and ``bookings_refunded`` (when the session is cancelled; the refunded bookings
stay in the context as the compensation record).

Explorer bounds: with the transitions' ``examples`` (capacities 2 and 4, four hold
references expiring at 20, 30 and 50, times 10 to 60) a breadth-first search over (state,
context) sees 686 distinct snapshots, at most 10 steps deep, with every transition fired.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from statekernel.kernel import Effect, Spec, Transition, guard, invariant

__all__ = [
    "MAX_CAPACITY",
    "SPEC",
    "Booking",
    "CancelBooking",
    "Confirm",
    "Expire",
    "Hold",
    "HoldSeats",
    "OpenSales",
    "Release",
    "Session",
    "booking_exists",
    "capacity_in_range",
    "capacity_set_when_selling",
    "closed_sessions_hold_nothing",
    "confirmed_in_time",
    "expiry_after_clock",
    "fills_capacity",
    "full_means_sold_out",
    "hold_exists",
    "leaves_seats",
    "live_holds_unexpired",
    "no_overbooking",
    "not_before_clock",
    "reference_unused",
    "references_unique",
    "seats_available",
    "seats_positive",
    "some_hold_expired",
    "wants_seats",
]

MAX_CAPACITY = 4
"""The most seats a session may offer."""


@attrs.frozen
class Hold:
    """Seats reserved for a while under a reference, until ``expires_at`` (epoch seconds)."""

    ref: str
    seats: int
    expires_at: int


@attrs.frozen
class Booking:
    """Seats sold under a reference."""

    ref: str
    seats: int


@attrs.frozen
class Session:
    """The session's context: its capacity, the reported time, live holds and bookings."""

    capacity: int = 0
    """How many seats are for sale (0 until sales open)."""
    clock: int = 0
    """The latest time the scheduler reported, in epoch seconds."""
    holds: tuple[Hold, ...] = ()
    """Live holds, oldest first."""
    bookings: tuple[Booking, ...] = ()
    """Live bookings, oldest first."""
    refunded: tuple[Booking, ...] = ()
    """Bookings refunded because the session was cancelled."""

    @property
    def held(self) -> int:
        """Seats taken by live holds."""
        return sum(h.seats for h in self.holds)

    @property
    def booked(self) -> int:
        """Seats taken by bookings."""
        return sum(b.seats for b in self.bookings)

    @property
    def available(self) -> int:
        """Seats neither held nor booked."""
        return self.capacity - self.held - self.booked

    def hold(self, ref: str) -> Hold | None:
        """The live hold under ``ref``, if any."""
        return next((h for h in self.holds if h.ref == ref), None)


@attrs.frozen
class OpenSales:
    """The organizer opens sales for ``capacity`` seats."""

    capacity: int


@attrs.frozen
class HoldSeats:
    """A customer holds ``seats`` seats under ``ref`` until ``expires_at``."""

    ref: str
    seats: int
    expires_at: int


@attrs.frozen
class Confirm:
    """The customer confirms (pays for) hold ``ref`` at time ``at``."""

    ref: str
    at: int


@attrs.frozen
class Release:
    """The customer gives back hold ``ref``."""

    ref: str


@attrs.frozen
class CancelBooking:
    """The customer cancels booking ``ref``."""

    ref: str


@attrs.frozen
class Expire:
    """The scheduler reports that it is now ``now``: holds expired by then go."""

    now: int


# --- guards ----------------------------------------------------------------------------------


@guard
def capacity_in_range(ctx: Session, payload: OpenSales) -> bool:
    """The capacity is between 1 and MAX_CAPACITY seats."""
    return 1 <= payload.capacity <= MAX_CAPACITY


@guard
def wants_seats(ctx: Session, payload: HoldSeats) -> bool:
    """A hold asks for at least one seat."""
    return payload.seats > 0


@guard
def reference_unused(ctx: Session, payload: HoldSeats) -> bool:
    """No live hold or booking uses the reference already."""
    refs = {h.ref for h in ctx.holds} | {b.ref for b in ctx.bookings}
    return payload.ref not in refs


@guard
def seats_available(ctx: Session, payload: HoldSeats) -> bool:
    """Enough seats are neither held nor booked."""
    return payload.seats <= ctx.available


@guard
def expiry_after_clock(ctx: Session, payload: HoldSeats) -> bool:
    """The hold expires after the session's clock."""
    return payload.expires_at > ctx.clock


@guard
def leaves_seats(ctx: Session, payload: HoldSeats) -> bool:
    """Seats remain after the hold."""
    return payload.seats < ctx.available


@guard
def fills_capacity(ctx: Session, payload: HoldSeats) -> bool:
    """The hold takes the last seats."""
    return payload.seats == ctx.available


@guard
def hold_exists(ctx: Session, payload: Confirm | Release) -> bool:
    """A live hold has this reference."""
    return ctx.hold(payload.ref) is not None


@guard
def not_before_clock(ctx: Session, payload: Confirm | Expire) -> bool:
    """The reported time is not older than the session's clock."""
    return (payload.at if isinstance(payload, Confirm) else payload.now) >= ctx.clock


@guard
def confirmed_in_time(ctx: Session, payload: Confirm) -> bool:
    """The confirmation comes before the hold expires."""
    hold = ctx.hold(payload.ref)
    return hold is not None and payload.at < hold.expires_at


@guard
def booking_exists(ctx: Session, payload: CancelBooking) -> bool:
    """A booking has this reference."""
    return any(b.ref == payload.ref for b in ctx.bookings)


@guard
def some_hold_expired(ctx: Session, payload: Expire) -> bool:
    """At least one live hold has expired by then."""
    return any(h.expires_at <= payload.now for h in ctx.holds)


# --- invariants ------------------------------------------------------------------------------


@invariant
def no_overbooking(state: str, ctx: Session) -> bool:
    """Held seats plus booked seats never exceed the capacity."""
    return ctx.held + ctx.booked <= ctx.capacity


@invariant
def full_means_sold_out(state: str, ctx: Session) -> bool:
    """A full session has no seat left; an open one has at least one."""
    if state == "full":
        return ctx.available == 0
    if state == "open":
        return ctx.available > 0
    return True


@invariant
def references_unique(state: str, ctx: Session) -> bool:
    """No reference names two live holds or bookings."""
    refs = [h.ref for h in ctx.holds] + [b.ref for b in ctx.bookings]
    return len(refs) == len(set(refs))


@invariant
def live_holds_unexpired(state: str, ctx: Session) -> bool:
    """Every live hold expires after the session's clock."""
    return all(h.expires_at > ctx.clock for h in ctx.holds)


@invariant
def seats_positive(state: str, ctx: Session) -> bool:
    """Every hold and booking takes at least one seat."""
    seats = [h.seats for h in ctx.holds] + [b.seats for b in (*ctx.bookings, *ctx.refunded)]
    return all(n > 0 for n in seats)


@invariant
def capacity_set_when_selling(state: str, ctx: Session) -> bool:
    """A scheduled session sells nothing; any other has 1..MAX_CAPACITY seats."""
    if state == "scheduled":
        return ctx.capacity == 0 and not ctx.holds and not ctx.bookings
    if state == "cancelled" and ctx.capacity == 0:
        return not ctx.refunded  # cancelled before sales opened
    return 1 <= ctx.capacity <= MAX_CAPACITY


@invariant
def closed_sessions_hold_nothing(state: str, ctx: Session) -> bool:
    """Closed and cancelled sessions hold no seats; a cancelled one refunded every booking."""
    if state in ("closed", "cancelled") and ctx.holds:
        return False
    if state == "cancelled":
        return not ctx.bookings
    return not ctx.refunded


# --- updates and effects ---------------------------------------------------------------------


def _open(ctx: Session, payload: OpenSales) -> Session:
    return attrs.evolve(ctx, capacity=payload.capacity)


def _hold(ctx: Session, payload: HoldSeats) -> Session:
    hold = Hold(payload.ref, payload.seats, payload.expires_at)
    return attrs.evolve(ctx, holds=(*ctx.holds, hold))


def _confirm(ctx: Session, payload: Confirm) -> Session:
    hold = ctx.hold(payload.ref)
    assert hold is not None  # guarded by hold_exists
    return attrs.evolve(
        ctx,
        holds=tuple(h for h in ctx.holds if h.ref != payload.ref),
        bookings=(*ctx.bookings, Booking(hold.ref, hold.seats)),
    )


def _release(ctx: Session, payload: Release) -> Session:
    return attrs.evolve(ctx, holds=tuple(h for h in ctx.holds if h.ref != payload.ref))


def _cancel_booking(ctx: Session, payload: CancelBooking) -> Session:
    return attrs.evolve(ctx, bookings=tuple(b for b in ctx.bookings if b.ref != payload.ref))


def _expire(ctx: Session, payload: Expire) -> Session:
    live = tuple(h for h in ctx.holds if h.expires_at > payload.now)
    return attrs.evolve(ctx, clock=payload.now, holds=live)


def _close(ctx: Session, payload: None) -> Session:
    return attrs.evolve(ctx, holds=())


def _cancel_session(ctx: Session, payload: None) -> Session:
    return attrs.evolve(ctx, holds=(), bookings=(), refunded=ctx.bookings)


def _confirmed(ctx: Session, payload: Confirm) -> Mapping[str, object]:
    booking = next(b for b in ctx.bookings if b.ref == payload.ref)
    return {"ref": booking.ref, "seats": booking.seats}


def _cancelled(ctx: Session, payload: CancelBooking) -> Mapping[str, object]:
    return {"ref": payload.ref}


def _refunds(ctx: Session, payload: None) -> Mapping[str, object]:
    return {"refs": [b.ref for b in ctx.refunded], "seats": sum(b.seats for b in ctx.refunded)}


def _sales_closed(ctx: Session, payload: None) -> Mapping[str, object]:
    return {"booked": ctx.booked, "capacity": ctx.capacity}


_HOLD_GUARDS = [wants_seats, reference_unused, seats_available, expiry_after_clock]
_HOLD_EXAMPLES = [
    HoldSeats("h1", 1, 20),
    HoldSeats("h2", 2, 30),
    HoldSeats("h3", 1, 50),
    HoldSeats("h4", 2, 50),
    HoldSeats("h5", 0, 50),
    HoldSeats("h5", MAX_CAPACITY + 1, 50),
    HoldSeats("h5", 1, 5),
]
_CONFIRM_GUARDS = [hold_exists, not_before_clock, confirmed_in_time]
_CONFIRM_EXAMPLES = [
    Confirm("h1", 15),
    Confirm("h2", 15),
    Confirm("h3", 40),
    Confirm("h4", 40),
    Confirm("h2", 35),
]

SPEC = Spec(
    name="booking",
    version=1,
    context=Session,
    initial="scheduled",
    states=["scheduled", "open", "full", "closed", "cancelled"],
    final=["closed", "cancelled"],
    description=(
        "Seats for one session: customers hold seats (holds expire), confirm them into "
        "bookings or cancel; never more seats held and booked than the capacity."
    ),
    transitions=[
        Transition(
            "open_sales",
            "scheduled",
            "open",
            payload=OpenSales,
            roles=["organizer"],
            guards=[capacity_in_range],
            update=_open,
            examples=[OpenSales(2), OpenSales(4), OpenSales(0), OpenSales(MAX_CAPACITY + 1)],
            description="The organizer opens sales with a capacity.",
        ),
        Transition(
            "hold",
            "open",
            "open",
            payload=HoldSeats,
            roles=["customer"],
            guards=[*_HOLD_GUARDS, leaves_seats],
            update=_hold,
            examples=_HOLD_EXAMPLES,
            description="A customer holds some of the remaining seats.",
        ),
        Transition(
            "hold",
            "open",
            "full",
            payload=HoldSeats,
            roles=["customer"],
            guards=[*_HOLD_GUARDS, fills_capacity],
            update=_hold,
            examples=_HOLD_EXAMPLES,
            description="A customer holds the last seats.",
        ),
        Transition(
            "confirm",
            "open",
            "open",
            payload=Confirm,
            roles=["customer"],
            guards=_CONFIRM_GUARDS,
            update=_confirm,
            effects=[Effect("booking_confirmed", _confirmed)],
            examples=_CONFIRM_EXAMPLES,
            description="A customer confirms a hold into a booking.",
        ),
        Transition(
            "confirm",
            "full",
            "full",
            payload=Confirm,
            roles=["customer"],
            guards=_CONFIRM_GUARDS,
            update=_confirm,
            effects=[Effect("booking_confirmed", _confirmed)],
            examples=_CONFIRM_EXAMPLES,
            description="A customer confirms a hold into a booking.",
        ),
        Transition(
            "release",
            ["open", "full"],
            "open",
            payload=Release,
            roles=["customer"],
            guards=[hold_exists],
            update=_release,
            examples=[Release("h1"), Release("h2"), Release("h9")],
            description="A customer gives back a hold.",
        ),
        Transition(
            "cancel_booking",
            ["open", "full"],
            "open",
            payload=CancelBooking,
            roles=["customer"],
            guards=[booking_exists],
            update=_cancel_booking,
            effects=[Effect("booking_cancelled", _cancelled)],
            examples=[CancelBooking("h1"), CancelBooking("h2"), CancelBooking("h9")],
            description="A customer cancels a booking, freeing its seats.",
        ),
        Transition(
            "expire",
            ["open", "full"],
            "open",
            payload=Expire,
            roles=["scheduler"],
            guards=[not_before_clock, some_hold_expired],
            update=_expire,
            examples=[Expire(10), Expire(25), Expire(45), Expire(60)],
            description="The scheduler reports the time; expired holds give their seats back.",
        ),
        Transition(
            "close_sales",
            ["open", "full"],
            "closed",
            roles=["organizer"],
            update=_close,
            effects=[Effect("sales_closed", _sales_closed)],
            description="The organizer ends sales; outstanding holds are dropped.",
        ),
        Transition(
            "cancel_session",
            ["scheduled", "open", "full"],
            "cancelled",
            roles=["organizer"],
            update=_cancel_session,
            effects=[Effect("bookings_refunded", _refunds)],
            description="The organizer cancels the session; every booking is refunded.",
        ),
    ],
    invariants=[
        no_overbooking,
        full_means_sold_out,
        references_unique,
        live_holds_unexpired,
        seats_positive,
        capacity_set_when_selling,
        closed_sessions_hold_nothing,
    ],
)
"""The seat booking workflow."""
