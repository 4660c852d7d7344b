"""Every :class:`~statekernel.kernel.Rejected` a decision can return, built in one place.

``decide``'s prechecks, the generated deciders and the reference loop all call these, so a
rejection's code, message and details are written once. They are listed in the order
``decide`` checks (see :mod:`.decide`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._codec import UnsupportedType
from .._model import Actor, Rejected
from .._serial import plain

if TYPE_CHECKING:
    from .._spec import Effect, Guard, Invariant

__all__ = [
    "broken",
    "effect_built",
    "effect_not_plain",
    "effect_raised",
    "fault",
    "forbidden",
    "guard_raised",
    "guard_rejected",
    "guard_returned",
    "invalid_payload",
    "invariant_raised",
    "no_payload",
    "not_a_state",
    "not_allowed_here",
    "not_an_actor",
    "unexpected",
    "unknown_event",
    "update_raised",
    "update_returned",
    "version_conflict",
]


# --- before any transition is tried: decide's prechecks --------------------------------------


def unknown_event(spec_name: str, event: object, events: frozenset[str]) -> Rejected:
    return Rejected(
        "unknown_event",
        f"unknown event {event!r}; {spec_name!r} knows {', '.join(sorted(events))}",
        {"event": event if type(event) is str else repr(event)},
    )


def version_conflict(expected: object, actual: int) -> Rejected:
    return Rejected(
        "version_conflict",
        f"expected version {expected!r} but the entity is at version {actual}",
        {"expected": expected if type(expected) is int else plain(expected), "actual": actual},
    )


def not_a_state(spec_name: str, event: object, state: object, states: Sequence[str]) -> Rejected:
    return Rejected(
        "invalid_transition",
        f"the snapshot's state {state!r} is not a state of {spec_name!r} "
        f"(states: {', '.join(states)})",
        {"event": event, "state": state, "allowed": []},
    )


def not_allowed_here(event: object, state: object, allowed: Sequence[str]) -> Rejected:
    return Rejected(
        "invalid_transition",
        f"{event!r} is not allowed in state {state!r}; allowed here: "
        + (", ".join(allowed) if allowed else "nothing (final state)"),
        {"event": event, "state": state, "allowed": list(allowed)},
    )


# --- a row that gives way: the next row sharing the key is tried -----------------------------


def not_an_actor(actor: object, event: str) -> Rejected:
    return Rejected(
        "forbidden", f"actor must be an Actor, got {type(actor).__name__}", {"event": event}
    )


def forbidden(event: str, roles: frozenset[str], actor: Actor | None) -> Rejected:
    who = "no actor" if actor is None else f"actor {actor.id!r}"
    held = "none" if actor is None else (", ".join(sorted(actor.roles)) or "none")
    return Rejected(
        "forbidden",
        f"{event!r} needs one of the roles {', '.join(sorted(roles))}; {who} holds {held}",
        {"event": event, "roles": sorted(roles)},
    )


def no_payload(event: str, raw: object) -> Rejected:
    return Rejected(
        "invalid_payload",
        f"{event!r} takes no payload, got {type(raw).__name__}",
        {"event": event, "field": "", "reason": "this event takes no payload"},
    )


def invalid_payload(event: str, field: str, reason: str) -> Rejected:
    where = f"field {field!r}: " if field else ""
    return Rejected(
        "invalid_payload",
        f"invalid payload for {event!r}: {where}{reason}",
        {"event": event, "field": field, "reason": reason},
    )


def guard_rejected(g: Guard, event: str, state: object) -> Rejected:
    desc = f" ({g.description})" if g.description else ""
    return Rejected(
        "guard_rejected",
        f"guard {g.name!r} rejected {event!r} in state {state!r}{desc}",
        {"event": event, "guard": g.name, "description": g.description},
    )


# --- the spec is wrong: spec_fault and invariant_violated ------------------------------------


def fault(where: str, exc: BaseException | None, message: str) -> Rejected:
    details: dict[str, Any] = {"where": where}
    if exc is not None:
        details["exception"] = type(exc).__name__
    return Rejected("spec_fault", message, details, error=exc)


def guard_raised(g: Guard, exc: Exception) -> Rejected:
    return fault(f"guard {g.name}", exc, f"guard {g.name!r} raised {exc!r}")


def guard_returned(g: Guard, ok: object) -> Rejected:
    return fault(f"guard {g.name}", None, f"guard {g.name!r} returned {ok!r}, not a bool")


def update_raised(event: str, exc: Exception) -> Rejected:
    return fault("update", exc, f"the update of {event!r} raised {exc!r}")


def update_returned(event: str, new_ctx: object, context: type) -> Rejected:
    return fault(
        "update",
        None,
        f"the update of {event!r} returned {type(new_ctx).__name__}, not {context.__name__}",
    )


def invariant_raised(inv: Invariant, exc: Exception) -> Rejected:
    return fault(f"invariant {inv.name}", exc, f"invariant {inv.name!r} raised {exc!r}")


def broken(inv: Invariant, ok: object, event: str, state: object, target: str) -> Rejected:
    if ok is not False:
        return fault(f"invariant {inv.name}", None, f"invariant {inv.name!r} returned {ok!r}")
    return Rejected(
        "invariant_violated",
        f"{event!r} from {state!r} to {target!r} would break invariant {inv.name!r}"
        + (f" ({inv.description})" if inv.description else ""),
        {"event": event, "invariant": inv.name, "description": inv.description},
    )


def effect_raised(e: Effect, exc: Exception) -> Rejected:
    return fault(f"effect {e.name}", exc, f"effect {e.name!r} raised {exc!r}")


def effect_built(e: Effect, data: object) -> Rejected:
    return fault(f"effect {e.name}", None, f"effect {e.name!r} built {type(data).__name__}")


def effect_not_plain(e: Effect, exc: UnsupportedType) -> Rejected:
    return fault(f"effect {e.name}", exc, f"effect {e.name!r} built data that is not plain: {exc}")


def unexpected(exc: Exception) -> Rejected:
    """``decide``'s last line of defence: anything else that raised while deciding."""
    return Rejected(
        "spec_fault",
        f"unexpected error while deciding: {exc!r}",
        {"where": "decide", "exception": type(exc).__name__},
        error=exc,
    )
