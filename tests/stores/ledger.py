"""A small spec exercising everything a store must round-trip: nested attrs classes,
optional fields, tuples, large integers, roles, guards, effects and an invariant."""

from __future__ import annotations

import attrs

from statekernel.kernel import Effect, Spec, Transition, guard, invariant


@attrs.frozen
class Money:
    cents: int
    currency: str = "EUR"


@attrs.frozen
class Ledger:
    balance: int = 0
    entries: tuple[Money, ...] = ()
    note: str | None = None
    tags: tuple[str, ...] = ()


@attrs.frozen
class Deposit:
    amount: Money
    note: str | None = None
    tags: tuple[str, ...] = ()


@attrs.frozen
class Withdraw:
    cents: int


@guard
def positive(ctx: Ledger, p: Deposit) -> bool:
    """Deposits are positive."""
    return p.amount.cents > 0


@guard
def covered(ctx: Ledger, p: Withdraw) -> bool:
    """The balance covers the withdrawal."""
    return 0 < p.cents <= ctx.balance


@invariant
def never_negative(state: str, ctx: Ledger) -> bool:
    """The balance is never negative."""
    return ctx.balance >= 0


def _deposit(ctx: Ledger, p: Deposit) -> Ledger:
    return attrs.evolve(
        ctx,
        balance=ctx.balance + p.amount.cents,
        entries=(*ctx.entries, p.amount),
        note=p.note,
        tags=ctx.tags + p.tags,
    )


def _withdraw(ctx: Ledger, p: Withdraw) -> Ledger:
    return attrs.evolve(ctx, balance=ctx.balance - p.cents, entries=(*ctx.entries, Money(-p.cents)))


SPEC = Spec(
    name="ledger",
    version=1,
    context=Ledger,
    initial="open",
    states=["open", "frozen", "closed"],
    final=["closed"],
    transitions=[
        Transition(
            "deposit",
            "open",
            "open",
            payload=Deposit,
            guards=[positive],
            update=_deposit,
            effects=[Effect("ledger.deposited", lambda c, p: {"cents": p.amount.cents})],
        ),
        Transition(
            "withdraw", "open", "open", payload=Withdraw, guards=[covered], update=_withdraw
        ),
        Transition("freeze", "open", "frozen", roles=["auditor"]),
        Transition("thaw", "frozen", "open", roles=["auditor"]),
        Transition("close", ["open", "frozen"], "closed"),
    ],
    invariants=[never_negative],
)
