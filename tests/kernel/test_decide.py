"""decide: every code, the order of checks, spec faults, effects and records."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from statekernel.kernel import (
    Accepted,
    Actor,
    Command,
    Effect,
    Message,
    Rejected,
    Snapshot,
    Spec,
    Transition,
    decide,
    guard,
    invariant,
)

from .example import SPEC, Application, Approve, Attach

REVIEWER = Actor("rita", roles=["reviewer"])
CLERK = Actor("carl", roles=["clerk"])


def submitted(documents: int = 1) -> Snapshot:
    return Snapshot("submitted", Application(documents=documents), 2)


def rejected(d: object) -> Rejected:
    assert isinstance(d, Rejected), d
    return d


def test_accepted_carries_snapshot_record_and_effects() -> None:
    at = datetime(2026, 1, 2, tzinfo=UTC)
    d = decide(SPEC, submitted(), Command("approve", {"reviewer": "rita"}, actor=REVIEWER, at=at))
    assert isinstance(d, Accepted) and d.accepted is True
    assert d.snapshot == Snapshot("approved", Application(1, "rita"), 3)
    r = d.record
    assert (r.version, r.event, r.payload, r.actor) == (3, "approve", Approve("rita"), REVIEWER)
    assert (r.from_state, r.to_state, r.at, r.idempotency_key) == (
        "submitted",
        "approved",
        at,
        None,
    )
    assert d.effects == (Message("notify", {"reviewer": "rita"}),)


def test_payload_instance_is_accepted_like_its_dict() -> None:
    a = decide(SPEC, SPEC.start(), Command("attach", Attach(2)))
    b = decide(SPEC, SPEC.start(), Command("attach", {"count": 2}))
    assert a == b and isinstance(a, Accepted)


def test_unknown_event() -> None:
    d = rejected(decide(SPEC, SPEC.start(), Command("teleport")))
    assert d.code == "unknown_event" and "teleport" in d.message
    assert d.accepted is False


def test_invalid_transition_lists_allowed_events() -> None:
    d = rejected(decide(SPEC, SPEC.start(), Command("archive")))
    assert d.code == "invalid_transition"
    assert d.details["allowed"] == ["attach", "submit"]
    assert "attach, submit" in d.message and "'draft'" in d.message


def test_final_state_allows_nothing() -> None:
    d = rejected(decide(SPEC, Snapshot("archived", Application(), 5), Command("submit")))
    assert d.code == "invalid_transition" and d.details["allowed"] == []


@pytest.mark.parametrize("actor", [None, CLERK, Actor("nobody")])
def test_forbidden_without_a_role(actor: Actor | None) -> None:
    d = rejected(decide(SPEC, submitted(), Command("approve", {"reviewer": "x"}, actor=actor)))
    assert d.code == "forbidden" and d.details["roles"] == ["reviewer"]


def test_non_actor_is_forbidden() -> None:
    cmd = Command("approve", {"reviewer": "x"}, actor="rita")  # type: ignore[arg-type]
    assert rejected(decide(SPEC, submitted(), cmd)).code == "forbidden"


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({}, "count", "missing"),
        ({"count": 1, "extra": 2}, "extra", "unknown field"),
        ({"count": "1"}, "count", "expected int"),
        ({"count": True}, "count", "expected int, got bool"),
        ({"count": 1.0}, "count", "expected int"),
        ([1], "", "expected an object"),
        ("count=1", "", "expected an object"),
        (None, "", "expected an object"),
    ],
)
def test_invalid_payload_names_field_and_reason(payload: object, field: str, reason: str) -> None:
    d = rejected(decide(SPEC, SPEC.start(), Command("attach", payload)))
    assert d.code == "invalid_payload"
    assert d.details["field"] == field
    assert reason in d.details["reason"]


def test_event_without_payload_type_rejects_a_payload() -> None:
    start = Snapshot("draft", Application(documents=1), 1)
    assert decide(SPEC, start, Command("submit", {})).accepted
    d = rejected(decide(SPEC, start, Command("submit", {"now": True})))
    assert d.code == "invalid_payload"


@pytest.mark.parametrize("expected", [0, 2, -1, "1", 1.0, True])
def test_version_conflict(expected: object) -> None:
    snap = Snapshot("draft", Application(), 1)
    cmd = Command("attach", {"count": 1}, expected_version=expected)  # type: ignore[arg-type]
    d = rejected(decide(SPEC, snap, cmd))
    assert d.code == "version_conflict" and d.details["actual"] == 1


def test_matching_version_is_accepted() -> None:
    snap = Snapshot("draft", Application(), 1)
    assert decide(SPEC, snap, Command("attach", {"count": 1}, expected_version=1)).accepted


def test_guard_rejection_names_the_guard_and_its_description() -> None:
    d = rejected(decide(SPEC, SPEC.start(), Command("submit")))
    assert d.code == "guard_rejected"
    assert d.details["guard"] == "has_documents"
    assert "At least one document is attached." in d.message


def test_check_order_unknown_then_version_then_transition_then_role_then_payload() -> None:
    snap = Snapshot("draft", Application(), 3)
    assert rejected(decide(SPEC, snap, Command("nope", expected_version=0))).code == (
        "unknown_event"
    )
    assert rejected(decide(SPEC, snap, Command("approve", expected_version=0))).code == (
        "version_conflict"
    )
    assert rejected(decide(SPEC, snap, Command("approve", {"bad": 1}))).code == (
        "invalid_transition"
    )
    assert rejected(decide(SPEC, submitted(), Command("approve", {"bad": 1}))).code == "forbidden"
    cmd = Command("approve", {"bad": 1}, actor=REVIEWER)
    assert rejected(decide(SPEC, submitted(), cmd)).code == "invalid_payload"


@attrs.frozen
class Counter:
    n: int = 0


@attrs.frozen
class Step:
    by: int


@guard
def small(ctx: Counter, p: Step) -> bool:
    """Small steps only."""
    return p.by < 5


@guard
def big(ctx: Counter, p: Step) -> bool:
    """Big steps."""
    return p.by >= 5


@invariant
def below_ten(state: str, ctx: Counter) -> bool:
    """The counter stays below ten."""
    return ctx.n < 10


def _counter_spec(*transitions: Transition, invariants: tuple[object, ...] = ()) -> Spec:
    return Spec(
        name="counter",
        version=1,
        context=Counter,
        initial="on",
        states=["on", "off"],
        final=["off"],
        transitions=[*transitions, Transition("stop", "on", "off")],
        invariants=invariants,  # type: ignore[arg-type]
    )


def _add(ctx: Counter, p: Step) -> Counter:
    return Counter(ctx.n + p.by)


def test_guards_separate_transitions_tried_in_order() -> None:
    spec = _counter_spec(
        Transition("step", "on", "on", payload=Step, guards=[small], update=_add),
        Transition("step", "on", "off", payload=Step, guards=[big], update=_add),
    )
    assert decide(spec, spec.start(), Command("step", {"by": 1})).snapshot.state == "on"
    assert decide(spec, spec.start(), Command("step", {"by": 7})).snapshot.state == "off"


def test_invariant_violated_names_the_invariant() -> None:
    spec = _counter_spec(
        Transition("step", "on", "on", payload=Step, update=_add), invariants=(below_ten,)
    )
    assert decide(spec, spec.start(), Command("step", {"by": 9})).accepted
    d = rejected(decide(spec, spec.start(), Command("step", {"by": 10})))
    assert d.code == "invariant_violated" and d.details["invariant"] == "below_ten"
    assert "The counter stays below ten." in d.message


def _boom(*args: object) -> bool:
    raise ZeroDivisionError("boom")


@pytest.mark.parametrize(
    "where",
    [
        "guard",
        "update",
        "invariant",
        "effect",
        "guard-type",
        "update-type",
        "invariant-type",
        "effect-type",
    ],
)
def test_user_code_faults_become_spec_fault(where: str) -> None:
    g = (
        guard(_boom)
        if where == "guard"
        else guard(lambda c, p: 1)
        if where == "guard-type"
        else None
    )
    # The invariants hold on the initial snapshot (building the spec checks it) and fault on
    # the one the step would produce.
    inv = {
        "invariant": invariant(lambda s, c: c.n == 0 or _boom()),
        "invariant-type": invariant(lambda s, c: c.n == 0 or None),
    }.get(where)
    update = {"update": _boom, "update-type": lambda c, p: {"n": 1}}.get(where, _add)
    effect = {"effect": Effect("e", _boom), "effect-type": Effect("e", lambda c, p: [1])}.get(where)
    if g is not None:
        g = attrs.evolve(g, name="g")
    if inv is not None:
        inv = attrs.evolve(inv, name="inv")
    t = Transition(
        "step",
        "on",
        "on",
        payload=Step,
        guards=[g] if g else [],
        update=update,
        effects=[effect] if effect else [],
    )
    spec = _counter_spec(t, invariants=(inv,) if inv is not None else ())
    d = rejected(decide(spec, spec.start(), Command("step", {"by": 1})))
    assert d.code == "spec_fault"
    if where in ("guard", "update", "invariant", "effect"):
        assert isinstance(d.error, ZeroDivisionError)
    assert d.details["where"].split()[0] == where.split("-")[0]


def test_payload_class_validator_failure_is_invalid_payload() -> None:
    @attrs.frozen
    class Positive:
        by: int = attrs.field(validator=attrs.validators.gt(0))

    spec = _counter_spec(Transition("step", "on", "on", payload=Positive))
    d = rejected(decide(spec, spec.start(), Command("step", {"by": -1})))
    assert d.code == "invalid_payload"


def test_junk_command_fields_never_raise() -> None:
    for cmd in [
        Command(None),  # type: ignore[arg-type]
        Command(["attach"]),  # type: ignore[arg-type]
        Command("attach", object()),
        Command("attach", {"count": 1}, expected_version=object()),  # type: ignore[arg-type]
        Command("attach", {1: 2}),
    ]:
        assert isinstance(decide(SPEC, SPEC.start(), cmd), Rejected)


def test_decide_does_not_touch_its_inputs() -> None:
    snap = SPEC.start()
    cmd = Command("attach", {"count": 1})
    payload = dict(cmd.payload)  # type: ignore[call-overload]
    decide(SPEC, snap, cmd)
    assert snap == SPEC.start() and cmd.payload == payload


def test_effect_data_is_plain_data_and_unconvertible_data_is_a_spec_fault() -> None:
    tuple_effect = Effect("e", lambda c, p: {"items": (1, 2), "step": Step(3)})
    spec = _counter_spec(Transition("step", "on", "on", payload=Step, effects=[tuple_effect]))
    d = decide(spec, spec.start(), Command("step", {"by": 1}))
    assert isinstance(d, Accepted)
    assert d.effects[0].data == {"items": [1, 2], "step": {"by": 3}}
    odd = Effect("odd", lambda c, p: {"x": object()})
    spec = _counter_spec(Transition("step", "on", "on", payload=Step, effects=[odd]))
    fault = rejected(decide(spec, spec.start(), Command("step", {"by": 1})))
    assert fault.code == "spec_fault" and fault.details["where"] == "effect odd"


def test_str_enum_names_work_like_their_values() -> None:
    import enum

    class Ev(enum.StrEnum):
        STEP = "step"
        STOP = "stop"

    class St(enum.StrEnum):
        ON = "on"
        OFF = "off"

    spec = Spec(
        name="enum",
        version=1,
        context=Counter,
        initial=St.ON,
        states=[St.ON, St.OFF],
        final=[St.OFF],
        transitions=[Transition(Ev.STEP, St.ON, St.ON), Transition(Ev.STOP, St.ON, St.OFF)],
    )
    assert type(spec.initial) is str and type(spec.transitions[0].event) is str
    d = decide(spec, spec.start(), Command(Ev.STEP))
    assert isinstance(d, Accepted) and type(d.record.event) is str
    off = Snapshot("off", Counter(), 1)
    assert rejected(decide(spec, off, Command(Ev.STEP))).code == "invalid_transition"


def test_a_snapshot_in_a_state_the_spec_does_not_know_says_so() -> None:
    d = rejected(decide(SPEC, Snapshot("limbo", Application(), 0), Command("submit")))
    assert d.code == "invalid_transition" and "not a state of 'enrollment'" in d.message


# --- internal transitions and guards and updates that read the command ----------------------


@attrs.frozen
class Review:
    submitted_by: str | None = None
    approved_by: str | None = None
    pings: int = 0


@guard
def another_reviewer(ctx: Review, p: object, command: Command) -> bool:
    """The approver is not the actor who submitted (four eyes)."""
    return command.actor is not None and command.actor.id != ctx.submitted_by


@guard
def before_the_deadline(ctx: Review, p: object, command: Command) -> bool:
    """The command comes before 2026-02-01."""
    return command.at is not None and command.at < datetime(2026, 2, 1, tzinfo=UTC)


def _submitted_by(ctx: Review, p: object, command: Command) -> Review:
    return attrs.evolve(ctx, submitted_by=command.actor.id if command.actor else None)


def _approved_by(ctx: Review, p: object, command: Command) -> Review:
    return attrs.evolve(ctx, approved_by=command.actor.id if command.actor else None)


REVIEW = Spec(
    name="review",
    version=1,
    context=Review,
    initial="draft",
    states=["draft", "submitted", "approved"],
    final=["approved"],
    transitions=[
        Transition("submit", "draft", "submitted", update=_submitted_by),
        Transition(
            "approve",
            "submitted",
            "approved",
            roles=["reviewer"],
            guards=[another_reviewer, before_the_deadline],
            update=_approved_by,
        ),
        Transition(
            "ping",
            ["draft", "submitted", "approved"],
            None,
            update=lambda c, p: attrs.evolve(c, pings=c.pings + 1),
        ),
    ],
)
ANN = Actor("ann", roles=["reviewer"])
BOB = Actor("bob", roles=["reviewer"])
JAN = datetime(2026, 1, 5, tzinfo=UTC)


def test_an_update_records_who_sent_the_command() -> None:
    d = decide(REVIEW, REVIEW.start(), Command("submit", actor=ANN, at=JAN))
    assert isinstance(d, Accepted) and d.snapshot.context.submitted_by == "ann"


def test_a_four_eyes_guard_compares_the_actors_not_payloads() -> None:
    snap = Snapshot("submitted", Review(submitted_by="ann"), 1)
    d = rejected(decide(REVIEW, snap, Command("approve", actor=ANN, at=JAN)))
    assert (d.code, d.details["guard"]) == ("guard_rejected", "another_reviewer")
    assert "(four eyes)" in d.message
    d = decide(REVIEW, snap, Command("approve", actor=BOB, at=JAN))
    assert isinstance(d, Accepted) and d.snapshot.context.approved_by == "bob"


def test_a_deadline_guard_reads_the_time_of_the_command() -> None:
    snap = Snapshot("submitted", Review(submitted_by="ann"), 1)
    late = Command("approve", actor=BOB, at=datetime(2026, 3, 1, tzinfo=UTC))
    assert rejected(decide(REVIEW, snap, late)).details["guard"] == "before_the_deadline"
    assert rejected(decide(REVIEW, snap, Command("approve", actor=BOB))).code == "guard_rejected"


@pytest.mark.parametrize("state", ["draft", "submitted", "approved"])
def test_an_internal_transition_stays_in_its_source_even_a_final_one(state: str) -> None:
    snap = Snapshot(state, Review(submitted_by="ann"), 4)
    d = decide(REVIEW, snap, Command("ping", at=JAN))
    assert isinstance(d, Accepted)
    assert d.snapshot == Snapshot(state, Review(submitted_by="ann", pings=1), 5)
    assert (d.record.from_state, d.record.to_state) == (state, state)


def test_a_final_state_with_internal_transitions_lists_them_and_refuses_the_rest() -> None:
    snap = Snapshot("approved", Review(), 3)
    d = rejected(decide(REVIEW, snap, Command("submit")))
    assert d.code == "invalid_transition" and d.details["allowed"] == ["ping"]
