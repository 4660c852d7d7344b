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
checks 4-6; the first that passes fires. If none does, the rejection is that of the row that got
furthest: past its roles and its payload to a guard beats past its roles to the payload, which
beats stopping at the roles (on a tie, the first of those rows). When every row stopped at its
roles, the ``forbidden`` rejection lists the roles of every row.

Checks 1-3 are here. From check 4 on, ``decide`` calls the key's decider, which building the
spec made for the snapshot's state and the command's event (:mod:`.compile`): generated code
running exactly the checks of that key's rows (:mod:`.codegen`), or the plain loop
(:mod:`.reference`) when ``STATEKERNEL_DECIDE=reference`` was set as the spec was built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._model import Command, Decision, Rejected, Snapshot
from .rejections import not_a_state, not_allowed_here, unexpected, unknown_event, version_conflict

if TYPE_CHECKING:
    from .._spec import Spec
    from .compile import Decider

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
            by_event = spec._compiled.deciders.get(state)
            decider = by_event.get(event) if by_event is not None else None
        else:
            decider = None
        if decider is None or command.expected_version is not None:
            early = _precheck(spec, snapshot, command, decider, event)
            if early is not None:
                return early
            assert decider is not None
        return decider(snapshot, command, event, state)
    except Exception as exc:  # a last line of defence: decide never raises
        return unexpected(exc)


def _precheck(
    spec: Spec, snapshot: Snapshot, command: Command, decider: Decider | None, event: object
) -> Rejected | None:
    """The rare paths, kept out of the hot one: unknown event, stale version, no transition
    from this state."""
    compiled = spec._compiled
    if decider is None and (type(event) is not str or event not in compiled.events):
        return unknown_event(spec.name, event, compiled.events)
    expected = command.expected_version
    if expected is not None and (type(expected) is not int or expected != snapshot.version):
        return version_conflict(expected, snapshot.version)
    if decider is None:
        state = snapshot.state
        if state not in compiled.allowed and state not in spec.final:
            return not_a_state(spec.name, event, state, spec.states)
        return not_allowed_here(event, state, compiled.allowed.get(state, ()))
    return None
