"""Every spec's diagrams, drawn by the real tools: Graphviz, PlantUML and Mermaid's parser.

Each test reads back what the tool understood (the SVG's nodes, edges and texts, or Mermaid's
parsed graph) and compares it with the spec, so a diagram that parses but says something else
fails too.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from statekernel.kernel import Spec
from statekernel.kernel.diagrams import (
    Highlight,
    edges,
    highlight_trace,
    merged_edges,
    to_dot,
    to_mermaid,
    to_plantuml,
)

from .diagram_specimens import all_specs, walk_trace
from .renderers import (
    SVG,
    mermaid_decode,
    parse_mermaid,
    plantuml_errors,
    render_dot,
    render_plantuml,
    svg_texts,
)

SPECS = all_specs()
CASES = [(name, lit) for name in SPECS for lit in (False, True)]
IDS = [f"{name}{'-highlighted' if lit else ''}" for name, lit in CASES]


def _highlight(spec: Spec, lit: bool) -> Highlight | None:
    return highlight_trace(spec, walk_trace(spec)) if lit else None


def _invariant_lines(spec: Spec) -> list[str]:
    return [f"{i.name}: {i.description}" if i.description else i.name for i in spec.invariants]


def _expected_edges(spec: Spec) -> Counter[tuple[str, str, str]]:
    return Counter((e.source, e.target, e.label()) for e in edges(spec))


def _through_junctions(
    arrows: list[tuple[str, str, str]], junctions: set[str]
) -> tuple[list[tuple[str, str, str]], int]:
    """The edges a reader sees in ``arrows`` (``(from, to, label)`` between states and
    ``junctions``): an arrow between two states is one edge; unlabelled arrows from several
    states into a junction and the one labelled arrow out of it are one edge per source.
    Also returns how many labels were drawn."""
    seen = [(s, d, lbl) for s, d, lbl in arrows if s not in junctions and d not in junctions]
    labels = len(seen)
    for j in sorted(junctions):
        ins = [(s, lbl) for s, d, lbl in arrows if d == j]
        outs = [(d, lbl) for s, d, lbl in arrows if s == j]
        assert len(outs) == 1, f"junction {j} has {len(outs)} ways out"
        assert len(ins) >= 2, f"junction {j} merges {len(ins)} edges"
        assert all(not lbl.strip() for _, lbl in ins), ins
        (target, label) = outs[0]
        seen += [(s, target, label) for s, _ in ins]
        labels += 1
    return seen, labels


def _strip_steps(label: str) -> str:
    """The label without the trace's ``(step 3)`` / ``(violation at step 4)`` note."""
    return re.sub(r" \((?:steps? [\d, ]+)?(?:; )?(?:violation at steps? [\d, ]+)?\)$", "", label)


def _check_highlighted_labels(spec: Spec, hl: Highlight | None, labels: list[str]) -> None:
    if hl is None:
        assert not any("step" in label and "(" in label for label in labels if label)
        return
    noted = sum(1 for label in labels if re.search(r"\((violation at )?steps? \d", label))
    assert noted == len(set(hl.taken) | set(hl.failed)) > 0


# --- Graphviz ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "lit"), CASES, ids=IDS)
def test_graphviz_draws_every_state_edge_and_invariant(name: str, lit: bool) -> None:
    spec = SPECS[name]
    hl = _highlight(spec, lit)
    svg = render_dot(to_dot(spec, highlight=hl))
    root = ET.fromstring(svg)
    nodes: list[str] = []
    drawn: list[tuple[str, str, str]] = []
    for g in root.iter(f"{SVG}g"):
        title = g.find(f"{SVG}title")
        if title is None or title.text is None:
            continue
        label = " ".join("".join(t.itertext()) for t in g.iter(f"{SVG}text"))
        if g.get("class") == "node":
            nodes.append(title.text)
        elif g.get("class") == "edge":
            src, _, dst = title.text.partition("->")
            drawn.append((src, dst, label))
    assert set(spec.states) <= set(nodes)
    merged = merged_edges(spec, highlight=hl)
    junctions = {n for n in nodes if n not in spec.states and n.startswith("[junction")}
    assert len(junctions) == sum(len(m.sources) > 1 for m in merged)
    markers = len(nodes) - len(spec.states) - len(junctions)
    assert markers == 1 + bool(spec.final) + bool(spec.invariants)

    inner = set(spec.states) | junctions
    arrows = [(s, d, lbl) for s, d, lbl in drawn if s in inner and d in inner]
    state_edges, labels = _through_junctions(arrows, junctions)
    assert Counter((s, d, _strip_steps(lbl)) for s, d, lbl in state_edges) == _expected_edges(spec)
    assert labels == len(merged)  # each merged edge's label is drawn once
    _check_highlighted_labels(spec, hl, [lbl for _, _, lbl in state_edges])
    entries = [d for s, d, _ in drawn if s not in inner]
    exits = sorted(s for s, d, _ in drawn if d not in inner)
    assert entries == [spec.initial]
    assert exits == sorted(spec.final)
    texts = svg_texts(svg)
    for line in _invariant_lines(spec):
        assert line in texts
    assert f"{spec.name} v{spec.version}" in texts


def test_graphviz_check_can_fail() -> None:
    spec = next(iter(SPECS.values()))
    broken = to_dot(spec).replace(" -> ", " -> -> ", 1)
    with pytest.raises(pytest.fail.Exception):
        render_dot(broken)


# --- PlantUML ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plantuml_svgs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], str]:
    """Every case drawn by one PlantUML run (a JVM start per diagram would be slow)."""
    texts = [to_plantuml(SPECS[n], highlight=_highlight(SPECS[n], lit)) for n, lit in CASES]
    svgs = render_plantuml(texts, tmp_path_factory.mktemp("plantuml"))
    return dict(zip(CASES, svgs, strict=True))


@pytest.mark.parametrize(("name", "lit"), CASES, ids=IDS)
def test_plantuml_draws_every_state_edge_and_invariant(
    name: str, lit: bool, plantuml_svgs: dict[tuple[str, bool], str]
) -> None:
    spec = SPECS[name]
    hl = _highlight(spec, lit)
    texts = Counter(svg_texts(plantuml_svgs[(name, lit)]))
    # each state once, each merged edge's label once, the invariants and the title
    expected = Counter(spec.states) + Counter(m.label for m in merged_edges(spec, highlight=hl))
    expected.update(_invariant_lines(spec))
    expected[f"{spec.name} v{spec.version}"] += 1
    if spec.invariants:
        expected["Invariants"] += 1
    assert texts == expected
    _check_highlighted_labels(spec, hl, list(texts.elements()))


def test_plantuml_check_can_fail(tmp_path: Path) -> None:
    spec = next(iter(SPECS.values()))
    assert not plantuml_errors(to_plantuml(spec), tmp_path)
    broken = to_plantuml(spec).replace(" --> ", " --> --> ", 1)
    assert plantuml_errors(broken, tmp_path)


# --- Mermaid -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mermaid_parsed() -> dict[tuple[str, bool], dict[str, Any]]:
    """Every case parsed by one Node.js run of Mermaid's parser."""
    texts = [to_mermaid(SPECS[n], highlight=_highlight(SPECS[n], lit)) for n, lit in CASES]
    return dict(zip(CASES, parse_mermaid(texts), strict=True))


@pytest.mark.parametrize(("name", "lit"), CASES, ids=IDS)
def test_mermaid_parser_reads_back_the_spec(
    name: str, lit: bool, mermaid_parsed: dict[tuple[str, bool], dict[str, Any]]
) -> None:
    spec = SPECS[name]
    hl = _highlight(spec, lit)
    result = mermaid_parsed[(name, lit)]
    assert result["ok"], result.get("error")
    assert result["type"] == "stateDiagram"
    states = {i: mermaid_decode(lbl) for i, lbl, shape, _ in result["nodes"] if shape == "rect"}
    assert sorted(states.values()) == sorted(spec.states)
    merged = merged_edges(spec, highlight=hl)
    shapes = Counter(shape for _, _, shape, _ in result["nodes"])
    assert shapes["stateStart"] == 1
    assert shapes["stateEnd"] == (1 if spec.final else 0)
    assert shapes["note"] == (1 if spec.invariants else 0)
    assert shapes["choice"] == sum(len(m.sources) > 1 for m in merged)
    kinds = {i: shape for i, _, shape, _ in result["nodes"]}
    junctions = {i for i, kind in kinds.items() if kind == "choice"}
    names = {**states, **{j: j for j in junctions}}

    arrows = []
    for src, dst, label in result["edges"]:
        if kinds.get(src) == "stateStart":
            assert states[dst] == spec.initial
        elif kinds.get(dst) == "stateEnd":
            assert states[src] in spec.final
        elif kinds.get(src) == "note":
            continue
        else:
            arrows.append((names[src], names[dst], mermaid_decode(label)))
    state_edges, labels = _through_junctions(arrows, junctions)
    assert Counter((s, d, _strip_steps(lbl)) for s, d, lbl in state_edges) == _expected_edges(spec)
    assert labels == len(merged)  # each merged edge's label is drawn once
    _check_highlighted_labels(spec, hl, [lbl for _, _, lbl in state_edges])

    notes = [mermaid_decode(lbl) for _, lbl, shape, _ in result["nodes"] if shape == "note"]
    for line in _invariant_lines(spec):
        assert any(line in " ".join(n.split()) for n in notes)
    if hl is not None:
        classes = {states[i]: css for i, _, shape, css in result["nodes"] if shape == "rect"}
        lit_states = {s for s, css in classes.items() if "visited" in css or "violation" in css}
        assert lit_states == set(hl.states) | {src for src, _ in hl.failed}


def test_mermaid_check_can_fail() -> None:
    spec = next(iter(SPECS.values()))
    good = to_mermaid(spec)
    results = parse_mermaid([good, good.replace(" --> ", " --> : ", 1)])
    assert results[0]["ok"]
    assert not results[1]["ok"]
