"""State diagrams drawn from the spec: Mermaid, Graphviz DOT and PlantUML.

Every function here is a pure function of a :class:`~statekernel.kernel.Spec` (and, for
highlighting, a :class:`~statekernel.kernel.Trace`): no I/O, and the same input always gives
the same text. The diagram is drawn from the spec's table, never from a second description of
it, so it cannot drift from what :func:`~statekernel.kernel.decide` does.

What every format shows:

- each state once, sorted by name; the initial state entered from a start marker, each final
  state leading to an end marker;
- one edge per transition row and source state (:func:`edges`), sorted by source, event and
  the order in which rows sharing a source and an event are tried; labelled
  ``event [guard, guard] by role or role / effect, effect`` (the parts that apply); an
  internal transition is a loop back to its source labelled ``(internal)``;
- edges with the same event, target and label from several sources drawn as one
  (:func:`merged_edges`): an unlabelled arrow from each source into a small junction, and one
  labelled arrow from there to the target, so a label shows once however many states share
  it (TCP's many ways back to ``CLOSED``). No format can start one arrow at several nodes, so
  the junction is a point in DOT and a ``<<choice>>`` diamond in Mermaid and PlantUML, which
  have no junction shape;
- the invariants, with their descriptions, in a note (Mermaid) or a legend (DOT, PlantUML);
- optionally a highlighted trace (:func:`highlight_trace`): the states it visits, the edges it
  takes labelled with their step numbers, and the edges a violating step tried.

Use :func:`render` with a format name, or the per-format functions::

    text = render(SPEC, "mermaid")
    text = to_dot(SPEC, highlight=highlight_trace(SPEC, Trace.load("cex.json")))
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Literal

import attrs

from ._spec import Invariant, Spec, Transition
from ._trace import VIOLATION_CODES, Trace, TraceMismatch, check_trace_spec

__all__ = [
    "FORMATS",
    "Edge",
    "Format",
    "Highlight",
    "MergedEdge",
    "TraceMismatch",
    "edges",
    "highlight_trace",
    "merged_edges",
    "render",
    "to_dot",
    "to_mermaid",
    "to_plantuml",
]

Format = Literal["mermaid", "dot", "plantuml"]
"""The name of a diagram format."""

FORMATS: Final[tuple[Format, ...]] = ("mermaid", "dot", "plantuml")
"""Every format :func:`render` knows, in the order the CLI lists them."""

_SENDING_ACTIONS: Final = frozenset({"send", "deliver", "duplicate", "retry"})

# Colours shared by every format: a trace's path in blue, a violating step in red.
_PATH_COLOUR: Final = "#1f77b4"
_PATH_FILL: Final = "#dbe9f6"
_FAIL_COLOUR: Final = "#d62728"
_FAIL_FILL: Final = "#fbdada"


@attrs.frozen
class Edge:
    """One arrow of a diagram: the transition ``spec.transitions[index]`` leaving ``source``.

    ``rank`` is its position among the rows sharing ``(source, event)``, in the order
    ``decide`` tries them (0 for the first). ``effects`` names the messages the transition
    emits to the outbox, in declaration order. An internal transition is drawn as a loop back
    to its source (``target`` is ``source``) labelled ``(internal)``.
    """

    source: str
    target: str
    event: str
    guards: tuple[str, ...]
    roles: tuple[str, ...]
    index: int
    rank: int
    effects: tuple[str, ...] = ()
    internal: bool = False

    @property
    def key(self) -> tuple[str, int]:
        """``(source, index)``: identifies the edge within its spec."""
        return (self.source, self.index)

    def label(self) -> str:
        """``event [guard, guard] by role or role / effect, effect`` (the parts that apply)."""
        text = self.event
        if self.guards:
            text += f" [{', '.join(self.guards)}]"
        if self.roles:
            text += f" by {' or '.join(self.roles)}"
        if self.internal:
            text += " (internal)"
        if self.effects:
            text += f" / {', '.join(self.effects)}"
        return text


def edges(spec: Spec) -> tuple[Edge, ...]:
    """Every edge of ``spec``'s diagram, sorted by source, event and rank."""
    out = []
    for source in spec.states:
        for event in spec.allowed_events(source):
            for rank, t in enumerate(spec.candidates(source, event)):
                out.append(
                    Edge(
                        source=source,
                        target=t.target_from(source),
                        event=event,
                        guards=tuple(g.name for g in t.guards),
                        roles=tuple(sorted(t.roles)),
                        index=_index(spec, t),
                        rank=rank,
                        effects=tuple(e.name for e in t.effects),
                        internal=t.internal,
                    )
                )
    return tuple(sorted(out, key=lambda e: (e.source, e.event, e.rank)))


@attrs.frozen
class MergedEdge:
    """Edges with the same event, target and label, drawn as one labelled edge from all their
    sources. ``edges`` are sorted by source; ``label`` is what the diagram writes, including
    a highlighted trace's step numbers."""

    edges: tuple[Edge, ...]
    label: str

    @property
    def sources(self) -> tuple[str, ...]:
        """The source states, sorted."""
        return tuple(e.source for e in self.edges)

    @property
    def target(self) -> str:
        """The state every edge leads to."""
        return self.edges[0].target

    @property
    def event(self) -> str:
        """The event of every edge."""
        return self.edges[0].event


def merged_edges(spec: Spec, *, highlight: Highlight | None = None) -> tuple[MergedEdge, ...]:
    """:func:`edges` with those sharing an event, a target and a label merged, in the order
    of their first edge. With a ``highlight``, the label includes the steps that took or
    tried the edge, so an edge the trace went through is drawn apart from the others."""
    groups: dict[tuple[str, str, str], list[Edge]] = {}
    for e in edges(spec):
        label = e.label() + _steps_note(e, highlight)
        groups.setdefault((e.event, e.target, label), []).append(e)
    return tuple(
        MergedEdge(tuple(sorted(members, key=lambda e: e.source)), label)
        for (_, _, label), members in groups.items()
    )


def _junction_ids(
    merged: Iterable[MergedEdge], taken: Iterable[str], name: Callable[[int], str]
) -> list[str]:
    """An identifier ``name(n)`` not in ``taken`` for the junction of each merged edge with
    several sources (``""`` for the others)."""
    used = set(taken)
    out = []
    n = 0
    for m in merged:
        if len(m.edges) < 2:
            out.append("")
            continue
        while name(n) in used:
            n += 1
        out.append(name(n))
        used.add(out[-1])
    return out


def _index(spec: Spec, transition: Transition) -> int:
    for i, t in enumerate(spec.transitions):
        if t is transition:
            return i
    raise AssertionError("a candidate that is not one of the spec's transitions")


@attrs.frozen
class Highlight:
    """What a trace shows on a diagram.

    ``states``: every state the trace's entities were in (the initial state included).
    ``taken``: for each edge key (see :attr:`Edge.key`), the numbers of the steps that took it.
    ``failed``: for each edge key, the numbers of the steps that tried it and hit a violation
    (``invariant_violated`` or ``spec_fault``); when several rows share the source and event,
    all of them are marked, since the trace does not say which one fired.
    """

    states: frozenset[str] = frozenset()
    taken: Mapping[tuple[str, int], tuple[int, ...]] = attrs.field(factory=dict)
    failed: Mapping[tuple[str, int], tuple[int, ...]] = attrs.field(factory=dict)
    property: str | None = None


def highlight_trace(spec: Spec, trace: Trace) -> Highlight:
    """Work out which states and edges of ``spec`` the ``trace`` went through.

    Each sending step moves its entity (every entity starts in the initial state) along the
    transition from its current state for its event to the state the step recorded; a step
    that repeats an idempotency key already accepted is a replay and moves nothing. Raises
    :class:`TraceMismatch` when the trace belongs to another spec or takes a transition that
    ``spec`` does not have.
    """
    check_trace_spec(spec, trace)
    where: dict[str, str] = {}
    states = {spec.initial}
    taken: dict[tuple[str, int], list[int]] = {}
    failed: dict[tuple[str, int], list[int]] = {}
    accepted_keys: set[str] = set()
    for n, step in enumerate(trace.steps, 1):
        if step.action not in _SENDING_ACTIONS:
            continue
        source = where.get(step.entity, spec.initial)
        event = step.event or ""
        candidates = spec.candidates(source, event)
        if step.code is None:
            key = step.idempotency_key
            if key is not None and key in accepted_keys:
                continue  # a replayed answer: the entity did not move
            target = step.state
            if target is None:
                targets = {c.target_from(source) for c in candidates}
                target = targets.pop() if len(targets) == 1 else None
            chosen = [c for c in candidates if c.target_from(source) == target]
            if target is None or not chosen:
                allowed = ", ".join(spec.allowed_events(source)) or "nothing"
                raise TraceMismatch(
                    f"{event!r} was accepted from state {source!r} to {step.state!r}, but the "
                    f"spec has no such transition (allowed from {source!r}: {allowed})",
                    n,
                )
            for c in chosen:
                taken.setdefault((source, _index(spec, c)), []).append(n)
            where[step.entity] = target
            states.add(target)
            if key is not None:
                accepted_keys.add(key)
        elif step.code in VIOLATION_CODES:
            if not candidates:
                raise TraceMismatch(
                    f"{event!r} hit {step.code} in state {source!r}, but the spec has no "
                    f"transition for it there",
                    n,
                )
            for c in candidates:
                failed.setdefault((source, _index(spec, c)), []).append(n)
    return Highlight(
        states=frozenset(states),
        taken={k: tuple(v) for k, v in taken.items()},
        failed={k: tuple(v) for k, v in failed.items()},
        property=trace.property,
    )


def _steps_note(edge: Edge, highlight: Highlight | None) -> str:
    if highlight is None:
        return ""
    parts = []
    taken = highlight.taken.get(edge.key)
    if taken:
        parts.append(("step " if len(taken) == 1 else "steps ") + ", ".join(map(str, taken)))
    failed = highlight.failed.get(edge.key)
    if failed:
        word = "step " if len(failed) == 1 else "steps "
        parts.append("violation at " + word + ", ".join(map(str, failed)))
    return f" ({'; '.join(parts)})" if parts else ""


# --- identifiers ---------------------------------------------------------------------------

_PLAIN_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
# Words with a meaning of their own in Mermaid's or PlantUML's state diagram syntax.
_RESERVED: Final = frozenset(
    {
        "as",
        "class",
        "classdef",
        "click",
        "direction",
        "end",
        "endlegend",
        "enduml",
        "endnote",
        "hide",
        "legend",
        "left",
        "note",
        "of",
        "over",
        "right",
        "show",
        "skinparam",
        "startuml",
        "state",
        "style",
        "title",
        "top",
        "bottom",
        "scale",
        "default",
        "linkstyle",
    }
)


def _state_ids(spec: Spec) -> dict[str, str]:
    """A safe identifier per state: the name itself when it is a plain word, else ``s<n>``."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    plain = [s for s in spec.states if _is_plain(s)]
    used.update(plain)
    for s in plain:
        ids[s] = s
    n = 0
    for s in sorted(spec.states):
        if s in ids:
            continue
        while f"s{n}" in used:
            n += 1
        ids[s] = f"s{n}"
        used.add(ids[s])
    return ids


def _is_plain(name: str) -> bool:
    return (
        bool(_PLAIN_ID.match(name))
        and name.lower() not in _RESERVED
        and not (keyword.iskeyword(name))
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- Mermaid -------------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    """Text safe inside a Mermaid label: entity codes for the characters its grammar uses."""
    out = []
    for ch in _one_line(text):
        if ch in '#;:"{}<>%':
            out.append(f"#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def to_mermaid(spec: Spec, *, highlight: Highlight | None = None) -> str:
    """The spec as a Mermaid ``stateDiagram-v2``."""
    ids = _state_ids(spec)
    lines = [
        "---",
        f"title: {_mermaid_text(f'{spec.name} v{spec.version}')}",
        "---",
        "stateDiagram-v2",
        f"    %% generated from spec {_one_line(spec.name)} v{spec.version}; do not edit",
    ]
    for s in sorted(spec.states):
        if ids[s] != s:
            lines.append(f'    state "{_mermaid_text(s)}" as {ids[s]}')
    lines.append(f"    [*] --> {ids[spec.initial]}")
    merged = merged_edges(spec, highlight=highlight)
    junctions = _junction_ids(merged, {i.lower() for i in ids.values()}, "junction{}".format)
    for m, junction in zip(merged, junctions, strict=True):
        label = _mermaid_text(m.label)
        if not junction:
            lines.append(f"    {ids[m.edges[0].source]} --> {ids[m.target]} : {label}")
            continue
        lines.append(f"    state {junction} <<choice>>")
        lines.extend(f"    {ids[source]} --> {junction}" for source in m.sources)
        lines.append(f"    {junction} --> {ids[m.target]} : {label}")
    for s in sorted(spec.final):
        lines.append(f"    {ids[s]} --> [*]")
    if spec.invariants:
        lines.append(f"    note left of {ids[spec.initial]}")
        lines.append("        Invariants")
        lines.extend(
            f"        {_mermaid_text(_invariant_line(inv))}" for inv in _sorted_invariants(spec)
        )
        lines.append("    end note")
    if highlight is not None:
        visited = sorted(ids[s] for s in highlight.states if s in ids)
        failed_sources = sorted({ids[src] for src, _ in highlight.failed})
        lines.append(
            f"    classDef visited fill:{_PATH_FILL},stroke:{_PATH_COLOUR},stroke-width:2px"
        )
        lines.append(
            f"    classDef violation fill:{_FAIL_FILL},stroke:{_FAIL_COLOUR},stroke-width:3px"
        )
        plain_visited = [v for v in visited if v not in failed_sources]
        if plain_visited:
            lines.append(f"    class {', '.join(plain_visited)} visited")
        if failed_sources:
            lines.append(f"    class {', '.join(failed_sources)} violation")
    return "\n".join(lines) + "\n"


def _sorted_invariants(spec: Spec) -> list[Invariant]:
    return sorted(spec.invariants, key=lambda inv: inv.name)


def _invariant_line(inv: Invariant) -> str:
    """``name: description``, as every format lists an invariant."""
    return f"{inv.name}: {inv.description}" if inv.description else inv.name


# --- Graphviz DOT --------------------------------------------------------------------------


def _dot_string(text: str) -> str:
    escaped = _one_line(text).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _dot_attrs(pairs: Iterable[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{k}={v}" for k, v in pairs) + "]"


def to_dot(spec: Spec, *, highlight: Highlight | None = None) -> str:
    """The spec as a Graphviz ``digraph`` (render it with ``dot -Tsvg``)."""
    # Every state's node id is its quoted name; the markers use names no state can collide
    # with, because they are not states' names.
    names = set(spec.states)
    start = _fresh("[*] start", names)
    end = _fresh("[*] end", names)
    legend = _fresh("[invariants]", names)
    title = f"{spec.name} v{spec.version}"
    lines = [
        f"// generated from spec {_one_line(spec.name)} v{spec.version}; do not edit",
        f"digraph {_dot_string(spec.name)} {{",
        f"    graph {_dot_attrs([('label', _dot_string(title)), ('labelloc', 't')])}",
        "    graph [rankdir=LR, fontname=Helvetica]",
        "    node [shape=box, style=rounded, fontname=Helvetica]",
        "    edge [fontname=Helvetica, fontsize=10]",
        f'    {_dot_string(start)} [shape=point, width=0.2, label=""]',
    ]
    if spec.final:
        lines.append(
            f"    {_dot_string(end)} [shape=doublecircle, style=filled, fillcolor=black, "
            f'width=0.12, label=""]'
        )
    failed_sources = {src for src, _ in highlight.failed} if highlight else set()
    for s in sorted(spec.states):
        attrs_: list[tuple[str, str]] = []
        if s in spec.final:
            attrs_.append(("peripheries", "2"))
        if highlight is not None and (s in highlight.states or s in failed_sources):
            colour, fill = (
                (_FAIL_COLOUR, _FAIL_FILL) if s in failed_sources else (_PATH_COLOUR, _PATH_FILL)
            )
            attrs_ += [
                ("style", '"rounded,filled"'),
                ("fillcolor", _dot_string(fill)),
                ("color", _dot_string(colour)),
                ("penwidth", "2"),
            ]
        suffix = f" {_dot_attrs(attrs_)}" if attrs_ else ""
        lines.append(f"    {_dot_string(s)}{suffix}")
    lines.append(f"    {_dot_string(start)} -> {_dot_string(spec.initial)}")
    merged = merged_edges(spec, highlight=highlight)
    junctions = _junction_ids(merged, names | {start, end, legend}, "[junction {}]".format)
    for m, junction in zip(merged, junctions, strict=True):
        # the look of every arrow of this edge, and of its label
        look: list[tuple[str, str]] = []
        if highlight is not None and m.edges[0].key in highlight.failed:
            look = [("color", _dot_string(_FAIL_COLOUR)), ("style", "dashed")]
        elif highlight is not None and m.edges[0].key in highlight.taken:
            look = [("color", _dot_string(_PATH_COLOUR))]
        if look:
            look.append(("penwidth", "2.5"))
        font = [("fontcolor", v) for k, v in look if k == "color"]
        labelled = _dot_attrs([("label", _dot_string(m.label)), *look, *font])
        target = _dot_string(m.target)
        if not junction:
            lines.append(f"    {_dot_string(m.edges[0].source)} -> {target} {labelled}")
            continue
        point = _dot_string(junction)
        lines.append(f'    {point} [shape=point, width=0.08, label=""]')
        into = _dot_attrs([("arrowhead", "none"), *look])
        lines.extend(f"    {_dot_string(source)} -> {point} {into}" for source in m.sources)
        lines.append(f"    {point} -> {target} {labelled}")
    for s in sorted(spec.final):
        lines.append(f"    {_dot_string(s)} -> {_dot_string(end)}")
    if spec.invariants:
        body = "Invariants\\l" + "".join(
            _dot_string(_invariant_line(inv))[1:-1] + "\\l" for inv in _sorted_invariants(spec)
        )
        lines.append(f'    {_dot_string(legend)} [shape=note, fontsize=10, label="{body}"]')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _fresh(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "'"
    return name


# --- PlantUML ------------------------------------------------------------------------------


def _plantuml_text(text: str) -> str:
    """Text safe inside a PlantUML label or quoted name."""
    out = []
    for ch in _one_line(text):
        if ch in '"\\<>{}:;#[]':
            out.append(f"<U+{ord(ch):04X}>")
        else:
            out.append(ch)
    return "".join(out)


def _plantuml_label(text: str) -> str:
    """An edge label: ``[`` and ``]`` read fine there and keep guards legible."""
    out = []
    for ch in _one_line(text):
        if ch in '"\\<>{};#':
            out.append(f"<U+{ord(ch):04X}>")
        else:
            out.append(ch)
    return "".join(out)


def to_plantuml(spec: Spec, *, highlight: Highlight | None = None) -> str:
    """The spec as a PlantUML state diagram (``@startuml`` ... ``@enduml``)."""
    ids = _state_ids(spec)
    lines = [
        "@startuml",
        f"' generated from spec {_one_line(spec.name)} v{spec.version}; do not edit",
        f"title {_plantuml_text(f'{spec.name} v{spec.version}')}",
        "hide empty description",
    ]
    failed_sources = {src for src, _ in highlight.failed} if highlight else set()
    for s in sorted(spec.states):
        colour = ""
        if highlight is not None and s in failed_sources:
            colour = f" {_FAIL_FILL}##[bold]{_FAIL_COLOUR[1:]}"
        elif highlight is not None and s in highlight.states:
            colour = f" {_PATH_FILL}##[bold]{_PATH_COLOUR[1:]}"
        lines.append(f'state "{_plantuml_text(s)}" as {ids[s]}{colour}')
    lines.append(f"[*] --> {ids[spec.initial]}")
    merged = merged_edges(spec, highlight=highlight)
    junctions = _junction_ids(merged, {i.lower() for i in ids.values()}, "junction{}".format)
    for m, junction in zip(merged, junctions, strict=True):
        arrow = "-->"
        if highlight is not None and m.edges[0].key in highlight.failed:
            arrow = f"-[{_FAIL_COLOUR},dashed,bold]->"
        elif highlight is not None and m.edges[0].key in highlight.taken:
            arrow = f"-[{_PATH_COLOUR},bold]->"
        label = _plantuml_label(m.label)
        if not junction:
            lines.append(f"{ids[m.edges[0].source]} {arrow} {ids[m.target]} : {label}")
            continue
        lines.append(f"state {junction} <<choice>>")
        lines.extend(f"{ids[source]} {arrow} {junction}" for source in m.sources)
        lines.append(f"{junction} {arrow} {ids[m.target]} : {label}")
    for s in sorted(spec.final):
        lines.append(f"{ids[s]} --> [*]")
    if spec.invariants:
        lines.append("legend right")
        lines.append("Invariants")
        lines.extend(_plantuml_text(_invariant_line(inv)) for inv in _sorted_invariants(spec))
        lines.append("endlegend")
    lines.append("@enduml")
    return "\n".join(lines) + "\n"


_RENDERERS: Final[Mapping[str, Callable[..., str]]] = {
    "mermaid": to_mermaid,
    "dot": to_dot,
    "plantuml": to_plantuml,
}


def render(spec: Spec, format: Format | str, *, highlight: Highlight | None = None) -> str:
    """The spec's diagram in ``format`` (one of :data:`FORMATS`)."""
    try:
        fn = _RENDERERS[format]
    except KeyError:
        raise ValueError(
            f"unknown diagram format {format!r}; choose one of {', '.join(FORMATS)}"
        ) from None
    return fn(spec, highlight=highlight)
