"""``statekernel.adapters.transitions``: round trips, markup, and what is refused."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from transitions import Machine
from transitions.extensions import HierarchicalMachine
from transitions.extensions.markup import MarkupMachine

from statekernel.adapters.transitions import (
    InteropError,
    MachineContext,
    MachineModel,
    from_machine,
    to_machine,
)
from statekernel.kernel import Actor, Command, Snapshot, Spec, SpecError, decide

from .interop_specimens import LEDGER, all_specs
from .test_transitions_differential import TICKET_STATES, Ticket, ticket_machine

SPECS = all_specs()


def _shape(spec: Spec) -> tuple[Any, ...]:
    return (
        spec.initial,
        spec.states,
        tuple(sorted(spec.final)),
        [
            (t.event, t.source, t.target, [(g.name, g.description) for g in t.guards])
            for t in spec.transitions
        ],
    )


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_machine_made_from_a_spec_gives_the_spec_back(name: str) -> None:
    spec = SPECS[name]
    assert from_machine(to_machine(spec)) is spec
    assert from_machine(to_machine(spec, machine_class=MarkupMachine)) is spec


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_machine_made_from_a_spec_mirrors_its_table(name: str) -> None:
    spec = SPECS[name]
    machine = to_machine(spec)
    assert machine.initial == spec.initial
    assert list(machine.states) == list(spec.states)
    assert {s for s, st in machine.states.items() if st.final} == set(spec.final)
    for state in spec.states:
        assert sorted(machine.get_triggers(state)) == sorted(spec.allowed_events(state))


def test_a_changed_machine_is_not_passed_off_as_its_spec() -> None:
    machine = to_machine(LEDGER)
    machine.add_transition("reopen", "closed", "open")
    with pytest.raises(InteropError, match="'reopen' from 'closed' to 'open' was added"):
        from_machine(machine)


@pytest.mark.parametrize("dest", ["open", "frozen"])
def test_a_transition_added_to_the_machine_fails_clearly_when_it_would_fire(dest: str) -> None:
    """A transition added to the returned machine, duplicating (event, source, dest) of one
    ``to_machine`` made or not, must not fire where the kernel said no: a clear
    InteropError, and the model is unchanged (it used to be a raw AttributeError)."""
    machine = to_machine(LEDGER)
    machine.add_transition("withdraw", "open", dest)
    model = machine.model
    assert model.deposit({"amount": 5}) is True
    before = model.snapshot()
    with pytest.raises(
        InteropError,
        match=r"'withdraw' from 'open' to .* fired although the kernel rejected it \(forbidden",
    ) as caught:
        model.withdraw({"amount": 1})
    assert "add transitions to the spec" in str(caught.value)
    assert model.snapshot() == before
    # where the kernel accepts, the transition to_machine made fires first, as before
    assert model.withdraw({"amount": 1}, actor=Actor("t", roles=["teller"])) is True
    assert model.snapshot() == Snapshot("open", LEDGER.context(balance=4), 2)


def test_the_model_carries_context_version_and_decision() -> None:
    model = MachineModel()
    machine = to_machine(LEDGER, model)
    assert machine.model is model
    assert (model.state, model.context, model.version, model.decision) == (
        "open",
        LEDGER.context(),
        0,
        None,
    )
    assert model.deposit({"amount": 5}) is True
    assert model.snapshot() == Snapshot("open", LEDGER.context(balance=5), 1)
    assert [m.name for m in model.decision.effects] == ["deposited"]
    assert model.withdraw({"amount": 1}) is False
    assert model.decision.code == "forbidden"
    assert model.withdraw({"amount": 9}, actor=Actor("t", roles=["teller"])) is False
    assert model.decision.code == "invariant_violated"
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        model.deposit(amount=1)
    assert model.unfreeze(actor=Actor("m", roles=["manager"])) is False
    assert model.decision.code == "invalid_transition"
    assert model.snapshot() == Snapshot("open", LEDGER.context(balance=5), 1)


def test_a_machine_can_resume_from_a_snapshot_on_any_model() -> None:
    class Mine:
        pass

    snap = Snapshot("frozen", attrs.evolve(LEDGER.context(), balance=5, frozen_by="ann"), 4)
    mine = Mine()
    to_machine(LEDGER, mine, snapshot=snap)
    assert (mine.state, mine.context, mine.version) == ("frozen", snap.context, 4)  # type: ignore[attr-defined]
    manager = Actor("m", roles=["manager"])
    expected = decide(LEDGER, snap, Command("close", actor=manager))
    assert mine.close(actor=manager) is True  # type: ignore[attr-defined]
    assert mine.decision == expected  # type: ignore[attr-defined]
    assert mine.state == "frozen"  # type: ignore[attr-defined]


def test_an_event_that_would_shadow_a_model_attribute_is_refused() -> None:
    class Busy:
        deposit = "taken"

    with pytest.raises(InteropError, match="event 'deposit' would shadow"):
        to_machine(LEDGER, Busy())


# --- from_machine --------------------------------------------------------------------------


def test_conditions_become_guards_named_after_their_callables() -> None:
    model = Ticket(assigned=True, urgent=False, blocked=False)
    spec = from_machine(ticket_machine(model), name="tickets")
    assert spec.name == "tickets"
    assert spec.context is MachineContext
    assert spec.initial == "new"
    assert spec.states == tuple(TICKET_STATES)
    assert spec.final == ()  # "drop" leaves every state, even done and wontfix
    rows = {(t.event, t.source, t.target): t for t in spec.transitions}
    escalate = rows[("escalate", ("open",), "escalated")]
    assert [g.name for g in escalate.guards] == ["urgent", "not is_blocked"]
    assert escalate.guards[1].description == "Not: Something blocks the ticket."
    assert rows[("open", ("new",), "open")].guards[0].description == (
        "Someone is assigned to the ticket."
    )
    assert ("poke", ("waiting",), None) in rows  # an internal transition stays internal
    assert len([k for k in rows if k[0] == "drop"]) == len(TICKET_STATES)  # "*" expanded


def test_markup_gives_the_same_spec_as_the_machine() -> None:
    model = Ticket(assigned=True, urgent=True, blocked=False)
    from_live = from_machine(ticket_machine(model))
    markup = ticket_machine(Ticket(False, False, False), MarkupMachine).markup
    from_markup = from_machine(markup, model=model)
    assert _shape(from_markup) == _shape(from_live)
    snap = from_markup.start()
    for event in ["open", "escalate", "finish"]:
        decision = decide(from_markup, snap, Command(event))
        assert decision.accepted, decision
        snap = decision.snapshot
    assert snap.state == "done"


def test_auto_transitions_are_left_out_unless_asked_for() -> None:
    machine = Machine(states=["a", "b"], initial="a", transitions=[["go", "a", "b"]])
    assert [t.event for t in from_machine(machine).transitions] == ["go"]
    with_auto = from_machine(machine, auto_transitions=True, final=[])
    assert {t.event for t in with_auto.transitions} == {"go", "to_a", "to_b"}


def test_final_states_can_be_named_and_dead_ends_are_then_reported() -> None:
    machine = Machine(
        states=["a", "b", "c"], initial="a", transitions=[["go", "a", "b"], ["on", "a", "c"]]
    )
    assert set(from_machine(machine).final) == {"b", "c"}
    with pytest.raises(SpecError, match="state 'c': is not final and has no outgoing"):
        from_machine(machine, final=["b"])


def test_callbacks_are_refused_all_at_once() -> None:
    class Model:
        def on_enter_b(self) -> None:
            pass

    machine = Machine(
        Model(),
        states=["a", "b"],
        initial="a",
        transitions=[
            {
                "trigger": "go",
                "source": "a",
                "dest": "b",
                "before": "log",
                "after": "log",
                "prepare": "log",
            }
        ],
        after_state_change="audit",
    )
    with pytest.raises(InteropError) as info:
        from_machine(machine)
    text = str(info.value)
    assert len(info.value.problems) == 5
    for culprit in (
        "after_state_change='audit'",
        "state 'b' callback on_enter='on_enter_b'",
        "before='log'",
        "after='log'",
        "prepare='log'",
    ):
        assert culprit in text


def test_nested_states_and_event_data_are_refused() -> None:
    nested = HierarchicalMachine(
        states=["a", {"name": "b", "children": ["x", "y"]}],
        initial="a",
        transitions=[["go", "a", "b"]],
    )
    with pytest.raises(InteropError, match="nested states"):
        from_machine(nested)
    sending = Machine(
        states=["a", "b"], initial="a", transitions=[["go", "a", "b"]], send_event=True
    )
    with pytest.raises(InteropError, match="send_event=True"):
        from_machine(sending)


@pytest.mark.parametrize(
    ("markup", "message"),
    [
        (
            {
                "states": ["a", {"name": "b", "children": ["x"]}],
                "initial": "a",
                "transitions": [["go", "a", "b"]],
            },
            "state 'b' has nested states",
        ),
        (
            {
                "states": [{"name": "a", "timeout": 5, "on_timeout": "x"}, "b"],
                "initial": "a",
                "transitions": [["go", "a", "b"]],
            },
            "state 'a' has a timeout",
        ),
        (
            {"states": ["a", "b"], "initial": "a", "transitions": [["go", "a", "b"]], "wobble": 1},
            "markup key 'wobble' is not understood",
        ),
        (
            {
                "states": ["a", "b"],
                "initial": "a",
                "transitions": [{"trigger": "go", "source": "a", "dest": "b", "conditions": "ok"}],
            },
            "conditions need a model",
        ),
        ({"states": ["a", "b"], "transitions": [["go", "a", "b"]]}, "no initial state"),
        (
            {
                "states": [{"name": "a", "on_exit": ["bye"]}, "b"],
                "initial": "a",
                "transitions": [["go", "a", "b"]],
            },
            "on_exit='bye'",
        ),
    ],
)
def test_markup_that_cannot_be_carried_over_is_refused(
    markup: dict[str, Any], message: str
) -> None:
    with pytest.raises(InteropError, match=message):
        from_machine(markup)


def test_two_unconditioned_transitions_for_one_trigger_are_reported() -> None:
    machine = Machine(
        states=["a", "b", "c"], initial="a", transitions=[["go", "a", "b"], ["go", "a", "c"]]
    )
    with pytest.raises(SpecError, match="can never fire"):
        from_machine(machine)


def test_a_state_with_only_internal_transitions_is_final_and_keeps_them() -> None:
    """h11's CLOSED: a repeated close is accepted and changes nothing; it is no way out, so
    the state is final, and the internal transition survives the round trip."""
    machine = Machine(
        states=["open", "closed"],
        initial="open",
        transitions=[
            {"trigger": "close", "source": "open", "dest": "closed"},
            {"trigger": "close", "source": "closed", "dest": None},
        ],
    )
    spec = from_machine(machine)
    assert spec.final == ("closed",)
    assert [(t.source, t.target) for t in spec.transitions] == [
        (("open",), "closed"),
        (("closed",), None),
    ]
    rebuilt = to_machine(spec)
    assert rebuilt.model.close() is True and rebuilt.model.state == "closed"
    assert rebuilt.model.close() is True and rebuilt.model.state == "closed"
    assert rebuilt.model.version == 2
    assert from_machine(rebuilt) is spec


def test_an_internal_transition_is_an_internal_machine_transition() -> None:
    from .interop_specimens import CONNECTION

    machine = to_machine(CONNECTION)
    [ping] = machine.get_transitions("ping", "open")
    assert ping.dest is None  # no exit and enter callbacks, as transitions does it
    model = machine.model
    model.connect(actor=Actor("ann"))
    assert model.ping() is True and model.state == "open" and model.version == 2
    assert model.close(actor=Actor("bob")) is False
    assert model.decision.code == "guard_rejected"
    assert model.close(actor=Actor("ann")) is True and model.state == "closing"
