"""Everything that affects the state machine lives here: the spec as data.

A :class:`Spec` is built from states, :class:`Transition` rows, :func:`guard` and
:func:`invariant` predicates. Building it validates the whole definition and reports every
problem at once in a :class:`~statekernel.kernel.SpecError`; a spec that exists is well
formed. Building also compiles it for deciding, into one object (see :mod:`._decision`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from ._codec import PayloadError, UnsupportedType, structurer_for, unstructure
from ._decision.compile import Compiled, compile_spec, reads_command
from ._errors import Problem, SpecError
from ._model import Snapshot

__all__ = [
    "Effect",
    "Guard",
    "Invariant",
    "Spec",
    "Transition",
    "guard",
    "invariant",
]


def _first_paragraph(doc: str | None) -> str:
    if not doc:
        return ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def _name_of(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__name__", None) or type(fn).__name__)


def _name_and_describe(predicate: Guard | Invariant, fn: Callable[..., Any]) -> None:
    """Default a predicate's name to its function's and its description to the first
    paragraph of the function's docstring."""
    if not predicate.name:
        object.__setattr__(predicate, "name", _name_of(fn))
    if not predicate.description:
        object.__setattr__(predicate, "description", _first_paragraph(fn.__doc__))


@attrs.frozen(repr=False)
class Guard:
    """A named, documented predicate that must hold for a transition to fire. Make one with
    the :func:`guard` decorator; the docstring is its description, shown in rejections, docs
    and diagrams.

    The predicate takes ``(ctx, payload)``, or ``(ctx, payload, command)`` when the rule needs
    who sent the command or when (a four-eyes rule compares ``command.actor.id`` with the
    actor recorded in the context; a deadline compares ``command.at``). Which one is read from
    the function's signature when the guard is made (:attr:`reads_command`). Either way it is
    pure: the command is input, like the payload, never a clock.
    """

    fn: Callable[..., bool]
    name: str = attrs.field(default="")
    description: str = attrs.field(default="")
    reads_command: bool = attrs.field(init=False, default=False)
    """Whether :attr:`fn` takes the command as its third argument."""

    def __attrs_post_init__(self) -> None:
        _name_and_describe(self, self.fn)
        object.__setattr__(self, "reads_command", reads_command(self.fn))

    def __call__(self, ctx: Any, payload: Any, command: Any = None) -> bool:
        if self.reads_command:
            return self.fn(ctx, payload, command)
        return self.fn(ctx, payload)

    def negated(self) -> Guard:
        """The guard that holds exactly when this one does not (named ``not <name>``); it
        reads the command when this one does."""
        fn = self.fn
        negation: Callable[..., bool]
        if self.reads_command:

            def negation(ctx: Any, payload: Any, command: Any) -> bool:
                return not fn(ctx, payload, command)

        else:

            def negation(ctx: Any, payload: Any) -> bool:
                return not fn(ctx, payload)

        desc = f"Not: {self.description}" if self.description else ""
        return Guard(negation, name=f"not {self.name}", description=desc)

    def __repr__(self) -> str:
        return f"<guard {self.name}>"


@attrs.frozen(repr=False)
class Invariant:
    """A named, documented predicate ``(state, ctx) -> bool`` that every snapshot of the spec
    must satisfy. Make one with the :func:`invariant` decorator."""

    fn: Callable[[str, Any], bool]
    name: str = attrs.field(default="")
    description: str = attrs.field(default="")

    def __attrs_post_init__(self) -> None:
        _name_and_describe(self, self.fn)

    def __call__(self, state: str, ctx: Any) -> bool:
        return self.fn(state, ctx)

    def __repr__(self) -> str:
        return f"<invariant {self.name}>"


def guard(fn: Callable[..., bool]) -> Guard:
    """Decorator: turn ``def name(ctx, payload) -> bool`` (or ``def name(ctx, payload,
    command) -> bool``) into a :class:`Guard`."""
    return Guard(fn)


def invariant(fn: Callable[[str, Any], bool]) -> Invariant:
    """Decorator: turn ``def name(state, ctx) -> bool`` into an :class:`Invariant`."""
    return Invariant(fn)


@attrs.frozen
class Effect:
    """A message a transition emits when it fires, for other systems (email, ledger, queue).

    ``build(ctx, payload)`` returns the message's data from the *new* context and the payload;
    without it the message carries no data. It does not take the command: a message that
    names who acted or when reads it from the new context, where an update that takes the
    command recorded it. Accepted decisions return the built messages as
    data; stores write them to their outbox in the same transaction. The effects of one
    transition have distinct names, so ``(entity, version, name)`` identifies a message.
    """

    name: str
    build: Callable[[Any, Any], Mapping[str, Any]] | None = None


def _name(value: Any) -> Any:
    """A state, event or role name as a plain ``str`` (a ``StrEnum`` member becomes its
    value); anything else is left for validation to report."""
    if isinstance(value, str) and type(value) is not str:
        return str.__str__(value)
    return value


def _target(value: Any) -> Any:
    """A target state name as a plain ``str``, or ``None`` (an internal transition)."""
    return None if value is None else _name(value)


def _tuple_of_str(value: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (_name(value),)
    return tuple(_name(v) for v in value)


def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


@attrs.frozen
class Transition:
    """One row of the state table: ``event`` moves an entity from ``source`` to ``target``.

    - ``source``: a state or a list of states.
    - ``target``: the state the entity moves to, or ``None`` for an *internal* transition:
      the entity stays in the state it was in (whichever of the sources), its context may
      change. Final states admit internal transitions (a repeated close that changes
      nothing, say), never a way out.
    - ``guards``: :class:`Guard` predicates ``(ctx, payload)`` or ``(ctx, payload,
      command)``; all must hold.
    - ``update``: ``(ctx, payload) -> ctx``, the new context (default: unchanged); or
      ``(ctx, payload, command) -> ctx`` when the new context records who sent the command
      or when (``command.actor.id``, ``command.at``), as guards do.
    - ``payload``: an attrs class; dict payloads are structured into it strictly. ``None``
      means the event takes no payload.
    - ``roles``: the actor must hold one of them; an empty list means anyone may fire it.
    - ``effects``: :class:`Effect` messages emitted when it fires.
    - ``examples``: finite sample payloads, used by the explorer.
    """

    event: str = attrs.field(converter=_name)
    source: tuple[str, ...] = attrs.field(converter=_tuple_of_str)
    target: str | None = attrs.field(converter=_target)
    guards: tuple[Guard, ...] = attrs.field(default=(), converter=_tuple, kw_only=True)
    update: Callable[..., Any] | None = attrs.field(default=None, kw_only=True)
    payload: type | None = attrs.field(default=None, kw_only=True)
    roles: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str, kw_only=True)
    effects: tuple[Effect, ...] = attrs.field(default=(), converter=_tuple, kw_only=True)
    examples: tuple[Any, ...] = attrs.field(default=(), converter=_tuple, kw_only=True)
    description: str = attrs.field(default="", kw_only=True)

    @property
    def internal(self) -> bool:
        """Whether the transition is internal (``target`` is ``None``)."""
        return self.target is None

    def target_from(self, state: str) -> str:
        """The state the entity is in after this transition fires from ``state``: the target,
        or ``state`` itself for an internal transition."""
        return state if self.target is None else self.target

    @property
    def reads_command(self) -> bool:
        """Whether a guard or the update takes the command (``(ctx, payload, command)``)."""
        return any(isinstance(g, Guard) and g.reads_command for g in self.guards) or (
            reads_command(self.update)
        )

    def label(self) -> str:
        """``transition 'e' (a, b -> c)``, or ``transition 'e' (a, b, internal)``: how problems
        and tables name this transition."""
        where = ", ".join(self.source)
        if self.target is None:
            return f"transition {self.event!r} ({where}, internal)"
        return f"transition {self.event!r} ({where} -> {self.target})"


def _accepts_args(fn: object, count: int) -> str | None:
    """None when ``fn`` can be called with ``count`` positional arguments, else why not."""
    if not callable(fn):
        return f"{fn!r} is not callable"
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # builtins without a signature: trust them
    try:
        sig.bind(*([None] * count))
    except TypeError as exc:
        return f"cannot be called with {count} arguments {sig}: {exc}"
    return None


@attrs.frozen
class Spec:
    """A workflow, declared as data.

    Building a spec validates it; every problem is reported at once in a
    :class:`~statekernel.kernel.SpecError`. Two transitions may share ``(source, event)`` only
    when guards separate them: they are tried in declaration order, and only the last may be
    unguarded (the fallback).

    Rows sharing ``(state, event)`` are tried in declaration order and the first that passes
    fires; when none passes, the rejection names the culprit of the row that got furthest
    (past its roles to the payload, past its payload to a guard), and a ``forbidden``
    rejection lists the roles of every row.

    Building also compiles the spec for ``decide`` (lookup tables and one generated deciding
    function per state and event), so a spec must not be changed after it is built: derive a
    new one with ``attrs.evolve`` instead.
    """

    name: str
    version: int
    context: type
    initial: str = attrs.field(converter=_name)
    states: tuple[str, ...] = attrs.field(converter=_tuple_of_str)
    final: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    transitions: tuple[Transition, ...] = attrs.field(default=(), converter=_tuple)
    invariants: tuple[Invariant, ...] = attrs.field(default=(), converter=_tuple)
    description: str = ""

    _compiled: Compiled = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        problems = _validate(self)
        if problems:
            raise SpecError(str(self.name), problems)
        object.__setattr__(self, "_compiled", compile_spec(self))

    # --- public helpers ------------------------------------------------------------------

    def start(self) -> Snapshot:
        """The snapshot every new entity begins with: the initial state, the default context
        and version 0."""
        return Snapshot(self.initial, self.context(), 0)

    @property
    def events(self) -> frozenset[str]:
        """Every event name the spec knows."""
        return self._compiled.events

    def allowed_events(self, state: str) -> tuple[str, ...]:
        """The events that have a transition out of ``state``, sorted."""
        return self._compiled.allowed.get(state, ())

    def candidates(self, state: str, event: str) -> tuple[Transition, ...]:
        """The transitions ``event`` may take from ``state``, in the order they are tried."""
        return tuple(r.transition for r in self._compiled.rows.get((state, event), ()))

    def payload_type(self, state: str, event: str) -> type | None:
        """The payload type of ``event`` from ``state`` (``None`` if it takes none)."""
        return self._compiled.payload_types.get((state, event))

    def structure_payload(self, state: str, event: str, data: object) -> Any:
        """Structure plain payload data for ``event`` from ``state`` strictly (raises
        :class:`~statekernel.kernel.PayloadError` when it does not fit)."""
        rows = self._compiled.rows.get((state, event))
        if not rows or rows[0].structure is None:
            if data is None or (isinstance(data, Mapping) and not data):
                return None
            raise PayloadError("this event takes no payload")
        return rows[0].structure(data)

    def structure_context(self, data: object) -> Any:
        """Structure plain context data (as stored) into the context type strictly."""
        return self._compiled.context_structure(data)

    def context_problem(self, ctx: object) -> str | None:
        """Why ``ctx`` cannot be stored and read back exactly, or ``None`` when it can.

        ``decide`` trusts an update to return a context of the declared field types; the
        stores and the explorer check it with this (a string where an ``int`` is declared, a
        ``NaN``, a list in an ``Any`` field that would come back as a tuple...)."""
        if type(ctx) is self.context:
            # the compiled checker: the same answer as the round trip below, without building
            # the plain form and a copy when every field holds a value of its exact type
            try:
                self._compiled.context_check(ctx)
            except PayloadError as exc:
                where = f"field {exc.field!r}: " if exc.field else ""
                return f"{where}{exc.reason}"
            return None
        if not isinstance(ctx, self.context):
            return f"it is a {type(ctx).__name__}, not a {self.context.__name__}"
        try:
            back = self.structure_context(unstructure(ctx))
        except UnsupportedType as exc:
            return f"it holds a value that is not plain data: {exc}"
        except PayloadError as exc:
            where = f"field {exc.field!r}: " if exc.field else ""
            return f"{where}{exc.reason}"
        if back != ctx:
            return "it does not read back equal from plain data (check fields typed Any)"
        return None

    def is_final(self, state: str) -> bool:
        """Whether ``state`` is one of the final states."""
        return state in self.final


def _validate(spec: Spec) -> list[Problem]:
    problems: list[Problem] = []

    def add(culprit: str, message: str) -> None:
        problems.append(Problem(culprit, message))

    if not isinstance(spec.name, str) or not spec.name:
        add("spec name", f"must be a non-empty string, got {spec.name!r}")
    if not isinstance(spec.version, int) or isinstance(spec.version, bool) or spec.version < 0:
        add("spec version", f"must be a non-negative int, got {spec.version!r}")

    # context type
    ctx_ok = False
    if not (isinstance(spec.context, type) and attrs.has(spec.context)):
        add("context", f"must be an attrs class, got {spec.context!r}")
    else:
        try:
            structurer_for(spec.context)
        except UnsupportedType as exc:
            add(f"context {spec.context.__qualname__}", str(exc))
        try:
            default_ctx = spec.context()
            ctx_ok = True
        except Exception as exc:
            add(
                f"context {spec.context.__qualname__}",
                f"must be constructible with no arguments (give every field a default): {exc}",
            )
        if ctx_ok and attrs.fields(spec.context):
            first = attrs.fields(spec.context)[0].name
            try:
                setattr(default_ctx, first, getattr(default_ctx, first))
                add(
                    f"context {spec.context.__qualname__}",
                    "must be frozen (use @attrs.frozen) so snapshots cannot change behind the "
                    "kernel's back",
                )
            except attrs.exceptions.FrozenInstanceError:
                pass

    # states
    seen: set[str] = set()
    for s in spec.states:
        if not isinstance(s, str) or not s:
            add(f"state {s!r}", "state names must be non-empty strings")
        elif s in seen:
            add(f"state {s!r}", "declared more than once")
        seen.add(s)
    states = set(spec.states)
    if spec.initial not in states:
        add(f"initial {spec.initial!r}", f"is not a declared state (states: {sorted(states)})")
    for f in spec.final:
        if f not in states:
            add(f"final state {f!r}", "is not a declared state")

    # transitions
    by_key: dict[tuple[str, str], list[Transition]] = {}
    for t in spec.transitions:
        if not isinstance(t, Transition):
            add(f"transition {t!r}", "is not a Transition")
            continue
        label = t.label()
        if not isinstance(t.event, str) or not t.event:
            add(label, "the event name must be a non-empty string")
        if not t.source:
            add(label, "has no source state")
        for s in t.source:
            if s not in states:
                add(label, f"unknown source state {s!r}")
            elif s in spec.final and t.target is not None:
                add(
                    label,
                    f"leaves final state {s!r}; final states have no way out (an internal "
                    "transition, target=None, may stay in one)",
                )
        if t.target is not None and t.target not in states:
            add(label, f"unknown target state {t.target!r}")
        for s in t.source:
            by_key.setdefault((s, t.event), []).append(t)
        if t.payload is not None:
            if not (isinstance(t.payload, type) and attrs.has(t.payload)):
                add(label, f"payload type {t.payload!r} is not an attrs class")
            else:
                try:
                    structure = structurer_for(t.payload)
                except UnsupportedType as exc:
                    add(label, f"payload type: {exc}")
                else:
                    for i, ex in enumerate(t.examples):
                        try:
                            structure(ex)
                        except PayloadError as exc:
                            where = f" field {exc.field!r}" if exc.field else ""
                            add(label, f"example #{i} does not fit the payload{where}: {exc}")
        elif t.examples and any(ex is not None for ex in t.examples):
            add(label, "has payload examples but no payload type")
        for g in t.guards:
            if not isinstance(g, Guard):
                add(
                    label,
                    f"guard {getattr(g, '__name__', g)!r} must be decorated with @guard "
                    "(named and documented)",
                )
            elif not g.reads_command:
                why = _accepts_args(g.fn, 2)
                if why:
                    add(
                        f"{label} guard {g.name!r}",
                        f"a guard takes (ctx, payload) or (ctx, payload, command); {why}",
                    )
        if t.update is not None and not reads_command(t.update):
            why = _accepts_args(t.update, 2)
            if why:
                add(
                    f"{label} update",
                    f"an update takes (ctx, payload) or (ctx, payload, command); {why}",
                )
        effect_names: set[str] = set()
        for e in t.effects:
            if not isinstance(e, Effect):
                add(label, f"effect {e!r} must be an Effect")
                continue
            if e.name in effect_names:
                add(
                    f"{label} effect {e.name!r}",
                    "is emitted twice by one transition; give each message its own name "
                    "(consumers tell outbox messages apart by entity, version and name)",
                )
            effect_names.add(e.name)
            if e.build is not None:
                why = _accepts_args(e.build, 2)
                if why:
                    add(f"{label} effect {e.name!r}", f"build takes (ctx, payload); {why}")
        for r in t.roles:
            if not isinstance(r, str) or not r:
                add(label, f"role {r!r} must be a non-empty string")

    for (s, event), ts in by_key.items():
        if len(ts) < 2:
            continue
        where = f"event {event!r} from state {s!r}"
        for t in ts[:-1]:
            if not t.guards:
                add(
                    where,
                    f"{len(ts)} transitions and an unguarded one ({t.label()}) is not last, so "
                    "the ones after it can never fire; add guards to separate them",
                )
                break
        guard_sets = [frozenset(g.name for g in t.guards if isinstance(g, Guard)) for t in ts]
        if len(set(guard_sets)) < len(guard_sets):
            add(where, "two transitions have the same guards, so nothing separates them")
        if len({t.payload for t in ts}) > 1:
            add(where, "transitions sharing a source and an event must share the payload type")

    # invariants
    for inv in spec.invariants:
        if not isinstance(inv, Invariant):
            add(f"invariant {inv!r}", "must be decorated with @invariant (named and documented)")
            continue
        why = _accepts_args(inv.fn, 2)
        if why:
            add(f"invariant {inv.name!r}", f"an invariant takes (state, ctx); {why}")
        elif ctx_ok and spec.initial in states:
            try:
                ok = inv.fn(spec.initial, spec.context())
            except Exception as exc:
                add(f"invariant {inv.name!r}", f"raised on the initial snapshot: {exc!r}")
            else:
                if ok is not True:
                    add(
                        f"invariant {inv.name!r}", f"does not hold on the initial snapshot ({ok!r})"
                    )

    # graph shape: reachability and ways out (an internal transition is neither)
    if spec.initial in states:
        edges: dict[str, set[str]] = {}
        for t in spec.transitions:
            if isinstance(t, Transition) and t.target is not None:
                for s in t.source:
                    edges.setdefault(s, set()).add(t.target)
        reached = {spec.initial}
        frontier = [spec.initial]
        while frontier:
            for nxt in edges.get(frontier.pop(), ()):
                if nxt not in reached:
                    reached.add(nxt)
                    frontier.append(nxt)
        for s in spec.states:
            if isinstance(s, str) and s not in reached:
                add(f"state {s!r}", f"is unreachable from the initial state {spec.initial!r}")
        for s in spec.states:
            if s not in spec.final and not edges.get(s):
                add(
                    f"state {s!r}",
                    "is not final and has no outgoing transition (a dead end); "
                    "add a transition out or declare it final",
                )
    return problems
