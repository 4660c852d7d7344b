"""Differential tests: a ``transitions`` machine and the kernel give the same answers.

1. ``to_machine(spec)``: random commands on every spec give the same accept/reject answer,
   state, context, version and decision through the machine's triggers and through
   ``decide``.
2. ``from_machine(machine)``: random triggers on a hand-written ``transitions`` machine give
   the same answers and states as ``decide`` on the spec made from it, and as
   ``to_machine`` of that spec.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transitions import Machine

from statekernel.adapters.transitions import MachineModel, from_machine, to_machine
from statekernel.kernel import Actor, Command, Spec, decide

from .interop_specimens import all_specs

SPECS = all_specs()
TIMES = [datetime(2024, 1, 1, 9, tzinfo=UTC), datetime(2024, 1, 1, 15, tzinfo=UTC)]


def _commands(spec: Spec) -> st.SearchStrategy[Command]:
    events = sorted(spec.events)
    roles = sorted({r for t in spec.transitions for r in t.roles})
    actors = st.sampled_from(
        [None, Actor("nobody"), Actor("all", roles=roles)]
        + [Actor(f"has-{r}", roles=[r]) for r in roles]
    )

    @st.composite
    def command(draw: st.DrawFn) -> Command:
        event = draw(st.sampled_from(events))
        examples = [ex for t in spec.transitions if t.event == event for ex in t.examples]
        payload = draw(
            st.sampled_from([None, {}, {"bogus": 1}, *examples])
            | st.fixed_dictionaries({"amount": st.integers(-3, 20)})
        )
        expected = draw(st.none() | st.none() | st.integers(0, 4))
        at = draw(st.none() | st.sampled_from(TIMES))
        return Command(event, payload, actor=draw(actors), expected_version=expected, at=at)

    return command()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_to_machine_answers_like_decide(name: str) -> None:
    spec = SPECS[name]

    @settings(max_examples=60, deadline=None)
    @given(st.lists(_commands(spec), max_size=25))
    def run(commands: list[Command]) -> None:
        machine = to_machine(spec)
        model: MachineModel = machine.model
        snap = spec.start()
        for cmd in commands:
            decision = decide(spec, snap, cmd)
            kwargs: dict[str, Any] = {"actor": cmd.actor}
            if cmd.expected_version is not None:
                kwargs["expected_version"] = cmd.expected_version
            if cmd.at is not None:
                kwargs["at"] = cmd.at
            # may_<event> asks the kernel without firing; the generic trigger fires
            may = getattr(model, f"may_{cmd.event}")(cmd.payload, **kwargs)
            assert may is decision.accepted
            answer = model.trigger(cmd.event, cmd.payload, **kwargs)
            assert answer is decision.accepted
            assert model.decision == decision
            if decision.accepted:
                snap = decision.snapshot
            assert (model.state, model.context, model.version) == (
                snap.state,
                snap.context,
                snap.version,
            )

    run()


# --- from_machine --------------------------------------------------------------------------


class Ticket:
    """A transitions model whose conditions read its own flags."""

    def __init__(self, assigned: bool, urgent: bool, blocked: Any) -> None:
        self.assigned = assigned
        self.urgent = urgent
        self.blocked = blocked  # not always a bool: transitions compares it with == True

    def is_assigned(self) -> bool:
        """Someone is assigned to the ticket."""
        return self.assigned

    def is_blocked(self) -> Any:
        """Something blocks the ticket."""
        return self.blocked


TICKET_STATES = ["new", "open", "escalated", "waiting", "done", "wontfix"]
TICKET_TRANSITIONS: list[Any] = [
    {"trigger": "open", "source": "new", "dest": "open", "conditions": "is_assigned"},
    {"trigger": "open", "source": "new", "dest": "waiting"},
    {
        "trigger": "escalate",
        "source": ["open", "waiting"],
        "dest": "escalated",
        "conditions": ["urgent"],
        "unless": "is_blocked",
    },
    {"trigger": "wait", "source": "open", "dest": "waiting", "unless": ["is_blocked"]},
    {"trigger": "resume", "source": "waiting", "dest": "open"},
    {"trigger": "poke", "source": "waiting", "dest": None},
    {"trigger": "finish", "source": ["open", "escalated"], "dest": "done"},
    {"trigger": "drop", "source": "*", "dest": "wontfix", "conditions": "is_assigned"},
]


def ticket_machine(model: Ticket, cls: type[Machine] = Machine) -> Machine:
    """The hand-written machine under test; invalid triggers return False, not raise."""
    return cls(
        model,
        states=TICKET_STATES,
        initial="new",
        transitions=[dict(t) for t in TICKET_TRANSITIONS],
        ignore_invalid_triggers=True,
    )


TICKET_EVENTS = sorted({t["trigger"] for t in TICKET_TRANSITIONS})


@settings(max_examples=150, deadline=None)
@given(
    assigned=st.booleans(),
    urgent=st.booleans(),
    blocked=st.sampled_from([True, False, None, 0, 1, "yes"]),
    events=st.lists(st.sampled_from(TICKET_EVENTS), max_size=20),
)
def test_from_machine_answers_like_the_machine(
    assigned: bool, urgent: bool, blocked: Any, events: list[str]
) -> None:
    original = Ticket(assigned, urgent, blocked)
    machine = ticket_machine(original)
    spec = from_machine(machine)
    rebuilt = to_machine(spec)
    snap = spec.start()
    for event in events:
        answer = original.trigger(event)
        decision = decide(spec, snap, Command(event))
        assert answer is decision.accepted, (event, decision)
        if decision.accepted:
            snap = decision.snapshot
        assert original.state == snap.state
        assert rebuilt.model.trigger(event) is answer
        assert rebuilt.model.state == original.state
