"""The code generator: one template for the rows of a key, written out in two forms.

For a command whose event has rows out of the snapshot's state, ``decide`` runs the same
checks every time. Written as one general loop over the rows (:mod:`.reference`), most of the
time goes to the loop itself: reading the parts of each row, testing for parts it does not
have, looping over one-element tuples. So when a spec is built, :func:`_rows_source` writes the
straight-line source of exactly the checks a key's rows need, with the guard, update,
invariant and effect functions bound as names of the generated function's namespace, in one
of two forms:

- :func:`decider`, the deciding function of a key, which ``decide`` calls: the actor check,
  then per row its roles, payload, guards, update and its type, the invariants and the
  effects, returning the :class:`~statekernel.kernel.Decision` (rejections built by
  :mod:`.rejections`, the ``Accepted`` by :mod:`.accepted`);
- :func:`probe`, the explorer's form, for the rows of a key that a move's actor and payload
  pass: the same guards, update, invariants and effects in the same order, recording where
  each guard was first true and false; it returns ``(target, new context)`` or ``None`` (see
  :data:`~.compile.Probe`) and, instead of building a rejection, lets an exception raised by
  user code through or raises :class:`Irregular`, so the explorer asks ``decide`` for the
  decision.

Both forms come from the same template, so a rule of a decision is written once; only what an
outcome does differs (:class:`_Decider`, :class:`_Probe`). The decider keeps ``decide``'s
contract to the letter, which the differential and agreement tests check against the reference
loop: every exception raised by user code a ``spec_fault``, and a guard or invariant that
returns anything but a bool a ``spec_fault`` too. For a row with one guard, an update and the
spec's one invariant, the decider reads::

    def decider(snapshot, command, event, state):
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
        except Exception as exc:  # the payload class's own validators said no
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
        ...  # the Accepted, its snapshot and its audit record (see accepted_source)
        return acc

and its probe::

    def probe(ctx, payload, command, node, move, guard_true, guard_false, fired_at):
        # spec.transitions[0]
        ok = guard_0_0(ctx, payload)
        if ok is not True:
            if ok is not False:
                raise Irregular
            if guard_false[0] is None:
                guard_false[0] = (node, move)
            return None
        if guard_true[0] is None:
            guard_true[0] = (node, move)
        ...  # the update and its type check, each invariant, each effect
        if fired_at[0] < 0:
            fired_at[0] = node
        return (target_0, new_ctx)
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._codec import PayloadError, UnsupportedType, unstructure
from .._model import Actor, Message
from . import rejections
from .accepted import accepted_source
from .source import define, indent

if TYPE_CHECKING:
    from .._spec import Invariant
    from .compile import Compiled, Decider, Probe, Row

__all__ = ["Irregular", "decider", "probe"]


class Irregular(Exception):
    """Raised by a probe that met what only ``decide`` may judge: a guard or an invariant that
    returned a non-bool, a broken invariant, an update or an effect that built the wrong type.
    (What user code raises, and what :func:`unstructure` raises for effect data that is not
    plain, goes through a probe as it is.)"""


_SHARED: dict[str, Any] = {
    **{name: getattr(rejections, name) for name in rejections.__all__},
    "Actor": Actor,
    "Irregular": Irregular,
    "Mapping": Mapping,
    "Message": Message,
    "PayloadError": PayloadError,
    "UnsupportedType": UnsupportedType,
    "unstructure": unstructure,
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
"""The locals of a decider that :func:`accepted_source` builds the result from."""


class _Form(abc.ABC):
    """What each outcome of a row becomes in one form of generated function. The template
    (:func:`_rows_source`) says where the outcomes are; a form says what they do."""

    checks_roles_and_payload = True
    """Whether the form checks each row's roles and payload (the probe's rows passed them)."""

    def __init__(self, several: bool, ns: dict[str, Any]) -> None:
        self.several = several
        self.ns = ns

    @abc.abstractmethod
    def head(self) -> list[str]:
        """The ``def`` line and what comes before the first row."""

    @abc.abstractmethod
    def call(self, var: str, call: str, fault: str, catch: str = "Exception") -> list[str]:
        """``var = call``; when it raises ``catch``, the fault ``fault`` (an expression that
        may read ``exc``)."""

    @abc.abstractmethod
    def fault(self, expr: str) -> list[str]:
        """The spec is wrong here: the rejection ``expr``."""

    @abc.abstractmethod
    def gives_way(self, expr: str, level: int, k: int) -> list[str]:
        """Row ``k`` does not fire: the soft rejection ``expr``, which got as far as ``level``
        (0 roles, 1 payload, 2 guards)."""

    def guard_seen(self, k: int, row: Row, j: int, outcome: str) -> list[str]:
        """Guard ``j`` of row ``k`` returned ``True`` or ``False`` (``outcome``)."""
        return []

    def message(self, k: int, j: int, data: str) -> list[str]:
        """Effect ``j`` of row ``k`` built the plain data ``data``."""
        return []

    @abc.abstractmethod
    def fires(self, k: int, row: Row, messages: list[str]) -> list[str]:
        """Row ``k`` fires, with the effects ``messages`` (the names of its built messages)."""

    @abc.abstractmethod
    def tail(self, rows: Sequence[Row]) -> list[str]:
        """After every row gave way."""


class _Decider(_Form):
    def head(self) -> list[str]:
        lines = [
            "def decider(snapshot, command, event, state):",
            "    actor = command.actor",
            "    if actor is not None and type(actor) is not Actor"
            " and not isinstance(actor, Actor):",
            "        return not_an_actor(actor, event)",
            "    ctx = snapshot.context",
            "    raw = command.payload",
        ]
        return [*lines, "    best = None", "    level = 0"] if self.several else lines

    def call(self, var: str, call: str, fault: str, catch: str = "Exception") -> list[str]:
        return ["try:", f"    {var} = {call}", f"except {catch} as exc:", f"    return {fault}"]

    def fault(self, expr: str) -> list[str]:
        return [f"return {expr}"]

    def gives_way(self, expr: str, level: int, k: int) -> list[str]:
        if not self.several:
            return [f"return {expr}"]
        if level == 0:
            return ["break"]  # `forbidden` is built at the end, with every row's roles
        keep = [f"best = {expr}", f"level = {level}"]
        if k == 0:  # nothing got further yet
            return [*keep, "break"]
        return [f"if level < {level}:", *indent(keep), "break"]

    def message(self, k: int, j: int, data: str) -> list[str]:
        return [f"message_{j} = Message(effect_name_{k}_{j}, {data})"]

    def fires(self, k: int, row: Row, messages: list[str]) -> list[str]:
        lines, names = accepted_source({**_ACCEPTED_VALUES, "target": f"target_{k}"})
        self.ns.update(names)
        return [
            f"effects = ({', '.join(messages)},)" if messages else "effects = ()",
            "version = snapshot.version + 1",
            "at = command.at",
            *lines,
            "return acc",
        ]

    def tail(self, rows: Sequence[Row]) -> list[str]:
        self.ns["roles_all"] = frozenset().union(*(r.roles for r in rows))
        return [
            "    if best is None:  # every row stopped at its roles",
            "        return forbidden(event, roles_all, actor)",
            "    return best",
        ]


class _Probe(_Form):
    checks_roles_and_payload = False

    def __init__(self, several: bool, ns: dict[str, Any], after: int) -> None:
        super().__init__(several, ns)
        self.after = after

    def head(self) -> list[str]:
        return ["def probe(ctx, payload, command, node, move, guard_true, guard_false, fired_at):"]

    def call(self, var: str, call: str, fault: str, catch: str = "Exception") -> list[str]:
        return [f"{var} = {call}"]  # what it raises reaches the explorer, which asks decide

    def fault(self, expr: str) -> list[str]:
        return ["raise Irregular"]

    def gives_way(self, expr: str, level: int, k: int) -> list[str]:
        return ["break"] if self.several else ["return None"]

    def guard_seen(self, k: int, row: Row, j: int, outcome: str) -> list[str]:
        slot = row.first_slot + j + (self.after if k else 0)
        seen = "guard_true" if outcome == "True" else "guard_false"
        return [f"if {seen}[{slot}] is None:", f"    {seen}[{slot}] = (node, move)"]

    def fires(self, k: int, row: Row, messages: list[str]) -> list[str]:
        i = row.index
        return [
            f"if fired_at[{i}] < 0:",
            f"    fired_at[{i}] = node",
            f"return (target_{k}, new_ctx)",
        ]

    def tail(self, rows: Sequence[Row]) -> list[str]:
        return ["    return None"]


def _rows_source(
    form: _Form, rows: Sequence[Row], invariants: Sequence[Invariant], state: str
) -> list[str]:
    """The template: the source of one generated function for ``rows``, in ``form``, binding
    what it needs in ``form.ns``. A row reading the command gets ``command`` as the third
    argument of its guards or update. One row becomes straight-line code; several become one
    block each, ``while True: ... break``, which a row that gives way leaves for the next."""
    ns = form.ns
    lines = form.head()
    for k, row in enumerate(rows):
        body: list[str] = []
        if form.checks_roles_and_payload:
            if row.roles:
                ns[f"roles_{k}"] = row.roles
                body += [
                    f"if actor is None or roles_{k}.isdisjoint(actor.roles):",
                    *indent(form.gives_way(f"forbidden(event, roles_{k}, actor)", 0, k)),
                ]
            if row.structure is None:
                body += [
                    "if raw is None or (isinstance(raw, Mapping) and not raw):",
                    "    payload = None",
                    "else:",
                    *indent(form.gives_way("no_payload(event, raw)", 1, k)),
                ]
            else:
                ns[f"structure_{k}"] = row.structure
                body += [
                    "try:",
                    f"    payload = structure_{k}(raw)",
                    "except PayloadError as exc:",
                    *indent(form.gives_way("invalid_payload(event, exc.field, exc.reason)", 1, k)),
                    "except Exception as exc:  # the payload class's own validators said no",
                    *indent(form.gives_way('invalid_payload(event, "", str(exc))', 1, k)),
                ]
        for j, g in enumerate(row.guards):
            ns[f"guard_{k}_{j}"] = g.fn
            ns[f"guard_obj_{k}_{j}"] = g
            args = "ctx, payload, command" if g.reads_command else "ctx, payload"
            body += [
                *form.call("ok", f"guard_{k}_{j}({args})", f"guard_raised(guard_obj_{k}_{j}, exc)"),
                "if ok is not True:",
                "    if ok is not False:",
                *indent(form.fault(f"guard_returned(guard_obj_{k}_{j}, ok)"), 8),
                *indent(form.guard_seen(k, row, j, "False")),
                *indent(form.gives_way(f"guard_rejected(guard_obj_{k}_{j}, event, state)", 2, k)),
                *form.guard_seen(k, row, j, "True"),
            ]
        if row.update is not None:
            ns[f"update_{k}"] = row.update
            args = "ctx, payload, command" if row.update_reads_command else "ctx, payload"
            body += [
                *form.call("new_ctx", f"update_{k}({args})", "update_raised(event, exc)"),
                "if type(new_ctx) is not context and not isinstance(new_ctx, context):",
                *indent(form.fault("update_returned(event, new_ctx, context)")),
            ]
        else:
            body.append("new_ctx = ctx")
        ns[f"target_{k}"] = state if row.target is None else row.target
        for j, inv in enumerate(invariants):
            ns[f"invariant_{j}"] = inv.fn
            ns[f"invariant_obj_{j}"] = inv
            body += [
                *form.call(
                    "ok",
                    f"invariant_{j}(target_{k}, new_ctx)",
                    f"invariant_raised(invariant_obj_{j}, exc)",
                ),
                "if ok is not True:",
                *indent(form.fault(f"broken(invariant_obj_{j}, ok, event, state, target_{k})")),
            ]
        messages = []
        for j, e in enumerate(row.effects):
            ns[f"effect_name_{k}_{j}"] = e.name
            if e.build is None:
                body += form.message(k, j, "{}")
            else:
                ns[f"effect_{k}_{j}"] = e.build
                ns[f"effect_obj_{k}_{j}"] = e
                body += [
                    *form.call(
                        "data",
                        f"effect_{k}_{j}(new_ctx, payload)",
                        f"effect_raised(effect_obj_{k}_{j}, exc)",
                    ),
                    "if not isinstance(data, Mapping):",
                    *indent(form.fault(f"effect_built(effect_obj_{k}_{j}, data)")),
                    # plain data, as every store keeps it
                    *form.call(
                        "data",
                        "unstructure(data)",
                        f"effect_not_plain(effect_obj_{k}_{j}, exc)",
                        catch="UnsupportedType",
                    ),
                    *form.message(k, j, "data"),
                ]
            messages.append(f"message_{j}")
        body += form.fires(k, row, messages)
        lines.append(f"    # spec.transitions[{row.index}]")
        if form.several:
            lines += ["    while True:", *indent(body, 8)]
        else:
            lines += indent(body)
    if form.several:
        lines += form.tail(rows)
    return lines


def decider(
    rows: Sequence[Row], invariants: Sequence[Invariant], context: type, state: str, label: str
) -> Decider:
    """The generated deciding function for ``rows``, the rows of one key (or of several keys
    sharing them; ``state`` is the key's state, the target of its internal rows), its file
    named after ``label`` (``enrollment:draft/attach``)."""
    ns: dict[str, Any] = {**_SHARED, "context": context}
    form = _Decider(len(rows) > 1, ns)
    lines = _rows_source(form, rows, invariants, state)
    return define(  # type: ignore[no-any-return]
        lines,
        ns,
        name="decider",
        label=label,
        doc=f"Decides {label}: generated by statekernel when the spec was built.",
        module=__name__,
    )


def probe(compiled: Compiled, state: str, event: str, rows: Sequence[Row]) -> Probe:
    """The generated probe for ``rows``, some of the rows of the key ``(state, event)``."""
    ns: dict[str, Any] = {**_SHARED, "context": compiled.context}
    form = _Probe(len(rows) > 1, ns, after=len(compiled.guard_slots))
    lines = _rows_source(form, rows, compiled.invariants, state)
    label = f"{compiled.name}:{state}/{event} probe of {','.join(str(r.index) for r in rows)}"
    return define(  # type: ignore[no-any-return]
        lines,
        ns,
        name="probe",
        label=label,
        doc=f"The explorer's probe of {label}: generated by statekernel.",
        module=__name__,
    )
