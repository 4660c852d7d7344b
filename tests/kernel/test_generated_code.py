"""The code generated for a spec can be debugged: each function has its own file name in
``linecache`` (so a traceback shows the line, and ``inspect.getsource`` works), a qualified
name saying what it decides, and ``STATEKERNEL_DECIDE=reference`` swaps it for the plain loop.
"""

from __future__ import annotations

import inspect
import linecache
import traceback
from typing import Any

import attrs
import pytest

from statekernel.kernel import Actor, Command, Rejected, Spec, Transition, decide, guard
from statekernel.kernel._decision import SWITCH, reference


@pytest.fixture(autouse=True)
def _generated(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about generated code: build their specs without the switch."""
    monkeypatch.delenv(SWITCH, raising=False)


@attrs.frozen
class Ctx:
    n: int = 0


@attrs.frozen
class Amount:
    n: int


@guard
def not_thirteen(ctx: Ctx, p: Amount) -> bool:
    """The amount is not thirteen (which raises)."""
    if p.n == 13:
        raise ZeroDivisionError("thirteen")
    return True


def _spec(name: str = "counter", *, roles: tuple[str, ...] = ()) -> Spec:
    return Spec(
        name=name,
        version=1,
        context=Ctx,
        initial="open",
        states=["open", "closed"],
        final=["closed"],
        transitions=[
            Transition(
                "add",
                "open",
                "open",
                payload=Amount,
                guards=[not_thirteen],
                roles=roles,
                update=lambda c, p: Ctx(c.n + p.n),
            ),
            Transition("close", "open", "closed"),
        ],
    )


def _fault(spec: Spec) -> Rejected:
    d = decide(spec, spec.start(), Command("add", {"n": 13}, actor=Actor("ann", roles=["x"])))
    assert isinstance(d, Rejected) and d.code == "spec_fault"
    assert isinstance(d.error, ZeroDivisionError)
    return d


def test_a_traceback_through_a_decider_names_its_key_and_shows_the_line() -> None:
    spec = _spec()
    text = "".join(traceback.format_exception(_fault(spec).error))
    assert 'File "<statekernel counter:open/add>", line ' in text
    assert "in decider" in text
    assert "ok = guard_0_0(ctx, payload)" in text  # the generated line that called the guard


def test_a_decider_has_a_qualified_name_a_docstring_and_its_source() -> None:
    spec = _spec()
    decider = spec._compiled.deciders["open"]["add"]
    assert decider.__name__ == "decider"
    assert decider.__qualname__ == decider.__code__.co_qualname == "decider[counter:open/add]"
    assert decider.__doc__ and "counter:open/add" in decider.__doc__
    source = inspect.getsource(decider)
    assert source.startswith("def decider(snapshot, command, event, state):")
    assert "structure_0(raw)" in source and "update_0(ctx, payload)" in source
    assert linecache.getlines(decider.__code__.co_filename) == source.splitlines(True)


def test_keys_sharing_their_rows_share_a_decider_named_after_all_of_them() -> None:
    spec = Spec(
        name="shared",
        version=1,
        context=Ctx,
        initial="a",
        states=["a", "b", "c"],
        final=["c"],
        transitions=[Transition("go", "a", "b"), Transition("end", ["a", "b"], "c")],
    )
    deciders = spec._compiled.deciders
    assert deciders["a"]["end"] is deciders["b"]["end"]
    assert deciders["a"]["end"].__code__.co_filename == "<statekernel shared:a,b/end>"


def test_two_specs_with_one_name_keep_their_own_source() -> None:
    """The same file name with another source gets a numbered one, as attrs does it; the same
    source shares the entry."""
    plain, guarded = _spec("twice"), _spec("twice", roles=("x",))
    first = plain._compiled.deciders["open"]["add"]
    second = guarded._compiled.deciders["open"]["add"]
    again = _spec("twice")._compiled.deciders["open"]["add"]
    assert first.__code__.co_filename != second.__code__.co_filename
    assert again.__code__.co_filename == first.__code__.co_filename
    assert "roles_0" not in inspect.getsource(first)
    assert "roles_0.isdisjoint(actor.roles)" in inspect.getsource(second)


def test_the_explorers_probe_is_named_and_shows_its_line() -> None:
    spec = _spec()
    rows = spec._compiled.rows[("open", "add")]
    probe = spec._compiled.probe("open", "add", rows)
    assert probe is spec._compiled.probe("open", "add", rows)  # made once
    assert probe.__qualname__ == "probe[counter:open/add probe of 0]"
    assert inspect.getsource(probe).startswith("def probe(ctx, payload, command, node, move,")
    seen: list[Any] = [None, None]
    with pytest.raises(ZeroDivisionError) as info:
        probe(Ctx(), Amount(13), Command("add"), 0, 0, seen, list(seen), [-1, -1])
    text = "".join(traceback.format_exception(info.value))
    assert 'File "<statekernel counter:open/add probe of 0>"' in text
    assert "ok = guard_0_0(ctx, payload)" in text
    assert probe(Ctx(), Amount(2), Command("add"), 0, 0, seen, [None, None], [-1, -1]) == (
        "open",
        Ctx(2),
    )


def test_the_switch_makes_a_spec_decide_through_the_plain_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generated = _spec()
    monkeypatch.setenv(SWITCH, "reference")
    plain = _spec()
    assert plain._compiled.reference
    decider = plain._compiled.deciders["open"]["add"]
    assert decider.__module__ == reference.__name__
    text = "".join(traceback.format_exception(_fault(plain).error))
    assert "<statekernel" not in text and reference.__file__ in text
    for command in (Command("add", {"n": 2}), Command("add", {"n": "x"}), Command("close")):
        assert decide(plain, plain.start(), command) == decide(
            generated, generated.start(), command
        )
    monkeypatch.setenv(SWITCH, "generated")
    assert not _spec()._compiled.reference


def test_a_bad_switch_value_says_which_values_it_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH, "plain")
    with pytest.raises(ValueError, match="STATEKERNEL_DECIDE must be 'reference', 'generated'"):
        _spec()
