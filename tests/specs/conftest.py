"""Shared helpers for the reference spec tests.

``random_walk`` drives a spec through a sequence of commands built from its transitions'
``examples``: the fuzz tests draw the sequence with Hypothesis and check that the spec's
guards keep its invariants (no ``invariant_violated``, no ``spec_fault``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from statekernel.kernel import Accepted, Actor, Command, Snapshot, Spec, decide

Walk = Callable[[Spec, Sequence[int]], list[Snapshot]]


def example_commands(spec: Spec) -> list[Command]:
    """Every transition's examples as commands, sent by an actor holding its first role, and
    once more by an outsider holding no role (to mix in ``forbidden`` rejections)."""
    commands: list[Command] = []
    outsider = Actor("mallory", roles=["outsider"])
    for t in spec.transitions:
        insider = Actor(f"{t.roles[0]}-1", roles=[t.roles[0]]) if t.roles else None
        for example in t.examples or (None,):
            commands.append(Command(t.event, example, actor=insider))
            commands.append(Command(t.event, example, actor=outsider))
    return commands


def walk(spec: Spec, picks: Sequence[int]) -> list[Snapshot]:
    """Send the picked example commands in order; return every snapshot reached.

    Fails the test if a decision is ``invariant_violated`` or ``spec_fault``, if an accepted
    snapshot breaks an invariant, or if a rejection changes anything.
    """
    commands = example_commands(spec)
    snap = spec.start()
    seen = [snap]
    for pick in picks:
        command = commands[pick % len(commands)]
        decision = decide(spec, snap, command)
        if isinstance(decision, Accepted):
            assert decision.snapshot.version == snap.version + 1
            snap = decision.snapshot
            seen.append(snap)
            broken = [i.name for i in spec.invariants if not i(snap.state, snap.context)]
            assert not broken, (command, snap, broken)
        else:
            assert decision.code not in ("invariant_violated", "spec_fault"), (
                command,
                snap,
                decision,
            )
    return seen


@pytest.fixture(scope="session")
def random_walk() -> Walk:
    """The :func:`walk` helper (session-scoped, so Hypothesis tests may use it)."""
    return walk
