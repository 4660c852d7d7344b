"""The one trace format shared by the explorer, the fuzzer and the diagrams.

A :class:`Trace` is a numbered list of :class:`TraceStep` (what was sent, to which entity, by
whom, what the network did with it and the state it left behind) plus the property that
failed. It converts to and from JSON (``"format": "statekernel-trace/1"``), prints as numbered
steps, and replays through the pure kernel, so a counterexample becomes a one-line regression
test::

    def test_no_overbooking_regression():
        assert_trace_passes(SPEC, "tests/traces/overbooking.json")
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from ._errors import StatekernelError
from ._model import Accepted, Actor, Command, Decision, Rejected, Snapshot
from ._plan import KeyRecord, plan
from ._serial import actor_from_data, actor_to_data, plain
from ._spec import Spec

__all__ = [
    "TRACE_FORMAT",
    "VIOLATION_CODES",
    "ReplayResult",
    "Trace",
    "TraceMismatch",
    "TraceStep",
    "assert_trace_passes",
    "check_trace_spec",
    "replay_trace",
    "violation_property",
]

TRACE_FORMAT = "statekernel-trace/1"
"""The ``format`` field of every trace written as JSON."""

VIOLATION_CODES = frozenset({"invariant_violated", "spec_fault"})
"""Decisions that mean the *spec* is wrong: its guards let through what its invariants forbid,
or its own code failed."""

_SENDING_ACTIONS = frozenset({"send", "deliver", "duplicate", "retry", "lose_reply"})

_ACTION_WORDS = {
    "lose_reply": "reply lost:",
    "hold": "sent, delayed in the network:",
}


class TraceMismatch(StatekernelError, ValueError):
    """A trace that does not belong to the spec it is replayed or drawn on: it names another
    spec, or one of its steps takes a transition the spec does not have. ``step`` is the
    1-based step number (``None`` when the whole trace is at fault)."""

    def __init__(self, message: str, step: int | None = None) -> None:
        super().__init__(message if step is None else f"step {step}: {message}")
        self.step = step


@attrs.frozen
class TraceStep:
    """One step of a trace.

    ``action`` says what happened on the network: ``send`` (the command reaches the kernel),
    ``duplicate`` / ``retry`` (the same request again under the same key), ``deliver`` (a
    delayed request finally arrives), ``lose_reply`` (the command reaches the kernel and
    commits, but the client never sees the answer), ``hold`` (the request is sent but the
    network delays it; it reaches nothing yet), ``crash`` (the store restarts; no command).
    ``state`` is
    the entity's state after the step, ``code`` the rejection code (``None`` when accepted),
    ``changed`` the context fields this step changed, as plain data. ``at`` is the time the
    command carried (``None`` when it carried none), so guards and updates that read it
    replay alike.
    """

    event: str | None = None
    payload: Any = None
    state: str | None = None
    entity: str = "e1"
    actor: Actor | None = None
    expected_version: int | None = None
    idempotency_key: str | None = None
    action: str = "send"
    client: str | None = None
    code: str | None = None
    changed: Mapping[str, Any] = attrs.field(factory=dict)
    at: datetime | None = None

    def command(self) -> Command:
        """The command this step sends."""
        return Command(
            self.event or "",
            self.payload,
            actor=self.actor,
            expected_version=self.expected_version,
            at=self.at,
        )

    def to_data(self) -> dict[str, Any]:
        """Plain data for JSON; fields at their default are left out, except ``event``,
        ``payload`` and ``state``, which every step carries."""
        data: dict[str, Any] = {
            "action": self.action,
            "entity": self.entity,
            "event": self.event,
            "payload": plain(self.payload),
            "state": self.state,
        }
        if self.actor is not None:
            data["actor"] = actor_to_data(self.actor)
        for name in ("expected_version", "idempotency_key", "client", "code"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.at is not None:
            data["at"] = self.at.isoformat()
        if self.changed:
            data["changed"] = plain(self.changed)
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> TraceStep:
        """Inverse of :meth:`to_data`."""
        return cls(
            event=data.get("event"),
            payload=data.get("payload"),
            state=data.get("state"),
            entity=data.get("entity", "e1"),
            actor=actor_from_data(data.get("actor")),
            expected_version=data.get("expected_version"),
            idempotency_key=data.get("idempotency_key"),
            action=data.get("action", "send"),
            client=data.get("client"),
            code=data.get("code"),
            changed=data.get("changed", {}),
            at=None if data.get("at") is None else datetime.fromisoformat(data["at"]),
        )

    def describe(self) -> str:
        """One line: ``[client] action event(payload) on entity by actor at time key=... ->
        state``."""
        if self.action == "crash":
            return "crash: the store restarts"
        parts = []
        if self.client:
            parts.append(f"[{self.client}]")
        if self.action != "send":
            parts.append(_ACTION_WORDS.get(self.action, self.action))
        payload = "" if self.payload is None else json.dumps(plain(self.payload), sort_keys=True)
        parts.append(f"{self.event}({payload}) on {self.entity}")
        if self.actor is not None:
            parts.append(f"by {self.actor.id}[{','.join(sorted(self.actor.roles))}]")
        if self.at is not None:
            parts.append(f"at {self.at.isoformat()}")
        if self.expected_version is not None:
            parts.append(f"expecting v{self.expected_version}")
        if self.idempotency_key is not None:
            parts.append(f"key={self.idempotency_key}")
        if self.action == "hold":
            return " ".join(parts) + " -> in flight"
        outcome = f"rejected {self.code}" if self.code else "accepted"
        line = " ".join(parts) + f" -> {outcome}"
        if self.state is not None:
            line += f", state {self.state}"
        if self.changed:
            changes = ", ".join(f"{k}={v!r}" for k, v in sorted(plain(self.changed).items()))
            line += f" ({changes})"
        return line


def _steps(steps: Iterable[TraceStep]) -> tuple[TraceStep, ...]:
    return tuple(steps)


@attrs.frozen
class Trace:
    """A sequence of steps, what it shows (``property``) and how it was found (``seed``)."""

    spec: str
    steps: tuple[TraceStep, ...] = attrs.field(converter=_steps)
    spec_version: int | None = None
    property: str | None = None
    seed: int | None = None

    def to_data(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "format": TRACE_FORMAT,
            "spec": self.spec,
            "spec_version": self.spec_version,
            "property": self.property,
            "seed": self.seed,
            "steps": [s.to_data() for s in self.steps],
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Trace:
        """Inverse of :meth:`to_data`; refuses data in another format."""
        fmt = data.get("format")
        if fmt != TRACE_FORMAT:
            raise ValueError(f"not a statekernel trace: format {fmt!r}, expected {TRACE_FORMAT!r}")
        return cls(
            spec=data["spec"],
            steps=tuple(TraceStep.from_data(s) for s in data["steps"]),
            spec_version=data.get("spec_version"),
            property=data.get("property"),
            seed=data.get("seed"),
        )

    def dumps(self) -> str:
        """The trace as indented JSON."""
        return json.dumps(self.to_data(), indent=2, sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Trace:
        """Parse :meth:`dumps` output."""
        return cls.from_data(json.loads(text))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trace:
        """Read a trace from a JSON file."""
        return cls.loads(Path(path).read_text(encoding="utf-8"))

    def format(self) -> str:
        """The trace as numbered human-readable steps."""
        lines = []
        if self.property:
            lines.append(f"property: {self.property}")
        lines.extend(f"{i:>3}. {s.describe()}" for i, s in enumerate(self.steps, 1))
        if self.seed is not None:
            lines.append(f"seed: {self.seed}")
        return "\n".join(lines)


def check_trace_spec(spec: Spec, trace: Trace) -> None:
    """Raise :class:`TraceMismatch` unless ``trace`` names ``spec``: replayed on another spec,
    every step of it would be an ``unknown_event`` and the replay would pass without having
    tested anything."""
    if trace.spec != spec.name:
        raise TraceMismatch(f"the trace is of spec {trace.spec!r}, not {spec.name!r}")


def violation_property(decision: Rejected) -> str:
    """How traces, the explorer and the fuzzer name the property a violating decision breaks:
    ``invariant_violated: <invariant>`` or ``spec_fault: <where>``."""
    name = decision.details.get("invariant") or decision.details.get("where") or decision.code
    return f"{decision.code}: {name}"


@attrs.frozen
class ReplayResult:
    """What replaying a trace through the kernel gave: every decision in order, the final
    snapshot of each entity, and the first violation (a step whose decision is
    ``invariant_violated`` or ``spec_fault``)."""

    decisions: tuple[Decision | None, ...]
    snapshots: Mapping[str, Snapshot]
    violation: str | None = None
    violation_step: int | None = None
    diverged: tuple[int, ...] = ()
    """Steps whose recorded outcome (``code`` and ``state``) differs from the kernel's: in a
    trace a store produced, the places where that store answered wrongly."""

    @property
    def ok(self) -> bool:
        """True when the replay hit no violation."""
        return self.violation is None


def replay_trace(spec: Spec, trace: Trace) -> ReplayResult:
    """Replay ``trace`` through the pure kernel (and planner, for keyed steps), with an
    in-memory model of entities and keys. ``crash`` and ``hold`` steps change nothing: the
    model is what a correct store must remember, and a held request counts when it is
    delivered. Steps that recorded their outcome (a ``state``) are compared with the kernel's
    and listed in ``diverged`` when they differ. Raises :class:`TraceMismatch` when the trace
    names another spec."""
    check_trace_spec(spec, trace)
    snapshots: dict[str, Snapshot] = {}
    keys: dict[str, KeyRecord] = {}
    decisions: list[Decision | None] = []
    diverged: list[int] = []

    def result(violation: str | None = None, at: int | None = None) -> ReplayResult:
        return ReplayResult(tuple(decisions), dict(snapshots), violation, at, tuple(diverged))

    for n, step in enumerate(trace.steps, 1):
        if step.action not in _SENDING_ACTIONS:
            decisions.append(None)
            continue
        cmd = step.command()
        key = step.idempotency_key
        p = plan(spec, step.entity, snapshots.get(step.entity), cmd, key, keys.get(key or ""))
        decisions.append(p.decision)
        if p.snapshot is not None:
            snapshots[step.entity] = p.snapshot
        if p.key_record is not None and key is not None:
            keys[key] = p.key_record
        d = p.decision
        if step.state is not None:
            now = snapshots.get(step.entity, spec.start()).state
            code = None if isinstance(d, Accepted) else d.code
            if (code, now) != (step.code, step.state):
                diverged.append(n)
        if not isinstance(d, Accepted) and d.code in VIOLATION_CODES:
            return result(violation_property(d), n)
    return result()


def assert_trace_passes(spec: Spec, trace: Trace | str | os.PathLike[str]) -> ReplayResult:
    """Replay ``trace`` (a :class:`Trace` or the path of its JSON file) and raise
    ``AssertionError`` with the numbered trace if it still shows a violation. Use it to keep a
    counterexample as a regression test once the spec is fixed. A trace of another spec is
    refused with :class:`TraceMismatch` (a ``ValueError``), never passed."""
    if not isinstance(trace, Trace):
        trace = Trace.load(trace)
    result = replay_trace(spec, trace)
    if not result.ok:
        raise AssertionError(
            f"trace still violates {result.violation} at step {result.violation_step}:\n"
            + trace.format()
        )
    return result
