"""Rows sharing ``(state, event)``: the first that passes fires; when none does, the rejection
names the culprit of the row that got furthest (roles, then payload, then guards), and a
``forbidden`` message lists the roles of every row."""

from __future__ import annotations

import attrs
import pytest

from statekernel.kernel import Actor, Command, Rejected, Snapshot, Spec, Transition, decide, guard


@attrs.frozen
class Claim:
    amount: int = 0
    approved_by: str | None = None


@attrs.frozen
class Approve:
    amount: int


AGENT_LIMIT = 1_000
MANAGER_LIMIT = 10_000


@guard
def within_agent_limit(ctx: Claim, p: Approve) -> bool:
    """An agent approves at most 1,000."""
    return p.amount <= AGENT_LIMIT


@guard
def within_manager_limit(ctx: Claim, p: Approve) -> bool:
    """A manager approves at most 10,000."""
    return p.amount <= MANAGER_LIMIT


@guard
def positive(ctx: Claim, p: Approve) -> bool:
    """The amount is positive."""
    return p.amount > 0


def _approve(ctx: Claim, p: Approve) -> Claim:
    return attrs.evolve(ctx, amount=p.amount)


CLAIMS = Spec(
    name="claims",
    version=1,
    context=Claim,
    initial="open",
    states=["open", "approved"],
    final=["approved"],
    transitions=[
        Transition(
            "approve",
            "open",
            "approved",
            payload=Approve,
            roles=["agent"],
            guards=[positive, within_agent_limit],
            update=_approve,
        ),
        Transition(
            "approve",
            "open",
            "approved",
            payload=Approve,
            roles=["manager"],
            guards=[positive, within_manager_limit],
            update=_approve,
        ),
    ],
)

AGENT = Actor("ann", roles=["agent"])
MANAGER = Actor("max", roles=["manager"])
CLERK = Actor("carl", roles=["clerk"])


def _rejected(actor: Actor | None, payload: object) -> Rejected:
    d = decide(CLAIMS, CLAIMS.start(), Command("approve", payload, actor=actor))
    assert isinstance(d, Rejected), d
    return d


def test_a_manager_over_the_limit_is_told_about_the_limit_not_the_agent_role() -> None:
    d = _rejected(MANAGER, {"amount": MANAGER_LIMIT + 1})
    assert d.code == "guard_rejected"
    assert d.details["guard"] == "within_manager_limit"
    assert "A manager approves at most 10,000." in d.message


def test_an_agent_over_the_agent_limit_is_told_about_the_agent_limit() -> None:
    d = _rejected(AGENT, {"amount": AGENT_LIMIT + 1})
    assert (d.code, d.details["guard"]) == ("guard_rejected", "within_agent_limit")


def test_within_the_limits_the_first_row_that_passes_fires() -> None:
    for actor, amount in ((AGENT, AGENT_LIMIT), (MANAGER, MANAGER_LIMIT)):
        d = decide(CLAIMS, CLAIMS.start(), Command("approve", {"amount": amount}, actor=actor))
        assert d.accepted and d.snapshot.context.amount == amount


@pytest.mark.parametrize("actor", [CLERK, None, Actor("nobody")])
def test_forbidden_lists_the_roles_of_every_row(actor: Actor | None) -> None:
    d = _rejected(actor, {"amount": 5})
    assert d.code == "forbidden"
    assert d.details["roles"] == ["agent", "manager"]
    assert "needs one of the roles agent, manager" in d.message


def test_a_bad_payload_beats_a_missing_role() -> None:
    """The manager's row got past its roles and stopped at the payload; the agent's row
    stopped at its roles, so the payload is the culprit."""
    d = _rejected(MANAGER, {"amount": "lots"})
    assert (d.code, d.details["field"]) == ("invalid_payload", "amount")


def test_rows_that_got_equally_far_name_the_first_of_them() -> None:
    both = Actor("bo", roles=["agent", "manager"])
    d = _rejected(both, {"amount": 0})
    assert (d.code, d.details["guard"]) == ("guard_rejected", "positive")
    d = _rejected(both, {"amount": MANAGER_LIMIT + 1})
    assert (d.code, d.details["guard"]) == ("guard_rejected", "within_agent_limit")


@attrs.frozen
class Empty:
    pass


@guard
def never(ctx: Empty, p: object) -> bool:
    """Never holds."""
    return False


def test_a_guarded_row_beats_an_earlier_row_that_stopped_at_its_roles_or_payload() -> None:
    spec = Spec(
        name="shared",
        version=1,
        context=Empty,
        initial="a",
        states=["a", "b"],
        final=["b"],
        transitions=[
            Transition("go", "a", "b", roles=["admin"], guards=[never]),
            Transition("go", "a", "b", guards=[attrs.evolve(never, name="also_never")]),
        ],
    )
    d = decide(spec, Snapshot("a", Empty()), Command("go"))
    assert isinstance(d, Rejected)
    assert (d.code, d.details["guard"]) == ("guard_rejected", "also_never")
    d = decide(spec, Snapshot("a", Empty()), Command("go", {"x": 1}))
    assert isinstance(d, Rejected) and d.code == "invalid_payload"
