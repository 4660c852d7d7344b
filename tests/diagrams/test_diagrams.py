"""The diagram generators as pure functions: what they draw, in which order, and highlighting."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statekernel.kernel import Spec, Trace, TraceStep
from statekernel.kernel.diagrams import (
    FORMATS,
    TraceMismatch,
    edges,
    highlight_trace,
    merged_edges,
    render,
)

from .diagram_specimens import AWKWARD, CONNECTION, ENROLLMENT, LINE, all_specs, walk_trace

SPECS = all_specs()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_edges_are_the_spec_table_sorted(name: str) -> None:
    spec = SPECS[name]
    drawn = edges(spec)
    keys = [(e.source, e.event, e.rank) for e in drawn]
    assert keys == sorted(keys)
    expected = {
        (
            s,
            t.event,
            t.target or s,
            tuple(g.name for g in t.guards),
            tuple(sorted(t.roles)),
            tuple(e.name for e in t.effects),
        )
        for t in spec.transitions
        for s in t.source
    }
    assert {(e.source, e.event, e.target, e.guards, e.roles, e.effects) for e in drawn} == expected
    assert len(drawn) == sum(len(t.source) for t in spec.transitions)
    for e in drawn:
        # the rank is the order decide tries rows sharing a source and an event
        assert spec.candidates(e.source, e.event)[e.rank] is spec.transitions[e.index]


def test_edge_label_names_event_guards_roles_and_effects() -> None:
    by_event = {(e.source, e.event, e.rank): e for e in edges(ENROLLMENT)}
    submit = by_event[("draft", "submit", 0)]
    assert submit.label() == "submit [many_documents]"
    approve = by_event[("submitted", "approve", 0)]
    assert approve.label() == "approve by admin or reviewer / notify"
    assert by_event[("draft", "attach", 0)].label() == "attach"
    abort = next(e for e in edges(CONNECTION) if e.event == "abort")
    assert abort.label() == "abort / rst, log"


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_annotates_edges_with_their_effects(fmt: str) -> None:
    text = render(CONNECTION, fmt)
    for label in ("connect / syn", "syn_ack / ack", "close / fin", "abort / rst, log"):
        assert label in text, label


@pytest.mark.parametrize("name", sorted(SPECS))
def test_merged_edges_hold_every_edge_once_and_each_label_once(name: str) -> None:
    spec = SPECS[name]
    merged = merged_edges(spec)
    assert sorted(e.key for m in merged for e in m.edges) == sorted(e.key for e in edges(spec))
    for m in merged:
        assert {(e.event, e.target, e.label()) for e in m.edges} == {(m.event, m.target, m.label)}
        assert m.sources == tuple(sorted(m.sources)) and len(set(m.sources)) == len(m.sources)
    # maximal: no two merged edges share an event, a target and a label
    assert len({(m.event, m.target, m.label) for m in merged}) == len(merged)


def test_rows_with_one_event_target_and_label_merge_into_one_edge() -> None:
    merged = {(m.target, m.label): m.sources for m in merged_edges(CONNECTION)}
    opened = ("close_wait", "established", "fin_wait", "last_ack", "listen", "syn_received")
    # one row with many sources
    assert merged[("closed", "abort / rst, log")] == (*opened, "syn_sent")
    # the same row written once per source (h11's and TCP's tables look like this)
    assert merged[("closed", "reset")] == (
        "close_wait",
        "established",
        "fin_wait",
        "syn_received",
        "syn_sent",
    )
    # another label (a guard), another target or another event: another edge
    assert merged[("closed", "reset [keep_alive_off]")] == ("last_ack",)
    assert merged[("closed", "close")] == ("listen", "syn_sent")
    assert merged[("fin_wait", "close / fin")] == ("established",)
    assert merged[("last_ack", "close / fin")] == ("close_wait",)
    for fmt in FORMATS:
        text = render(CONNECTION, fmt)
        assert text.count("abort / rst, log") == 1, fmt
        assert text.count("reset [keep_alive_off]") == 1, fmt


def test_a_highlighted_edge_is_drawn_apart_from_the_rest_of_its_merged_edge() -> None:
    trace = Trace(
        spec=CONNECTION.name,
        steps=[
            TraceStep(event="connect", state="syn_sent"),
            TraceStep(event="abort", state="closed"),
        ],
    )
    hl = highlight_trace(CONNECTION, trace)
    aborts = {
        m.label: m.sources for m in merged_edges(CONNECTION, highlight=hl) if m.event == "abort"
    }
    assert aborts["abort / rst, log (step 2)"] == ("syn_sent",)
    assert len(aborts["abort / rst, log"]) == 6
    for fmt in FORMATS:
        text = render(CONNECTION, fmt, highlight=hl)
        assert text.count("abort / rst, log (step 2)") == 1, fmt
        assert text.count("abort / rst, log") == 2, fmt


def test_an_internal_transition_is_a_loop_labelled_internal_in_every_format() -> None:
    by_event = {(e.source, e.event): e for e in edges(LINE)}
    for source in ("idle", "open"):
        ping = by_event[(source, "ping")]
        assert (ping.target, ping.internal, ping.label()) == (source, True, "ping (internal)")
    assert by_event[("open", "send")].label() == "send [room_left] (internal)"
    assert by_event[("closed", "close")].label() == "close by peer (internal)"
    assert not by_event[("open", "close")].internal
    assert "    closed --> closed : close by peer (internal)" in render(LINE, "mermaid")
    assert '"idle" -> "idle" [label="ping (internal)"]' in render(LINE, "dot")
    assert "open --> open : send [room_left] (internal)" in render(LINE, "plantuml")


def test_a_trace_through_an_internal_transition_highlights_its_loop() -> None:
    trace = Trace(
        spec=LINE.name,
        steps=[_step("ping", "idle"), _step("connect", "open"), _step("ping", "open")],
    )
    hl = highlight_trace(LINE, trace)
    assert hl.taken == {
        _key(LINE, "idle", "ping"): (1,),
        _key(LINE, "idle", "connect"): (2,),
        _key(LINE, "open", "ping"): (3,),
    }
    assert "ping (internal) (step 3)" in render(LINE, "mermaid", highlight=hl)


def _shuffled(spec: Spec, data: st.DataObject) -> Spec:
    """The same spec with its lists in another order (rows sharing an event keep theirs)."""
    events = sorted({t.event for t in spec.transitions})
    order = data.draw(st.permutations(events))
    rows = [t for e in order for t in spec.transitions if t.event == e]
    return attrs.evolve(
        spec,
        states=data.draw(st.permutations(spec.states)),
        final=data.draw(st.permutations(spec.final)),
        transitions=rows,
        invariants=data.draw(st.permutations(spec.invariants)),
    )


@settings(max_examples=25, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(SPECS)), fmt=st.sampled_from(FORMATS))
def test_output_does_not_depend_on_declaration_order(
    data: st.DataObject, name: str, fmt: str
) -> None:
    spec = SPECS[name]
    trace = walk_trace(spec)
    other = _shuffled(spec, data)
    assert render(other, fmt) == render(spec, fmt)
    assert render(other, fmt, highlight=highlight_trace(other, trace)) == render(
        spec, fmt, highlight=highlight_trace(spec, trace)
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_names_states_invariants_and_spec(fmt: str) -> None:
    for spec in SPECS.values():
        text = render(spec, fmt)
        for inv in spec.invariants:
            assert inv.name in text
        assert f"v{spec.version}" in text


def test_awkward_state_names_get_distinct_identifiers() -> None:
    text = render(AWKWARD, "mermaid")
    declared = [
        line.split(" as ")[1]
        for line in text.splitlines()
        if line.strip().startswith("state ") and " as " in line
    ]
    assert len(declared) == len(set(declared))
    assert "s0" not in declared  # a state is really called s0, so it keeps that name


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="mermaid, dot, plantuml"):
        render(ENROLLMENT, "svg")


# --- highlighting --------------------------------------------------------------------------


def _step(event: str, state: str, **kw: object) -> TraceStep:
    return TraceStep(event=event, payload=kw.pop("payload", None), state=state, **kw)  # type: ignore[arg-type]


def _key(spec: Spec, source: str, event: str, rank: int = 0) -> tuple[str, int]:
    return next(e.key for e in edges(spec) if (e.source, e.event, e.rank) == (source, event, rank))


def test_highlight_follows_each_entity_and_numbers_steps() -> None:
    trace = Trace(
        spec=ENROLLMENT.name,
        steps=[
            _step("attach", "draft", payload={"count": 1}),
            _step("attach", "draft", entity="e2", payload={"count": 9}),
            _step("submit", "submitted"),
            TraceStep(action="crash"),
            _step("submit", "fast track", entity="e2"),
            _step("approve", "submitted", code="forbidden"),
        ],
    )
    hl = highlight_trace(ENROLLMENT, trace)
    assert hl.states == {"draft", "submitted", "fast track"}
    assert hl.taken == {
        _key(ENROLLMENT, "draft", "attach"): (1, 2),
        _key(ENROLLMENT, "draft", "submit", 1): (3,),
        _key(ENROLLMENT, "draft", "submit", 0): (5,),
    }
    assert hl.failed == {}
    assert "attach (steps 1, 2)" in render(ENROLLMENT, "mermaid", highlight=hl)


def test_a_replayed_key_does_not_move_the_entity() -> None:
    trace = Trace(
        spec=ENROLLMENT.name,
        steps=[
            _step("attach", "draft", payload={"count": 1}, idempotency_key="k"),
            _step("attach", "draft", payload={"count": 1}, idempotency_key="k", action="retry"),
        ],
    )
    assert highlight_trace(ENROLLMENT, trace).taken == {_key(ENROLLMENT, "draft", "attach"): (1,)}


def test_a_violation_marks_every_row_it_may_have_tried() -> None:
    trace = Trace(
        spec=ENROLLMENT.name,
        steps=[_step("submit", "draft", code="invariant_violated")],
    )
    hl = highlight_trace(ENROLLMENT, trace)
    assert hl.failed == {
        _key(ENROLLMENT, "draft", "submit", 0): (1,),
        _key(ENROLLMENT, "draft", "submit", 1): (1,),
    }
    text = render(ENROLLMENT, "dot", highlight=hl)
    assert text.count("violation at step 1") == 2


def test_a_trace_of_another_spec_is_refused() -> None:
    with pytest.raises(TraceMismatch, match="not 'enrollment-sample'"):
        highlight_trace(ENROLLMENT, Trace(spec="other", steps=[]))


def test_a_step_the_spec_cannot_take_is_named() -> None:
    trace = Trace(spec=ENROLLMENT.name, steps=[_step("attach", "draft"), _step("archive", "x")])
    with pytest.raises(TraceMismatch, match=r"step 2: 'archive' was accepted from state 'draft'"):
        highlight_trace(ENROLLMENT, trace)
