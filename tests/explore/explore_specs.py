"""Small specs with known shapes for the explorer's tests (also CLI targets)."""

from __future__ import annotations

from typing import Literal

import attrs

from statekernel.kernel import Effect, Spec, Transition, guard, invariant


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
