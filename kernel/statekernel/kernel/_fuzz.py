"""The fuzzer's engine, without Hypothesis: a hostile network, a model and the checks.

:mod:`statekernel.kernel.testing` wraps this in a Hypothesis ``RuleBasedStateMachine``; this
module holds everything that does not need Hypothesis, so that a trace found by the fuzzer
can be replayed against a store without it (:func:`replay_against_store`).

- :class:`Catalog` precomputes, once per spec, every command the fuzzer can send: per state,
  the enabled events with their example payloads and the clients allowed to fire them; junk
  payloads, unknown events and role-less actors for the invalid ones.
- :class:`Model` is what a correct store must hold. It is built from the pure planner
  (:func:`~statekernel.kernel.plan`) with dictionaries of snapshots, audit records and key
  records, never from a store, so that bugs in any store (MemoryStore included) show up.
- :class:`Harness` plays the network: clients with requests in flight under idempotency
  keys, delivered in any order, duplicated, retried after a lost reply or before the first
  attempt arrived, stale ``expected_version``, crashes (``reopen()``). After every step it
  checks the store against the model and the spec's invariants, and raises
  :class:`FuzzViolation` carrying the trace so far.
"""

from __future__ import annotations

import random
import typing
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from ._codec import UnsupportedType, unstructure
from ._decision import decide
from ._errors import StatekernelError
from ._model import Accepted, Actor, AuditRecord, Command, Decision, Rejected, Snapshot
from ._plan import KeyRecord, Plan, plan
from ._serial import decision_to_data, plain, record_to_data
from ._spec import Spec
from ._trace import VIOLATION_CODES, Trace, TraceStep
from ._types import (
    SCALAR_SAMPLES,
    AnyValue,
    AttrsClass,
    DictOf,
    EnumOf,
    FixedTuple,
    LiteralOf,
    Scalar,
    SequenceOf,
    TypeDescription,
    UnionOf,
    describe,
    sample_payloads,
    samples,
)

__all__ = [
    "BASE_TIME",
    "NO_ENTITIES",
    "NO_REOPEN",
    "WHY_NOT_TESTED",
    "Catalog",
    "Faults",
    "FuzzViolation",
    "Harness",
    "Model",
    "Stats",
    "close_store",
    "replay_against_store",
    "shrink_steps",
]

BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
"""The fuzzer's logical clock starts here and moves on with every request (see
:data:`CLOCK_STEPS`)."""

CLOCK_STEPS = (
    timedelta(seconds=1),
    timedelta(minutes=1),
    timedelta(seconds=1),
    timedelta(hours=1),
    timedelta(seconds=1),
    timedelta(days=1),
    timedelta(seconds=1),
    timedelta(days=30),
)
"""How far the logical clock moves from one request to the next, in turn: mostly a second,
sometimes a minute, an hour, a day or a month, so that deadlines which guards compare with
``command.at`` are both met and missed within a run."""

_MAX_DELIVERED = 8
"""How many delivered requests the network remembers for duplicates."""

_TIMES: list[datetime] = [BASE_TIME]


def _time(tick: int) -> datetime:
    """The logical clock at request ``tick``: ``BASE_TIME`` plus the first ``tick`` of the
    :data:`CLOCK_STEPS`, in turn (cached)."""
    while len(_TIMES) <= tick:
        _TIMES.append(_TIMES[-1] + CLOCK_STEPS[(len(_TIMES) - 1) % len(CLOCK_STEPS)])
    return _TIMES[tick]


def _at_least(minimum: int) -> Callable[[Any, attrs.Attribute[int], int], None]:
    def check(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
        if type(value) is not int or value < minimum:
            raise ValueError(f"{attribute.name} must be an int >= {minimum}, got {value!r}")

    return check


@attrs.frozen
class Faults:
    """What the fuzzer's network and machine may do. Everything is on by default.

    - ``reorder``: requests wait in flight and are delivered in any order;
    - ``duplicates``: the network delivers an already delivered request again;
    - ``lost_replies``: the store commits, the reply is lost, the client retries the same key;
    - ``early_retries``: a client retries before its first attempt arrived;
    - ``stale_versions``: commands carry an out-of-date ``expected_version``;
    - ``crashes``: the store restarts (``reopen()``, when the store has it);
    - ``invalid``: unknown events, junk payloads, missing roles, reused keys, unkeyed requests.

    ``clients`` and ``entities`` size the world; ``in_flight`` caps the requests waiting in
    the network at once.
    """

    reorder: bool = True
    duplicates: bool = True
    lost_replies: bool = True
    early_retries: bool = True
    stale_versions: bool = True
    crashes: bool = True
    invalid: bool = True
    clients: int = attrs.field(default=3, validator=_at_least(1))
    entities: int = attrs.field(default=3, validator=_at_least(1))
    in_flight: int = attrs.field(default=4, validator=_at_least(1))


class FuzzViolation(StatekernelError, AssertionError):
    """A property failed: the spec let through what its invariants forbid, or the store
    disagreed with the kernel. An ``AssertionError``, so test runners report it as a failed
    test, and a :class:`~statekernel.kernel.StatekernelError` like every error statekernel
    raises on purpose.

    ``property`` names what failed, as :func:`~statekernel.kernel.replay_trace` and the
    explorer do: ``invariant_violated: <invariant>`` or ``spec_fault: <where>`` when the spec
    is wrong, ``store: <promise>`` when the store broke a promise (``store:
    retry_returns_first_answer``, ``store: audit_replays_to_snapshot``...). ``detail`` says
    how, ``trace`` is the numbered, replayable trace (JSON via ``trace.dumps()``), ``seed``
    reproduces the run.
    """

    def __init__(
        self,
        property: str,
        detail: str,
        trace: Trace,
        *,
        seed: int | None = None,
        choices: Sequence[int] = (),
    ) -> None:
        self.property = property
        self.detail = detail
        self.trace = attrs.evolve(trace, property=property, seed=seed)
        self.seed = seed
        self.choices = tuple(choices)
        """The step integers that led here (empty when replayed from a trace)."""
        super().__init__(self.render())

    @property
    def is_spec_violation(self) -> bool:
        """True when the spec is wrong (not the store): replay it with
        :func:`~statekernel.kernel.assert_trace_passes`."""
        return self.property.startswith(("invariant_violated:", "spec_fault:"))

    def with_seed(self, seed: int | None) -> FuzzViolation:
        """The same violation, stamped with the seed of the run that found it."""
        return FuzzViolation(
            self.property, self.detail, self.trace, seed=seed, choices=self.choices
        )

    def render(self) -> str:
        """The failure as text: property, detail, numbered trace, seed and trace JSON."""
        lines = [
            f"property violated: {self.property}",
            f"  {self.detail}",
            f"minimal trace ({len(self.trace.steps)} steps), spec {self.trace.spec!r}:",
        ]
        lines.extend(f"  {i:>3}. {s.describe()}" for i, s in enumerate(self.trace.steps, 1))
        if self.seed is not None:
            lines.append(f"seed: {self.seed}")
        if self.is_spec_violation:
            how = "assert_trace_passes(SPEC, 'trace.json')"
        else:
            how = "assert_store_passes(SPEC, store_factory, 'trace.json')"
        lines.append(f"replay: save the JSON below as trace.json and call {how}")
        lines.append(self.trace.dumps())
        return "\n".join(lines)


# --- what the fuzzer can send ----------------------------------------------------------------


_EDGE_INTS = (*SCALAR_SAMPLES[int], 2, 3, 10, 100, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 2**70)
_EDGE_FLOATS = (*SCALAR_SAMPLES[float], 0.5, 1e300)
_EDGE_STRS = (*SCALAR_SAMPLES[str], "x" * 40, "é", "Ω≈ç", " ", "0")
"""The values the fuzzer draws numbers and strings from, besides the spec's own: the samples
every payload starts from (0, 1, -1, "", "a"...), then the edges of the wider range."""

_MAX_DEPTH = 4
"""Nested deeper than this, a generated value is the first sample of its type (``None`` when
it has none): the values of a class that refers to itself stay finite."""


def boundary_payloads(tp: object) -> list[Any]:
    """The payloads of type ``tp`` the fuzzer tries before random ones: the explorer's
    samples (:func:`~statekernel.kernel.sample_payloads`), which vary one field at a time
    around 0, "", False, then the payload at the opposite corner, every field at its second
    sample (1, "a", True: the positive amount, the non-empty name that guards most often
    want)."""
    out = {repr(v): v for v in sample_payloads(tp)}  # type: ignore[arg-type]
    for v in samples(describe(tp), second=True)[:1]:
        out.setdefault(repr(v), v)
    return list(out.values())


def _harvest(value: object, ints: set[int], strs: set[str]) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        ints.add(value)
    elif isinstance(value, str):
        strs.add(value)
    elif isinstance(value, Mapping):
        for v in value.values():
            _harvest(v, ints, strs)
    elif isinstance(value, list | tuple):
        for v in value:
            _harvest(v, ints, strs)


class PayloadPool:
    """Payloads generated from payload types, deterministically (seeded by the spec's and the
    event's names): the explorer's samples first (:func:`~statekernel.kernel.sample_payloads`),
    then random values that favour the numbers and strings found in the spec's examples, so
    that guards comparing names or amounts are met as well as missed. Every value is plain
    data that structures into the payload type."""

    def __init__(self, spec: Spec, size: int = 24) -> None:
        ints: set[int] = set()
        strs: set[str] = set()
        for t in spec.transitions:
            for ex in t.examples:
                _harvest(_plain_payload(ex), ints, strs)
        self._ints = sorted(ints) or [1]
        self._strs = sorted(strs) or ["a"]
        self._size = size
        self._spec = spec

    def payloads(self, event: str, tp: object) -> tuple[Any, ...]:
        """Up to ``size`` distinct plain payloads of type ``tp`` for ``event``. Raises
        :class:`~statekernel.kernel.UnsupportedType` for a type the codec cannot convert."""
        described = describe(tp)
        rng = random.Random(f"{self._spec.name}:{event}")
        out: dict[str, Any] = {}
        for v in boundary_payloads(tp):
            out.setdefault(repr(v), v)
        for _ in range(self._size * 4):
            if len(out) >= self._size:
                break
            v = self._random(described, rng, 0)
            out.setdefault(repr(v), v)
        return tuple(out.values())

    def _random(self, described: TypeDescription, rng: random.Random, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            smallest = samples(described)
            return smallest[0] if smallest else None
        match described:
            case AnyValue():
                return rng.choice([None, rng.choice(self._ints), rng.choice(self._strs)])
            case Scalar(tp=tp):
                if tp is bool:
                    return rng.random() < 0.5
                if tp is int:
                    r = rng.random()
                    if r < 0.5:
                        return rng.choice(self._ints)
                    return rng.choice(_EDGE_INTS) if r < 0.8 else rng.randint(-1000, 1000)
                if tp is float:
                    return rng.choice([*_EDGE_FLOATS, rng.uniform(-100, 100)])
                if tp is str:
                    r = rng.random()
                    if r < 0.6:
                        return rng.choice(self._strs)
                    return rng.choice(_EDGE_STRS)
                return None
            case EnumOf() | LiteralOf():
                return rng.choice(samples(described))
            case UnionOf():
                return self._random(rng.choice(described.members), rng, depth + 1)
            case FixedTuple():
                return [self._random(i, rng, depth + 1) for i in described.items]
            case SequenceOf():
                n = rng.choice([0, 1, 1, 2, 3])
                return [self._random(described.item, rng, depth + 1) for _ in range(n)]
            case DictOf():
                n = rng.choice([0, 1, 2])
                return {
                    rng.choice(self._strs): self._random(described.value, rng, depth + 1)
                    for _ in range(n)
                }
            case AttrsClass():
                out: dict[str, Any] = {}
                for f in described.fields:
                    if f.required or rng.random() < 0.7:
                        out[f.alias] = self._random(f.type, rng, depth + 1)
                return out
        typing.assert_never(described)


def _junk_for(payload_type: type | None, base: object) -> list[Any]:
    """Payloads that must be ``invalid_payload`` (or at least not a crash)."""
    if payload_type is None:
        return [{"unexpected_field": 1}, "junk"]
    out: list[Any] = ["junk", 7, [base]]
    if isinstance(base, Mapping):
        out.append({**base, "unexpected_field": 1})
        described = describe(payload_type)
        fields = described.fields if isinstance(described, AttrsClass) else ()
        required = [f.alias for f in fields if f.required]
        if required:
            out.append({k: v for k, v in base.items() if k != required[0]})
        if fields:
            name = fields[0].alias
            value = base.get(name)
            out.append({**base, name: 12345 if isinstance(value, str) else "junk"})
    return out


def _plain_payload(value: object) -> Any:
    try:
        return unstructure(value)
    except UnsupportedType:
        return value


@attrs.frozen
class EnabledEvent:
    """An event with a transition out of one state: the payloads to try (its examples, then
    the :func:`boundary_payloads` of its type), its payload type, the clients allowed to
    fire it, junk payloads and generated ones (:class:`PayloadPool`)."""

    name: str
    payloads: tuple[Any, ...]
    payload_type: type | None
    clients: tuple[int, ...]
    roles: frozenset[str]
    junk: tuple[Any, ...]
    generated: tuple[Any, ...]


class Catalog:
    """Every command the fuzzer can send for ``spec``, computed once.

    Clients are ``c1..cN``; client ``ci`` acts as ``Actor("useri")`` holding every role whose
    position in the sorted role list is ``i - 1`` modulo the number of clients, so every role
    has a holder. When a guard or an update reads the command (who sent it), the last of two
    or more clients holds every role instead, and the roles are shared out among the others:
    one person who may do everything is who breaks a four-eyes rule. Entities are ``e1..eM``.
    """

    def __init__(self, spec: Spec, faults: Faults) -> None:
        self.spec = spec
        self.faults = faults
        roles = sorted({r for t in spec.transitions for r in t.roles})
        self.reads_command = any(t.reads_command for t in spec.transitions)
        """Whether a guard or an update reads the command: traces then record each step's
        time, so they replay alike."""
        n = faults.clients
        shared = n - 1 if self.reads_command and n > 1 else n
        actors = [Actor(f"user{i + 1}", roles=roles[i::shared]) for i in range(shared)]
        if shared < n:
            actors.append(Actor(f"user{n}", roles=roles))
        self.clients: tuple[tuple[str, Actor], ...] = tuple(
            (f"c{i + 1}", actor) for i, actor in enumerate(actors)
        )
        self.entities: tuple[str, ...] = tuple(f"e{i + 1}" for i in range(faults.entities))
        self.start = spec.start()
        depth = _depths(spec)
        self._pool = PayloadPool(spec)
        self._weights: dict[tuple[str, str], int] = {}
        self._promising: dict[Snapshot, tuple[tuple[EnabledEvent, Any], ...]] = {}
        enabled: dict[str, tuple[EnabledEvent, ...]] = {}
        for state in spec.states:
            events = []
            for event in spec.allowed_events(state):
                ev = self._enabled(state, event)
                targets = {t.target_from(state) for t in spec.candidates(state, event)}
                if all(spec.is_final(t) for t in targets):
                    weight = 1  # ends the entity's life: rarely, so deep states are reached
                elif any(depth.get(t, 0) > depth.get(state, 0) for t in targets):
                    weight = 4  # moves forward
                else:
                    weight = 2  # stays or goes back
                self._weights[(state, event)] = weight
                events.extend([ev] * weight)
            enabled[state] = tuple(events)
        self.enabled = enabled
        """Per state, its enabled events, each repeated by its weight: a transition that
        moves away from the initial state is tried four times as often as one into a final
        state, and twice as often as one that stays or goes back."""
        anywhere: list[tuple[str, Any]] = []
        for t in spec.transitions:
            for p in t.examples or (None,):
                anywhere.append((t.event, _plain_payload(p)))
        self.anywhere: tuple[tuple[str, Any], ...] = tuple(anywhere)
        first = min(spec.events) if spec.events else "event"
        self.unknown_events: tuple[str, ...] = ("no_such_event", f"{first}_v2", first.upper())
        self.transition_keys: tuple[str, ...] = tuple(
            sorted(
                {
                    transition_key(e, s, t.target_from(s))
                    for t in spec.transitions
                    for s in t.source
                    for e in (t.event,)
                }
            )
        )

    def promising(self, snapshot: Snapshot) -> tuple[tuple[EnabledEvent, Any], ...]:
        """The enabled ``(event, payload)`` pairs that ``decide`` would not turn down in
        ``snapshot`` (accepted, or a spec violation, which is what the fuzzer hunts), each
        repeated by its event's weight. Cached per snapshot: ``decide`` is pure."""
        try:
            return self._promising[snapshot]
        except KeyError:
            pass
        except TypeError:  # an unhashable context: compute every time
            return self._compute_promising(snapshot)
        found = self._compute_promising(snapshot)
        if len(self._promising) < 100_000:
            self._promising[snapshot] = found
        return found

    def _compute_promising(self, snapshot: Snapshot) -> tuple[tuple[EnabledEvent, Any], ...]:
        out: list[tuple[EnabledEvent, Any]] = []
        done: set[str] = set()
        for ev in self.enabled.get(snapshot.state, ()):
            if ev.name in done:
                continue
            done.add(ev.name)
            weight = self._weights[(snapshot.state, ev.name)]
            actor = self.clients[ev.clients[0]][1] if ev.clients else None
            for payload in ev.payloads:
                command = Command(ev.name, payload, actor=actor, at=BASE_TIME)
                d = decide(self.spec, snapshot, command)
                if isinstance(d, Accepted) or d.code in VIOLATION_CODES:
                    out.extend([(ev, payload)] * weight)
        return tuple(out)

    def _enabled(self, state: str, event: str) -> EnabledEvent:
        cands = self.spec.candidates(state, event)
        payload_type = cands[0].payload
        seen: dict[str, Any] = {}
        for t in cands:
            for ex in t.examples:
                value = _plain_payload(ex)
                seen.setdefault(repr(value), value)
        if payload_type is None:
            payloads: tuple[Any, ...] = (None,)
            generated = payloads
        else:
            # the examples first, then the explorer's samples of the type (0, "", None...);
            # a type nested too deep to have samples falls back on generated payloads
            for value in boundary_payloads(payload_type):
                seen.setdefault(repr(value), value)
            generated = self._pool.payloads(event, payload_type)
            payloads = tuple(seen.values()) or generated
        if any(not t.roles for t in cands):
            roles: frozenset[str] = frozenset()
            clients = tuple(range(len(self.clients)))
        else:
            roles = frozenset(r for t in cands for r in t.roles)
            clients = tuple(
                i for i, (_, actor) in enumerate(self.clients) if not roles.isdisjoint(actor.roles)
            )
        junk = tuple(_junk_for(payload_type, payloads[0]))
        return EnabledEvent(event, payloads, payload_type, clients, roles, junk, generated)


def _depths(spec: Spec) -> dict[str, int]:
    """Each state's breadth-first distance from the initial state."""
    depth = {spec.initial: 0}
    frontier = [spec.initial]
    while frontier:
        nxt = []
        for s in frontier:
            for event in spec.allowed_events(s):
                for t in spec.candidates(s, event):
                    target = t.target_from(s)
                    if target not in depth:
                        depth[target] = depth[s] + 1
                        nxt.append(target)
        frontier = nxt
    return depth


def transition_key(event: str, source: str, target: str) -> str:
    """How reports name one edge of the state table: ``event (source -> target)``."""
    return f"{event} ({source} -> {target})"


# --- the model -------------------------------------------------------------------------------


class Model:
    """What a correct store holds after the same commands: snapshots, audit records and key
    records, maintained with the pure planner."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.snapshots: dict[str, Snapshot] = {}
        self.history: dict[str, list[AuditRecord]] = {}
        self.keys: dict[str, KeyRecord] = {}

    def apply(self, entity: str, command: Command, key: str | None) -> Plan:
        """Plan ``command`` as a store would and remember its write set."""
        p = plan(
            self.spec,
            entity,
            self.snapshots.get(entity),
            command,
            key,
            self.keys.get(key) if key is not None else None,
        )
        if p.snapshot is not None and p.record is not None:
            self.snapshots[entity] = p.snapshot
            self.history.setdefault(entity, []).append(p.record)
        if p.key_record is not None:
            self.keys[p.key_record.key] = p.key_record
        return p


# --- statistics ------------------------------------------------------------------------------

NO_REOPEN = "crash and reopen"
"""How reports name the crashes a store without ``reopen()`` was never put through."""

NO_ENTITIES = "the store's list of entities"
"""How reports name the check a store without ``entities()`` escapes: that it lists exactly
the entities written. Every id the fuzzer uses is still read back through ``get`` and
``history`` after every step, so a lost, phantom or misplaced write on those ids is caught
either way; only a store's listing, and entities under ids the fuzzer never used, go
unseen."""

WHY_NOT_TESTED = {
    NO_REOPEN: "the store has no reopen()",
    NO_ENTITIES: "the store has no entities()",
}
"""Why each of these was not tested."""


class Stats:
    """Counts gathered over a whole run: steps, examples, distinct snapshots, and how often
    each state was entered and each transition fired. They stop at the first violation
    (``found``): the example that found it is the last one counted, and the reruns that
    shrink its trace are not counted."""

    def __init__(self, catalog: Catalog, on_example: Callable[[Stats], None] | None = None) -> None:
        self.examples = 0
        self.steps = 0
        self.state_hits: Counter[str] = Counter({s: 0 for s in catalog.spec.states})
        self.transition_hits: Counter[str] = Counter({k: 0 for k in catalog.transition_keys})
        self._seen: set[object] = set()
        self._on_example = on_example
        self.found = False
        """Whether a violation was found (in the last example counted)."""
        self.not_tested: dict[str, None] = {}
        """What the stores could not be tested for, in the order first met (see
        :meth:`store_seen`)."""

    def store_seen(self, *, can_reopen: bool, can_list: bool) -> None:
        """Note what a fresh store offers beyond ``handle``, ``get`` and ``history``: without
        ``reopen()`` no crash is tested, without ``entities()`` its listing is not checked."""
        if not can_reopen:
            self.not_tested.setdefault(NO_REOPEN)
        if not can_list:
            self.not_tested.setdefault(NO_ENTITIES)

    @property
    def states(self) -> int:
        """How many distinct (state, context) snapshots the model reached."""
        return len(self._seen)

    def entered(self, snapshot: Snapshot) -> None:
        """Count a snapshot the model reached."""
        try:
            key: object = (snapshot.state, snapshot.context)
            hash(key)
        except TypeError:
            key = (snapshot.state, repr(plain(snapshot.context)))
        self._seen.add(key)

    def example_done(self) -> None:
        """One example (one run of the state machine) finished."""
        self.examples += 1
        if self._on_example is not None:
            self._on_example(self)


# --- the network and the checks --------------------------------------------------------------


@attrs.define
class Request:
    """A request a client sent: where it goes, what it says, its key and the store's first
    answer (``None`` until it was delivered once)."""

    client: str
    entity: str
    command: Command
    key: str | None
    first: Decision | None = None
    reply_lost: bool = False


@attrs.frozen
class _Step:
    action: str
    client: str | None
    entity: str
    command: Command | None
    key: str | None
    before: Snapshot | None
    after: Snapshot | None
    decision: Decision | None


_SENDS = frozenset({"send", "deliver", "duplicate", "retry", "lose_reply"})


def kinds_for(spec: Spec, faults: Faults) -> tuple[str, ...]:
    """The table the ``kind`` part of a step's choice is looked up in.

    Index 0 is the plainest request (an enabled command the kernel would accept), so
    shrinking moves toward it. Most requests are valid so that entities reach deep states:
    ``promising`` ones pass the guards, ``valid`` ones are enabled in the entity's state with
    any example payload, ``generated`` ones carry a payload generated from the payload type.
    """
    kinds = ["promising"] * 12 + ["valid"] * 6
    if any(t.payload is not None for t in spec.transitions):
        kinds += ["generated"] * 3
    if faults.stale_versions:
        kinds += ["view", "view", "stale"]
    if faults.invalid:
        kinds += ["anywhere", "junk", "roleless", "unknown", "reuse_key", "no_key"]
    return tuple(kinds)


def moves_for(faults: Faults) -> tuple[str, ...]:
    """The table the ``move`` part of a step's choice is looked up in (16 entries; index 0,
    where shrinking goes, is a plain send). A move that is impossible at that point (deliver
    with nothing in flight, crash without ``reopen()``) is a send instead."""
    delays = faults.reorder or faults.early_retries or faults.lost_replies
    moves = ["send"] * 8
    moves += ["hold", "hold", "deliver", "deliver"] if delays else ["send"] * 4
    moves.append("retry" if faults.early_retries else "send")
    moves.append("lose_reply" if faults.lost_replies else "send")
    moves.append("duplicate" if faults.duplicates else "send")
    moves.append("crash" if faults.crashes else "send")
    return tuple(moves)


STEP_CHOICES = 2**32
"""A step is one integer in ``range(STEP_CHOICES)``. It is scrambled by :func:`_mix` (a
bijection with ``_mix(0) == 0``), then read from the low bits up as the move (4 bits), the
kind of request (5 bits), the client and entity (7 bits) and the pick of event, payload or
in-flight request (16 bits). Hypothesis favours small integers, whose high bits are zero;
scrambling spreads every field evenly, and 0 stays the plainest step: a send, of a command
the kernel accepts, by the first client, to the first entity."""

_M32 = 0xFFFFFFFF


def _mix(x: int) -> int:
    x = (x * 0x9E3779B1) & _M32
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & _M32
    x ^= x >> 13
    return x


def _equal_answers(a: Decision, b: Decision) -> bool:
    """Equal, or equal once both are written as plain data (as a client would see them)."""
    if a == b:
        return True
    try:
        return bool(decision_to_data(a) == decision_to_data(b))
    except Exception:
        return False


_ABSENT = object()


def _first_difference(got: Any, want: Any, path: str) -> tuple[str, Any, Any] | None:
    """The first place where two plain values differ: ``(path, got, want)``, or ``None``."""
    if isinstance(got, Mapping) and isinstance(want, Mapping):
        for k in [*want, *(k for k in got if k not in want)]:
            found = _first_difference(
                got.get(k, _ABSENT), want.get(k, _ABSENT), f"{path}.{k}" if path else str(k)
            )
            if found is not None:
                return found
        return None
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            found = _first_difference(g, w, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    return None if got == want else (path, got, want)


def _differs(got: Any, want: Any, to_data: Callable[[Any], Any]) -> str:
    """``"; they differ in PATH: the store has X, the kernel Y"`` for two values whose summaries
    may read the same (an answer whose record lacks its key), or ``""``."""
    try:
        found = _first_difference(to_data(got), to_data(want), "")
    except Exception:
        return ""
    if found is None:
        return ""
    path, g, w = found

    def shown(value: Any) -> str:
        return "nothing" if value is _ABSENT else repr(value)

    return f"; they differ in {path or 'value'}: the store has {shown(g)}, the kernel {shown(w)}"


def _summary(d: Decision | None) -> str:
    if d is None:
        return "nothing"
    if isinstance(d, Accepted):
        return f"accepted at v{d.snapshot.version} ({d.snapshot.state})"
    return f"rejected {d.code}"


def _snap_text(s: Snapshot | None) -> str:
    if s is None:
        return "nothing (never written)"
    return f"state {s.state!r} v{s.version} context {plain(s.context)!r}"


def replay_records(spec: Spec, records: Sequence[AuditRecord]) -> Snapshot | str:
    """Replay audit records through ``decide``; the snapshot they lead to, or why not."""
    snap = spec.start()
    for i, rec in enumerate(records, 1):
        if rec.version != i or rec.from_state != snap.state:
            return f"record #{i} (v{rec.version}, from {rec.from_state!r}) does not follow v{i - 1}"
        d = decide(spec, snap, Command(rec.event, rec.payload, actor=rec.actor, at=rec.at))
        if not isinstance(d, Accepted):
            return f"record #{i} ({rec.event!r}) replays as {d.code}"
        snap = d.snapshot
    return snap


class Harness:
    """One run of the fuzzer against one fresh store.

    The methods are the network's moves; each runs the checks and raises
    :class:`FuzzViolation` with the trace so far when a property fails.
    """

    def __init__(
        self, catalog: Catalog, store: Any, stats: Stats | None = None, *, spec_name: str = ""
    ) -> None:
        self.catalog = catalog
        self.spec = catalog.spec
        self.faults = catalog.faults
        self.store = store
        if stats is not None and stats.found:
            stats = None  # a rerun while shrinking: the figures stop at the first violation
        self.stats = stats
        self.model = Model(self.spec)
        self.flights: list[Request] = []
        self.delivered: list[Request] = []
        self.views: dict[tuple[str, str], int] = {}
        self.used_keys: dict[str, list[Request]] = {}
        self.counters: dict[str, int] = {}
        self.trace: list[_Step] = []
        self.choices: list[int] = []
        self.tick = 0
        self.failed = False
        self.can_reopen = callable(getattr(store, "reopen", None))
        self.can_list = callable(getattr(store, "entities", None))
        if stats is not None:
            stats.store_seen(can_reopen=self.can_reopen, can_list=self.can_list)
        self._kinds = kinds_for(self.spec, self.faults)
        self._moves = moves_for(self.faults)
        self._invariants = self.spec.invariants

    # --- building requests -------------------------------------------------------------

    def _entity(self, who: int) -> str:
        entities = self.catalog.entities
        # the first entity is picked twice as often, so clients interleave on it
        e = (who // len(self.catalog.clients)) % (len(entities) + 1)
        return entities[0 if e >= len(entities) else e]

    def new_request(self, who: int, kind: int, pick: int) -> Request:
        """The request a client makes. ``who`` picks the client and entity, ``kind`` indexes
        :func:`kinds_for`, ``pick`` the event and payload."""
        cat = self.catalog
        n_clients = len(cat.clients)
        entity = self._entity(who)
        snap = self.model.snapshots.get(entity) or cat.start
        what = self._kinds[kind % len(self._kinds)]
        enabled = cat.enabled.get(snap.state, ())
        client = who % n_clients
        actor: Actor | None
        key_wanted = True
        expected: int | None = None
        if what == "unknown":
            event = cat.unknown_events[pick % len(cat.unknown_events)]
            payload: Any = None
            actor = cat.clients[client][1]
        elif what == "anywhere" or not enabled:
            event, payload = cat.anywhere[pick % len(cat.anywhere)]
            actor = cat.clients[client][1]
        else:
            promising = cat.promising(snap) if what == "promising" else ()
            if promising:
                ev, payload = promising[pick % len(promising)]
                rest = pick // len(promising)
            else:
                ev = enabled[pick % len(enabled)]
                rest = pick // len(enabled)
                pool = ev.generated if what == "generated" else ev.payloads
                payload = pool[rest % len(pool)]
            event = ev.name
            if ev.clients:
                client = ev.clients[client % len(ev.clients)]
            actor = cat.clients[client][1]
            if what == "junk":
                payload = ev.junk[rest % len(ev.junk)]
            elif what == "roleless" and ev.roles:
                lacking = [
                    i for i, (_, a) in enumerate(cat.clients) if ev.roles.isdisjoint(a.roles)
                ]
                if lacking and rest % 2:
                    client = lacking[rest % len(lacking)]
                    actor = cat.clients[client][1]
                else:
                    actor = None
            elif what == "view":
                expected = self.views.get((cat.clients[client][0], entity), 0)
            elif what == "stale":
                expected = snap.version - 1 - rest % 2 if snap.version > 0 else snap.version + 1
            elif what == "no_key":
                key_wanted = False
        name = cat.clients[client][0]
        command = Command(event, payload, actor=actor, expected_version=expected)
        key: str | None = None
        if what == "reuse_key" and self.used_keys.get(name):
            old = self.used_keys[name]
            key = old[pick % len(old)].key
        elif key_wanted:
            n = self.counters.get(name, 0) + 1
            self.counters[name] = n
            key = f"{name}-{n}"
        req = Request(name, entity, command, key)
        if key is not None and what != "reuse_key":
            self.used_keys.setdefault(name, []).append(req)
        return req

    # --- the network's moves -----------------------------------------------------------

    def step(self, choice: int) -> str:
        """Take the step that ``choice`` (see :data:`STEP_CHOICES`) encodes; return its move."""
        self.choices.append(choice)
        choice = _mix(choice)
        move = self._moves[choice & 15]
        kind = (choice >> 4) & 31
        who = (choice >> 9) & 127
        pick = choice >> 16
        if (
            (move in ("deliver", "retry", "lose_reply") and not self.flights)
            or (move == "duplicate" and not self.delivered)
            or (move == "crash" and not self.can_reopen)
        ):
            move = "send"
        if move == "send":
            self.send(who, kind, pick)
        elif move == "hold":
            self.hold(who, kind, pick)
        elif move == "deliver":
            self.deliver(pick)
        elif move == "retry":
            self.retry(pick)
        elif move == "lose_reply":
            self.lose_reply(pick)
        elif move == "duplicate":
            self.duplicate(pick)
        else:
            self.crash()
        return move

    def send(self, who: int, kind: int, pick: int) -> None:
        """A client sends a new request; it arrives at once and the reply comes back."""
        req = self.new_request(who, kind, pick)
        self.deliver_request(req, "send")

    def hold(self, who: int, kind: int, pick: int) -> None:
        """A client sends a new request that the network delays (it stays in flight)."""
        req = self.new_request(who, kind, pick)
        if len(self.flights) >= self.faults.in_flight:
            self.deliver_request(req, "send")
            return
        self.flights.append(req)
        snap = self.model.snapshots.get(req.entity)
        self._record("hold", req, snap, snap, None)
        self._count_step()

    def deliver(self, index: int) -> None:
        """An in-flight request finally arrives (any of them: reordering). A request whose
        reply was lost arrives as the client's retry."""
        req = self.flights.pop(index % len(self.flights))
        self.deliver_request(req, "retry" if req.reply_lost else "deliver")

    def retry(self, index: int) -> None:
        """The client gives up waiting and sends an in-flight request again under the same
        key; the retry arrives first, the original stays in flight."""
        req = self.flights[index % len(self.flights)]
        self.deliver_request(req, "retry", keep=True)

    def lose_reply(self, index: int) -> None:
        """An in-flight request arrives and commits, but its reply is lost: the client will
        retry it (it stays in flight)."""
        req = self.flights[index % len(self.flights)]
        self.deliver_request(req, "lose_reply", keep=True)
        req.reply_lost = True

    def duplicate(self, index: int) -> None:
        """The network delivers an already delivered request once more."""
        req = self.delivered[index % len(self.delivered)]
        self.deliver_request(req, "duplicate", keep=True)

    def crash(self) -> None:
        """The store restarts; everything it acknowledged must still be there."""
        self._record("crash", None, None, None, None)
        self._count_step()
        try:
            self.store.reopen()
        except Exception as exc:
            self.fail("store: reopens", f"reopen() raised {exc!r}")
        self.check_all(after_crash=True)

    # --- delivering and checking --------------------------------------------------------

    def _count_step(self) -> None:
        if self.stats is not None:
            self.stats.steps += 1

    def _record(
        self,
        action: str,
        req: Request | None,
        before: Snapshot | None,
        after: Snapshot | None,
        decision: Decision | None,
        command: Command | None = None,
    ) -> None:
        """Add a step to the trace; ``command`` is what was delivered (with its time), when
        it differs from what the request holds."""
        if req is None:
            self.trace.append(_Step(action, None, "", None, None, None, None, None))
        else:
            sent = req.command if command is None else command
            self.trace.append(
                _Step(action, req.client, req.entity, sent, req.key, before, after, decision)
            )

    def deliver_request(self, req: Request, action: str, *, keep: bool = False) -> None:
        """Send ``req`` to the store and to the model, then check everything."""
        self.tick += 1
        c = req.command
        at = c.at if c.at is not None else _time(self.tick)  # a replayed step keeps its time
        command = Command(c.event, c.payload, c.actor, c.expected_version, at)
        entity = req.entity
        model = self.model
        before = model.snapshots.get(entity)
        p = model.apply(entity, command, req.key)
        want = p.decision
        after = model.snapshots.get(entity)
        self._record(action, req, before, after, want, command)
        self._count_step()
        try:
            got = self.store.handle(entity, command, idempotency_key=req.key)
        except Exception as exc:
            self.fail("store: handles_without_error", f"handle() raised {exc!r}")
        if not isinstance(want, Accepted):
            if want.code in VIOLATION_CODES:
                d = want.details
                if want.code == "invariant_violated":
                    prop = f"invariant_violated: {d.get('invariant')}"
                    why = (
                        f"the guards let {command.event!r} through but the result breaks "
                        f"invariant {d.get('invariant')!r}: {want.message}"
                    )
                else:
                    prop = f"spec_fault: {d.get('where', 'decide')}"
                    why = f"the spec's own code failed: {want.message}"
                self.fail(prop, why)
        elif not p.replayed:
            self._check_invariants(entity, want.snapshot, "kernel: invariant_holds")
        if isinstance(want, Accepted) and self.stats is not None and not p.replayed:
            self.stats.entered(want.snapshot)
            self.stats.state_hits[want.snapshot.state] += 1
            rec = want.record
            self.stats.transition_hits[transition_key(rec.event, rec.from_state, rec.to_state)] += 1
        if before is None and after is not None and self.stats is not None:
            self.stats.state_hits[self.catalog.start.state] += 1
            self.stats.entered(self.catalog.start)
        if p.replayed:
            first = req.first if req.first is not None else want
            if not _equal_answers(got, first):
                self.fail(
                    "store: retry_returns_first_answer",
                    f"key {req.key!r} first got {_summary(first)}, the {action} got "
                    f"{_summary(got)}" + _differs(got, first, decision_to_data),
                )
        if not _equal_answers(got, want):
            self.fail(
                "store: answers_like_the_kernel",
                f"the store answered {_summary(got)}, the kernel says {_summary(want)}"
                + (f" ({want.message})" if isinstance(want, Rejected) else "")
                + _differs(got, want, decision_to_data),
            )
        if req.first is None and req.key is not None:
            req.first = got
        if action != "lose_reply" and isinstance(got, Accepted):
            self.views[(req.client, entity)] = got.snapshot.version
        if not keep and action in ("send", "deliver", "retry"):
            self.delivered.append(req)
            if len(self.delivered) > _MAX_DELIVERED:
                del self.delivered[0]
        self.check_entity(entity, p)
        for other in self.catalog.entities:
            if other != entity:
                self._check_stored_snapshot(other, None)

    def _check_stored_snapshot(self, entity: str, p: Plan | None) -> Snapshot | None:
        want = self.model.snapshots.get(entity)
        try:
            got: Snapshot | None = self.store.get(entity)
        except Exception as exc:
            self.fail("store: handles_without_error", f"get({entity!r}) raised {exc!r}")
        if got != want:
            if got is not None:
                self._check_invariants(entity, got, "store: invariant_holds")
            self._classify_snapshot(entity, got, want, p)
        return got

    def _check_invariants(self, entity: str, snap: Snapshot, prefix: str) -> None:
        """Every invariant of the spec on ``snap``. The stored snapshots equal the model's
        after every step (or the step failed), so checking each model snapshot once, when it
        appears, checks the invariants on every entity after every step."""
        for inv in self._invariants:
            try:
                ok = inv.fn(snap.state, snap.context)
            except Exception:
                ok = False
            if ok is not True:
                self.fail(
                    f"{prefix}: {inv.name}",
                    f"{entity} ({_snap_text(snap)}) breaks invariant {inv.name!r}",
                )

    def _classify_snapshot(
        self, entity: str, got: Snapshot | None, want: Snapshot | None, p: Plan | None
    ) -> typing.NoReturn:
        """Name the promise a wrong stored snapshot breaks, most specific first."""
        history = list(self._history(entity))
        where = f"store.get({entity!r}) is {_snap_text(got)}; the kernel says {_snap_text(want)}"
        if self.trace and self.trace[-1].action == "crash":
            self.fail("store: acknowledged_writes_survive_crash", where)
        if p is not None and not p.writes:
            if isinstance(p.decision, Rejected) and p.decision.code == "idempotency_mismatch":
                self.fail("store: mismatch_changes_nothing", where)
            if p.replayed:
                self.fail("store: key_takes_effect_once", where)
        stale = want is not None and (got is None or got.version < want.version)
        if stale and history == self.model.history.get(entity, []):
            self.fail("store: reads_are_current", f"stale read: {where}")
        if got is not None and want is not None and got.version > want.version:
            self.fail("store: takes_effect_once", f"applied more than once: {where}")
        replayed = replay_records(self.spec, history)
        if got is not None and replayed != got:
            self.fail(
                "store: audit_replays_to_snapshot",
                f"{where}; its audit log replays to "
                + (_snap_text(replayed) if isinstance(replayed, Snapshot) else replayed),
            )
        self.fail("store: state_matches_kernel", where)

    def _history(self, entity: str) -> Sequence[AuditRecord]:
        try:
            records: Sequence[AuditRecord] = self.store.history(entity)
        except Exception as exc:
            self.fail("store: handles_without_error", f"history({entity!r}) raised {exc!r}")
        return records

    def check_entity(self, entity: str, p: Plan | None = None, *, full: bool = False) -> None:
        """Check one entity: snapshot, invariants and audit log against the model (the log's
        length and last record, or all of it when ``full``)."""
        got = self._check_stored_snapshot(entity, p)
        history = self._history(entity)
        want = self.model.history.get(entity, ())
        same = len(history) == len(want) and (
            not want or (history[-1] == want[-1] if not full else list(history) == list(want))
        )
        if same:
            return
        replayed = replay_records(self.spec, history)
        if got is not None and replayed != got:
            self.fail(
                "store: audit_replays_to_snapshot",
                f"the audit log of {entity} ({len(history)} records) replays to "
                + (_snap_text(replayed) if isinstance(replayed, Snapshot) else replayed)
                + f", but the stored snapshot is {_snap_text(got)}",
            )
        keys = [r.idempotency_key for r in history if r.idempotency_key is not None]
        if len(keys) != len(set(keys)):
            self.fail(
                "store: key_takes_effect_once",
                f"the audit log of {entity} holds a key twice: {keys}",
            )
        self.fail(
            "store: history_matches_kernel",
            f"history({entity!r}) has {len(history)} records "
            f"{[(r.version, r.event) for r in history]}; the kernel has {len(want)} "
            f"{[(r.version, r.event) for r in want]}"
            + _differs(list(history), list(want), lambda rs: [record_to_data(r) for r in rs]),
        )

    def check_all(self, *, after_crash: bool = False) -> None:
        """Check every entity id the fuzzer uses in full (an id the model never wrote must
        read as nothing, with no history), and, when the store has ``entities()``, that it
        lists exactly the model's entities."""
        for entity in self.catalog.entities:
            self.check_entity(entity, full=True)
        if not self.can_list:
            return
        try:
            listed = list(self.store.entities())
        except Exception as exc:
            self.fail("store: handles_without_error", f"entities() raised {exc!r}")
        expected = sorted(self.model.snapshots)
        if listed != expected:
            prop = "acknowledged_writes_survive_crash" if after_crash else "lists_entities"
            self.fail(f"store: {prop}", f"entities() lists {listed}; the kernel has {expected}")

    def finish(self) -> None:
        """The run ends: a last full check (unless a check already failed), then count it."""
        try:
            if not self.failed:
                self.check_all()
        finally:
            if self.stats is not None:
                self.stats.example_done()

    # --- failure -------------------------------------------------------------------------

    def fail(self, prop: str, detail: str) -> typing.NoReturn:
        """Raise :class:`FuzzViolation` for ``prop`` with the trace so far."""
        self.failed = True
        if self.stats is not None:
            self.stats.found = True
        raise FuzzViolation(prop, detail, self.to_trace(), choices=self.choices)

    def to_trace(self) -> Trace:
        """The steps so far in the shared trace format."""
        return Trace(
            spec=self.spec.name,
            spec_version=self.spec.version,
            steps=[
                _trace_step(s, self.catalog.start, self.catalog.reads_command) for s in self.trace
            ],
        )


def _changed(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    old = plain(before.context)
    new = plain(after.context)
    if not isinstance(new, dict) or not isinstance(old, dict):
        return {} if old == new else {"context": new}
    return {k: v for k, v in new.items() if k not in old or old[k] != v}


def _trace_step(s: _Step, start: Snapshot, timed: bool) -> TraceStep:
    if s.action == "crash":
        return TraceStep(action="crash", entity="", state=None)
    assert s.command is not None
    d = s.decision
    changed: dict[str, Any] = {}
    if isinstance(d, Accepted) and s.after is not None and s.after is not s.before:
        changed = _changed(s.before or start, s.after)
    return TraceStep(
        event=s.command.event,
        payload=plain(s.command.payload),
        state=(s.after or start).state,
        entity=s.entity,
        actor=s.command.actor,
        expected_version=s.command.expected_version,
        idempotency_key=s.key,
        action=s.action,
        client=s.client,
        code=None if d is None or isinstance(d, Accepted) else d.code,
        changed=changed,
        at=s.command.at if timed else None,
    )


def close_store(store: Any) -> None:
    """Call ``store.close()`` when the store has it (``close`` is optional for the fuzzer)."""
    close = getattr(store, "close", None)
    if callable(close):
        close()


def replay_against_store(spec: Spec, store: Any, steps: Iterable[TraceStep]) -> None:
    """Drive ``store`` through ``steps`` (a trace), checking it after each one as the fuzzer
    does; raise :class:`FuzzViolation` on the first property that fails.

    The entities read back after every step are those the steps name plus those a fuzz run
    uses by default (``e1`` to ``e3``), written or not, as in the run that found the trace: a
    shrunk trace may send everything to ``e1`` and fail only because ``e2`` then reads as
    written."""
    catalog = Catalog(spec, Faults(clients=1))
    steps = list(steps)
    named = {s.entity for s in steps if s.action != "crash" and s.entity}
    catalog.entities = tuple(sorted(named | set(catalog.entities)))
    h = Harness(catalog, store)
    for step in steps:
        if step.action == "crash":
            if h.can_reopen:
                h.crash()
            continue
        req = Request(step.client or "c1", step.entity, step.command(), step.idempotency_key)
        if step.action == "hold":
            snap = h.model.snapshots.get(req.entity)
            h._record("hold", req, snap, snap, None)
            continue
        if step.idempotency_key is not None:
            key_rec = h.model.keys.get(step.idempotency_key)
            if key_rec is not None:
                req.first = key_rec.decision
        h.deliver_request(req, step.action if step.action in _SENDS else "send", keep=True)
    h.check_all()


def shrink_steps(
    catalog: Catalog,
    store_factory: Callable[[Spec], Any],
    violation: FuzzViolation,
    *,
    max_runs: int = 400,
) -> FuzzViolation:
    """Delete runs of 4, 3, 2 and 1 steps from ``violation``, and when none can go, replace
    two adjacent steps by a copy of one step of the sequence, for as long as the same property
    still fails; return the shortest violation found.

    Hypothesis shrinks first; this pass then escapes the local minima its shrinker can get
    stuck in: a bug that needs a *pair* of steps removed at once to stay visible (a write
    buffer flushed every third write), or two steps that do together what one other step
    does alone (two one-hour trainings where one two-hour training would do; step integers
    are scrambled, so Hypothesis cannot turn one into the other by making it smaller). The
    harness is deterministic given the step
    integers, so each attempt is a plain rerun against a fresh store; at most ``max_runs``.
    """
    best = violation
    seq = list(violation.choices)
    if not seq:
        return violation
    runs = 0

    def attempt(candidate: list[int]) -> FuzzViolation | None:
        store = store_factory(catalog.spec)
        h = Harness(catalog, store)
        try:
            for c in candidate:
                h.step(c)
            h.finish()
        except FuzzViolation as exc:
            return exc if exc.property == violation.property else None
        except Exception:
            return None
        finally:
            close_store(store)
        return None

    def shorter(candidate: list[int]) -> bool:
        nonlocal best, seq, runs
        runs += 1
        found = attempt(candidate)
        if found is not None and len(found.choices) < len(seq):
            best, seq = found, list(found.choices)
            return True
        return False

    def merged() -> bool:
        for i in range(len(seq) - 1):
            for m in range(len(seq)):
                if runs >= max_runs:
                    return False
                if shorter([*seq[:i], seq[m], *seq[i + 2 :]]):
                    return True
        return False

    improved = True
    while improved and runs < max_runs:
        improved = False
        for size in (4, 3, 2, 1):
            i = 0
            while i + size <= len(seq) and runs < max_runs:
                if shorter(seq[:i] + seq[i + size :]):
                    improved = True
                else:
                    i += 1
        if not improved:
            improved = merged()
    return best
