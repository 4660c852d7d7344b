"""The straightforward ``decide``: one general loop over the candidate transitions.

This is the kernel's ``decide`` as it was before it generated a specialised function per
``(state, event)`` (see ``statekernel.kernel._steps``). It reads the compiled table
(``spec._table``) and walks each candidate's roles, payload, guards, update, invariants and
effects in turn. The differential tests check that the generated code decides every command
exactly as this does.

The checks run in this order, and the first that fails names the rejection:

1. ``unknown_event``, 2. ``version_conflict``, 3. ``invalid_transition``, 4. ``forbidden``,
5. ``invalid_payload``, 6. ``guard_rejected``, 7. ``invariant_violated``, 8. ``spec_fault``.

When several transitions share ``(state, event)``, each is tried in declaration order through
steps 4-6; the first that passes fires, and if none does the first one's rejection is returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from statekernel.kernel._codec import PayloadError, UnsupportedType, unstructure
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
from statekernel.kernel._spec import Effect, Spec

__all__ = ["decide_reference"]


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
        candidates = spec._table.get((state, event)) if type(event) is str else None
        expected = command.expected_version
        if candidates is None or expected is not None:
            early = _precheck(spec, snapshot, command, candidates, event)
            if early is not None:
                return early
            assert candidates is not None
        actor = command.actor
        if actor is not None and type(actor) is not Actor and not isinstance(actor, Actor):
            return Rejected(
                "forbidden", f"actor must be an Actor, got {type(actor).__name__}", {"event": event}
            )
        ctx = snapshot.context
        raw = command.payload
        first: Rejected | None = None
        for c in candidates:
            roles = c.roles
            if roles and (actor is None or roles.isdisjoint(actor.roles)):
                if first is None:
                    first = _forbidden(event, roles, actor)
                continue
            structure = c.structure
            if structure is None:
                if raw is None or (isinstance(raw, Mapping) and not raw):
                    payload = None
                else:
                    if first is None:
                        first = Rejected(
                            "invalid_payload",
                            f"{event!r} takes no payload, got {type(raw).__name__}",
                            {"event": event, "field": "", "reason": "this event takes no payload"},
                        )
                    continue
            else:
                try:
                    payload = structure(raw)
                except PayloadError as exc:
                    if first is None:
                        first = _invalid_payload(event, exc.field, exc.reason)
                    continue
                except Exception as exc:  # the payload class's own validators said no
                    if first is None:
                        first = _invalid_payload(event, "", str(exc))
                    continue
            failed = None
            for g in c.guards:
                try:
                    ok = g.fn(ctx, payload)
                except Exception as exc:
                    return _fault(f"guard {g.name}", exc, f"guard {g.name!r} raised {exc!r}")
                if ok is not True:
                    if ok is not False:
                        return _fault(
                            f"guard {g.name}", None, f"guard {g.name!r} returned {ok!r}, not a bool"
                        )
                    failed = g
                    break
            if failed is not None:
                if first is None:
                    desc = f" ({failed.description})" if failed.description else ""
                    first = Rejected(
                        "guard_rejected",
                        f"guard {failed.name!r} rejected {event!r} in state {state!r}{desc}",
                        {"event": event, "guard": failed.name, "description": failed.description},
                    )
                continue
            # The transition fires: update, invariants, effects, the new snapshot.
            update = c.update
            if update is not None:
                try:
                    new_ctx = update(ctx, payload)
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
            target = c.target
            for inv in spec.invariants:
                try:
                    ok = inv.fn(target, new_ctx)
                except Exception as exc:
                    return _fault(
                        f"invariant {inv.name}", exc, f"invariant {inv.name!r} raised {exc!r}"
                    )
                if ok is not True:
                    return _broken(inv, ok, event, state, target)
            effects: tuple[Message, ...] | Rejected = (
                _build_effects(c.effects, new_ctx, payload) if c.effects else ()
            )
            if type(effects) is Rejected:
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
        assert first is not None
        return first
    except Exception as exc:  # a last line of defence: decide never raises
        return Rejected(
            "spec_fault",
            f"unexpected error while deciding: {exc!r}",
            {"where": "decide", "exception": type(exc).__name__},
            error=exc,
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
