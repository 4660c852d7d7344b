"""Specs to draw: the reference specs in ``statekernel.specs`` plus specimens that exercise
what the reference specs might not (odd state names, guards sharing a source and an event,
several sources, roles, payloads, effects and invariants, many edges into one state, and
internal transitions)."""

from __future__ import annotations

import importlib
import pkgutil

import attrs

import statekernel.specs
from statekernel.kernel import (
    Actor,
    Command,
    Effect,
    Spec,
    Trace,
    TraceStep,
    Transition,
    decide,
    guard,
    invariant,
)


def reference_specs() -> dict[str, Spec]:
    """Every ``SPEC`` in a ``statekernel.specs`` module, by module name."""
    found: dict[str, Spec] = {}
    for info in sorted(pkgutil.iter_modules(statekernel.specs.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"statekernel.specs.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, Spec):
            found[f"statekernel.specs.{info.name}"] = spec
    return found


@attrs.frozen
class Application:
    documents: int = 0
    approved_by: str | None = None


@attrs.frozen
class Attach:
    count: int


@attrs.frozen
class Approve:
    reviewer: str


@guard
def has_documents(ctx: Application, payload: object) -> bool:
    """At least one document is attached."""
    return ctx.documents > 0


@guard
def many_documents(ctx: Application, payload: object) -> bool:
    """More than three documents are attached."""
    return ctx.documents > 3


@invariant
def approved_names_reviewer(state: str, ctx: Application) -> bool:
    """An approved application names who approved it."""
    return state != "approved" or ctx.approved_by is not None


@invariant
def documents_not_negative(state: str, ctx: Application) -> bool:
    """The document count is never negative."""
    return ctx.documents >= 0


ENROLLMENT = Spec(
    name="enrollment-sample",
    version=3,
    context=Application,
    initial="draft",
    states=["draft", "submitted", "fast track", "approved", "rejected", "archived"],
    final=["archived"],
    description="A sample enrollment workflow: attach documents, submit, review, archive.",
    transitions=[
        Transition(
            "attach",
            "draft",
            "draft",
            payload=Attach,
            update=lambda ctx, p: attrs.evolve(ctx, documents=ctx.documents + p.count),
            examples=[{"count": 1}, {"count": 3}],
        ),
        Transition("submit", "draft", "fast track", guards=[many_documents]),
        Transition("submit", "draft", "submitted", guards=[has_documents]),
        Transition(
            "approve",
            ["submitted", "fast track"],
            "approved",
            payload=Approve,
            roles=["reviewer", "admin"],
            update=lambda ctx, p: attrs.evolve(ctx, approved_by=p.reviewer),
            effects=[Effect("notify")],
            examples=[{"reviewer": "ann"}],
        ),
        Transition("reject", ["submitted", "fast track"], "rejected", roles="reviewer"),
        Transition("archive", ["approved", "rejected"], "archived"),
    ],
    invariants=[approved_names_reviewer, documents_not_negative],
)


@attrs.frozen
class Nothing:
    pass


@guard
def always(ctx: Nothing, payload: object) -> bool:
    """Holds; its "description" has quotes, a | pipe, a #hash; a semicolon: and <brackets>."""
    return True


@invariant
def trivially_true(state: str, ctx: Nothing) -> bool:
    """Always true {braces} and "quotes" \\ and a | pipe."""
    return True


AWKWARD = Spec(
    name='awkward "names"',
    version=1,
    context=Nothing,
    initial="end",
    states=["end", "state", "with space", "dash-ed", 'quote"d', "note", "s0", "[*]", "x:y;z"],
    final=["[*]"],
    transitions=[
        Transition("go on", "end", "state", guards=[always]),
        Transition("class", "state", "with space"),
        Transition("end", "with space", "dash-ed"),
        Transition("#;:", "dash-ed", 'quote"d', guards=[always.negated()]),
        Transition("#;:", "dash-ed", "note"),
        Transition("x", ['quote"d', "note"], "s0"),
        Transition("y", "s0", "x:y;z"),
        Transition(
            "done", "x:y;z", "[*]", roles=["a b", "c|d"], effects=[Effect('said "bye"; #1 <ok>')]
        ),
    ],
    invariants=[trivially_true],
)


@guard
def keep_alive_off(ctx: Nothing, payload: object) -> bool:
    """The connection does not use keep-alive probes."""
    return True


# A TCP-like connection: many states fall back to "closed" on the same events, the way h11's
# and TCP's tables do, which is what merged edges are for.
_OPEN = ["listen", "syn_sent", "syn_received", "established", "fin_wait", "close_wait", "last_ack"]

CONNECTION = Spec(
    name="connection",
    version=1,
    context=Nothing,
    initial="closed",
    states=["closed", *_OPEN, "time_wait", "discarded"],
    final=["discarded"],
    transitions=[
        Transition("listen", "closed", "listen"),
        Transition("connect", "closed", "syn_sent", effects=[Effect("syn")]),
        Transition("syn", "listen", "syn_received", effects=[Effect("syn_ack")]),
        Transition("syn_ack", "syn_sent", "established", effects=[Effect("ack")]),
        Transition("ack", "syn_received", "established"),
        Transition("close", "established", "fin_wait", effects=[Effect("fin")]),
        Transition("close", ["listen", "syn_sent"], "closed"),
        Transition("fin", "established", "close_wait", effects=[Effect("ack")]),
        Transition("close", "close_wait", "last_ack", effects=[Effect("fin")]),
        Transition("fin", "fin_wait", "time_wait", effects=[Effect("ack")]),
        Transition("ack", "last_ack", "closed"),
        Transition("timeout", "time_wait", "closed"),
        # one row with many sources, and the same row written out once per source
        Transition("abort", _OPEN, "closed", effects=[Effect("rst"), Effect("log")]),
        *(Transition("reset", s, "closed") for s in _OPEN[1:6]),
        Transition("reset", "last_ack", "closed", guards=[keep_alive_off]),
        Transition("discard", "closed", "discarded"),
    ],
)


@attrs.frozen
class Line:
    sent: int = 0


@guard
def room_left(ctx: Line, payload: object) -> bool:
    """Fewer than three messages were sent."""
    return ctx.sent < 3


LINE = Spec(
    name="line",
    version=1,
    context=Line,
    initial="idle",
    states=["idle", "open", "closed"],
    final=["closed"],
    transitions=[
        Transition("connect", "idle", "open"),
        Transition("ping", ["idle", "open"], None),
        Transition("send", "open", None, guards=[room_left],
                   update=lambda ctx, p: attrs.evolve(ctx, sent=ctx.sent + 1)),
        Transition("close", "open", "closed"),
        Transition("close", "closed", None, roles=["peer"]),
    ],
)  # fmt: skip
"""Internal transitions: from two states (``ping``), guarded with an update (``send``), and in
the final state (a repeated ``close``)."""

SPECIMENS: dict[str, Spec] = {
    "enrollment-sample": ENROLLMENT,
    "awkward": AWKWARD,
    "connection": CONNECTION,
    "line": LINE,
}


def all_specs() -> dict[str, Spec]:
    """The reference specs and the specimens, by a readable id."""
    return {**reference_specs(), **SPECIMENS}


def walk_trace(spec: Spec, *, max_steps: int = 12) -> Trace:
    """A trace of one entity walking ``spec`` from its initial state, preferring states it has
    not seen, with an actor holding every role and the transitions' payload examples. Its
    last step is marked as a violation (``invariant_violated``) of a transition out of the
    state it ends in, when there is one, so that drawings show a failed edge too."""
    roles = sorted({r for t in spec.transitions for r in t.roles})
    actor = Actor("walker", roles=roles) if roles else None
    snap = spec.start()
    seen = {snap.state}
    steps: list[TraceStep] = []
    for _ in range(max_steps):
        options = []
        for event in spec.allowed_events(snap.state):
            payloads = {repr(p): p for c in spec.candidates(snap.state, event) for p in c.examples}
            for payload in list(payloads.values()) or [None]:
                d = decide(spec, snap, Command(event, payload, actor=actor))
                if d.accepted:
                    options.append((d.snapshot.state in seen, event, payload, d.snapshot))
        if not options:
            break
        options.sort(key=lambda o: o[0])  # unseen states first, then declaration order
        _, event, payload, snap = options[0]
        seen.add(snap.state)
        steps.append(TraceStep(event=event, payload=payload, state=snap.state, actor=actor))
    if spec.allowed_events(snap.state):
        event = spec.allowed_events(snap.state)[0]
        steps.append(
            TraceStep(event=event, state=snap.state, actor=actor, code="invariant_violated")
        )
    return Trace(spec=spec.name, steps=steps, spec_version=spec.version, property="walk")
