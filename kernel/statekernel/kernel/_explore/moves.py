"""What the explorer sends: the payloads of each event, the actors and times, and every
distinct move per state compiled for the hot loop.

The payloads of an event are its transitions' ``examples`` or, for a payload type with no
examples, :func:`sample_payloads`. Each move is one command with its probe, the function
generated from the spec's rows that decides the move's rows from a context (see the private
decision package).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

import attrs

from .._decision import Probe, Row
from .._decision.reference import admits, structure
from .._fuzz import BASE_TIME
from .._model import Actor, Command
from .._serial import plain
from .._spec import Spec
from .._trace import TraceStep
from .._types import sample_payloads
from .report import FROM_EXAMPLES, FROM_SAMPLES, NO_PAYLOAD

__all__ = [
    "ALL_ROLES",
    "ENTITY",
    "EXPLORE_TIMES",
    "GUEST",
    "Hot",
    "Move",
    "changed",
    "compile_moves",
    "payload_choices",
    "sample_payloads",
    "wire_payloads",
]

GUEST: Final = Actor("guest")
"""The actor holding no role that the explorer sends besides one actor per declared role."""

ALL_ROLES: Final = "all-roles"
"""The id of the actor holding every declared role, who also sends the events whose guards or
updates read the command: the one person who can break a four-eyes rule."""

EXPLORE_TIMES: Final = tuple(
    BASE_TIME + d
    for d in (
        timedelta(0),
        timedelta(minutes=1),
        timedelta(hours=1),
        timedelta(days=1),
        timedelta(days=30),
        timedelta(days=366),
    )
)
"""The times ``at`` of the commands the explorer sends for events whose guards or updates read
the command (other commands carry no time): the fuzzer's start, then a minute, an hour, a day,
a month and a year later, in no particular order along a trace, so that deadlines of those
sizes are met and missed."""

ENTITY: Final = "e1"
"""The entity id every explored trace acts on."""

# --- moves -------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class Move:
    """One command the explorer sends from some state: event, wire payload, actor and time."""

    event: str
    payload: Any
    actor: Actor
    at: datetime | None = None

    def command(self) -> Command:
        return Command(self.event, self.payload, actor=self.actor, at=self.at)

    def step(self, **fields: Any) -> TraceStep:
        return TraceStep(
            event=self.event, payload=self.payload, actor=self.actor, at=self.at, **fields
        )


# A move in hot-loop form: (move id, probe, structured payload, command). The probe decides
# the move's rows from a context (see Probe in the decision package).
Hot = tuple[int, Probe, Any, Command]


def _freeze(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return ("unhashable", repr(plain(value)))
    return (type(value), value)


def wire_payloads(rows: tuple[Row, ...]) -> list[Any]:
    ptype = rows[0].transition.payload
    if ptype is None:
        return [None]
    out: list[Any] = []
    seen: set[Any] = set()
    for r in rows:
        for ex in r.transition.examples:
            k = _freeze(plain(ex))
            if k not in seen:
                seen.add(k)
                out.append(ex)
    if not out:
        out = list(sample_payloads(ptype))
    return out


def payload_choices(spec: Spec) -> dict[str, tuple[str, int]]:
    """How the explorer chooses each event's payloads: ``(source, count)`` per event, in
    event order, as :attr:`ExploreReport.payloads` describes. An event whose rows choose
    differently in different states is listed once per state, as ``event (from state)``."""
    per_event: dict[str, dict[str, tuple[str, int]]] = {}
    for (state, event), rows in spec._compiled.rows.items():
        if rows[0].transition.payload is None:
            choice = (NO_PAYLOAD, 0)
        else:
            source = FROM_EXAMPLES if any(r.transition.examples for r in rows) else FROM_SAMPLES
            choice = (source, len(wire_payloads(rows)))
        per_event.setdefault(event, {})[state] = choice
    out: dict[str, tuple[str, int]] = {}
    for event in sorted(per_event):
        choices = per_event[event]
        if len(set(choices.values())) == 1:
            out[event] = next(iter(choices.values()))
        else:
            for state in sorted(choices):
                out[f"{event} (from {state})"] = choices[state]
    return out


def compile_moves(spec: Spec) -> tuple[list[Move], dict[str, list[Hot]]]:
    """Every distinct move per state, in hot-loop form.

    Moves that every row rejects statically (roles or payload) change nothing and are never
    violations, so they are left out; moves that behave identically (the same rows with equal
    payloads) are kept once.
    """
    moves: list[Move] = []
    by_state: dict[str, list[Hot]] = {}
    for state in spec.states:
        state_moves: list[Hot] = []
        seen: set[Any] = set()
        for event, raw, fitting, payload, senders in _sends(spec, state):
            frozen = _freeze(payload)
            for actor, times in senders:
                rows = _passing(fitting, actor)
                if not rows:
                    continue
                reading = any(r.reads_command for r in rows)
                for at in times:
                    # what the rows read decides which moves behave alike
                    who = (actor.id, actor.roles, at) if reading else None
                    signature = (event, tuple(r.index for r in rows), frozen, who)
                    if signature in seen:
                        continue
                    seen.add(signature)
                    moves.append(Move(event, raw, actor, at))
                    probe = spec._compiled.probe(state, event, rows)
                    state_moves.append((len(moves) - 1, probe, payload, moves[-1].command()))
        by_state[state] = state_moves
    return moves, by_state


_Senders = list[tuple[Actor, tuple[datetime | None, ...]]]


def _sends(spec: Spec, state: str) -> list[tuple[str, Any, tuple[Row, ...], Any, _Senders]]:
    """What the explorer sends from ``state``: per event and payload of
    :func:`wire_payloads`, the rows of the event that the payload fits (by the reference
    loop's rule, :func:`structure`; the rows share their payload type), the payload
    structured, and who sends it when: the guest and one actor per role of the event's rows,
    with no time; for an event whose rows read the command, the guest, one actor per declared
    role and the actor holding every role, each at every time of :data:`EXPLORE_TIMES`."""
    roles = sorted({r for t in spec.transitions for r in t.roles})
    role_actors = {r: Actor(r, roles=[r]) for r in roles}
    everyone = [GUEST, *role_actors.values(), Actor(ALL_ROLES, roles=roles)]
    out = []
    for event in spec.allowed_events(state):
        rows = spec._compiled.rows[(state, event)]
        if any(r.reads_command for r in rows):
            senders: _Senders = [(actor, EXPLORE_TIMES) for actor in everyone]
        else:
            event_roles = sorted({role for r in rows for role in r.roles})
            senders = [(a, (None,)) for a in [GUEST, *(role_actors[r] for r in event_roles)]]
        for raw in wire_payloads(rows):
            fitting = []
            payload = None
            for row in rows:
                structured, rejection = structure(row, event, raw)
                if rejection is None:
                    fitting.append(row)
                    payload = structured
            out.append((event, raw, tuple(fitting), payload, senders))
    return out


def _passing(rows: tuple[Row, ...], actor: Actor) -> tuple[Row, ...]:
    """The ``rows`` whose roles let ``actor`` fire them (the reference loop's rule)."""
    return tuple(r for r in rows if admits(r, actor))


def changed(old: Any, new: Any) -> dict[str, Any]:
    if old is new:
        return {}
    if attrs.has(type(old)) and type(old) is type(new):
        out = {}
        for a in attrs.fields(type(old)):
            v = getattr(new, a.name)
            if getattr(old, a.name) != v:
                out[a.name] = plain(v)
        return out
    return {} if old == new else {"context": plain(new)}
