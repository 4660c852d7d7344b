"""Shared helpers for the reference spec tests.

``random_walk`` drives a spec through a sequence of commands built from its transitions'
``examples``: the fuzz tests draw the sequence with Hypothesis and check that the spec's
guards keep its invariants (no ``invariant_violated``, no ``spec_fault``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import strategies as st

from statekernel.kernel import Accepted, Actor, Command, Snapshot, Spec, decide

Walk = Callable[[Spec, st.DataObject], list[Snapshot]]


def example_commands(spec: Spec) -> list[Command]:
    """Every transition's examples as commands, each sent by an actor holding the
    transition's first role (role rejections are tested one by one elsewhere)."""
    commands: list[Command] = []
    for t in spec.transitions:
        actor = Actor(f"{t.roles[0]}-1", roles=[t.roles[0]]) if t.roles else None
        commands.extend(Command(t.event, example, actor=actor) for example in t.examples or (None,))
    return commands


def walk(spec: Spec, data: st.DataObject, max_steps: int = 40) -> list[Snapshot]:
    """From the initial snapshot, send up to ``max_steps`` example commands drawn from
    ``data``, each chosen among those whose event is allowed in the current state; return
    every snapshot reached.

    Fails the test if a decision is ``invariant_violated`` or ``spec_fault``, or if an accepted
    snapshot breaks an invariant or does not advance the version by one.
    """
    commands = example_commands(spec)
    snap = spec.start()
    seen = [snap]
    for _ in range(data.draw(st.integers(0, max_steps), label="steps")):
        allowed = set(spec.allowed_events(snap.state))
        choices = [c for c in commands if c.event in allowed]
        if not choices:  # a final state: nothing more can happen
            break
        command = data.draw(st.sampled_from(choices))
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
