"""The declaration-contract example of DESIGN.md, plus a few extras the kernel tests need."""

from __future__ import annotations

import attrs

from statekernel.kernel import Effect, Spec, Transition, guard, invariant


@attrs.frozen
class Application:
    documents: int = 0
    approved_by: str | None = None


@attrs.frozen
class Attach:
    count: int


@attrs.frozen
class Approve:
    reviewer: str


@guard
def has_documents(ctx: Application, payload: object) -> bool:
    """At least one document is attached."""
    return ctx.documents > 0


@guard
def sensible_count(ctx: Application, payload: Attach) -> bool:
    """At least one document per attach, and no more than ten in all."""
    return payload.count > 0 and ctx.documents + payload.count <= 10


@invariant
def approved_names_reviewer(state: str, ctx: Application) -> bool:
    """An approved application names who approved it."""
    return state != "approved" or ctx.approved_by is not None


@invariant
def documents_not_negative(state: str, ctx: Application) -> bool:
    """The document count is never negative."""
    return ctx.documents >= 0


SPEC = Spec(
    name="enrollment",
    version=1,
    context=Application,
    initial="draft",
    states=["draft", "submitted", "approved", "rejected", "archived"],
    final=["archived"],
    transitions=[
        Transition(
            "attach",
            "draft",
            "draft",
            payload=Attach,
            guards=[sensible_count],
            update=lambda ctx, p: attrs.evolve(ctx, documents=ctx.documents + p.count),
        ),
        Transition("submit", "draft", "submitted", guards=[has_documents]),
        Transition(
            "approve",
            "submitted",
            "approved",
            payload=Approve,
            roles=["reviewer"],
            update=lambda ctx, p: attrs.evolve(ctx, approved_by=p.reviewer),
            effects=[Effect("notify", lambda ctx, p: {"reviewer": p.reviewer})],
        ),
        Transition("reject", "submitted", "rejected"),
        Transition("archive", ["approved", "rejected"], "archived"),
    ],
    invariants=[approved_names_reviewer, documents_not_negative],
)
