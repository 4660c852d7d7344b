"""Specs for the interop tests: the reference specs in ``statekernel.specs`` plus a ledger
that exercises payloads, roles, guards, invariants, effects and a spec fault."""

from __future__ import annotations

import importlib
import pkgutil

import attrs

import statekernel.specs
from statekernel.kernel import Effect, Spec, Transition, guard, invariant


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

SPECIMENS: dict[str, Spec] = {"ledger": LEDGER}


def all_specs() -> dict[str, Spec]:
    """The reference specs and the specimens, by a readable id."""
    return {**reference_specs(), **SPECIMENS}
