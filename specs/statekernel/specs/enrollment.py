"""Application enrollment: draft -> submitted -> verified -> approved / rejected -> archived.

An applicant fills in a draft and attaches supporting documents, then submits it. A verifier
checks the documents: they either verify the application or return it to the applicant for
changes (at most :data:`MAX_REVISIONS` times, after which it must be verified or rejected). A
reviewer then approves or rejects it; a reviewer may also reject a submitted application
outright (an obvious fraud needs no verification). Decided applications are archived by a
reviewer when the retention period ends. An applicant may withdraw a draft or a submitted
application; a withdrawn application goes straight to the archive.

Roles:

- ``applicant`` attaches and detaches documents, submits and withdraws;
- ``verifier`` verifies or returns a submitted application;
- ``reviewer`` approves, rejects and archives.

Who did what is the actor who sent the command (``command.actor.id``), recorded by the
updates of ``submit``, ``verify``, ``approve`` and ``reject``; no payload names anyone, since a
name in a payload is only what the client typed. One person may hold several roles, which is
what the four-eyes rule is for.

Business rules (guards):

- an attach or a detach moves at least one document; a draft holds at most
  :data:`MAX_DOCUMENTS` and cannot give back more documents than it holds;
- only an application with documents can be submitted;
- four eyes: the reviewer who approves is neither the applicant who submitted the application
  nor the verifier who verified it;
- an application is returned for changes at most :data:`MAX_REVISIONS` times.

Invariants (what must be true of every snapshot, whatever the history):

- ``approved_names_its_reviewer``: an approved application, and an archived approved one,
  names the reviewer who approved it;
- ``submission_names_its_applicant``: a submitted (or later) application names who
  submitted it;
- ``documents_before_submission``: submitted, verified and approved applications have
  documents;
- ``approval_follows_verification``: nothing is approved without having been verified;
- ``four_eyes``: the approver is neither the submitter nor the verifier;
- ``single_decision``: an application is never both approved and rejected, and a decision
  exists only in the decided and archived states;
- ``archived_is_settled``: an archived application was decided or withdrawn;
- ``counters_in_bounds``: the document and revision counters stay within their caps.

Effects: submitting asks the verifiers to look (``verification_requested``); approving or
rejecting notifies the applicant (``applicant_notified``) with the decision and the reviewer.

Version 2 takes who verified, approved or rejected from the command's actor instead of a name
in the payload (version 1's ``Verify``, ``ReturnForChanges`` and ``Approve`` payloads and
``Reject.reviewer`` are gone) and records the submitter (``submitted_by``), so that the
four-eyes rule compares actors.

Explorer bounds: with the transitions' ``examples`` the reachable space is finite; a
breadth-first search over (state, context), sending the events that read the actor from one
actor per role, a guest and one actor holding every role, sees 1,030 distinct snapshots, at
most 11 steps deep, and every state and transition is reachable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs

from statekernel.kernel import Command, Effect, Spec, Transition, guard, invariant

__all__ = [
    "MAX_DOCUMENTS",
    "MAX_REVISIONS",
    "SPEC",
    "Application",
    "Attach",
    "Detach",
    "Reject",
    "approval_follows_verification",
    "approved_names_its_reviewer",
    "archived_is_settled",
    "attached_enough",
    "counters_in_bounds",
    "documents_before_submission",
    "documents_within_limit",
    "four_eyes",
    "has_documents",
    "not_the_submitter",
    "not_the_verifier",
    "positive_count",
    "revisions_left",
    "single_decision",
    "submission_names_its_applicant",
]

MAX_DOCUMENTS = 5
"""The most documents one application may hold."""

MAX_REVISIONS = 2
"""How many times a verifier may return an application for changes."""

RejectionReason = Literal["incomplete", "ineligible", "fraud"]
"""Why an application was rejected."""


@attrs.frozen
class Application:
    """The application's context: its documents, who handled it and how it was decided."""

    documents: int = 0
    """How many supporting documents are attached."""
    revisions: int = 0
    """How many times a verifier has returned it for changes."""
    submitted_by: str | None = None
    """The actor id of the applicant who last submitted it."""
    verified_by: str | None = None
    """The actor id of the verifier who verified it."""
    approved_by: str | None = None
    """The actor id of the reviewer who approved it."""
    rejected_by: str | None = None
    """The actor id of the reviewer who rejected it."""
    rejection_reason: RejectionReason | None = None
    """Why it was rejected."""
    withdrawn: bool = False
    """Whether the applicant withdrew it."""


@attrs.frozen
class Attach:
    """Attach ``count`` documents to the draft."""

    count: int


@attrs.frozen
class Detach:
    """Remove ``count`` documents from the draft."""

    count: int


@attrs.frozen
class Reject:
    """The reviewer rejects the application, saying why."""

    reason: RejectionReason


# --- guards ----------------------------------------------------------------------------------


@guard
def positive_count(ctx: Application, payload: Attach | Detach) -> bool:
    """An attach or a detach moves at least one document."""
    return payload.count > 0


@guard
def documents_within_limit(ctx: Application, payload: Attach) -> bool:
    """An application holds at most MAX_DOCUMENTS documents."""
    return ctx.documents + payload.count <= MAX_DOCUMENTS


@guard
def attached_enough(ctx: Application, payload: Detach) -> bool:
    """An applicant cannot detach more documents than are attached."""
    return payload.count <= ctx.documents


@guard
def has_documents(ctx: Application, payload: object) -> bool:
    """At least one document is attached."""
    return ctx.documents > 0


@guard
def revisions_left(ctx: Application, payload: None) -> bool:
    """The application has been returned for changes fewer than MAX_REVISIONS times."""
    return ctx.revisions < MAX_REVISIONS


@guard
def not_the_submitter(ctx: Application, payload: None, command: Command) -> bool:
    """The approving reviewer is not the applicant who submitted the application."""
    return command.actor is not None and command.actor.id != ctx.submitted_by


@guard
def not_the_verifier(ctx: Application, payload: None, command: Command) -> bool:
    """The approving reviewer is not the verifier who verified the application."""
    return command.actor is not None and command.actor.id != ctx.verified_by


# --- invariants ------------------------------------------------------------------------------


@invariant
def approved_names_its_reviewer(state: str, ctx: Application) -> bool:
    """An approved application names the reviewer who approved it."""
    if state == "approved":
        return bool(ctx.approved_by)
    return ctx.approved_by is None or state == "archived"


@invariant
def submission_names_its_applicant(state: str, ctx: Application) -> bool:
    """A submitted, verified or decided application names the applicant who submitted it."""
    return state not in ("submitted", "verified", "approved", "rejected") or bool(ctx.submitted_by)


@invariant
def documents_before_submission(state: str, ctx: Application) -> bool:
    """Submitted, verified and approved applications have at least one document."""
    return state not in ("submitted", "verified", "approved") or ctx.documents > 0


@invariant
def approval_follows_verification(state: str, ctx: Application) -> bool:
    """An application is approved only after it was verified."""
    return ctx.approved_by is None or ctx.verified_by is not None


@invariant
def four_eyes(state: str, ctx: Application) -> bool:
    """Nobody approves an application they submitted or verified themselves."""
    return ctx.approved_by is None or ctx.approved_by not in (ctx.submitted_by, ctx.verified_by)


@invariant
def single_decision(state: str, ctx: Application) -> bool:
    """An application is approved or rejected, never both; rejected ones say why."""
    if ctx.approved_by is not None and ctx.rejected_by is not None:
        return False
    if (ctx.rejected_by is None) != (ctx.rejection_reason is None):
        return False
    if state == "rejected":
        return ctx.rejected_by is not None
    return ctx.rejected_by is None or state == "archived"


@invariant
def archived_is_settled(state: str, ctx: Application) -> bool:
    """An archived application was approved, rejected or withdrawn (exactly one of them)."""
    settled = [ctx.approved_by is not None, ctx.rejected_by is not None, ctx.withdrawn]
    if state == "archived":
        return settled.count(True) == 1
    return not ctx.withdrawn


@invariant
def counters_in_bounds(state: str, ctx: Application) -> bool:
    """The document count and the revision count stay within their caps."""
    return 0 <= ctx.documents <= MAX_DOCUMENTS and 0 <= ctx.revisions <= MAX_REVISIONS


# --- updates and effects ---------------------------------------------------------------------


def _attach(ctx: Application, payload: Attach) -> Application:
    return attrs.evolve(ctx, documents=ctx.documents + payload.count)


def _detach(ctx: Application, payload: Detach) -> Application:
    return attrs.evolve(ctx, documents=ctx.documents - payload.count)


def _actor_id(command: Command) -> str | None:
    return command.actor.id if command.actor is not None else None


def _submit(ctx: Application, payload: None, command: Command) -> Application:
    return attrs.evolve(ctx, submitted_by=_actor_id(command))


def _verify(ctx: Application, payload: None, command: Command) -> Application:
    return attrs.evolve(ctx, verified_by=_actor_id(command))


def _return(ctx: Application, payload: None) -> Application:
    return attrs.evolve(ctx, revisions=ctx.revisions + 1)


def _approve(ctx: Application, payload: None, command: Command) -> Application:
    return attrs.evolve(ctx, approved_by=_actor_id(command))


def _reject(ctx: Application, payload: Reject, command: Command) -> Application:
    return attrs.evolve(ctx, rejected_by=_actor_id(command), rejection_reason=payload.reason)


def _withdraw(ctx: Application, payload: None) -> Application:
    return attrs.evolve(ctx, withdrawn=True)


def _verification_request(ctx: Application, payload: None) -> Mapping[str, object]:
    return {"documents": ctx.documents, "revisions": ctx.revisions}


def _approval_notice(ctx: Application, payload: None) -> Mapping[str, object]:
    return {"decision": "approved", "reviewer": ctx.approved_by}


def _rejection_notice(ctx: Application, payload: Reject) -> Mapping[str, object]:
    return {"decision": "rejected", "reviewer": ctx.rejected_by, "reason": payload.reason}


SPEC = Spec(
    name="enrollment",
    version=2,
    context=Application,
    initial="draft",
    states=["draft", "submitted", "verified", "approved", "rejected", "archived"],
    final=["archived"],
    description=(
        "An application moves draft -> submitted -> verified -> approved or rejected -> "
        "archived; verifiers may return it for changes, applicants may withdraw it."
    ),
    transitions=[
        Transition(
            "attach",
            "draft",
            "draft",
            payload=Attach,
            roles=["applicant"],
            guards=[positive_count, documents_within_limit],
            update=_attach,
            examples=[Attach(1), Attach(2), Attach(0), Attach(MAX_DOCUMENTS + 1)],
            description="The applicant attaches supporting documents to the draft.",
        ),
        Transition(
            "detach",
            "draft",
            "draft",
            payload=Detach,
            roles=["applicant"],
            guards=[positive_count, attached_enough],
            update=_detach,
            examples=[Detach(1), Detach(0), Detach(MAX_DOCUMENTS + 1)],
            description="The applicant removes documents from the draft.",
        ),
        Transition(
            "submit",
            "draft",
            "submitted",
            roles=["applicant"],
            guards=[has_documents],
            update=_submit,
            effects=[Effect("verification_requested", _verification_request)],
            description="The applicant submits the draft for verification.",
        ),
        Transition(
            "withdraw",
            ["draft", "submitted"],
            "archived",
            roles=["applicant"],
            update=_withdraw,
            description="The applicant withdraws the application before it is verified.",
        ),
        Transition(
            "verify",
            "submitted",
            "verified",
            roles=["verifier"],
            update=_verify,
            description="A verifier checks the documents and finds them in order.",
        ),
        Transition(
            "return_for_changes",
            "submitted",
            "draft",
            roles=["verifier"],
            guards=[revisions_left],
            update=_return,
            description="A verifier sends the application back to the applicant for changes.",
        ),
        Transition(
            "approve",
            "verified",
            "approved",
            roles=["reviewer"],
            guards=[not_the_submitter, not_the_verifier],
            update=_approve,
            effects=[Effect("applicant_notified", _approval_notice)],
            description=(
                "A reviewer who neither submitted nor verified the application approves it."
            ),
        ),
        Transition(
            "reject",
            ["submitted", "verified"],
            "rejected",
            payload=Reject,
            roles=["reviewer"],
            update=_reject,
            effects=[Effect("applicant_notified", _rejection_notice)],
            examples=[Reject("ineligible"), Reject("fraud")],
            description="A reviewer rejects the application, giving a reason.",
        ),
        Transition(
            "archive",
            ["approved", "rejected"],
            "archived",
            roles=["reviewer"],
            description="A reviewer archives a decided application.",
        ),
    ],
    invariants=[
        approved_names_its_reviewer,
        submission_names_its_applicant,
        documents_before_submission,
        approval_follows_verification,
        four_eyes,
        single_decision,
        archived_is_settled,
        counters_in_bounds,
    ],
)
"""The enrollment workflow."""
