"""The enrollment reference spec: every transition, guard, role and invariant."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statekernel.kernel import Actor, Command, Decision, Snapshot, Spec, Transition, decide, explore
from statekernel.specs import enrollment as e
from statekernel.specs.enrollment import SPEC, Application, Attach, Detach, Reject

Walk = Callable[[Spec, st.DataObject], list[Snapshot]]

APPLICANT = Actor("ann", roles=["applicant"])
VERIFIER = Actor("vera", roles=["verifier"])
REVIEWER = Actor("rita", roles=["reviewer"])
BY_ROLE = {"applicant": APPLICANT, "verifier": VERIFIER, "reviewer": REVIEWER}


def send(
    snap: Snapshot, event: str, payload: object = None, actor: Actor | None = None
) -> Decision:
    """Send ``event`` as ``actor`` (default: the person holding the transition's first role)."""
    if actor is None:
        actor = BY_ROLE[SPEC.candidates(snap.state, event)[0].roles[0]]
    return decide(SPEC, snap, Command(event, payload, actor=actor))


def ok(snap: Snapshot, event: str, payload: object = None, actor: Actor | None = None) -> Snapshot:
    decision = send(snap, event, payload, actor)
    assert decision.accepted, decision
    return decision.snapshot


def draft_with_documents() -> Snapshot:
    return ok(SPEC.start(), "attach", Attach(2))


def submitted() -> Snapshot:
    return ok(draft_with_documents(), "submit")


def verified() -> Snapshot:
    return ok(submitted(), "verify")


def approved() -> Snapshot:
    return ok(verified(), "approve")


def rejected() -> Snapshot:
    return ok(verified(), "reject", Reject("ineligible"))


REACH: dict[str, Callable[[], Snapshot]] = {
    "draft": draft_with_documents,
    "submitted": submitted,
    "verified": verified,
    "approved": approved,
    "rejected": rejected,
}


def holds_every_invariant(snap: Snapshot) -> bool:
    return all(inv(snap.state, snap.context) for inv in SPEC.invariants)


# --- transitions -----------------------------------------------------------------------------


def test_attach_and_detach_count_documents() -> None:
    snap = ok(SPEC.start(), "attach", Attach(2))
    assert (snap.state, snap.context.documents, snap.version) == ("draft", 2, 1)
    snap = ok(snap, "attach", Attach(3))
    assert snap.context.documents == 5
    snap = ok(snap, "detach", Detach(4))
    assert (snap.state, snap.context.documents) == ("draft", 1)


def test_submit_records_the_applicant_and_requests_verification() -> None:
    decision = send(draft_with_documents(), "submit")
    assert decision.accepted
    assert decision.snapshot.state == "submitted"
    assert decision.snapshot.context.submitted_by == "ann"
    assert [(m.name, dict(m.data)) for m in decision.effects] == [
        ("verification_requested", {"documents": 2, "revisions": 0})
    ]


def test_verify_records_the_verifier_who_sent_it() -> None:
    snap = ok(submitted(), "verify")
    assert snap.state == "verified"
    assert snap.context.verified_by == "vera"


def test_return_for_changes_goes_back_to_draft_and_counts() -> None:
    snap = ok(submitted(), "return_for_changes")
    assert (snap.state, snap.context.revisions, snap.context.documents) == ("draft", 1, 2)
    snap = ok(ok(snap, "submit"), "return_for_changes")
    assert snap.context.revisions == 2


def test_approve_records_the_reviewer_who_sent_it_and_notifies_the_applicant() -> None:
    decision = send(verified(), "approve")
    assert decision.accepted
    assert decision.snapshot.state == "approved"
    assert decision.snapshot.context.approved_by == "rita"
    assert [(m.name, dict(m.data)) for m in decision.effects] == [
        ("applicant_notified", {"decision": "approved", "reviewer": "rita"})
    ]


@pytest.mark.parametrize("source", ["submitted", "verified"])
def test_reject_records_reviewer_reason_and_notifies(source: str) -> None:
    decision = send(REACH[source](), "reject", {"reason": "fraud"})
    assert decision.accepted
    ctx = decision.snapshot.context
    assert (decision.snapshot.state, ctx.rejected_by, ctx.rejection_reason) == (
        "rejected",
        "rita",
        "fraud",
    )
    assert [(m.name, dict(m.data)) for m in decision.effects] == [
        ("applicant_notified", {"decision": "rejected", "reviewer": "rita", "reason": "fraud"})
    ]


def test_no_payload_names_anyone() -> None:
    """Names come from the command's actor; a payload that names someone is refused."""
    for event, snap in (("verify", submitted()), ("approve", verified())):
        decision = send(snap, event, {"reviewer": "rita"})
        assert (decision.accepted, getattr(decision, "code", None)) == (False, "invalid_payload")
    decision = send(verified(), "reject", {"reviewer": "rita", "reason": "fraud"})
    assert not decision.accepted and decision.details["field"] == "reviewer"


@pytest.mark.parametrize("source", ["approved", "rejected"])
def test_archive_a_decided_application(source: str) -> None:
    before = REACH[source]()
    snap = ok(before, "archive")
    assert snap.state == "archived"
    assert snap.context == before.context
    assert SPEC.allowed_events("archived") == ()


@pytest.mark.parametrize("source", ["draft", "submitted"])
def test_withdraw_archives_the_application(source: str) -> None:
    snap = ok(REACH[source](), "withdraw")
    assert (snap.state, snap.context.withdrawn) == ("archived", True)


def test_cannot_verify_a_draft() -> None:
    decision = send(draft_with_documents(), "verify", actor=VERIFIER)
    assert not decision.accepted
    assert decision.code == "invalid_transition"


# --- guards ----------------------------------------------------------------------------------

EVERYONE = Actor("max", roles=["applicant", "verifier", "reviewer"])
"""One person holding every role: the four-eyes rule is about them."""

GUARD_CASES = [
    ("draft", "attach", Attach(0), "positive_count"),
    ("draft", "attach", Attach(4), "documents_within_limit"),
    ("draft", "detach", Detach(0), "positive_count"),
    ("draft", "detach", Detach(3), "attached_enough"),
]


@pytest.mark.parametrize(("source", "event", "payload", "guard"), GUARD_CASES)
def test_guard_rejects(source: str, event: str, payload: object, guard: str) -> None:
    decision = send(REACH[source](), event, payload)
    assert not decision.accepted
    assert decision.code == "guard_rejected"
    assert decision.details["guard"] == guard


def test_nobody_approves_what_they_submitted() -> None:
    snap = ok(ok(draft_with_documents(), "submit", actor=EVERYONE), "verify")
    decision = send(snap, "approve", actor=EVERYONE)
    assert (decision.code, decision.details["guard"]) == ("guard_rejected", "not_the_submitter")
    assert "not the applicant who submitted" in decision.message
    assert ok(snap, "approve", actor=REVIEWER).context.approved_by == "rita"


def test_nobody_approves_what_they_verified() -> None:
    snap = ok(submitted(), "verify", actor=EVERYONE)
    decision = send(snap, "approve", actor=EVERYONE)
    assert (decision.code, decision.details["guard"]) == ("guard_rejected", "not_the_verifier")
    assert ok(snap, "approve", actor=REVIEWER).context.approved_by == "rita"


def test_submit_needs_documents() -> None:
    decision = send(SPEC.start(), "submit")
    assert not decision.accepted
    assert (decision.code, decision.details["guard"]) == ("guard_rejected", "has_documents")


def test_revisions_are_capped() -> None:
    snap = submitted()
    for _ in range(e.MAX_REVISIONS):
        snap = ok(ok(snap, "return_for_changes"), "submit")
    decision = send(snap, "return_for_changes")
    assert not decision.accepted
    assert (decision.code, decision.details["guard"]) == ("guard_rejected", "revisions_left")


# --- roles -----------------------------------------------------------------------------------

ROLE_CASES = [(s, t.event, t.roles) for t in SPEC.transitions for s in t.source]


@pytest.mark.parametrize(("source", "event", "roles"), ROLE_CASES)
def test_transition_forbidden_without_its_role(
    source: str, event: str, roles: tuple[str, ...]
) -> None:
    snap = REACH[source]()
    others = {"applicant", "verifier", "reviewer"} - set(roles)
    for actor in [None, Actor("eve", roles=sorted(others))]:
        decision = decide(SPEC, snap, Command(event, None, actor=actor))
        assert not decision.accepted
        assert decision.code == "forbidden"
        assert decision.details["roles"] == sorted(roles)


def test_every_transition_declares_roles() -> None:
    assert all(t.roles for t in SPEC.transitions)


# --- invariants ------------------------------------------------------------------------------

PATHS: list[list[tuple[str, object]]] = [
    [
        ("attach", Attach(1)),
        ("submit", None),
        ("return_for_changes", None),
        ("attach", Attach(2)),
        ("detach", Detach(1)),
        ("submit", None),
        ("verify", None),
        ("approve", None),
        ("archive", None),
    ],
    [
        ("attach", Attach(1)),
        ("submit", None),
        ("reject", Reject("fraud")),
        ("archive", None),
    ],
    [("attach", Attach(5)), ("submit", None), ("withdraw", None)],
]


@pytest.mark.parametrize("path", PATHS)
def test_invariants_hold_along_realistic_paths(path: list[tuple[str, object]]) -> None:
    snap = SPEC.start()
    assert holds_every_invariant(snap)
    for event, payload in path:
        snap = ok(snap, event, payload)
        assert holds_every_invariant(snap), snap
    assert snap.state == "archived"


BAD_SNAPSHOTS = [
    (e.approved_names_its_reviewer, "approved", Application(documents=1, verified_by="v")),
    (e.approved_names_its_reviewer, "verified", Application(documents=1, approved_by="r")),
    (e.submission_names_its_applicant, "verified", Application(documents=1, verified_by="v")),
    (e.documents_before_submission, "submitted", Application(submitted_by="a")),
    (e.documents_before_submission, "approved", Application(approved_by="r", verified_by="v")),
    (e.approval_follows_verification, "approved", Application(documents=1, approved_by="r")),
    (e.four_eyes, "approved", Application(documents=1, verified_by="v", approved_by="v")),
    (e.four_eyes, "approved", Application(1, 0, "a", "v", "a")),
    (
        e.single_decision,
        "archived",
        Application(approved_by="r", verified_by="v", rejected_by="r", rejection_reason="fraud"),
    ),
    (e.single_decision, "rejected", Application(documents=1)),
    (e.single_decision, "rejected", Application(rejected_by="r")),
    (e.archived_is_settled, "archived", Application()),
    (e.archived_is_settled, "draft", Application(withdrawn=True)),
    (e.counters_in_bounds, "draft", Application(documents=e.MAX_DOCUMENTS + 1)),
    (e.counters_in_bounds, "draft", Application(revisions=-1)),
]


@pytest.mark.parametrize(("inv", "state", "ctx"), BAD_SNAPSHOTS)
def test_each_invariant_rejects_a_bad_snapshot(inv: object, state: str, ctx: Application) -> None:
    assert inv in SPEC.invariants
    assert callable(inv)
    assert inv(state, ctx) is False


def test_every_invariant_has_a_bad_snapshot_case() -> None:
    assert {inv for inv, _, _ in BAD_SNAPSHOTS} == set(SPEC.invariants)


def without_guard(event: str, name: str) -> Spec:
    """SPEC with guard ``name`` removed from ``event``'s transitions."""
    transitions = [
        attrs.evolve(t, guards=[g for g in t.guards if g.name != name]) if t.event == event else t
        for t in SPEC.transitions
    ]
    return attrs.evolve(SPEC, transitions=transitions)


def _submitted_by_everyone() -> Snapshot:
    return ok(ok(draft_with_documents(), "submit", actor=EVERYONE), "verify")


@pytest.mark.parametrize(
    ("event", "guard", "path", "payload", "actor", "invariant"),
    [
        ("approve", "not_the_verifier", verified, None, VERIFIER, "four_eyes"),
        ("approve", "not_the_submitter", _submitted_by_everyone, None, EVERYONE, "four_eyes"),
        ("submit", "has_documents", SPEC.start, None, APPLICANT, "documents_before_submission"),
        ("attach", "documents_within_limit", SPEC.start, Attach(9), APPLICANT,
         "counters_in_bounds"),
    ],
)  # fmt: skip
def test_invariants_bite_when_a_guard_is_missing(
    event: str,
    guard: str,
    path: Callable[[], Snapshot],
    payload: object,
    actor: Actor,
    invariant: str,
) -> None:
    broken = without_guard(event, guard)
    command = Command(event, payload, actor=Actor(actor.id, roles=[*actor.roles, "reviewer"]))
    guarded = decide(SPEC, path(), command)
    assert not guarded.accepted
    assert (guarded.code, guarded.details["guard"]) == ("guard_rejected", guard)
    decision = decide(broken, path(), command)
    assert not decision.accepted
    assert (decision.code, decision.details["invariant"]) == ("invariant_violated", invariant)


def test_the_explorer_finds_who_approves_their_own_work_without_the_four_eyes_guards() -> None:
    for guard in ("not_the_submitter", "not_the_verifier"):
        report = explore(without_guard("approve", guard))
        assert report.verdict == "violated", report.format()
        [v] = report.violations
        assert v.property == "invariant_violated: four_eyes"
        approver = v.trace.steps[-1].actor
        assert approver is not None and "reviewer" in approver.roles
        earlier = {s.actor.id for s in v.trace.steps[:-1] if s.actor is not None}
        assert approver.id in earlier  # the same person submitted or verified


def test_an_unguarded_update_that_skips_verification_is_caught() -> None:
    sneaky = Transition(
        "fast_track",
        "submitted",
        "approved",
        roles=["reviewer"],
        update=lambda ctx, p: attrs.evolve(ctx, approved_by="rita"),
    )
    broken = attrs.evolve(SPEC, transitions=[*SPEC.transitions, sneaky])
    decision = decide(
        broken, submitted(), Command("fast_track", actor=Actor("r", roles="reviewer"))
    )
    assert not decision.accepted
    assert decision.details["invariant"] == "approval_follows_verification"


# --- fuzz ------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_example_commands_never_break_the_spec(
    random_walk: Walk, data: st.DataObject
) -> None:
    snapshots = random_walk(SPEC, data)
    assert all(s.state in SPEC.states for s in snapshots)
