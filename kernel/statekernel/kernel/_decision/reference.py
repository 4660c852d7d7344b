"""The plain reference loop: the rows of a key, decided one after the other.

This is what the generated code (:mod:`.codegen`) does, written as the obvious loop over the
rows, slowly and without tricks: each row's roles, payload, guards, update, invariants and
effects in turn, building its results with the classes' own constructors. It is the
executable statement of the rules the generator must keep, so

- the differential and agreement tests check every generated decider and probe against it;
- with ``STATEKERNEL_DECIDE=reference`` set when a spec is built, the spec decides through it
  (:func:`decider`) and the explorer probes through it (:func:`probe`): for debugging, a
  traceback then goes through this file;
- the explorer asks it which rows a move's actor and payload pass (:func:`admits`,
  :func:`structure`) when it prepares its moves.

Rows sharing ``(state, event)`` are tried in declaration order through their roles, payload
and guards, and the first that passes fires. Each one that does not records how far it got (0:
stopped at its roles, 1: at its payload, 2: at a guard) and its rejection; if none passes, the
answer is the rejection of the first row that got furthest, except that when every row
stopped at its roles the answer is ``forbidden`` listing the roles of every row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._codec import PayloadError, UnsupportedType, unstructure
from .._model import Accepted, Actor, AuditRecord, Command, Decision, Message, Rejected, Snapshot
from .codegen import Irregular
from .rejections import (
    broken,
    effect_built,
    effect_not_plain,
    effect_raised,
    forbidden,
    guard_raised,
    guard_rejected,
    guard_returned,
    invalid_payload,
    invariant_raised,
    no_payload,
    not_an_actor,
    update_raised,
    update_returned,
)

if TYPE_CHECKING:
    from .._spec import Invariant
    from .compile import Compiled, Decider, Probe, Row

__all__ = ["admits", "decide_rows", "decider", "probe", "structure"]

Watch = Callable[[int, "Row", int, bool], None]
"""Told of each guard's outcome: ``(how many rows got to their guards before this one, row,
guard position, outcome)``."""

_SOFT = frozenset({"forbidden", "invalid_payload", "guard_rejected"})
"""The codes of a command the rows turned down; any other rejection names a spec's fault."""


def admits(row: Row, actor: Actor | None) -> bool:
    """Whether ``actor`` may fire ``row``: it declares no roles, or the actor holds one."""
    return not row.roles or (actor is not None and not row.roles.isdisjoint(actor.roles))


def structure(row: Row, event: str, raw: object) -> tuple[Any, Rejected | None]:
    """The payload of ``row`` structured from ``raw``, or why not: ``(payload, None)`` or
    ``(None, rejection)``. An event without a payload type takes ``None`` or an empty
    mapping."""
    if row.structure is None:
        if raw is None or (isinstance(raw, Mapping) and not raw):
            return None, None
        return None, no_payload(event, raw)
    try:
        return row.structure(raw), None
    except PayloadError as exc:
        return None, invalid_payload(event, exc.field, exc.reason)
    except Exception as exc:  # the payload class's own validators said no
        return None, invalid_payload(event, "", str(exc))


def decide_rows(
    rows: Sequence[Row],
    invariants: Sequence[Invariant],
    context: type,
    snapshot: Snapshot,
    command: Command,
    event: str,
    state: str,
    watch: Watch | None = None,
) -> tuple[Decision, Row | None]:
    """Decide ``command`` on ``snapshot`` by ``rows``, the rows of the key ``(state,
    event)``; the decision and the row that fired (``None`` if none did)."""
    actor = command.actor
    if actor is not None and type(actor) is not Actor and not isinstance(actor, Actor):
        return not_an_actor(actor, event), None
    stopped: list[tuple[int, Rejected | None]] = []
    reached = 0  # rows that got to their guards before this one
    for row in rows:
        if not admits(row, actor):
            stopped.append((0, None))
            continue
        payload, rejection = structure(row, event, command.payload)
        if rejection is not None:
            stopped.append((1, rejection))
            continue
        outcome = _fire(row, reached, invariants, context, snapshot, command, event, payload, watch)
        if isinstance(outcome, Rejected) and outcome.code == "guard_rejected":
            stopped.append((2, outcome))  # the row gives way to the next
            reached += 1
            continue
        return outcome, row if isinstance(outcome, Accepted) else None
    furthest = max(level for level, _ in stopped)
    if furthest == 0:
        return forbidden(event, frozenset().union(*(r.roles for r in rows)), actor), None
    return next(r for level, r in stopped if level == furthest and r is not None), None


def _call(fn: Callable[..., Any], reads_command: bool, ctx: Any, payload: Any, cmd: Command) -> Any:
    return fn(ctx, payload, cmd) if reads_command else fn(ctx, payload)


def _fire(
    row: Row,
    position: int,
    invariants: Sequence[Invariant],
    context: type,
    snapshot: Snapshot,
    command: Command,
    event: str,
    payload: Any,
    watch: Watch | None,
) -> Decision:
    """One row past its roles and payload: its guards, then (if they hold) its update,
    the invariants, its effects and the new snapshot."""
    state, ctx = snapshot.state, snapshot.context
    for j, g in enumerate(row.guards):
        try:
            ok = _call(g.fn, g.reads_command, ctx, payload, command)
        except Exception as exc:
            return guard_raised(g, exc)
        if ok is not True and ok is not False:
            return guard_returned(g, ok)
        if watch is not None:
            watch(position, row, j, ok)
        if ok is False:
            return guard_rejected(g, event, state)
    new_ctx = ctx
    if row.update is not None:
        try:
            new_ctx = _call(row.update, row.update_reads_command, ctx, payload, command)
        except Exception as exc:
            return update_raised(event, exc)
        if not isinstance(new_ctx, context):
            return update_returned(event, new_ctx, context)
    target = state if row.target is None else row.target
    for inv in invariants:
        try:
            ok = inv.fn(target, new_ctx)
        except Exception as exc:
            return invariant_raised(inv, exc)
        if ok is not True:
            return broken(inv, ok, event, state, target)
    messages = []
    for e in row.effects:
        data: Any = {}
        if e.build is not None:
            try:
                data = e.build(new_ctx, payload)
            except Exception as exc:
                return effect_raised(e, exc)
            if not isinstance(data, Mapping):
                return effect_built(e, data)
            try:
                data = unstructure(data)  # plain data, as every store keeps and returns it
            except UnsupportedType as exc:
                return effect_not_plain(e, exc)
        messages.append(Message(e.name, data))
    version = snapshot.version + 1
    return Accepted(
        Snapshot(target, new_ctx, version),
        AuditRecord(version, event, payload, command.actor, state, target, command.at),
        tuple(messages),
    )


def decider(rows: Sequence[Row], invariants: Sequence[Invariant], context: type) -> Decider:
    """A deciding function for ``rows`` that runs the loop above."""

    def decider(snapshot: Snapshot, command: Command, event: str, state: Any) -> Decision:
        return decide_rows(rows, invariants, context, snapshot, command, event, state)[0]

    return decider


def probe(compiled: Compiled, state: str, event: str, rows: Sequence[Row]) -> Probe:
    """A probe for ``rows`` (see :data:`~.compile.Probe`) that runs the loop above on the
    move's command (it structures the payload again rather than take ``payload``)."""
    after = len(compiled.guard_slots)
    invariants, context = compiled.invariants, compiled.context

    def probe(
        ctx: Any,
        payload: Any,
        command: Command,
        node: int,
        move: int,
        guard_true: list[Any],
        guard_false: list[Any],
        fired_at: list[int],
    ) -> tuple[str, Any] | None:
        def watch(position: int, row: Row, j: int, ok: bool) -> None:
            slot = row.first_slot + j + (after if position else 0)
            seen = guard_true if ok else guard_false
            if seen[slot] is None:
                seen[slot] = (node, move)

        snapshot = Snapshot(state, ctx, 0)
        d, fired = decide_rows(rows, invariants, context, snapshot, command, event, state, watch)
        if isinstance(d, Accepted):
            assert fired is not None
            if fired_at[fired.index] < 0:
                fired_at[fired.index] = node
            return (d.snapshot.state, d.snapshot.context)
        if d.code in _SOFT:
            return None
        raise Irregular(d.message)

    return probe
