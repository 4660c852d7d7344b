"""Small specs with known shapes for the explorer's tests (also CLI targets)."""

from __future__ import annotations

from typing import Literal

import attrs

from statekernel.kernel import Command, Effect, Guard, Spec, Transition, guard, invariant


@attrs.frozen
class Counter:
    count: int = 0


@guard
def below_limit(ctx: Counter, payload: object) -> bool:
    """The counter may still grow."""
    return ctx.count < 20


@guard
def positive(ctx: Counter, payload: object) -> bool:
    """The counter is positive."""
    return ctx.count >= 1


def chain_spec(n: int) -> Spec:
    """``inc`` adds one; the invariant forbids reaching ``n``; the guard allows up to 20, so
    the only counterexample is ``n`` increments."""

    @invariant
    def stays_below(state: str, ctx: Counter) -> bool:
        """The counter never reaches the threshold."""
        return ctx.count < n

    return Spec(
        name=f"chain{n}",
        version=1,
        context=Counter,
        initial="open",
        states=["open", "closed"],
        final=["closed"],
        transitions=[
            Transition(
                "inc",
                "open",
                "open",
                guards=[below_limit],
                update=lambda c, p: Counter(c.count + 1),
            ),
            Transition("close", "open", "closed"),
        ],
        invariants=[stays_below],
    )


@invariant
def below_ten(state: str, ctx: Counter) -> bool:
    """The counter stays below ten."""
    return ctx.count < 10


DOUBLING = Spec(
    name="doubling",
    version=1,
    context=Counter,
    initial="open",
    states=["open", "closed"],
    final=["closed"],
    transitions=[
        Transition(
            "inc", "open", "open", guards=[below_limit], update=lambda c, p: Counter(c.count + 1)
        ),
        Transition(
            "double", "open", "open", guards=[positive], update=lambda c, p: Counter(c.count * 2)
        ),
        Transition("close", "open", "closed"),
    ],
    invariants=[below_ten],
)
"""Increment or double: the shortest way past nine is not the obvious one."""

SAFE = Spec(
    name="safe",
    version=1,
    context=Counter,
    initial="open",
    states=["open", "closed"],
    final=["closed"],
    transitions=[
        Transition(
            "inc", "open", "open", guards=[below_limit], update=lambda c, p: Counter(c.count + 1)
        ),
        Transition("close", "open", "closed", effects=[Effect("closed")]),
    ],
)
"""Twenty-one counter values in ``open`` plus one in ``closed``: proved, nothing to warn."""

UNBOUNDED = Spec(
    name="unbounded",
    version=1,
    context=Counter,
    initial="open",
    states=["open", "closed"],
    final=["closed"],
    transitions=[
        Transition("inc", "open", "open", update=lambda c, p: Counter(c.count + 1)),
        Transition("close", "open", "closed"),
    ],
)
"""Infinitely many states: only a bound stops the search."""


@attrs.frozen
class Flags:
    ready: bool = False
    big: int = 0


@guard
def always(ctx: Flags, payload: object) -> bool:
    """Always true."""
    return True


@guard
def is_big(ctx: Flags, payload: object) -> bool:
    """The value is over five (it never is)."""
    return ctx.big > 5


@guard
def is_ready(ctx: Flags, payload: object) -> bool:
    """The flag is set."""
    return ctx.ready


STUCK = Spec(
    name="stuck",
    version=1,
    context=Flags,
    initial="start",
    states=["start", "middle", "end", "done"],
    final=["done"],
    transitions=[
        Transition("prepare", "start", "start", update=lambda c, p: attrs.evolve(c, ready=True)),
        Transition("go", "start", "middle", guards=[always, is_ready]),
        Transition("finish", "middle", "end", guards=[is_big]),
        Transition("close", "end", "done"),
    ],
)
"""``middle`` is a deadlock (``is_big`` never holds), so ``end`` and ``done`` are unreachable,
``finish`` and ``close`` never fire, ``always`` is never false and ``is_big`` never true."""


@guard
def fragile(ctx: Counter, payload: object) -> bool:
    """Breaks on the third value."""
    if ctx.count == 2:
        raise RuntimeError("boom")
    return True


FAULTY = Spec(
    name="faulty",
    version=1,
    context=Counter,
    initial="open",
    states=["open", "closed"],
    final=["closed"],
    transitions=[
        Transition(
            "inc",
            "open",
            "open",
            guards=[below_limit, fragile],
            update=lambda c, p: Counter(c.count + 1),
        ),
        Transition("close", "open", "closed"),
    ],
)
"""The guard ``fragile`` raises once the counter is 2: a ``spec_fault`` at depth 3."""


@attrs.frozen
class Account:
    balance: int = 0
    limit_raised: bool = False


@attrs.frozen
class Amount:
    amount: int


@attrs.frozen
class Note:
    level: Literal["low", "high"]
    urgent: bool
    text: str | None = None


@guard
def covered(ctx: Account, payload: Amount) -> bool:
    """The balance covers the withdrawal (overdraft of 1 allowed once the limit is raised)."""
    return ctx.balance - payload.amount >= (-1 if ctx.limit_raised else 0)


@guard
def positive_amount(ctx: Account, payload: Amount) -> bool:
    """Amounts are positive."""
    return payload.amount > 0


@guard
def small_balance(ctx: Account, payload: object) -> bool:
    """Deposits stop at six."""
    return ctx.balance < 6


@invariant
def never_negative(state: str, ctx: Account) -> bool:
    """The balance is never negative."""
    return ctx.balance >= 0


ACCOUNT = Spec(
    name="account",
    version=1,
    context=Account,
    initial="open",
    states=["open", "frozen", "closed"],
    final=["closed"],
    transitions=[
        Transition(
            "deposit",
            "open",
            "open",
            payload=Amount,
            examples=[{"amount": 1}, {"amount": 3}, Amount(1)],
            guards=[positive_amount, small_balance],
            update=lambda c, p: attrs.evolve(c, balance=c.balance + p.amount),
        ),
        Transition(
            "withdraw",
            ["open", "frozen"],
            "open",
            payload=Amount,
            examples=[{"amount": 2}],
            guards=[positive_amount, covered],
            update=lambda c, p: attrs.evolve(c, balance=c.balance - p.amount),
        ),
        Transition(
            "raise_limit",
            "open",
            "open",
            roles=["manager"],
            update=lambda c, p: attrs.evolve(c, limit_raised=True),
        ),
        Transition("note", "open", "open", payload=Note, roles=["clerk", "manager"]),
        Transition("freeze", "open", "frozen", roles="manager"),
        Transition("close", ["open", "frozen"], "closed"),
    ],
    invariants=[never_negative],
)
"""Roles, payload examples (dicts and instances), a sampled payload type and an invariant the
manager can break by raising the limit: the overdraft is reachable in three steps
(deposit 1, raise the limit, withdraw 2)."""


# --- guards and updates that read the command; internal transitions -------------------------


@attrs.frozen
class Expense:
    submitted_by: str | None = None
    approved_by: str | None = None
    submitted_at: int | None = None
    """When it was submitted, in seconds since the epoch."""


@attrs.frozen
class Approval:
    reviewer: str


WEEK = 7 * 24 * 3600


@guard
def not_the_submitter(ctx: Expense, payload: object, command: Command) -> bool:
    """The approver is not the actor who submitted the expense."""
    return command.actor is not None and command.actor.id != ctx.submitted_by


@guard
def reviewer_is_not_the_submitter(ctx: Expense, payload: Approval) -> bool:
    """The reviewer named in the payload is not the submitter (a name anyone can type)."""
    return payload.reviewer != ctx.submitted_by


@guard
def within_a_week(ctx: Expense, payload: object, command: Command) -> bool:
    """The approval comes within a week of the submission."""
    assert ctx.submitted_at is not None and command.at is not None
    return 0 <= command.at.timestamp() - ctx.submitted_at <= WEEK


@invariant
def four_eyes(state: str, ctx: Expense) -> bool:
    """Nobody approves an expense they submitted."""
    return ctx.approved_by is None or ctx.approved_by != ctx.submitted_by


def _submit(ctx: Expense, payload: object, command: Command) -> Expense:
    who = command.actor.id if command.actor is not None else None
    at = None if command.at is None else int(command.at.timestamp())
    return attrs.evolve(ctx, submitted_by=who, submitted_at=at)


def _approve(ctx: Expense, payload: object, command: Command) -> Expense:
    who = command.actor.id if command.actor is not None else None
    return attrs.evolve(ctx, approved_by=who)


def expense_spec(*, honest: bool) -> Spec:
    """Clerks submit, reviewers approve within a week; the approver must not be the submitter.
    Honest: the guard compares the actors. Planted: it compares a name from the payload, which
    the one person holding both roles can fill with anyone's name."""
    approve = Transition(
        "approve",
        "submitted",
        "approved",
        roles=["reviewer"],
        payload=None if honest else Approval,
        guards=[not_the_submitter if honest else reviewer_is_not_the_submitter, within_a_week],
        update=_approve,
        examples=[] if honest else [Approval("someone else")],
    )
    return Spec(
        name="expense" if honest else "expense_planted",
        version=1,
        context=Expense,
        initial="draft",
        states=["draft", "submitted", "approved", "paid"],
        final=["paid"],
        transitions=[
            Transition("submit", "draft", "submitted", roles=["clerk"], update=_submit),
            approve,
            Transition("withdraw", "submitted", "draft", update=lambda c, p: Expense()),
            Transition("pay", "approved", "paid"),
        ],
        invariants=[four_eyes],
    )


@attrs.frozen
class Wire:
    sent: int = 0
    closes: int = 0


WIRE = Spec(
    name="wire",
    version=1,
    context=Wire,
    initial="idle",
    states=["idle", "open", "closed"],
    final=["closed"],
    transitions=[
        Transition("connect", "idle", "open"),
        Transition("ping", ["idle", "open"], None),
        Transition(
            "send",
            "open",
            None,
            guards=[Guard(lambda c, p: c.sent < 2, name="room_left")],
            update=lambda c, p: attrs.evolve(c, sent=c.sent + 1),
        ),
        Transition("close", "open", "closed"),
        Transition(
            "close",
            "closed",
            None,
            guards=[Guard(lambda c, p: c.closes < 1, name="first_repeat")],
            update=lambda c, p: attrs.evolve(c, closes=c.closes + 1),
        ),
    ],
)
"""An h11-like wire: ``ping`` is internal from two states, ``send`` internal in ``open``, and the
final ``closed`` accepts one repeated ``close`` (an internal transition): three ``sent`` values in
``open``, one in ``idle``, two ``closes`` values in ``closed``."""


@attrs.frozen
class Level:
    n: int = 0


@guard
def small(ctx: Level, payload: object) -> bool:
    """The level is under three."""
    return ctx.n < 3


@guard
def large(ctx: Level, payload: object) -> bool:
    """The level is three or more."""
    return ctx.n >= 3


COMPLEMENT = Spec(
    name="complement",
    version=1,
    context=Level,
    initial="low",
    states=["low", "high"],
    final=["high"],
    transitions=[
        Transition("step", "low", "low", guards=[small], update=lambda c, p: Level(c.n + 1)),
        Transition("step", "low", "high", guards=[large]),
    ],
)
"""``large`` is the complement of ``small`` on the row before it: it is only evaluated once
``small`` said no, and then it always holds."""
