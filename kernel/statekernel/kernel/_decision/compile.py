"""A spec compiled for deciding: one :class:`Compiled` object, built once when the spec is.

:func:`compile_spec` turns the spec's transitions into :class:`Row` objects (everything a
decision needs from one transition, precomputed), groups them per ``(state, event)`` key in
the order they are tried, and asks for one deciding function per key (:data:`Decider`): the
generated one (:mod:`.codegen`) or, when the environment variable ``STATEKERNEL_DECIDE`` is
``reference`` as the spec is built, the plain loop (:mod:`.reference`), for debugging. The
explorer asks the same object for its :data:`Probe` functions, made from the same rows.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._codec import Checker, Structurer, checker_for, structurer_for
from .._model import Command, Decision, Snapshot
from . import codegen, reference

if TYPE_CHECKING:
    from .._spec import Effect, Guard, Invariant, Spec, Transition

__all__ = [
    "SWITCH",
    "Compiled",
    "Decider",
    "Probe",
    "Row",
    "compile_spec",
    "reads_command",
]

SWITCH: Final = "STATEKERNEL_DECIDE"
"""The environment variable that picks how specs built from then on decide: unset (or
``generated``) for the generated deciders, ``reference`` for the plain loop."""

Decider = Callable[[Snapshot, Command, str, Any], Decision]
"""``decider(snapshot, command, event, state)``: decides a command whose event and state are
the key the decider was made for (``event`` and ``state`` are the command's and the
snapshot's own values), from the actor check on. The unknown-event, version and transition
checks come first, in ``decide``."""

Probe = Callable[
    [Any, Any, Command, int, int, list[Any], list[Any], list[int]], tuple[str, Any] | None
]
"""``probe(ctx, payload, command, node, move, guard_true, guard_false, fired_at)``: the
explorer's form of a decider, for one key and the rows of it that a move's actor and payload
pass (their roles and payload are not checked again; ``payload`` is already structured).
Returns ``(target, new context)`` when a row fires, ``None`` when every row gives way at a
guard, and raises (:class:`~.codegen.Irregular` or what user code raised) on anything only
``decide`` may judge: a fault, a broken invariant. It builds no ``Accepted``. It records
where each guard was first seen true and false, as ``(node, move)`` in ``guard_true`` and
``guard_false`` at the guard's slot (:attr:`Compiled.guard_slots`; the slot plus
``len(guard_slots)`` for a row tried after an earlier one gave way), and the node where each
transition first fired in ``fired_at`` (``-1`` until then)."""


def reads_command(fn: object) -> bool:
    """Whether ``fn`` (a guard's function or an update) takes the command as well: whether it
    can be called with three positional arguments, ``(ctx, payload, command)``. A callable
    whose signature cannot be read (some builtins) is taken to take ``(ctx, payload)``."""
    if not callable(fn):
        return False
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    try:
        sig.bind(None, None, None)
    except TypeError:
        return False
    return True


@attrs.frozen(eq=False)
class Row:
    """One transition, prepared for deciding: its parts, and how each is called.

    ``index`` is its position in ``spec.transitions``; ``structure`` structures its payload
    (``None``: it takes none); ``target`` is ``None`` for an internal transition (the key's
    state); ``first_slot`` is the explorer's guard slot of its first guard."""

    transition: Transition
    index: int
    structure: Structurer | None
    roles: frozenset[str]
    guards: tuple[Guard, ...]
    update: Callable[..., Any] | None
    update_reads_command: bool
    effects: tuple[Effect, ...]
    target: str | None
    first_slot: int

    @property
    def reads_command(self) -> bool:
        """Whether a guard or the update takes the command."""
        return self.update_reads_command or any(g.reads_command for g in self.guards)


@attrs.frozen(eq=False)
class Compiled:
    """Everything ``decide`` and the explorer read from a spec, precomputed.

    ``name``, ``context`` and ``invariants`` are the spec's; ``rows`` holds each ``(state,
    event)`` key's rows in the order they are tried, ``deciders`` each key's deciding function
    (by state, then event), ``allowed`` the events with a row out of each state (sorted),
    ``events`` every event, ``payload_types`` each key's payload type, ``context_structure``
    and ``context_check`` the context type's structurer and checker, ``guard_slots`` the
    ``(transition index, guard position)`` of each guard slot a probe records into, and
    ``reference`` whether the functions are the plain loop's (the ``STATEKERNEL_DECIDE``
    switch).
    """

    name: str
    context: type
    invariants: tuple[Invariant, ...]
    rows: Mapping[tuple[str, str], tuple[Row, ...]]
    deciders: Mapping[str, Mapping[str, Decider]]
    allowed: Mapping[str, tuple[str, ...]]
    events: frozenset[str]
    payload_types: Mapping[tuple[str, str], type | None]
    context_structure: Structurer
    context_check: Checker
    guard_slots: tuple[tuple[int, int], ...]
    reference: bool
    _probes: dict[tuple[str, str, tuple[int, ...]], Probe] = attrs.field(
        init=False, factory=dict, repr=False
    )

    def probe(self, state: str, event: str, rows: tuple[Row, ...]) -> Probe:
        """The explorer's probe for ``rows`` (some of the rows of the key ``(state, event)``,
        in order), made once and kept."""
        key = (state, event, tuple(r.index for r in rows))
        found = self._probes.get(key)
        if found is None:
            make = reference.probe if self.reference else codegen.probe
            found = make(self, state, event, rows)
            self._probes[key] = found
        return found


def _use_reference() -> bool:
    value = os.environ.get(SWITCH, "")
    if value in ("", "generated"):
        return False
    if value == "reference":
        return True
    raise ValueError(f"{SWITCH} must be 'reference', 'generated' or unset, not {value!r}")


def compile_spec(spec: Spec) -> Compiled:
    """Compile a validated spec."""
    use_reference = _use_reference()
    table: dict[tuple[str, str], list[Row]] = {}
    slots: list[tuple[int, int]] = []
    for i, t in enumerate(spec.transitions):
        row = Row(
            transition=t,
            index=i,
            structure=structurer_for(t.payload) if t.payload is not None else None,
            roles=frozenset(t.roles),
            guards=t.guards,
            update=t.update,
            update_reads_command=reads_command(t.update),
            effects=t.effects,
            target=t.target,
            first_slot=len(slots),
        )
        slots.extend((i, j) for j in range(len(t.guards)))
        for s in t.source:
            table.setdefault((s, t.event), []).append(row)
    rows = {k: tuple(v) for k, v in table.items()}

    # Keys with the same rows share one decider, unless a row is internal (its target is
    # the key's state).
    sharing: dict[tuple[object, ...], list[str]] = {}
    for (s, _), key_rows in rows.items():
        sharing.setdefault(_sharing(s, key_rows), []).append(s)
    made: dict[tuple[object, ...], Decider] = {}
    deciders: dict[str, dict[str, Decider]] = {}
    allowed: dict[str, set[str]] = {}
    for (s, e), key_rows in rows.items():
        key = _sharing(s, key_rows)
        if key not in made:
            if use_reference:
                made[key] = reference.decider(key_rows, spec.invariants, spec.context)
            else:
                label = f"{spec.name}:{','.join(sharing[key])}/{e}"
                made[key] = codegen.decider(key_rows, spec.invariants, spec.context, s, label)
        deciders.setdefault(s, {})[e] = made[key]
        allowed.setdefault(s, set()).add(e)
    return Compiled(
        name=spec.name,
        context=spec.context,
        invariants=spec.invariants,
        rows=rows,
        deciders=deciders,
        allowed={s: tuple(sorted(es)) for s, es in allowed.items()},
        events=frozenset(t.event for t in spec.transitions),
        payload_types={k: v[0].transition.payload for k, v in rows.items()},
        context_structure=structurer_for(spec.context),
        context_check=checker_for(spec.context),
        guard_slots=tuple(slots),
        reference=use_reference,
    )


def _sharing(state: str, rows: tuple[Row, ...]) -> tuple[object, ...]:
    indices = tuple(r.index for r in rows)
    return (indices, state) if any(r.target is None for r in rows) else (indices,)
