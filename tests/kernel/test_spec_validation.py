"""Building a spec validates it and reports every problem at once, naming each culprit."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from statekernel.kernel import Effect, Spec, SpecError, Transition, guard, invariant

from .example import SPEC, Application


@attrs.frozen
class Ctx:
    n: int = 0


@guard
def ok(ctx: Ctx, p: object) -> bool:
    """Always."""
    return True


def build(**overrides: Any) -> Spec:
    base: dict[str, Any] = {
        "name": "s",
        "version": 1,
        "context": Ctx,
        "initial": "a",
        "states": ["a", "b"],
        "final": ["b"],
        "transitions": [Transition("go", "a", "b")],
    }
    base.update(overrides)
    return Spec(**base)


def problems(**overrides: Any) -> list[str]:
    with pytest.raises(SpecError) as info:
        build(**overrides)
    assert isinstance(info.value, ValueError)  # users can catch the builtin too
    return [str(p) for p in info.value.problems]


def one(needle: str, **overrides: Any) -> str:
    found = [p for p in problems(**overrides) if needle in p]
    assert found, (needle, problems(**overrides))
    return found[0]


def test_a_valid_spec_builds() -> None:
    spec = build()
    assert spec.start().state == "a" and spec.events == frozenset({"go"})


def test_reference_example_builds() -> None:
    assert SPEC.allowed_events("draft") == ("attach", "submit")


def test_initial_not_a_state() -> None:
    assert one("initial 'z'", initial="z").endswith("is not a declared state (states: ['a', 'b'])")


def test_unknown_source_and_target() -> None:
    ps = problems(transitions=[Transition("go", "a", "b"), Transition("x", "q", "r")])
    assert any("unknown source state 'q'" in p for p in ps)
    assert any("unknown target state 'r'" in p for p in ps)


def test_duplicate_states() -> None:
    assert "declared more than once" in one("state 'a'", states=["a", "a", "b"])


def test_unreachable_state() -> None:
    msg = one("unreachable", states=["a", "b", "c"], final=["b", "c"])
    assert msg.startswith("state 'c'")


def test_dead_end_non_final_state() -> None:
    msg = one("dead end", states=["a", "b"], final=[])
    assert msg.startswith("state 'b'")


def test_final_state_with_outgoing_transition() -> None:
    ps = problems(transitions=[Transition("go", "a", "b"), Transition("back", "b", "a")])
    assert any("leaves final state 'b'" in p for p in ps)


def test_same_source_and_event_without_guards() -> None:
    ps = problems(
        states=["a", "b", "c"],
        final=["b", "c"],
        transitions=[Transition("go", "a", "b"), Transition("go", "a", "c")],
    )
    assert any("event 'go' from state 'a'" in p and "can never fire" in p for p in ps)


def test_guarded_first_and_unguarded_fallback_is_fine() -> None:
    spec = build(
        states=["a", "b", "c"],
        final=["b", "c"],
        transitions=[Transition("go", "a", "b", guards=[ok]), Transition("go", "a", "c")],
    )
    assert len(spec.candidates("a", "go")) == 2


def test_payload_not_attrs() -> None:
    assert "is not an attrs class" in one(
        "payload type", transitions=[Transition("go", "a", "b", payload=dict)]
    )


def test_payload_with_unsupported_field_type() -> None:
    @attrs.frozen
    class P:
        when: complex

    assert "complex" in one("payload type", transitions=[Transition("go", "a", "b", payload=P)])


def test_example_that_does_not_fit_its_payload() -> None:
    @attrs.frozen
    class P:
        n: int

    msg = one(
        "example #1",
        transitions=[Transition("go", "a", "b", payload=P, examples=[{"n": 1}, {"n": "x"}])],
    )
    assert "field 'n'" in msg


def test_lambda_guard_is_refused() -> None:
    msg = one(
        "must be decorated with @guard",
        transitions=[
            Transition("go", "a", "b", guards=[lambda c, p: True])  # type: ignore[list-item]
        ],
    )
    assert "'<lambda>'" in msg


@pytest.mark.parametrize(
    "transition",
    [
        Transition("go", "a", "b", guards=[guard(lambda c: True)]),  # type: ignore[arg-type]
        Transition("go", "a", "b", update=lambda c: c),  # type: ignore[arg-type, misc]
        Transition("go", "a", "b", update=42),  # type: ignore[arg-type]
    ],
)
def test_callables_with_wrong_arity_are_refused(transition: Transition) -> None:
    msg = one("takes (ctx, payload)", transitions=[transition])
    assert "transition 'go' (a -> b)" in msg


def test_a_transition_emitting_two_messages_of_one_name_is_refused() -> None:
    twice = Transition("go", "a", "b", effects=[Effect("sent"), Effect("other"), Effect("sent")])
    msg = one("emitted twice", transitions=[twice])
    assert "transition 'go' (a -> b) effect 'sent'" in msg
    build(transitions=[Transition("go", "a", "b", effects=[Effect("sent"), Effect("other")])])


def test_invariant_arity_and_initial_snapshot() -> None:
    @invariant
    def never(state: str, ctx: Ctx) -> bool:
        """Never holds."""
        return False

    assert "does not hold on the initial snapshot" in one("invariant 'never'", invariants=[never])
    bad = invariant(lambda s: True)  # type: ignore[arg-type, misc]
    assert "takes (state, ctx)" in one("invariant '<lambda>'", invariants=[bad])


def test_context_must_be_frozen_attrs_with_defaults() -> None:
    @attrs.define
    class Mutable:
        n: int = 0

    @attrs.frozen
    class NoDefault:
        n: int

    assert "attrs.frozen" in one("Mutable: must be frozen", context=Mutable)
    assert "no arguments" in one("NoDefault: must be constructible", context=NoDefault)
    assert "must be an attrs class" in one("context", context=dict)


def test_every_problem_is_reported_at_once() -> None:
    ps = problems(
        initial="z",
        states=["a", "a", "b"],
        transitions=[Transition("go", "a", "q"), Transition("x", "b", "a")],
        context=dict,
    )
    assert len(ps) >= 5
    text = str(SpecError("s", []))
    assert "0 problem(s)" in text


def test_spec_error_message_lists_problems_one_per_line() -> None:
    with pytest.raises(SpecError) as info:
        build(initial="z", states=["a", "b", "b"])
    lines = str(info.value).splitlines()
    assert lines[0] == f"spec 's' has {len(info.value.problems)} problem(s):"
    assert all(line.startswith("  - ") for line in lines[1:])


def test_context_type_of_example_is_application() -> None:
    assert SPEC.start().context == Application()


# --- guards and updates that take the command ----------------------------------------------


@guard
def sent_by_ann(ctx: Ctx, p: object, command: Any) -> bool:
    """Ann sent it."""
    return command.actor is not None and command.actor.id == "ann"


def test_a_guard_or_update_taking_three_arguments_reads_the_command() -> None:
    def record(ctx: Ctx, p: object, command: Any) -> Ctx:
        return ctx

    assert sent_by_ann.reads_command and not ok.reads_command
    t = Transition("go", "a", "b", guards=[sent_by_ann], update=record)
    assert t.reads_command
    assert Transition("go", "a", "b", update=record).reads_command
    assert not Transition("go", "a", "b", guards=[ok], update=lambda c, p: c).reads_command
    build(transitions=[t])  # builds


def test_negating_a_guard_keeps_what_it_reads() -> None:
    from statekernel.kernel import Actor, Command

    neg = sent_by_ann.negated()
    assert neg.reads_command and neg.name == "not sent_by_ann"
    assert neg(Ctx(), None, Command("go", actor=Actor("bob"))) is True
    assert neg(Ctx(), None, Command("go", actor=Actor("ann"))) is False
    assert not ok.negated().reads_command and ok.negated()(Ctx(), None) is False


@pytest.mark.parametrize(
    ("transition", "culprit"),
    [
        (Transition("go", "a", "b", guards=[guard(lambda: True)]), "guard '<lambda>'"),
        (
            Transition("go", "a", "b", guards=[guard(lambda c, p, cmd, extra: True)]),
            "guard '<lambda>'",
        ),
        (Transition("go", "a", "b", update=lambda c, p, cmd, extra: c), "update"),
    ],
)
def test_a_wrong_arity_error_names_both_forms(transition: Transition, culprit: str) -> None:
    msg = one("or (ctx, payload, command)", transitions=[transition])
    assert msg.startswith(f"transition 'go' (a -> b) {culprit}")


# --- internal transitions --------------------------------------------------------------------


def test_an_internal_transition_from_several_states_and_a_final_one_builds() -> None:
    spec = build(
        transitions=[
            Transition("go", "a", "b"),
            Transition("ping", ["a", "b"], None, update=lambda c, p: Ctx(c.n + 1)),
        ]
    )
    [ping] = spec.candidates("b", "ping")
    assert ping.internal and ping.target is None
    assert (ping.target_from("a"), ping.target_from("b")) == ("a", "b")
    assert ping.label() == "transition 'ping' (a, b, internal)"
    assert spec.allowed_events("b") == ("ping",)


def test_a_final_state_admits_internal_transitions_never_a_way_out() -> None:
    msg = one(
        "leaves final state 'b'",
        transitions=[Transition("go", "a", "b"), Transition("go", "b", "b")],
    )
    assert "internal transition, target=None" in msg


def test_an_internal_transition_is_no_way_out_and_reaches_nothing() -> None:
    ps = problems(
        states=["a", "b", "c"],
        final=["c"],
        transitions=[
            Transition("go", "a", "b"),
            Transition("wait", "b", None),
            Transition("stop", "a", "c"),
        ],
    )
    assert any(p.startswith("state 'b'") and "dead end" in p for p in ps), ps
    ps = problems(
        states=["a", "b"],
        final=["b"],
        transitions=[Transition("wait", "a", None), Transition("go", "b", None)],
    )
    assert any(p.startswith("state 'b'") and "unreachable" in p for p in ps), ps


def test_an_internal_transition_from_an_unknown_state_is_named() -> None:
    msg = one(
        "unknown source state 'q'",
        transitions=[Transition("go", "a", "b"), Transition("x", "q", None)],
    )
    assert msg.startswith("transition 'x' (q, internal)")
