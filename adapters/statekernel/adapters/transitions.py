"""Interop with the ``transitions`` package (``pip install statekernel[transitions]``).

- :func:`to_machine` turns a :class:`~statekernel.kernel.Spec` into a ``transitions.Machine``
  whose triggers are decided by :func:`~statekernel.kernel.decide`: guards, roles, payload
  validation, updates and invariants behave exactly as the kernel's. The entity's context and
  version live on the model next to its ``state``; the last decision is ``model.decision``.
- :func:`from_machine` turns a ``transitions.Machine`` (or the markup dict of a
  ``MarkupMachine``) into a :class:`~statekernel.kernel.Spec`: states, transitions, and
  conditions and unless-conditions as guards named after their callables. What has no
  counterpart in a spec (callbacks with side effects, nested states, timeouts, conditions
  that receive ``EventData``) is refused with an :class:`InteropError` that lists every such
  thing, never silently dropped.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

import attrs
import transitions
from transitions.extensions.nesting import HierarchicalMachine

from statekernel.kernel import (
    Actor,
    Command,
    Decision,
    Guard,
    Snapshot,
    Spec,
    StatekernelError,
    Transition,
    decide,
)

__all__ = ["InteropError", "MachineContext", "MachineModel", "from_machine", "to_machine"]

_TRIGGER_KEYWORDS = ("payload", "actor", "expected_version", "at")


class InteropError(StatekernelError, ValueError):
    """Something that cannot be carried between a spec and a ``transitions`` machine.

    ``problems`` lists every culprit with what is wrong, like
    :class:`~statekernel.kernel.SpecError`.
    """

    def __init__(self, what: str, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        lines = [f"{what}: {len(self.problems)} problem(s):"]
        lines.extend(f"  - {p}" for p in self.problems)
        super().__init__("\n".join(lines))


class MachineModel:
    """The model :func:`to_machine` creates when given none.

    ``state`` is kept by ``transitions``; ``context`` and ``version`` complete the entity's
    snapshot; ``decision`` is the kernel's answer to the last trigger (``None`` before any).
    """

    state: str
    context: Any
    version: int
    decision: Decision | None

    def snapshot(self) -> Snapshot:
        """The entity as a kernel :class:`~statekernel.kernel.Snapshot`."""
        return Snapshot(self.state, self.context, self.version)

    def __repr__(self) -> str:
        return f"<MachineModel state={getattr(self, 'state', None)!r} v{self.version}>"


# --- to_machine ----------------------------------------------------------------------------


def _command(event: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Command:
    """The command a trigger call stands for: ``model.event(payload, *, actor=...,
    expected_version=..., at=...)``."""
    if len(args) > 1:
        raise TypeError(f"{event}() takes at most one positional argument (the payload)")
    unknown = sorted(set(kwargs) - set(_TRIGGER_KEYWORDS))
    if unknown:
        raise TypeError(
            f"{event}() got unexpected keyword argument(s) {', '.join(unknown)}; "
            f"it takes {', '.join(_TRIGGER_KEYWORDS)}"
        )
    if args and "payload" in kwargs:
        raise TypeError(f"{event}() got the payload twice")
    payload = args[0] if args else kwargs.get("payload")
    actor: Actor | None = kwargs.get("actor")
    expected: int | None = kwargs.get("expected_version")
    at: datetime | None = kwargs.get("at")
    return Command(event, payload, actor=actor, expected_version=expected, at=at)


class _Bridge:
    """The machine-level callbacks that hand every trigger to ``decide``. It also carries the
    spec, so :func:`from_machine` can give it back."""

    __name__ = "statekernel_decide"

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def decide(self, event_data: Any) -> Decision:
        model = event_data.model
        command = _command(event_data.event.name, event_data.args, event_data.kwargs)
        snapshot = Snapshot(model.state, model.context, model.version)
        return decide(self.spec, snapshot, command)

    def prepare(self, event_data: Any) -> None:
        """``prepare_event``: decide once, before any transition's condition is checked."""
        event_data.statekernel_decision = self.decide(event_data)

    def apply(self, event_data: Any) -> None:
        """``before_state_change``: the accepted decision's context and version. A machine
        transition that fires although the kernel rejected the trigger, or moves elsewhere
        than the kernel decided, was added to the machine after :func:`to_machine` made it:
        refused (:class:`InteropError`, nothing changes), since the kernel decides every
        trigger."""
        decision: Decision = event_data.statekernel_decision
        transition = event_data.transition
        dest = transition.source if transition.dest is None else transition.dest
        if not decision.accepted or decision.snapshot.state != dest:
            verdict = (
                f"rejected it ({decision.code}: {decision.message})"
                if not decision.accepted
                else f"moved the entity to {decision.snapshot.state!r}"
            )
            raise InteropError(
                f"machine {self.spec.name!r}",
                [
                    f"transition {event_data.event.name!r} from {transition.source!r} to "
                    f"{dest!r} fired although the kernel {verdict}: it was added to the "
                    "machine, not made by to_machine. Every trigger is decided by the kernel, "
                    "so add transitions to the spec and call to_machine again (use the "
                    "machine's callbacks, not extra transitions, to run code on a change); "
                    "nothing changed"
                ],
            )
        event_data.model.context = decision.snapshot.context
        event_data.model.version = decision.snapshot.version

    def finalize(self, event_data: Any) -> None:
        """``finalize_event``: record the decision on the model, whatever happened (an event
        that is not allowed from the state never reaches ``prepare``)."""
        if event_data.error is not None:
            return
        decision = getattr(event_data, "statekernel_decision", None)
        if decision is None:
            decision = self.decide(event_data)
        event_data.model.decision = decision


class _Fires:
    """The condition of one machine transition: ``decide`` accepted the trigger and moved the
    entity to this transition's destination (for an internal transition, its source: the
    entity stays)."""

    def __init__(self, bridge: _Bridge, target: str, internal: bool = False) -> None:
        self.bridge = bridge
        self.target = target
        self.__name__ = (
            "statekernel_accepts_internal" if internal else f"statekernel_accepts_to_{target}"
        )

    def __call__(self, event_data: Any) -> bool:
        decision: Decision = event_data.statekernel_decision
        return decision.accepted and decision.snapshot.state == self.target


def to_machine(
    spec: Spec,
    model: object | None = None,
    *,
    snapshot: Snapshot | None = None,
    machine_class: type[transitions.Machine] = transitions.Machine,
) -> transitions.Machine:
    """A ``transitions`` machine for ``spec`` whose triggers are decided by the kernel.

    Each event becomes a trigger on the model, called as ``model.event(payload, *,
    actor=None, expected_version=None, at=None)``. It returns ``True`` when the kernel
    accepts (the model's ``state``, ``context`` and ``version`` move on) and ``False`` when
    it rejects, including an event that is not allowed from the current state; either way
    ``model.decision`` holds the :class:`~statekernel.kernel.Accepted` or
    :class:`~statekernel.kernel.Rejected` answer. ``model.may_event(...)`` asks the kernel
    without firing.

    ``model`` defaults to a fresh :class:`MachineModel`; its ``context``, ``version`` and
    ``decision`` attributes are set from ``snapshot`` (default: ``spec.start()``).
    ``machine_class`` may be a ``Machine`` subclass such as ``MarkupMachine``.
    """
    start = snapshot if snapshot is not None else spec.start()
    target_model: Any = model if model is not None else MachineModel()
    clashes = [e for e in sorted(spec.events) if hasattr(target_model, e)]
    if clashes:
        raise InteropError(
            f"spec {spec.name!r}",
            [f"event {e!r} would shadow the model's attribute of that name" for e in clashes],
        )
    target_model.context = start.context
    target_model.version = start.version
    target_model.decision = None
    bridge = _Bridge(spec)
    states = [{"name": s, "final": s in spec.final} for s in spec.states]
    machine = machine_class(
        model=target_model,
        states=states,
        initial=start.state,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=True,
        prepare_event=[bridge.prepare],
        before_state_change=[bridge.apply],
        finalize_event=[bridge.finalize],
        name=spec.name,
    )
    for source in spec.states:
        for event in spec.allowed_events(source):
            # one machine transition per destination, None for internal rows (transitions'
            # own internal transitions: no exit or enter), in the order the rows are tried
            targets: list[str | None] = []
            for t in spec.candidates(source, event):
                if t.target not in targets:
                    targets.append(t.target)
            for target in targets:
                fires = _Fires(bridge, source if target is None else target, target is None)
                machine.add_transition(event, source, target, conditions=[fires])
    return machine


# --- from_machine --------------------------------------------------------------------------


@attrs.frozen
class MachineContext:
    """The context of a spec made by :func:`from_machine`: empty, since a ``transitions``
    model keeps its data in its own attributes, which the conditions read."""


@attrs.frozen
class _Row:
    event: str
    source: str
    dest: str | None  # None: internal
    conditions: tuple[tuple[object, bool], ...]


@attrs.frozen
class _Shape:
    name: str
    initial: str
    states: tuple[str, ...]
    flagged_final: frozenset[str]
    rows: tuple[_Row, ...]


def _ref_name(func: object) -> str:
    if isinstance(func, str):
        return func
    name = getattr(func, "__name__", None)
    return str(name) if name else repr(func)


def _state_name(state: object) -> str:
    if isinstance(state, Enum):
        return state.name
    return str(getattr(state, "name", state))


def _callbacks(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, str) or callable(value):
        return [value]
    items: Iterable[object] = value  # type: ignore[assignment]
    return list(items)


def _bridge_of(machine: Any) -> _Bridge | None:
    for cb in machine.prepare_event:
        owner = getattr(cb, "__self__", None)
        if isinstance(owner, _Bridge):
            return owner
    return None


def _shape_of_machine(machine: Any, auto_transitions: bool, problems: list[str]) -> _Shape:
    if isinstance(machine, HierarchicalMachine):
        problems.append(
            "nested states (HierarchicalMachine): a spec is flat; flatten the machine first"
        )
    if machine.send_event:
        problems.append(
            "send_event=True: conditions would receive EventData, which a spec has no "
            "counterpart for"
        )
    for hook in (
        "prepare_event",
        "before_state_change",
        "after_state_change",
        "finalize_event",
        "on_exception",
        "on_final",
    ):
        for cb in getattr(machine, hook, []):
            problems.append(f"machine callback {hook}={_ref_name(cb)!r} (a side effect)")
    names = [_state_name(s) for s in machine.states.values()]
    flagged = set()
    for state in machine.states.values():
        sname = _state_name(state)
        for hook in ("on_enter", "on_exit"):
            for cb in getattr(state, hook, []):
                problems.append(
                    f"state {sname!r} callback {hook}={_ref_name(cb)!r} (a side effect)"
                )
        if getattr(state, "timeout", 0):
            problems.append(f"state {sname!r} has a timeout (time is not part of a spec)")
        if getattr(state, "states", None):
            problems.append(f"state {sname!r} has nested states; a spec is flat")
        if getattr(state, "final", False):
            flagged.add(sname)
    rows = []
    for event_name, event in machine.events.items():
        if _is_auto(machine, event_name, event, names) and not auto_transitions:
            continue
        for source, trans_list in event.transitions.items():
            for trans in trans_list:
                where = f"transition {event_name!r} from {source!r}"
                for hook in ("prepare", "before", "after"):
                    for cb in getattr(trans, hook, []):
                        problems.append(
                            f"{where} callback {hook}={_ref_name(cb)!r} (a side effect)"
                        )
                dest = None if trans.dest is None else _state_name(trans.dest)
                conditions = tuple((c.func, bool(c.target)) for c in trans.conditions)
                rows.append(_Row(event_name, _state_name(source), dest, conditions))
    initial = machine.initial
    name = machine.name[:-2] if machine.name.endswith(": ") else machine.name
    return _Shape(
        name=name or "machine",
        initial=_state_name(initial) if initial is not None else "",
        states=tuple(names),
        flagged_final=frozenset(flagged),
        rows=tuple(rows),
    )


def _is_auto(machine: Any, event_name: str, event: Any, names: list[str]) -> bool:
    """Whether ``event`` is one of the ``to_<state>`` triggers ``auto_transitions`` adds."""
    if not machine.auto_transitions or not event_name.startswith("to_"):
        return False
    dest = event_name[3:]
    if dest not in names:
        return False
    for trans_list in event.transitions.values():
        for trans in trans_list:
            if trans.dest != dest or trans.conditions or trans.before or trans.after:
                return False
    return True


_MARKUP_KEYS = frozenset(
    {
        "states",
        "transitions",
        "initial",
        "name",
        "models",
        "auto_transitions",
        "send_event",
        "ignore_invalid_triggers",
        "queued",
        "model_attribute",
        "model_override",
        "before_state_change",
        "after_state_change",
        "prepare_event",
        "finalize_event",
        "on_exception",
        "on_final",
    }
)
_STATE_KEYS = frozenset(
    {"name", "on_enter", "on_exit", "ignore_invalid_triggers", "final", "tags", "label"}
)
_TRANSITION_KEYS = frozenset(
    {"trigger", "source", "dest", "conditions", "unless", "prepare", "before", "after", "label"}
)


def _shape_of_markup(
    markup: Mapping[str, Any], auto_transitions: bool, problems: list[str]
) -> _Shape:
    for key in sorted(set(markup) - _MARKUP_KEYS):
        problems.append(f"markup key {key!r} is not understood")
    if markup.get("send_event"):
        problems.append(
            "send_event=True: conditions would receive EventData, which a spec has no "
            "counterpart for"
        )
    for hook in (
        "prepare_event",
        "before_state_change",
        "after_state_change",
        "finalize_event",
        "on_exception",
        "on_final",
    ):
        for cb in _callbacks(markup.get(hook)):
            problems.append(f"machine callback {hook}={_ref_name(cb)!r} (a side effect)")
    names: list[str] = []
    flagged: set[str] = set()
    for raw in markup.get("states", []):
        state = {"name": raw} if not isinstance(raw, Mapping) else raw
        sname = _state_name(state.get("name"))
        names.append(sname)
        if "children" in state or "states" in state or "parallel" in state:
            problems.append(f"state {sname!r} has nested states; a spec is flat")
        if state.get("timeout"):
            problems.append(f"state {sname!r} has a timeout (time is not part of a spec)")
        for key in sorted(set(state) - _STATE_KEYS - {"children", "states", "parallel"}):
            if key in ("timeout", "on_timeout") and not state.get("timeout"):
                continue
            problems.append(f"state {sname!r}: key {key!r} is not understood")
        for hook in ("on_enter", "on_exit"):
            for cb in _callbacks(state.get(hook)):
                problems.append(
                    f"state {sname!r} callback {hook}={_ref_name(cb)!r} (a side effect)"
                )
        if state.get("final"):
            flagged.add(sname)
    rows = []
    for raw in markup.get("transitions", []):
        if isinstance(raw, Mapping):
            t = dict(raw)
        else:
            t = dict(zip(("trigger", "source", "dest"), raw, strict=False))
        event = str(t.get("trigger"))
        sources = t.get("source", "*")
        if sources == "*":
            sources = list(names)
        elif isinstance(sources, str | Enum):
            sources = [sources]
        for key in sorted(set(t) - _TRANSITION_KEYS):
            problems.append(f"transition {event!r}: key {key!r} is not understood")
        conditions = tuple((c, True) for c in _callbacks(t.get("conditions"))) + tuple(
            (c, False) for c in _callbacks(t.get("unless"))
        )
        for source in sources:
            sname = _state_name(source)
            where = f"transition {event!r} from {sname!r}"
            for hook in ("prepare", "before", "after"):
                for cb in _callbacks(t.get(hook)):
                    problems.append(f"{where} callback {hook}={_ref_name(cb)!r} (a side effect)")
            dest = t.get("dest")
            dname = None if dest is None else sname if dest == "=" else _state_name(dest)
            rows.append(_Row(event, sname, dname, conditions))
    if markup.get("auto_transitions") and auto_transitions:
        for dest in names:
            rows.extend(_Row(f"to_{dest}", s, dest, ()) for s in names)
    initial = markup.get("initial")
    return _Shape(
        name=str(markup.get("name") or "machine"),
        initial=_state_name(initial) if initial is not None else "",
        states=tuple(names),
        flagged_final=frozenset(flagged),
        rows=tuple(rows),
    )


def _resolve(func: object, model: object) -> Callable[[], Any]:
    """How ``transitions`` resolves a condition: a model attribute by name (called if
    callable, read if not), then a dotted import path; a callable is used as it is."""
    if not isinstance(func, str):
        if not callable(func):
            raise TypeError(f"condition {func!r} is neither a name nor callable")
        return func
    try:
        attr = getattr(model, func)
    except AttributeError:
        module_name, _, name = func.rpartition(".")
        if not module_name:
            raise
        module = __import__(module_name)
        for part in module_name.split(".")[1:]:
            module = getattr(module, part)
        target = getattr(module, name)
        return target  # type: ignore[no-any-return]
    if callable(attr):
        return attr  # type: ignore[no-any-return]
    return lambda: attr


def _condition_guard(func: object, wanted: bool, model: object) -> Guard:
    """A guard that holds when ``func`` (resolved against ``model`` at each call, as
    ``transitions`` does) returns something equal to ``wanted``; called with no arguments."""
    name = _ref_name(func)
    doc = inspect.getdoc(func) if callable(func) and not isinstance(func, str) else None
    if doc is None and isinstance(func, str):
        doc = inspect.getdoc(getattr(type(model), func, None)) if model is not None else None
    description = " ".join((doc or "").split("\n\n")[0].split())
    if not description:
        description = f"The machine's condition {name!r} holds."

    def holds(ctx: object, payload: object) -> bool:
        return bool(_resolve(func, model)() == wanted)

    holds.__name__ = name if wanted else f"not_{name}"
    if wanted:
        return Guard(holds, name=name, description=description)
    return Guard(holds, name=f"not {name}", description=f"Not: {description}")


def from_machine(
    machine_or_markup: transitions.Machine | Mapping[str, Any],
    *,
    model: object | None = None,
    name: str | None = None,
    version: int = 1,
    final: Iterable[str] | None = None,
    auto_transitions: bool = False,
    description: str = "",
) -> Spec:
    """A :class:`~statekernel.kernel.Spec` with the states and transitions of a
    ``transitions`` machine, or of a ``MarkupMachine``'s ``markup`` dict.

    - Each condition becomes a guard named after its callable (or the name given in the
      machine); each unless-condition a guard named ``not <name>``. Guards are evaluated as
      ``transitions`` would: against ``model`` (default: the machine's only model), called
      with no arguments, and compared with ``True`` (``False`` for unless).
    - Final states are ``final``; without it, the states flagged final in the machine plus
      every state without an outgoing transition (internal transitions are no way out).
    - The ``to_<state>`` triggers of ``auto_transitions`` are left out unless
      ``auto_transitions=True``. An internal transition (``dest=None``) becomes an internal
      transition (``target=None``); a reflexive one (``dest="="``) a transition back to its
      source.
    - The spec's context is the empty :class:`MachineContext`; its transitions take no
      payload and declare no roles (a machine has neither).

    Raises :class:`InteropError` listing everything that cannot be carried over: callbacks
    (``on_enter``, ``before``, ``after``, ``prepare``, machine-wide hooks), nested states,
    timeouts, ``send_event=True``, unknown markup keys, and conditions with no model to
    read. A machine made by :func:`to_machine` gives back its spec, unchanged. The result is
    then built like any spec, so a :class:`~statekernel.kernel.SpecError` names an
    unreachable state, a dead end or two unguarded transitions sharing a source and a
    trigger.
    """
    problems: list[str] = []
    is_machine = isinstance(machine_or_markup, transitions.Machine)
    if is_machine:
        machine: Any = machine_or_markup
        bridge = _bridge_of(machine)
        if bridge is not None:
            return _spec_of_bridge(machine, bridge)
        shape = _shape_of_machine(machine, auto_transitions, problems)
        if model is None:
            models = list(machine.models)
            model = models[0] if len(models) == 1 else None
    elif isinstance(machine_or_markup, Mapping):
        shape = _shape_of_markup(machine_or_markup, auto_transitions, problems)
    else:
        raise TypeError(
            f"from_machine takes a transitions.Machine or a markup dict, not "
            f"{type(machine_or_markup).__name__}"
        )
    if not shape.initial:
        problems.append("the machine has no initial state")
    if model is None and any(row.conditions for row in shape.rows):
        problems.append(
            "conditions need a model to be evaluated against: pass model= (a markup dict, or "
            "a machine with several models, does not say which)"
        )
    if problems:
        raise InteropError(f"machine {shape.name!r} cannot become a spec", problems)

    guards: dict[tuple[str, bool], Guard] = {}
    rows = []
    for row in shape.rows:
        row_guards = []
        for func, wanted in row.conditions:
            key = (_ref_name(func), wanted)
            if key not in guards:
                guards[key] = _condition_guard(func, wanted, model)
            row_guards.append(guards[key])
        rows.append(Transition(row.event, row.source, row.dest, guards=row_guards))
    if final is None:
        with_exit = {row.source for row in shape.rows if row.dest is not None}
        finals = [s for s in shape.states if s in shape.flagged_final or s not in with_exit]
    else:
        finals = list(final)
    return Spec(
        name=name or shape.name,
        version=version,
        context=MachineContext,
        initial=shape.initial,
        states=shape.states,
        final=finals,
        transitions=rows,
        description=description,
    )


def _spec_of_bridge(machine: Any, bridge: _Bridge) -> Spec:
    """The spec behind a machine made by :func:`to_machine`, provided nothing was added."""
    spec = bridge.spec
    expected = {
        (event, source, target)
        for source in spec.states
        for event in spec.allowed_events(source)
        for target in {t.target for t in spec.candidates(source, event)}
    }
    found = set()
    problems = []
    for event_name, event in machine.events.items():
        for source, trans_list in event.transitions.items():
            for trans in trans_list:
                found.add((event_name, source, trans.dest))
                if not all(isinstance(c.func, _Fires) for c in trans.conditions):
                    problems.append(f"transition {event_name!r} from {source!r} gained conditions")
                for hook in ("prepare", "before", "after"):
                    if getattr(trans, hook):
                        problems.append(f"transition {event_name!r} from {source!r} gained {hook}")
    for extra in sorted(found - expected, key=str):
        problems.append(f"transition {extra[0]!r} from {extra[1]!r} to {extra[2]!r} was added")
    for gone in sorted(expected - found, key=str):
        problems.append(f"transition {gone[0]!r} from {gone[1]!r} to {gone[2]!r} was removed")
    if [_state_name(s) for s in machine.states.values()] != list(spec.states):
        problems.append("the states changed")
    for state in machine.states.values():
        if state.on_enter or state.on_exit:
            problems.append(f"state {_state_name(state)!r} gained callbacks")
    if problems:
        raise InteropError(f"machine made from spec {spec.name!r} was changed since", problems)
    return spec
