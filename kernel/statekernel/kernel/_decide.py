"""``decide``: the pure, total, deterministic heart of the kernel.

The checks run in this order, and the first that fails names the rejection:

1. ``unknown_event``      the spec has no such event at all;
2. ``version_conflict``   ``expected_version`` is given and is not the snapshot's version;
3. ``invalid_transition`` the event exists but not from this state (the message lists the
                          events allowed here);
4. ``forbidden``          the transition declares roles and the actor holds none of them
                          (or there is no actor);
5. ``invalid_payload``    the payload does not fit the transition's payload type;
6. ``guard_rejected``     a guard returned ``False``;
7. ``invariant_violated`` the new snapshot would break an invariant;
8. ``spec_fault``         user code (guard, update, invariant, effect, payload class) raised or
                          returned the wrong type.

When several transitions share ``(state, event)``, each is tried in declaration order through
steps 4-6; the first that passes fires. If none does, the rejection is that of the row that got
furthest: past its roles and its payload to a guard beats past its roles to the payload, which
beats stopping at the roles (on a tie, the first of those rows). When every row stopped at its
roles, the ``forbidden`` rejection lists the roles of every row.

Steps 1-3 are here. From step 4 on, ``decide`` calls the function that building the spec
generated for the snapshot's state and the command's event (see :mod:`._steps`), which runs
exactly the checks of that key's transitions.
"""

from __future__ import annotations

from typing import Any

from ._model import Command, Decision, Rejected, Snapshot
from ._serial import plain
from ._spec import Spec

__all__ = ["decide"]


def decide(spec: Spec, snapshot: Snapshot, command: Command) -> Decision:
    """Decide ``command`` against ``snapshot``: an :class:`Accepted` carrying the new snapshot,
    its audit record and its effects, or a :class:`Rejected` with a stable code.

    Pure (no I/O, no clock, no randomness), deterministic and total: it never raises, whatever
    the command holds. Exceptions raised by the spec's own code come back as ``spec_fault``.
    """
    try:
        event = command.event
        if type(event) is not str and isinstance(event, str):
            event = str.__str__(event)  # a StrEnum member, say: its plain value
        state = snapshot.state
        if type(event) is str:
            by_event = spec._steps.get(state)
            step = by_event.get(event) if by_event is not None else None
        else:
            step = None
        expected = command.expected_version
        if step is None or expected is not None:
            early = _precheck(spec, snapshot, command, step, event)
            if early is not None:
                return early
            assert step is not None
        return step(snapshot, command, event, state)
    except Exception as exc:  # a last line of defence: decide never raises
        return Rejected(
            "spec_fault",
            f"unexpected error while deciding: {exc!r}",
            {"where": "decide", "exception": type(exc).__name__},
            error=exc,
        )


def _precheck(
    spec: Spec, snapshot: Snapshot, command: Command, step: Any, event: object
) -> Rejected | None:
    """The rare paths, kept out of the hot one: unknown event, stale version, no transition
    from this state."""
    state = snapshot.state
    if step is None and (type(event) is not str or event not in spec._events):
        return Rejected(
            "unknown_event",
            f"unknown event {event!r}; {spec.name!r} knows {', '.join(sorted(spec._events))}",
            {"event": event if type(event) is str else repr(event)},
        )
    expected = command.expected_version
    if expected is not None and (type(expected) is not int or expected != snapshot.version):
        return Rejected(
            "version_conflict",
            f"expected version {expected!r} but the entity is at version {snapshot.version}",
            {
                "expected": expected if type(expected) is int else plain(expected),
                "actual": snapshot.version,
            },
        )
    if step is None:
        if state not in spec._allowed and state not in spec.final:
            return Rejected(
                "invalid_transition",
                f"the snapshot's state {state!r} is not a state of {spec.name!r} "
                f"(states: {', '.join(spec.states)})",
                {"event": event, "state": state, "allowed": []},
            )
        allowed = spec._allowed.get(state, ())
        return Rejected(
            "invalid_transition",
            f"{event!r} is not allowed in state {state!r}; allowed here: "
            + (", ".join(allowed) if allowed else "nothing (final state)"),
            {"event": event, "state": state, "allowed": list(allowed)},
        )
    return None
