"""The straightforward ``decide``: one general loop over the candidate transitions.

This is an independent, slow model of the kernel's ``decide``, which generates a specialised
function per ``(state, event)`` (see ``statekernel.kernel._steps``). It reads the public spec
(``spec.candidates``, the transitions' own guards, update, payload type, effects), works out
for itself whether a guard or an update takes the command (it can be called with three
arguments) and where an internal transition leads (its source), and walks each candidate's
roles, payload, guards, update, invariants and effects in turn. The differential tests check
that the generated code decides every command exactly as this does.

The checks run in this order, and the first that fails names the rejection:

1. ``unknown_event``, 2. ``version_conflict``, 3. ``invalid_transition``, 4. ``forbidden``,
5. ``invalid_payload``, 6. ``guard_rejected``, 7. ``invariant_violated``, 8. ``spec_fault``.

When several transitions share ``(state, event)``, each is tried in declaration order through
steps 4-6 and the first that passes fires. Each one that does not pass records how far it got
(0: stopped at its roles, 1: at its payload, 2: at a guard) and its rejection; if none passes,
the answer is the rejection of the first row that got furthest, except that when every row
stopped at its roles the answer is ``forbidden`` listing the roles of every row.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from statekernel.kernel._codec import PayloadError, UnsupportedType, structurer_for, unstructure
from statekernel.kernel._model import (
    Actor,
    Command,
    Decision,
    Message,
    Rejected,
    Snapshot,
    make_accepted,
)
from statekernel.kernel._serial import plain
from statekernel.kernel._spec import Effect, Spec, Transition

__all__ = ["decide_reference"]


def _with_command(fn: Callable[..., Any]) -> bool:
    try:
        inspect.signature(fn).bind(1, 2, 3)
    except (TypeError, ValueError):
        return False
    return True


def _call(fn: Callable[..., Any], ctx: Any, payload: Any, command: Command) -> Any:
    return fn(ctx, payload, command) if _with_command(fn) else fn(ctx, payload)


def decide_reference(spec: Spec, snapshot: Snapshot, command: Command) -> Decision:
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
        candidates = spec.candidates(state, event) if type(event) is str else ()
        expected = command.expected_version
        if not candidates or expected is not None:
            early = _precheck(spec, snapshot, command, candidates or None, event)
            if early is not None:
                return early
        actor = command.actor
        if actor is not None and type(actor) is not Actor and not isinstance(actor, Actor):
            return Rejected(
                "forbidden", f"actor must be an Actor, got {type(actor).__name__}", {"event": event}
            )
        stopped: list[tuple[int, Rejected | None]] = []
        for t in candidates:
            outcome = _try(spec, t, snapshot, command, event, state)
            if not isinstance(outcome, tuple):
                return outcome  # fired, or a fault / broken invariant: the decision
            stopped.append(outcome)
        furthest = max(level for level, _ in stopped)
        if furthest == 0:
            roles = frozenset(r for t in candidates for r in t.roles)
            return _forbidden(event, roles, actor)
        for level, rejection in stopped:
            if level == furthest:
                assert rejection is not None
                return rejection
        raise AssertionError("unreachable")
    except Exception as exc:  # a last line of defence: decide never raises
        return Rejected(
            "spec_fault",
            f"unexpected error while deciding: {exc!r}",
            {"where": "decide", "exception": type(exc).__name__},
            error=exc,
        )


def _try(
    spec: Spec, t: Transition, snapshot: Snapshot, command: Command, event: str, state: str
) -> Decision | tuple[int, Rejected | None]:
    """One row: the decision when it fires or faults, else ``(how far it got, rejection)``."""
    actor = command.actor
    roles = frozenset(t.roles)
    if roles and (actor is None or roles.isdisjoint(actor.roles)):
        return (0, None)
    raw = command.payload
    if t.payload is None:
        if raw is None or (isinstance(raw, Mapping) and not raw):
            payload = None
        else:
            return (
                1,
                Rejected(
                    "invalid_payload",
                    f"{event!r} takes no payload, got {type(raw).__name__}",
                    {"event": event, "field": "", "reason": "this event takes no payload"},
                ),
            )
    else:
        try:
            payload = structurer_for(t.payload)(raw)
        except PayloadError as exc:
            return (1, _invalid_payload(event, exc.field, exc.reason))
        except Exception as exc:  # the payload class's own validators said no
            return (1, _invalid_payload(event, "", str(exc)))
    ctx = snapshot.context
    for g in t.guards:
        try:
            ok = _call(g.fn, ctx, payload, command)
        except Exception as exc:
            return _fault(f"guard {g.name}", exc, f"guard {g.name!r} raised {exc!r}")
        if ok is not True:
            if ok is not False:
                return _fault(
                    f"guard {g.name}", None, f"guard {g.name!r} returned {ok!r}, not a bool"
                )
            desc = f" ({g.description})" if g.description else ""
            return (
                2,
                Rejected(
                    "guard_rejected",
                    f"guard {g.name!r} rejected {event!r} in state {state!r}{desc}",
                    {"event": event, "guard": g.name, "description": g.description},
                ),
            )
    # The transition fires: update, invariants, effects, the new snapshot.
    if t.update is not None:
        try:
            new_ctx = _call(t.update, ctx, payload, command)
        except Exception as exc:
            return _fault("update", exc, f"the update of {event!r} raised {exc!r}")
        if type(new_ctx) is not spec.context and not isinstance(new_ctx, spec.context):
            return _fault(
                "update",
                None,
                f"the update of {event!r} returned {type(new_ctx).__name__}, "
                f"not {spec.context.__name__}",
            )
    else:
        new_ctx = ctx
    target = state if t.target is None else t.target
    for inv in spec.invariants:
        try:
            ok = inv.fn(target, new_ctx)
        except Exception as exc:
            return _fault(f"invariant {inv.name}", exc, f"invariant {inv.name!r} raised {exc!r}")
        if ok is not True:
            return _broken(inv, ok, event, state, target)
    effects = _build_effects(t.effects, new_ctx, payload) if t.effects else ()
    if isinstance(effects, Rejected):
        return effects
    return make_accepted(  # type: ignore[no-any-return]
        target,
        new_ctx,
        snapshot.version + 1,
        event,
        payload,
        actor,
        state,
        command.at,
        effects,
    )


def _precheck(
    spec: Spec, snapshot: Snapshot, command: Command, candidates: object, event: object
) -> Rejected | None:
    """The rare paths, kept out of the hot one: unknown event, stale version, no transition
    from this state."""
    state = snapshot.state
    if candidates is None and (type(event) is not str or event not in spec._events):
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
    if candidates is None:
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


def _forbidden(event: str, roles: frozenset[str], actor: Actor | None) -> Rejected:
    who = "no actor" if actor is None else f"actor {actor.id!r}"
    held = "none" if actor is None else (", ".join(sorted(actor.roles)) or "none")
    return Rejected(
        "forbidden",
        f"{event!r} needs one of the roles {', '.join(sorted(roles))}; {who} holds {held}",
        {"event": event, "roles": sorted(roles)},
    )


def _invalid_payload(event: str, field: str, reason: str) -> Rejected:
    where = f"field {field!r}: " if field else ""
    return Rejected(
        "invalid_payload",
        f"invalid payload for {event!r}: {where}{reason}",
        {"event": event, "field": field, "reason": reason},
    )


def _fault(where: str, exc: BaseException | None, message: str) -> Rejected:
    details: dict[str, Any] = {"where": where}
    if exc is not None:
        details["exception"] = type(exc).__name__
    return Rejected("spec_fault", message, details, error=exc)


def _broken(inv: Any, ok: object, event: str, state: str, target: str) -> Rejected:
    if ok is not False:
        return _fault(f"invariant {inv.name}", None, f"invariant {inv.name!r} returned {ok!r}")
    return Rejected(
        "invariant_violated",
        f"{event!r} from {state!r} to {target!r} would break invariant {inv.name!r}"
        + (f" ({inv.description})" if inv.description else ""),
        {"event": event, "invariant": inv.name, "description": inv.description},
    )


def _build_effects(
    declared: tuple[Effect, ...], ctx: Any, payload: Any
) -> tuple[Message, ...] | Rejected:
    built = []
    for e in declared:
        if e.build is None:
            built.append(Message(e.name, {}))
            continue
        try:
            data = e.build(ctx, payload)
        except Exception as exc:
            return _fault(f"effect {e.name}", exc, f"effect {e.name!r} raised {exc!r}")
        if not isinstance(data, Mapping):
            return _fault(
                f"effect {e.name}", None, f"effect {e.name!r} built {type(data).__name__}"
            )
        try:
            plain_data = unstructure(data)  # plain data, as every store keeps and returns it
        except UnsupportedType as exc:
            return _fault(
                f"effect {e.name}", exc, f"effect {e.name!r} built data that is not plain: {exc}"
            )
        built.append(Message(e.name, plain_data))
    return tuple(built)
