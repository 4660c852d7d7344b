"""Deciding functions generated per ``(state, event)`` when a spec is built.

For a command whose event has transitions out of the snapshot's state, ``decide`` runs the same
checks every time: the actor's type, each candidate transition's roles, payload, guards, update,
the spec's invariants and the transition's effects. Written as one general loop over the
compiled transitions, most of that time goes to the loop itself: reading the parts of each
transition, testing for parts it does not have, looping over one-element tuples.

:func:`compile_step` therefore writes, once per ``(state, event)`` key, the straight-line source
of exactly the checks that key needs, with the guard, update, invariant and effect functions
bound as names of the generated function's namespace, and compiles it. The generated code keeps
``decide``'s contract to the letter: the same check order, the same rejection codes, messages
and details (built by the helpers below, shared with ``decide``), every exception raised by
user code a ``spec_fault``, and a guard or invariant that returns anything but a bool a
``spec_fault`` too. Exceptions raised anywhere else reach ``decide``'s last line of defence, as
before. User-supplied values (event names, states, functions) only ever enter the generated
source as namespace names, never as text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._codec import PayloadError, UnsupportedType, unstructure
from ._model import Actor, Command, Decision, Message, Rejected, Snapshot, accepted_source

if TYPE_CHECKING:
    from ._spec import Effect, Guard, Invariant, _Compiled

__all__ = ["Step", "compile_step"]

Step = Callable[[Snapshot, Command, str, Any], Decision]
"""``step(snapshot, command, event, state)``: decides a command whose event and state are the
key the step was generated for (``event`` and ``state`` are the command's and the snapshot's
own values), from the actor check on. The unknown-event, version and transition checks come
first, in ``decide``."""


# --- rejections, shared by decide and the generated steps ------------------------------------


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


# --- the generator -----------------------------------------------------------------------------

_SHARED: dict[str, Any] = {
    "Actor": Actor,
    "Mapping": Mapping,
    "Message": Message,
    "PayloadError": PayloadError,
    "not_an_actor": not_an_actor,
    "forbidden": forbidden,
    "no_payload": no_payload,
    "invalid_payload": invalid_payload,
    "guard_rejected": guard_rejected,
    "guard_raised": guard_raised,
    "guard_returned": guard_returned,
    "update_raised": update_raised,
    "update_returned": update_returned,
    "invariant_raised": invariant_raised,
    "broken": broken,
    "effect_raised": effect_raised,
    "effect_built": effect_built,
    "effect_not_plain": effect_not_plain,
    "unstructure": unstructure,
    "UnsupportedType": UnsupportedType,
}


_ACCEPTED_VALUES: dict[str, str] = {
    "context": "new_ctx",
    "version": "version",
    "event": "event",
    "payload": "payload",
    "actor": "actor",
    "source": "state",
    "at": "at",
    "effects": "effects",
}
"""The locals of a generated step that :func:`accepted_source` builds the result from."""


def compile_step(
    candidates: Sequence[_Compiled], invariants: Sequence[Invariant], context: type, state: str
) -> Step:
    """Generate the deciding function for one ``(state, event)`` key.

    ``state`` is the key's state: the target of its internal candidates (``target=None``). A
    guard or update that reads the command is called with ``command`` as its third argument.

    ``candidates`` are the key's transitions in the order they are tried. One candidate (the
    usual case) becomes straight-line code whose soft rejections (``forbidden``,
    ``invalid_payload``, ``guard_rejected``) return at once. Several become one block each,
    ``while True: ... break``: a soft rejection leaves the block for the next candidate. The
    rejection of the row that got furthest (past its roles to the payload, or past its payload
    to a guard; the first such row on a tie) is kept in ``best``, with how far it got in
    ``level``, and returned when none fires; when every row stopped at its roles, the
    ``forbidden`` rejection lists the roles of every row. A fault, a broken invariant or an
    acceptance returns from any block. For a transition with one guard,
    an update and the spec's one invariant, the generated source reads::

        def step(snapshot, command, event, state):
            actor = command.actor
            if actor is not None and type(actor) is not Actor and not isinstance(actor, Actor):
                return not_an_actor(actor, event)
            ctx = snapshot.context
            raw = command.payload
            # spec.transitions[0]
            try:
                payload = structure_0(raw)
            except PayloadError as exc:
                return invalid_payload(event, exc.field, exc.reason)
            except Exception as exc:
                return invalid_payload(event, "", str(exc))
            try:
                ok = guard_0_0(ctx, payload)
            except Exception as exc:
                return guard_raised(guard_obj_0_0, exc)
            if ok is not True:
                if ok is not False:
                    return guard_returned(guard_obj_0_0, ok)
                return guard_rejected(guard_obj_0_0, event, state)
            ...  # the update and its type check, each invariant, each effect
            effects = ()
            version = snapshot.version + 1
            at = command.at
            ...  # the Accepted, its snapshot and its audit record, see accepted_source
            return acc
    """
    ns: dict[str, Any] = dict(_SHARED)
    ns["context"] = context
    several = len(candidates) > 1
    lines = [
        "def step(snapshot, command, event, state):",
        "    actor = command.actor",
        "    if actor is not None and type(actor) is not Actor and not isinstance(actor, Actor):",
        "        return not_an_actor(actor, event)",
        "    ctx = snapshot.context",
        "    raw = command.payload",
    ]
    if several:
        lines += ["    best = None", "    level = 0"]
    for k, c in enumerate(candidates):
        body: list[str] = []

        def reject(expr: str, level: int, k: int = k) -> list[str]:
            """How candidate ``k`` gives way on a soft rejection ``expr`` that got as far as
            ``level`` (0 roles, 1 payload, 2 guards)."""
            if not several:
                return [f"return {expr}"]
            if level == 0:
                return ["break"]  # `forbidden` is built at the end, with every row's roles
            keep = [f"best = {expr}", f"level = {level}"]
            if k == 0:  # nothing got further yet
                return [*keep, "break"]
            return [f"if level < {level}:", *_indent(keep), "break"]

        if c.roles:
            ns[f"roles_{k}"] = c.roles
            body += [
                f"if actor is None or roles_{k}.isdisjoint(actor.roles):",
                *_indent(reject(f"forbidden(event, roles_{k}, actor)", 0)),
            ]
        if c.structure is None:
            body += [
                "if raw is None or (isinstance(raw, Mapping) and not raw):",
                "    payload = None",
                "else:",
                *_indent(reject("no_payload(event, raw)", 1)),
            ]
        else:
            ns[f"structure_{k}"] = c.structure
            body += [
                "try:",
                f"    payload = structure_{k}(raw)",
                "except PayloadError as exc:",
                *_indent(reject("invalid_payload(event, exc.field, exc.reason)", 1)),
                "except Exception as exc:  # the payload class's own validators said no",
                *_indent(reject('invalid_payload(event, "", str(exc))', 1)),
            ]
        for j, g in enumerate(c.guards):
            ns[f"guard_{k}_{j}"] = g.fn
            ns[f"guard_obj_{k}_{j}"] = g
            args = "ctx, payload, command" if g.reads_command else "ctx, payload"
            body += [
                "try:",
                f"    ok = guard_{k}_{j}({args})",
                "except Exception as exc:",
                f"    return guard_raised(guard_obj_{k}_{j}, exc)",
                "if ok is not True:",
                "    if ok is not False:",
                f"        return guard_returned(guard_obj_{k}_{j}, ok)",
                *_indent(reject(f"guard_rejected(guard_obj_{k}_{j}, event, state)", 2)),
            ]
        if c.update is not None:
            ns[f"update_{k}"] = c.update
            args = "ctx, payload, command" if c.update_reads_command else "ctx, payload"
            body += [
                "try:",
                f"    new_ctx = update_{k}({args})",
                "except Exception as exc:",
                "    return update_raised(event, exc)",
                "if type(new_ctx) is not context and not isinstance(new_ctx, context):",
                "    return update_returned(event, new_ctx, context)",
            ]
        else:
            body.append("new_ctx = ctx")
        ns[f"target_{k}"] = state if c.target is None else c.target
        for j, inv in enumerate(invariants):
            ns[f"invariant_{j}"] = inv.fn
            ns[f"invariant_obj_{j}"] = inv
            body += [
                "try:",
                f"    ok = invariant_{j}(target_{k}, new_ctx)",
                "except Exception as exc:",
                f"    return invariant_raised(invariant_obj_{j}, exc)",
                "if ok is not True:",
                f"    return broken(invariant_obj_{j}, ok, event, state, target_{k})",
            ]
        messages = []
        for j, e in enumerate(c.effects):
            ns[f"effect_name_{k}_{j}"] = e.name
            if e.build is None:
                body.append(f"message_{j} = Message(effect_name_{k}_{j}, {{}})")
            else:
                ns[f"effect_{k}_{j}"] = e.build
                ns[f"effect_obj_{k}_{j}"] = e
                body += [
                    "try:",
                    f"    data = effect_{k}_{j}(new_ctx, payload)",
                    "except Exception as exc:",
                    f"    return effect_raised(effect_obj_{k}_{j}, exc)",
                    "if not isinstance(data, Mapping):",
                    f"    return effect_built(effect_obj_{k}_{j}, data)",
                    "try:",
                    "    data = unstructure(data)  # plain data, as every store keeps it",
                    "except UnsupportedType as exc:",
                    f"    return effect_not_plain(effect_obj_{k}_{j}, exc)",
                    f"message_{j} = Message(effect_name_{k}_{j}, data)",
                ]
            messages.append(f"message_{j}")
        body += [
            f"effects = ({', '.join(messages)},)" if messages else "effects = ()",
            "version = snapshot.version + 1",
            "at = command.at",
        ]
        acc_lines, acc_names = accepted_source({**_ACCEPTED_VALUES, "target": f"target_{k}"})
        ns.update(acc_names)
        body += [*acc_lines, "return acc"]
        lines.append(f"    # spec.transitions[{c.index}]")
        if several:
            lines += ["    while True:", *_indent(body, 8)]
        else:
            lines += _indent(body, 4)
    if several:
        ns["roles_all"] = frozenset().union(*(c.roles for c in candidates))
        lines += [
            "    if best is None:  # every row stopped at its roles",
            "        return forbidden(event, roles_all, actor)",
            "    return best",
        ]
    code = compile("\n".join(lines), "<statekernel generated step>", "exec")
    exec(code, ns)
    step: Step = ns["step"]
    step.__doc__ = "Decides one (state, event) key; generated by statekernel's compile_step."
    return step


def _indent(lines: list[str], width: int = 4) -> list[str]:
    return [" " * width + line for line in lines]
