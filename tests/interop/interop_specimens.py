"""Specs for the interop tests: the reference specs in ``statekernel.specs`` plus a ledger
that exercises payloads, roles, guards, invariants, effects and a spec fault, and a connection
with internal transitions and guards and updates that read the command."""

from __future__ import annotations

import importlib
import pkgutil

import attrs

import statekernel.specs
from statekernel.kernel import Command, Effect, Spec, Transition, guard, invariant


def reference_specs() -> dict[str, Spec]:
    """Every ``SPEC`` in a ``statekernel.specs`` module, by module name."""
    found: dict[str, Spec] = {}
    for info in sorted(pkgutil.iter_modules(statekernel.specs.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"statekernel.specs.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, Spec):
            found[f"statekernel.specs.{info.name}"] = spec
    return found


@attrs.frozen
class Account:
    balance: int = 0
    frozen_by: str | None = None


@attrs.frozen
class Amount:
    amount: int


@attrs.frozen
class Freeze:
    by: str


@guard
def positive(ctx: Account, payload: Amount) -> bool:
    """The amount is more than zero."""
    return payload.amount > 0


@guard
def empty(ctx: Account, payload: object) -> bool:
    """Nothing is left in the account."""
    return ctx.balance == 0


@guard
def not_thirteen(ctx: Account, payload: Amount) -> bool:
    """Refuses 13 by raising: a guard with a bug, so that spec_fault is covered too."""
    if payload.amount == 13:
        raise RuntimeError("unlucky")
    return True


@invariant
def never_overdrawn(state: str, ctx: Account) -> bool:
    """The balance never goes below zero."""
    return ctx.balance >= 0


@invariant
def frozen_names_who(state: str, ctx: Account) -> bool:
    """A frozen account names who froze it."""
    return state != "frozen" or ctx.frozen_by is not None


LEDGER = Spec(
    name="ledger",
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
            guards=[positive, not_thirteen],
            update=lambda c, p: attrs.evolve(c, balance=c.balance + p.amount),
            effects=[Effect("deposited", lambda c, p: {"balance": c.balance})],
            examples=[{"amount": 5}, {"amount": 13}, {"amount": 0}],
        ),
        Transition(
            "withdraw",
            "open",
            "open",
            payload=Amount,
            roles=["teller"],
            update=lambda c, p: attrs.evolve(c, balance=c.balance - p.amount),
            examples=[{"amount": 3}, {"amount": 50}],
        ),
        Transition(
            "freeze",
            "open",
            "frozen",
            payload=Freeze,
            roles=["manager"],
            update=lambda c, p: attrs.evolve(c, frozen_by=p.by),
            examples=[{"by": "ann"}],
        ),
        Transition(
            "unfreeze",
            "frozen",
            "open",
            roles="manager",
            update=lambda c, p: attrs.evolve(c, frozen_by=None),
        ),
        Transition("close", ["open", "frozen"], "closed", guards=[empty]),
        Transition("close", "frozen", "frozen", roles="manager"),
    ],
    invariants=[never_overdrawn, frozen_names_who],
)


@attrs.frozen
class Link:
    opened_by: str = ""
    sent: int = 0
    closes: int = 0


@attrs.frozen
class Data:
    n: int


@guard
def by_the_opener(ctx: Link, payload: object, command: Command) -> bool:
    """Only the actor who opened the link may close it."""
    return command.actor is not None and command.actor.id == ctx.opened_by


@guard
def admin_override(ctx: Link, payload: object, command: Command) -> bool:
    """An admin may close a link opened by someone else before noon."""
    return command.at is not None and command.at.hour < 12


@guard
def below_three(ctx: Link, payload: Data) -> bool:
    """At most three messages are sent."""
    return ctx.sent + payload.n <= 3


def _open(ctx: Link, payload: None, command: Command) -> Link:
    return attrs.evolve(ctx, opened_by=command.actor.id if command.actor else "")


CONNECTION = Spec(
    name="connection",
    version=1,
    context=Link,
    initial="idle",
    states=["idle", "open", "closing", "closed"],
    final=["closed"],
    transitions=[
        Transition("connect", "idle", "open", update=_open),
        Transition(
            "send",
            "open",
            None,
            payload=Data,
            guards=[below_three],
            update=lambda c, p: attrs.evolve(c, sent=c.sent + p.n),
            examples=[{"n": 1}, {"n": 2}],
        ),
        Transition("ping", ["idle", "open", "closing"], None),
        Transition("close", "open", "closing", guards=[by_the_opener]),
        Transition("close", "open", "closing", roles=["admin"], guards=[admin_override]),
        Transition("finish", "closing", "closed"),
        Transition(
            "close",
            ["closing", "closed"],
            None,
            update=lambda c, p: attrs.evolve(c, closes=c.closes + 1),
        ),
    ],
)
"""An h11-like connection: internal transitions from several states and in the final state
(a repeated ``close`` is accepted and changes nothing but a counter), a guard and an update
that read the command (who opened the link, the time of an admin's close)."""

SPECIMENS: dict[str, Spec] = {"ledger": LEDGER, "connection": CONNECTION}


def all_specs() -> dict[str, Spec]:
    """The reference specs and the specimens, by a readable id."""
    return {**reference_specs(), **SPECIMENS}
