"""The seat booking reference spec: every transition, guard, role and invariant."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statekernel.kernel import Accepted, Actor, Command, Decision, Snapshot, Spec, decide
from statekernel.specs import booking as b
from statekernel.specs.booking import (
    SPEC,
    Booking,
    CancelBooking,
    Confirm,
    Expire,
    Hold,
    HoldSeats,
    OpenSales,
    Release,
    Session,
)

Walk = Callable[[Spec, st.DataObject], list[Snapshot]]


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


def opened() -> Snapshot:
    """Open with 3 seats, h1 holds 1 seat until 20."""
    return ok(ok(SPEC.start(), "open_sales", OpenSales(3)), "hold", HoldSeats("h1", 1, 20))


def full() -> Snapshot:
    """3 seats: h1 booked (1 seat), h2 holds 2 seats until 30."""
    snap = ok(opened(), "confirm", Confirm("h1", 15))
    return ok(snap, "hold", HoldSeats("h2", 2, 30))


REACH: dict[str, Callable[[], Snapshot]] = {
    "scheduled": SPEC.start,
    "open": opened,
    "full": full,
}


def seats(snap: Snapshot) -> tuple[str, int, int, int]:
    return (snap.state, snap.context.held, snap.context.booked, snap.context.capacity)


# --- transitions -----------------------------------------------------------------------------


def test_open_sales_sets_the_capacity() -> None:
    snap = ok(SPEC.start(), "open_sales", OpenSales(3))
    assert seats(snap) == ("open", 0, 0, 3)


def test_hold_reserves_seats_with_an_expiry() -> None:
    snap = opened()
    assert seats(snap) == ("open", 1, 0, 3)
    assert snap.context.holds == (Hold("h1", 1, 20),)


def test_hold_taking_the_last_seats_makes_the_session_full() -> None:
    snap = ok(opened(), "hold", HoldSeats("h2", 2, 30))
    assert seats(snap) == ("full", 3, 0, 3)


@pytest.mark.parametrize("source", ["open", "full"])
def test_confirm_turns_a_hold_into_a_booking(source: str) -> None:
    before = REACH[source]()
    ref = before.context.holds[-1].ref
    decision = fire(before, "confirm", Confirm(ref, 16))
    snap = decision.snapshot
    assert snap.state == source
    assert snap.context.hold(ref) is None
    held = before.context.holds[-1].seats
    assert Booking(ref, held) in snap.context.bookings
    assert [(m.name, dict(m.data)) for m in decision.effects] == [
        ("booking_confirmed", {"ref": ref, "seats": held})
    ]


@pytest.mark.parametrize("source", ["open", "full"])
def test_release_gives_seats_back(source: str) -> None:
    before = REACH[source]()
    ref = before.context.holds[-1].ref
    snap = ok(before, "release", Release(ref))
    assert snap.state == "open"
    assert snap.context.held == before.context.held - before.context.holds[-1].seats


@pytest.mark.parametrize("source", ["open", "full"])
def test_cancel_booking_frees_its_seats(source: str) -> None:
    before = ok(REACH[source](), "confirm", Confirm(REACH[source]().context.holds[-1].ref, 16))
    ref = before.context.bookings[0].ref
    decision = fire(before, "cancel_booking", CancelBooking(ref))
    assert decision.snapshot.state == "open"
    assert all(x.ref != ref for x in decision.snapshot.context.bookings)
    assert [(m.name, dict(m.data)) for m in decision.effects] == [
        ("booking_cancelled", {"ref": ref})
    ]


def test_expire_drops_expired_holds_and_moves_the_clock() -> None:
    snap = ok(full(), "release", Release("h2"))
    snap = ok(snap, "hold", HoldSeats("h3", 1, 50))
    snap = ok(snap, "hold", HoldSeats("h4", 1, 25))
    assert seats(snap) == ("full", 2, 1, 3)
    snap = ok(snap, "expire", Expire(25))
    assert seats(snap) == ("open", 1, 1, 3)
    assert snap.context.clock == 25
    assert snap.context.holds == (Hold("h3", 1, 50),)


def test_expire_from_open() -> None:
    snap = ok(opened(), "expire", Expire(20))
    assert (snap.state, snap.context.holds, snap.context.clock) == ("open", (), 20)


@pytest.mark.parametrize("source", ["open", "full"])
def test_close_sales_drops_holds_keeps_bookings(source: str) -> None:
    before = REACH[source]()
    decision = fire(before, "close_sales")
    ctx = decision.snapshot.context
    assert (decision.snapshot.state, ctx.holds, ctx.bookings) == (
        "closed",
        (),
        before.context.bookings,
    )
    assert dict(decision.effects[0].data) == {"booked": before.context.booked, "capacity": 3}


@pytest.mark.parametrize("source", ["scheduled", "open", "full"])
def test_cancel_session_refunds_every_booking(source: str) -> None:
    before = REACH[source]()
    decision = fire(before, "cancel_session")
    ctx = decision.snapshot.context
    assert (decision.snapshot.state, ctx.holds, ctx.bookings) == ("cancelled", (), ())
    assert ctx.refunded == before.context.bookings
    assert dict(decision.effects[0].data) == {
        "refs": [x.ref for x in before.context.bookings],
        "seats": before.context.booked,
    }


# --- guards ----------------------------------------------------------------------------------

GUARD_CASES = [
    ("scheduled", "open_sales", OpenSales(0), "capacity_in_range"),
    ("scheduled", "open_sales", OpenSales(b.MAX_CAPACITY + 1), "capacity_in_range"),
    ("open", "hold", HoldSeats("h2", 0, 30), "wants_seats"),
    ("open", "hold", HoldSeats("h1", 1, 30), "reference_unused"),
    ("open", "hold", HoldSeats("h2", 3, 30), "seats_available"),
    ("open", "confirm", Confirm("h9", 15), "hold_exists"),
    ("open", "confirm", Confirm("h1", 20), "confirmed_in_time"),
    ("open", "release", Release("h9"), "hold_exists"),
    ("open", "cancel_booking", CancelBooking("h1"), "booking_exists"),
    ("open", "expire", Expire(19), "some_hold_expired"),
    ("full", "confirm", Confirm("h2", 30), "confirmed_in_time"),
]


@pytest.mark.parametrize(("source", "event", "payload", "guard"), GUARD_CASES)
def test_guard_rejects(source: str, event: str, payload: object, guard: str) -> None:
    decision = send(REACH[source](), event, payload)
    assert not decision.accepted
    assert decision.code == "guard_rejected"
    assert decision.details["guard"] == guard


def test_time_never_goes_back() -> None:
    snap = ok(ok(opened(), "hold", HoldSeats("h2", 1, 40)), "expire", Expire(25))
    for event, payload in [("expire", Expire(10)), ("confirm", Confirm("h2", 24))]:
        decision = send(snap, event, payload)
        assert not decision.accepted
        assert (decision.code, decision.details["guard"]) == ("guard_rejected", "not_before_clock")
    decision = send(snap, "hold", HoldSeats("h3", 1, 25))
    assert not decision.accepted
    assert decision.details["guard"] == "expiry_after_clock"


def test_hold_separators() -> None:
    ctx = Session(capacity=3, holds=(Hold("h1", 1, 20),))
    assert b.leaves_seats(ctx, HoldSeats("h2", 1, 30))
    assert not b.leaves_seats(ctx, HoldSeats("h2", 2, 30))
    assert b.fills_capacity(ctx, HoldSeats("h2", 2, 30))
    assert not b.fills_capacity(ctx, HoldSeats("h2", 1, 30))


# --- roles -----------------------------------------------------------------------------------

ROLE_CASES = [(s, t.event, t.roles) for t in SPEC.transitions for s in t.source]


@pytest.mark.parametrize(("source", "event", "roles"), ROLE_CASES)
def test_transition_forbidden_without_its_role(
    source: str, event: str, roles: tuple[str, ...]
) -> None:
    snap = REACH[source]()
    others = {"organizer", "customer", "scheduler"} - set(roles)
    for actor in [None, Actor("eve", roles=sorted(others))]:
        decision = decide(SPEC, snap, Command(event, None, actor=actor))
        assert not decision.accepted
        assert decision.code == "forbidden"
        assert decision.details["roles"] == sorted(roles)


# --- invariants ------------------------------------------------------------------------------

PATHS: list[list[tuple[str, object]]] = [
    [
        ("open_sales", OpenSales(2)),
        ("hold", HoldSeats("h1", 1, 20)),
        ("hold", HoldSeats("h3", 1, 50)),
        ("expire", Expire(25)),
        ("confirm", Confirm("h3", 40)),
        ("hold", HoldSeats("h4", 1, 50)),
        ("cancel_booking", CancelBooking("h3")),
        ("close_sales", None),
    ],
    [
        ("open_sales", OpenSales(4)),
        ("hold", HoldSeats("h2", 2, 30)),
        ("hold", HoldSeats("h4", 2, 50)),
        ("confirm", Confirm("h4", 40)),
        ("expire", Expire(30)),
        ("cancel_session", None),
    ],
]


@pytest.mark.parametrize("path", PATHS)
def test_invariants_hold_along_realistic_paths(path: list[tuple[str, object]]) -> None:
    snap = SPEC.start()
    for event, payload in path:
        snap = ok(snap, event, payload)
        assert all(inv(snap.state, snap.context) for inv in SPEC.invariants), snap
    assert SPEC.is_final(snap.state)


H1, H2 = Hold("h1", 1, 20), Hold("h2", 2, 30)
BAD_SNAPSHOTS = [
    (b.no_overbooking, "full", Session(capacity=2, holds=(H1, H2))),
    (b.full_means_sold_out, "full", Session(capacity=3, holds=(H1,))),
    (b.full_means_sold_out, "open", Session(capacity=2, holds=(H2,))),
    (b.references_unique, "open", Session(capacity=3, holds=(H1,), bookings=(Booking("h1", 1),))),
    (b.live_holds_unexpired, "open", Session(capacity=3, clock=20, holds=(H1,))),
    (b.seats_positive, "open", Session(capacity=3, bookings=(Booking("h1", 0),))),
    (b.capacity_set_when_selling, "scheduled", Session(capacity=3)),
    (b.capacity_set_when_selling, "open", Session(capacity=b.MAX_CAPACITY + 1)),
    (b.closed_sessions_hold_nothing, "closed", Session(capacity=3, holds=(H1,))),
    (b.closed_sessions_hold_nothing, "cancelled", Session(capacity=3, bookings=(Booking("x", 1),))),
    (b.closed_sessions_hold_nothing, "open", Session(capacity=3, refunded=(Booking("x", 1),))),
]


@pytest.mark.parametrize(("inv", "state", "ctx"), BAD_SNAPSHOTS)
def test_each_invariant_rejects_a_bad_snapshot(inv: object, state: str, ctx: Session) -> None:
    assert inv in SPEC.invariants
    assert callable(inv)
    assert inv(state, ctx) is False


def test_every_invariant_has_a_bad_snapshot_case() -> None:
    assert {inv for inv, _, _ in BAD_SNAPSHOTS} == set(SPEC.invariants)


def without_guard(name: str) -> Spec:
    """SPEC with guard ``name`` removed from every transition."""
    transitions = [
        attrs.evolve(t, guards=[g for g in t.guards if g.name != name]) for t in SPEC.transitions
    ]
    return attrs.evolve(SPEC, transitions=transitions)


def clock_at_25() -> Snapshot:
    """Open, the clock at 25, h2 holding 1 seat until 40."""
    return ok(ok(opened(), "hold", HoldSeats("h2", 1, 40)), "expire", Expire(25))


@pytest.mark.parametrize(
    ("guard", "path", "event", "payload", "invariant"),
    [
        ("reference_unused", opened, "hold", HoldSeats("h1", 1, 30), "references_unique"),
        ("expiry_after_clock", clock_at_25, "hold", HoldSeats("h3", 1, 22), "live_holds_unexpired"),
        ("wants_seats", opened, "hold", HoldSeats("h2", 0, 30), "seats_positive"),
        (
            "capacity_in_range",
            SPEC.start,
            "open_sales",
            OpenSales(b.MAX_CAPACITY + 1),
            "capacity_set_when_selling",
        ),
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


def test_overbooking_is_caught_when_the_seat_check_is_missing() -> None:
    broken = without_guard("seats_available")
    broken = attrs.evolve(
        broken,
        transitions=[
            attrs.evolve(t, guards=[g for g in t.guards if g.name != "leaves_seats"])
            for t in broken.transitions
        ],
    )
    command = Command("hold", HoldSeats("h2", 3, 30), actor=Actor("c", "customer"))
    guarded = send(opened(), "hold", HoldSeats("h2", 3, 30))
    assert not guarded.accepted and guarded.details["guard"] == "seats_available"
    decision = decide(broken, opened(), command)
    assert not decision.accepted
    assert decision.details["invariant"] == "no_overbooking"


# --- fuzz ------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_commands_keep_invariants(random_walk: Walk, data: st.DataObject) -> None:
    snapshots = random_walk(SPEC, data)
    assert all(s.context.held + s.context.booked <= s.context.capacity for s in snapshots)
