"""Planted bugs the fuzzer must catch, and their honest twins it must pass.

Specs whose guards miss a case that their invariants need:

- ``OVERDRAFT``: ``withdraw`` checks the amount is positive but not that it is covered
  (one step from the start);
- ``PROMOTION``: ``promote`` forgets that a senior needs six training hours, which only
  matters after training, then certification, with four or five hours (several steps);
- ``SPLITTER``: an update divides by a payload field that no example sets to zero
  (``spec_fault``; only payloads generated from the type find it);
- ``FOUR_EYES``: the four-eyes guard compares a name in the payload with the actor who
  submitted (only one client holding both roles finds it);
- ``DEADLINE``: ``confirm`` does not check that it comes within a day of the hold (only the
  fuzzer's clock jumping between commands finds it).

Stores (wrappers around or subclasses of ``MemoryStore``) that break a promise:

- ``ForgetsKeys``: does not keep idempotency key records, so retries are decided again;
- ``AppliesTwice``: applies every accepted command a second time, without its key;
- ``StaleReads``: ``get`` serves a cached snapshot that writes do not refresh;
- ``NoAuditForSelfLoops``: writes the snapshot but not the audit row of a transition that
  stays in its state;
- ``LosesWritesOnCrash``: keeps writes in a buffer that ``reopen()`` throws away;
- ``WritesOnMismatch``: a reused key with a different request is answered
  ``idempotency_mismatch`` but applied anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from statekernel.adapters.memory import MemoryStore
from statekernel.kernel import (
    Accepted,
    AuditRecord,
    Command,
    Decision,
    Snapshot,
    Spec,
    Transition,
    guard,
    invariant,
)

# --- OVERDRAFT: the shallow spec bug ----------------------------------------------------------


@attrs.frozen
class Account:
    balance: int = 0


@attrs.frozen
class Amount:
    cents: int


@guard
def positive(ctx: Account, p: Amount) -> bool:
    """The amount is positive."""
    return p.cents > 0


@guard
def covered(ctx: Account, p: Amount) -> bool:
    """The balance covers the amount."""
    return p.cents <= ctx.balance


@invariant
def never_negative(state: str, ctx: Account) -> bool:
    """The balance is never negative."""
    return ctx.balance >= 0


def _account(withdraw_guards: list[Any]) -> Spec:
    return Spec(
        name="overdraft",
        version=1,
        context=Account,
        initial="open",
        states=["open", "closed"],
        final=["closed"],
        transitions=[
            Transition(
                "deposit",
                "open",
                "open",
                payload=Amount,
                guards=[positive],
                update=lambda c, p: attrs.evolve(c, balance=c.balance + p.cents),
                examples=[Amount(5), Amount(20)],
            ),
            Transition(
                "withdraw",
                "open",
                "open",
                payload=Amount,
                guards=withdraw_guards,
                update=lambda c, p: attrs.evolve(c, balance=c.balance - p.cents),
                examples=[Amount(5), Amount(10)],
            ),
            Transition("close", "open", "closed"),
        ],
        invariants=[never_negative],
    )


OVERDRAFT = _account([positive])
"""Bug: ``withdraw`` is not guarded by ``covered``."""
OVERDRAFT_FIXED = _account([positive, covered])


# --- PROMOTION: a spec bug only reachable after several steps -------------------------------


@attrs.frozen
class Career:
    hours: int = 0
    certified_by: str | None = None


@attrs.frozen
class Training:
    hours: int


@attrs.frozen
class Certification:
    examiner: str


@guard
def some_hours(ctx: Career, p: Training) -> bool:
    """A session lasts one or two hours."""
    return 1 <= p.hours <= 2


@guard
def trained_enough(ctx: Career, p: object) -> bool:
    """Certification needs four hours of training."""
    return ctx.hours >= 4


@guard
def senior_hours(ctx: Career, p: object) -> bool:
    """Promotion needs six hours of training."""
    return ctx.hours >= 6


@invariant
def seniors_are_trained(state: str, ctx: Career) -> bool:
    """A senior has at least six hours of training."""
    return state != "senior" or ctx.hours >= 6


@invariant
def certified_names_examiner(state: str, ctx: Career) -> bool:
    """Certified and senior staff name their examiner."""
    return state not in ("certified", "senior") or ctx.certified_by is not None


def _career(promote_guards: list[Any]) -> Spec:
    return Spec(
        name="promotion",
        version=1,
        context=Career,
        initial="trainee",
        states=["trainee", "certified", "senior", "retired"],
        final=["retired"],
        transitions=[
            Transition(
                "train",
                ["trainee", "certified"],
                "trainee",
                payload=Training,
                guards=[some_hours],
                update=lambda c, p: attrs.evolve(c, hours=c.hours + p.hours),
                examples=[Training(1), Training(2), Training(3)],
            ),
            Transition(
                "certify",
                "trainee",
                "certified",
                payload=Certification,
                roles=["examiner"],
                guards=[trained_enough],
                update=lambda c, p: attrs.evolve(c, certified_by=p.examiner),
                examples=[Certification("eve")],
            ),
            Transition("promote", "certified", "senior", roles=["manager"], guards=promote_guards),
            Transition("retire", ["trainee", "certified", "senior"], "retired"),
        ],
        invariants=[seniors_are_trained, certified_names_examiner],
    )


PROMOTION = _career([])
"""Bug: ``promote`` is not guarded by ``senior_hours``; found after train, train, certify,
promote with four or five hours."""
PROMOTION_FIXED = _career([senior_hours])


# --- SPLITTER: a spec_fault only a generated payload reaches ---------------------------------


@attrs.frozen
class Pot:
    total: int = 12
    share: int = 0


@attrs.frozen
class Split:
    parts: int


def _split(ctx: Pot, p: Split) -> Pot:
    return attrs.evolve(ctx, share=ctx.total // p.parts)


def _split_safely(ctx: Pot, p: Split) -> Pot:
    return attrs.evolve(ctx, share=ctx.total // p.parts if p.parts else 0)


def _pot(update: Any) -> Spec:
    return Spec(
        name="splitter",
        version=1,
        context=Pot,
        initial="open",
        states=["open", "done"],
        final=["done"],
        transitions=[
            Transition("split", "open", "open", payload=Split, update=update,
                       examples=[Split(2), Split(3)]),
            Transition("finish", "open", "done"),
        ],
    )  # fmt: skip


SPLITTER = _pot(_split)
"""Bug: ``split`` divides by ``parts``, which a client may send as 0."""
SPLITTER_FIXED = _pot(_split_safely)


# --- FOUR_EYES: a rule on a name anyone can type ---------------------------------------------


@attrs.frozen
class Expense:
    submitted_by: str | None = None
    approved_by: str | None = None


@attrs.frozen
class Approve:
    reviewer: str


@guard
def named_reviewer_is_not_the_submitter(ctx: Expense, p: Approve) -> bool:
    """The reviewer named in the payload did not submit the expense."""
    return p.reviewer != ctx.submitted_by


@guard
def approver_is_not_the_submitter(ctx: Expense, p: Approve, command: Command) -> bool:
    """The actor who approves did not submit the expense."""
    return command.actor is not None and command.actor.id != ctx.submitted_by


@invariant
def four_eyes(state: str, ctx: Expense) -> bool:
    """Nobody approves an expense they submitted."""
    return ctx.approved_by is None or ctx.approved_by != ctx.submitted_by


def _by(command: Command) -> str | None:
    return command.actor.id if command.actor is not None else None


def _expense(approve_guard: Any) -> Spec:
    return Spec(
        name="four_eyes",
        version=1,
        context=Expense,
        initial="draft",
        states=["draft", "submitted", "approved"],
        final=["approved"],
        transitions=[
            Transition("submit", "draft", "submitted", roles=["clerk"],
                       update=lambda c, p, cmd: attrs.evolve(c, submitted_by=_by(cmd))),
            Transition("approve", "submitted", "approved", roles=["reviewer"], payload=Approve,
                       guards=[approve_guard],
                       update=lambda c, p, cmd: attrs.evolve(c, approved_by=_by(cmd)),
                       examples=[Approve("rita")]),
        ],
        invariants=[four_eyes],
    )  # fmt: skip


FOUR_EYES = _expense(named_reviewer_is_not_the_submitter)
"""Bug: the four-eyes guard compares the name in the payload, not the actor; the client who
holds both roles submits and approves."""
FOUR_EYES_FIXED = _expense(approver_is_not_the_submitter)


# --- DEADLINE: a time limit nothing checks --------------------------------------------------


@attrs.frozen
class Hold:
    held_at: int = 0
    """Seconds since the epoch."""
    confirmed_at: int = 0


DAY = 24 * 3600


def _seconds(command: Command) -> int:
    return int(command.at.timestamp()) if command.at is not None else 0


@guard
def within_a_day(ctx: Hold, p: object, command: Command) -> bool:
    """The confirmation comes within a day of the hold."""
    return _seconds(command) - ctx.held_at <= DAY


@invariant
def confirmed_within_a_day(state: str, ctx: Hold) -> bool:
    """A confirmed hold was confirmed within a day of being placed."""
    return state != "confirmed" or ctx.confirmed_at - ctx.held_at <= DAY


def _hold(confirm_guards: list[Any]) -> Spec:
    return Spec(
        name="deadline",
        version=1,
        context=Hold,
        initial="idle",
        states=["idle", "held", "confirmed"],
        final=["confirmed"],
        transitions=[
            Transition("hold", "idle", "held",
                       update=lambda c, p, cmd: attrs.evolve(c, held_at=_seconds(cmd))),
            Transition("ping", ["idle", "held", "confirmed"], None),
            Transition("confirm", "held", "confirmed", guards=confirm_guards,
                       update=lambda c, p, cmd: attrs.evolve(c, confirmed_at=_seconds(cmd))),
            Transition("release", "held", "idle", update=lambda c, p: Hold()),
        ],
        invariants=[confirmed_within_a_day],
    )  # fmt: skip


DEADLINE = _hold([])
"""Bug: ``confirm`` does not check the day's limit; found once the fuzzer's clock has jumped
by more than a day between the hold and the confirmation."""
DEADLINE_FIXED = _hold([within_a_day])


# --- stores ----------------------------------------------------------------------------------


class Wrapper:
    """A store that forwards everything to a ``MemoryStore`` (honest unless overridden)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.inner = MemoryStore(spec)

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        return self.inner.handle(entity, command, idempotency_key=idempotency_key)

    def get(self, entity: str) -> Snapshot | None:
        return self.inner.get(entity)

    def history(self, entity: str) -> Sequence[AuditRecord]:
        return self.inner.history(entity)

    def entities(self) -> Iterable[str]:
        return self.inner.entities()

    def purge_keys(self, older_than: datetime) -> int:
        return self.inner.purge_keys(older_than)

    def reopen(self) -> None:
        self.inner.reopen()

    def close(self) -> None:
        self.inner.close()


class ForgetsKeys(MemoryStore):
    """Writes the key into the audit row but never keeps the key record, so every retry is
    decided again as a new request."""

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        d = super().handle(entity, command, idempotency_key=idempotency_key)
        if idempotency_key is not None:
            self._tables.keys.pop(idempotency_key, None)
        return d


class AppliesTwice(Wrapper):
    """Applies every accepted command once more, without its key (a store-internal retry
    that forgot the key)."""

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        d = self.inner.handle(entity, command, idempotency_key=idempotency_key)
        if isinstance(d, Accepted):
            self.inner.handle(entity, command)
        return d


class StaleReads(Wrapper):
    """A read cache that writes do not invalidate."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self._cache: dict[str, Snapshot | None] = {}

    def get(self, entity: str) -> Snapshot | None:
        if entity not in self._cache:
            self._cache[entity] = self.inner.get(entity)
        return self._cache[entity]


class NoAuditForSelfLoops(MemoryStore):
    """Writes the snapshot but drops the audit row of a transition that stays in its state
    ("nothing really changed")."""

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        d = super().handle(entity, command, idempotency_key=idempotency_key)
        if isinstance(d, Accepted) and d.record.from_state == d.record.to_state:
            rows = self._tables.history[entity]
            if rows and rows[-1].version == d.snapshot.version:
                rows.pop()
        return d


class LosesWritesOnCrash(Wrapper):
    """Acknowledges writes from a buffer that is flushed every third write; ``reopen()``
    throws the buffer away."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self._durable = _checkpoint(self.inner)
        self._writes = 0

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        d = self.inner.handle(entity, command, idempotency_key=idempotency_key)
        if isinstance(d, Accepted):
            self._writes += 1
            if self._writes % 3 == 0:
                self._durable = _checkpoint(self.inner)
        return d

    def reopen(self) -> None:
        self.inner = _checkpoint(self._durable)


def _checkpoint(store: MemoryStore) -> MemoryStore:
    """A copy of a MemoryStore's contents (its lock cannot be copied)."""
    out = MemoryStore(store.spec)
    mine, theirs = out._tables, store._tables
    mine.snapshots = dict(theirs.snapshots)
    mine.history = {k: list(v) for k, v in theirs.history.items()}
    mine.keys = dict(theirs.keys)
    mine.outbox = list(theirs.outbox)
    mine.delivered = dict(theirs.delivered)
    return out


class WritesOnMismatch(Wrapper):
    """Answers a reused key ``idempotency_mismatch`` but applies the request anyway."""

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        d = self.inner.handle(entity, command, idempotency_key=idempotency_key)
        if not d.accepted and d.code == "idempotency_mismatch":
            self.inner.handle(entity, command)
        return d
