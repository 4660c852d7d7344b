"""The store core: ``handle`` as data, with no I/O. Every store drives it; none copies it.

One command inside one transaction is four steps, and only the first and third touch a
database, so a store (sync today, async later) is a thin shell that performs them:

1. **load** the entity's snapshot row and the row under the idempotency key (the driver runs
   its SQL and hands back plain tuples: :data:`SnapshotRow`, :data:`KeyRow`);
2. **plan**: :meth:`Core.step` decodes those rows, calls the kernel's pure
   :func:`~statekernel.kernel.plan` and encodes its write set as :class:`Writes`: the texts and
   values of every row to write, or nothing for an answer that writes nothing;
3. **write** those rows (the driver's SQL) with a version compare-and-swap; a swap that touches
   no row, or a uniqueness backstop that fires, is a :class:`Conflict`;
4. **commit**. A :class:`Conflict` means another writer won: :class:`Retries` says whether the
   whole transaction runs again (loading with ``lock=True``), how long to wait first, and what
   to raise when the re-runs run out. Nothing else is retried.

Everything else a store shares is here too: the one encoder of the write set (the remembered
answer is composed from the texts already encoded for the snapshot, the audit row and the
outbox, so each value is encoded once), the one decoder of stored rows (every
:class:`~.errors.StoreDataError` about stored data is raised here), and the snapshot cache
(a snapshot read back as the very text the store last wrote or read for it is not decoded
again). What is a store's own stays in its module: DDL and migrations, SQL text, the JSON
flavour (:class:`Json`), where connections come from, and how driver errors map to
:mod:`~statekernel.adapters.errors`.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final, NamedTuple

import attrs

from statekernel.kernel import (
    MAX_ID_LENGTH,
    MAX_PAYLOAD,
    Accepted,
    Actor,
    AuditRecord,
    Command,
    Decision,
    InvalidArgument,
    KeyRecord,
    PayloadError,
    Plan,
    Rejected,
    Snapshot,
    Spec,
    UnsupportedType,
    check_identifier,
    decision_from_data,
    decision_to_data,
    plan,
    record_from_data,
    unstructure,
)

from .base import MAX_CONTEXT, KeyScope, OutboxEntry
from .errors import StoreBusy, StoreCorrupt, StoreDataError, StoreError

__all__ = [
    "KEY_SCOPES",
    "MAX_CONTEXT",
    "TEXT_JSON",
    "AuditWrite",
    "Conflict",
    "Core",
    "Json",
    "KeyRow",
    "KeyScope",
    "KeyWrite",
    "OutboxRow",
    "Retries",
    "SnapshotRow",
    "SnapshotWrite",
    "Writes",
    "check_requests",
]

# -- what a driver loads (plain tuples, straight from its cursor) --------------------------

SnapshotRow = tuple[str, int, str]
"""``(state, version, context as JSON text)``."""

KeyRow = tuple[str, str, str, datetime | None]
"""``(entity, fingerprint, answer as JSON text, at)``: the record under an idempotency key."""

OutboxRow = tuple[int, str, int, str, str]
"""``(id, entity, version, name, data as JSON text)``."""


# -- what a driver writes -------------------------------------------------------------------


class SnapshotWrite(NamedTuple):
    """The entity's new snapshot row. ``expected`` is the version it replaces (the
    compare-and-swap), ``None`` for an entity never written (an insert)."""

    state: str
    version: int
    context: str
    expected: int | None


class AuditWrite(NamedTuple):
    """The new audit row: JSON texts for ``payload`` and ``actor`` (``None``: no actor), the
    command's time both as given (``at``) and as ISO text (``at_text``)."""

    version: int
    event: str
    payload: str
    actor: str | None
    from_state: str
    to_state: str
    at: datetime | None
    at_text: str | None
    key: str | None


class KeyWrite(NamedTuple):
    """The record to keep under an idempotency key: whose request it was and the answer."""

    key: str
    entity: str
    fingerprint: str
    answer: str
    at: datetime | None
    at_text: str | None


class Writes:
    """A plan's whole write set for one entity, encoded before anything is written.

    ``snapshot`` and ``audit`` are written together (or neither: a remembered rejection
    writes only ``key``); ``outbox`` holds ``(name, data as JSON text)`` per message, in
    order. ``result`` and ``record`` are the values the texts encode (for the snapshot cache
    and for stores that keep objects); :meth:`Core.record_text` gives the audit record as one
    JSON text, for stores that keep it whole.
    """

    __slots__ = ("_record_text", "audit", "entity", "key", "outbox", "record", "result", "snapshot")

    def __init__(
        self,
        entity: str,
        snapshot: SnapshotWrite | None,
        audit: AuditWrite | None,
        outbox: tuple[tuple[str, str], ...],
        key: KeyWrite | None,
        result: Snapshot | None,
        record: AuditRecord | None,
        record_text: str | None,
    ) -> None:
        self.entity = entity
        self.snapshot = snapshot
        self.audit = audit
        self.outbox = outbox
        self.key = key
        self.result = result
        self.record = record
        self._record_text = record_text

    def __repr__(self) -> str:
        return (
            f"Writes({self.entity!r}, snapshot={self.snapshot!r}, audit={self.audit!r}, "
            f"outbox={self.outbox!r}, key={self.key!r})"
        )


# -- the JSON flavour -------------------------------------------------------------------------


@attrs.frozen
class Json:
    """How a store turns plain data into JSON text and back. ``dumps`` raises ``ValueError``,
    ``TypeError`` or :class:`~.errors.StoreDataError` for a value it cannot hold exactly."""

    dumps: Callable[[Any], str]
    loads: Callable[[str], Any] = json.loads


def _text_json() -> Json:
    encoder = json.JSONEncoder(
        ensure_ascii=True, check_circular=False, allow_nan=False, separators=(",", ":")
    )
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the C encoder
        return Json(encoder.encode)
    iterencode = make(  # the C encoder, built once instead of once per call
        None,  # no circular-reference markers: values come from unstructure(), a tree
        encoder.default,
        json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        False,  # sort_keys
        False,  # skipkeys
        False,  # allow_nan
    )

    def dumps(value: Any) -> str:
        return "".join(iterencode(value, 0))

    return Json(dumps)


TEXT_JSON = _text_json()
"""JSON as text columns keep it (the memory and SQLite stores): ASCII only, so any Python
string round-trips (lone surrogates too); integers of any size stay exact; ``NaN`` and the
infinities are refused."""


def _bad_float(value: object, path: str = "") -> str | None:
    """Where ``value`` holds a float JSON cannot hold, as ``"path is inf"``, or ``None``."""
    if type(value) is float and not math.isfinite(value):
        return f"{path or 'value'} is {value!r}"
    items: Iterable[tuple[object, object]] = ()
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    for k, v in items:
        where = (f"{path}.{k}" if path else k) if isinstance(k, str) else f"{path}[{k}]"
        found = _bad_float(v, where)
        if found is not None:
            return found
    return None


# -- re-running transactions --------------------------------------------------------------------


class Conflict(Exception):
    """Another writer won: a compare-and-swap touched no row, the database reported a
    serialization failure or deadlock, or (``backstop``) a unique constraint fired. The whole
    transaction may run again; a driver raises it, the shell consults :class:`Retries`."""

    def __init__(self, reason: str, *, backstop: bool = False) -> None:
        super().__init__(reason)
        self.backstop = backstop


@attrs.frozen
class Retries:
    """Which errors re-run a transaction (only :class:`Conflict`), how often (``limit``
    re-runs after the first run), how long to wait before each, and what to raise at the end.
    """

    limit: int = 0
    base: float = 0.002
    cap: float = 0.2

    def delay(self, rerun: int, rng: random.Random) -> float:
        """Seconds to wait before re-run number ``rerun`` (1, 2, ...): exponential backoff
        with full jitter."""
        return rng.uniform(0, min(self.cap, self.base * 2 ** (rerun - 1)))

    def exhausted(self, last: Conflict, doing: str) -> StoreError:
        """The error once every run lost (raise it ``from`` the conflict's cause)."""
        runs = self.limit + 1
        if last.backstop:
            return StoreCorrupt(
                f"{doing} kept colliding with stored rows ({last}): the audit log or key "
                "records are ahead of the snapshot; nothing was written"
            )
        return StoreBusy(
            f"{doing} lost to concurrent writers {runs} time(s) in a row ({last}); nothing "
            "was written, retry (with the same idempotency key)"
        )


def check_requests(requests: Iterable[tuple[str, Command, str | None]]) -> list[Any]:
    """The ``(entity, command, key)`` requests of a batch as a list, every one checked to be
    such a triple and every id and key checked before anything runs
    (:class:`~statekernel.kernel.InvalidArgument`,
    :class:`~statekernel.kernel.InvalidIdentifier`)."""
    if isinstance(requests, str | bytes) or not isinstance(requests, Iterable):
        raise InvalidArgument(
            "requests", requests, "must be an iterable of (entity, command, key) triples"
        )
    items = list(requests)
    for i, item in enumerate(items):
        if not isinstance(item, tuple | list) or len(item) != 3:
            raise InvalidArgument(
                f"request {i}",
                item,
                "must be an (entity id, command, idempotency key or None) triple",
            )
        entity, _, key = item
        check_identifier("entity id", entity)
        if key is not None:
            check_identifier("idempotency key", key)
    return items


# -- limits and key scopes ----------------------------------------------------------------------


def _by_entity(entity: str, command: Command) -> str:
    return entity


def _by_actor(entity: str, command: Command) -> str:
    actor = command.actor
    return actor.id if isinstance(actor, Actor) and type(actor.id) is str else ""


KEY_SCOPES: Final[Mapping[str, KeyScope | None]] = {
    "spec": None,
    "entity": _by_entity,
    "actor": _by_actor,
}
"""The key scopes a store can be made with by name: ``"spec"`` (the default: one namespace
per spec, so a key reused on another entity is an ``idempotency_mismatch``), ``"entity"``
(each entity its own namespace) and ``"actor"`` (each actor its own; commands without an
actor share the spec's). Any :data:`KeyScope` function may be given instead, for tenants say:
``key_scope=lambda entity, command: entity.split("/")[0]``."""


def _key_scope(scope: str | KeyScope) -> KeyScope | None:
    if isinstance(scope, str):
        if scope not in KEY_SCOPES:
            raise InvalidArgument(
                "key_scope", scope, f"must be one of {', '.join(KEY_SCOPES)} or a function"
            )
        return KEY_SCOPES[scope]
    if not callable(scope):
        raise InvalidArgument(
            "key_scope", scope, f"must be a name or a function, not {type(scope).__name__}"
        )
    return scope


def _limit(what: str, value: int | None) -> int | None:
    if value is not None and (type(value) is not int or value < 1):
        raise InvalidArgument(what, value, "must be a positive int (characters) or None")
    return value


# -- the core -----------------------------------------------------------------------------------

_new = tuple.__new__
_ANSWER = (
    '{"accepted":true,"snapshot":{"state":%s,"version":%d,"context":%s},"record":%s,"effects":[%s]}'
)
_EFFECT = '{"name":%s,"data":%s}'
_CACHE_LIMIT = 4096


class Core:
    """Everything a store does for ``spec`` that is not I/O (see the module documentation).

    ``json`` is the store's JSON flavour; ``cache_limit`` bounds the snapshot cache (``None``:
    unbounded, for a store that keeps everything in memory anyway). ``max_payload`` and
    ``max_context`` are the store's size limits (``None``: none): a larger payload is
    answered ``payload_too_large`` before it is decided (the planner measures it), an accepted
    transition whose new context encodes to more characters ``context_too_large``; neither
    writes anything, not even under the key. ``key_scope`` names the namespace of idempotency
    keys (:data:`KEY_SCOPES`).
    """

    def __init__(
        self,
        spec: Spec,
        json: Json = TEXT_JSON,
        *,
        cache_limit: int | None = _CACHE_LIMIT,
        max_payload: int | None = MAX_PAYLOAD,
        max_context: int | None = MAX_CONTEXT,
        key_scope: str | KeyScope = "spec",
    ) -> None:
        self.spec = spec
        self.json = json
        self.max_payload = _limit("max_payload", max_payload)
        self.max_context = _limit("max_context", max_context)
        self._scope = _key_scope(key_scope)
        self._dumps = json.dumps
        self._loads = json.loads
        self._where = f"{spec.name!r} v{spec.version}"
        self._cache: dict[str, tuple[int, str, Snapshot]] = {}
        self._cache_limit = cache_limit

    # -- the step between load and write ----------------------------------------------------

    def slot(self, entity: str, command: Command, key: str | None) -> str | None:
        """Where the record under ``key`` is kept: the key itself in the spec's namespace,
        else ``namespace + "\\x1f" + key`` (a key holds no control character, so slots of
        different namespaces never collide)."""
        if key is None or self._scope is None:
            return key
        part = self._scope(entity, command)
        if type(part) is not str:
            raise InvalidArgument("key scope", part, f"must give a str, not {type(part).__name__}")
        if len(part) > MAX_ID_LENGTH:
            raise InvalidArgument(
                "key scope", part, f"gave {len(part)} characters; the limit is {MAX_ID_LENGTH}"
            )
        return f"{part}\x1f{key}" if part else key

    def step(
        self,
        entity: str,
        command: Command,
        key: str | None,
        snapshot: SnapshotRow | None,
        stored: KeyRow | None,
        slot: str | None = None,
    ) -> tuple[Decision, Writes | None]:
        """Plan ``command`` on what was loaded; return the answer and the rows to write
        (``None``: write nothing). The snapshot row is not decoded when a record under the
        key was found: the plan is then the stored answer or a mismatch, which need none.
        ``slot`` is where the key's record was loaded from (:meth:`slot`)."""
        record = None
        current = None
        if stored is not None:
            assert key is not None
            record = KeyRecord(key, stored[0], stored[1], self.answer(stored[2]), stored[3])
        elif snapshot is not None:
            current = self.snapshot(entity, snapshot)
        p = plan(self.spec, entity, current, command, key, record, max_payload=self.max_payload)
        if not p.writes:
            return p.decision, None
        writes = self.encode(entity, current, p, slot)
        limit = self.max_context
        if limit is not None and writes.snapshot is not None:
            size = len(writes.snapshot.context)
            if size > limit:
                return self._too_large(entity, command.event, size, limit), None
        return p.decision, writes

    @staticmethod
    def _too_large(entity: str, event: str, size: int, limit: int) -> Rejected:
        return Rejected(
            "context_too_large",
            f"{event!r} on {entity!r} would store a context of {size} characters of JSON, "
            f"over the store's limit of {limit}; nothing was written",
            {"event": event, "size": size, "limit": limit},
        )

    # -- the one encoder of the write set ---------------------------------------------------

    def encode(
        self, entity: str, current: Snapshot | None, p: Plan, slot: str | None = None
    ) -> Writes:
        """Every row of ``p``'s write set as the store will write it (the key record under
        ``slot``, by default the key itself), or
        :class:`~.errors.StoreDataError` (before anything is written) for a context that
        would not read back equal or a value the JSON flavour cannot hold."""
        dumps = self._dumps
        snap, rec, kr, decision = p.snapshot, p.record, p.key_record, p.decision
        snapshot = audit = key = None
        outbox: tuple[tuple[str, str], ...] = ()
        record_text = at_text = None
        try:
            if snap is not None and rec is not None:
                problem = self.spec.context_problem(snap.context)
                if problem is not None:
                    raise StoreDataError(f"the new context {problem}")
                context = dumps(unstructure(snap.context))
                payload = dumps(unstructure(rec.payload))
                actor = (
                    None
                    if rec.actor is None
                    else dumps({"id": rec.actor.id, "roles": sorted(rec.actor.roles)})
                )
                if p.outbox:
                    outbox = tuple((m.name, dumps(unstructure(m.data))) for m in p.outbox)
                at_text = None if rec.at is None else rec.at.isoformat()
                # tuple.__new__ builds the rows without their classes' Python-level __new__
                snapshot = _new(
                    SnapshotWrite,
                    (
                        snap.state,
                        snap.version,
                        context,
                        None if current is None else current.version,
                    ),
                )
                audit = _new(
                    AuditWrite,
                    (
                        rec.version,
                        rec.event,
                        payload,
                        actor,
                        rec.from_state,
                        rec.to_state,
                        rec.at,
                        at_text,
                        rec.idempotency_key,
                    ),
                )
            if kr is not None:
                if isinstance(decision, Accepted) and audit is not None and snapshot is not None:
                    # decision_to_data(decision) as JSON, composed from the texts above
                    record_text = self._record_text(audit)
                    answer = _ANSWER % (
                        dumps(snapshot.state),
                        snapshot.version,
                        snapshot.context,
                        record_text,
                        ",".join([_EFFECT % (dumps(name), data) for name, data in outbox]),
                    )
                else:
                    answer = dumps(decision_to_data(decision))
                if kr.at is not (None if rec is None else rec.at):
                    at_text = None if kr.at is None else kr.at.isoformat()
                where = kr.key if slot is None else slot
                key = _new(KeyWrite, (where, kr.entity, kr.fingerprint, answer, kr.at, at_text))
        except StoreDataError as exc:
            raise StoreDataError(self._refusal(p, entity, str(exc))) from exc
        except (UnsupportedType, ValueError, TypeError, OverflowError) as exc:
            why = str(exc)
            if isinstance(exc, ValueError) and "JSON" in why:
                why = _bad_float(self._plain_parts(p)) or why
            raise StoreDataError(self._refusal(p, entity, why)) from exc
        return Writes(entity, snapshot, audit, outbox, key, snap, rec, record_text)

    def record_text(self, writes: Writes) -> str:
        """The audit row of ``writes`` as one JSON text (``record_to_data`` of the record)."""
        if writes._record_text is None:
            assert writes.audit is not None
            writes._record_text = self._record_text(writes.audit)
        return writes._record_text

    def _record_text(self, a: AuditWrite) -> str:
        head = self._dumps(
            {
                "version": a.version,
                "event": a.event,
                "from_state": a.from_state,
                "to_state": a.to_state,
                "at": a.at_text,
                "idempotency_key": a.key,
            }
        )
        actor = "null" if a.actor is None else a.actor
        return f'{head[:-1]},"payload":{a.payload},"actor":{actor}}}'

    def _refusal(self, p: Plan, entity: str, why: str) -> str:
        event = p.record.event if p.record is not None else "the command"
        return f"{event!r} on {entity!r} cannot be stored: {why}; nothing was written"

    @staticmethod
    def _plain_parts(p: Plan) -> dict[str, Any]:
        parts: dict[str, Any] = {}
        for name, value in (
            ("context", None if p.snapshot is None else p.snapshot.context),
            ("payload", None if p.record is None else p.record.payload),
            *((f"effect {m.name!r}", m.data) for m in p.outbox),
        ):
            try:
                parts[name] = unstructure(value)
            except UnsupportedType:
                continue
        return parts

    # -- the one decoder of stored rows -------------------------------------------------------

    def loads(self, text: str, what: str) -> Any:
        """Stored JSON text as plain data (:class:`~.errors.StoreDataError` if unreadable)."""
        try:
            return self._loads(text)
        except (ValueError, TypeError) as exc:
            raise StoreDataError(f"stored {what} is not readable JSON: {exc}") from exc

    def snapshot(self, entity: str, row: SnapshotRow) -> Snapshot:
        """The snapshot in a stored row; the cached one when the row holds the very text the
        store last saw for it (contexts are frozen values, so sharing them is safe)."""
        state, version, text = row
        hit = self._cache.get(entity)
        if hit is not None and hit[0] == version and hit[1] == text and hit[2].state == state:
            return hit[2]
        data = self.loads(text, f"context of {entity!r}")
        try:
            snap = Snapshot(state, self.spec.structure_context(data), version)
        except PayloadError as exc:
            raise StoreDataError(
                f"the stored context of {entity!r} no longer fits {self._where}: {exc}"
            ) from exc
        except (ValueError, TypeError, KeyError) as exc:
            raise StoreDataError(
                f"the stored context of {entity!r} no longer fits {self._where}: {exc!r}"
            ) from exc
        self.remember(entity, version, text, snap)
        return snap

    def remember(self, entity: str, version: int, text: str, snap: Snapshot) -> None:
        """Cache ``snap`` as what the row ``(snap.state, version, text)`` holds: ``text`` must
        be exactly what the database gives back for it."""
        if self._cache_limit is not None and len(self._cache) >= self._cache_limit:
            self._cache.clear()
        self._cache[entity] = (version, text, snap)

    def forget(self) -> None:
        """Empty the snapshot cache (after a reopen, say)."""
        self._cache.clear()

    def answer(self, text: str) -> Decision:
        """The answer kept under a key."""
        data = self.loads(text, "answer")
        try:
            return decision_from_data(self.spec, data)
        except (PayloadError, ValueError, TypeError, KeyError) as exc:
            raise StoreDataError(f"a stored answer no longer fits {self._where}: {exc!r}") from exc

    def record(self, entity: str, data: Mapping[str, Any]) -> AuditRecord:
        """An audit record from its plain data (``record_to_data``'s form)."""
        try:
            return record_from_data(self.spec, data)
        except (PayloadError, ValueError, TypeError, KeyError) as exc:
            version = data.get("version") if isinstance(data, Mapping) else None
            raise StoreDataError(
                f"audit record v{version} of {entity!r} no longer fits {self._where}: {exc!r}"
            ) from exc

    def record_columns(
        self,
        entity: str,
        version: int,
        event: str,
        payload: str,
        actor: str | None,
        from_state: str,
        to_state: str,
        at: str | None,
        key: str | None,
    ) -> AuditRecord:
        """An audit record from a row that keeps it in columns (:class:`AuditWrite`'s)."""
        what = f"audit record v{version} of {entity!r}"
        return self.record(
            entity,
            {
                "version": version,
                "event": event,
                "payload": self.loads(payload, what),
                "actor": None if actor is None else self.loads(actor, what),
                "from_state": from_state,
                "to_state": to_state,
                "at": at,
                "idempotency_key": key,
            },
        )

    def entry(self, row: OutboxRow) -> OutboxEntry:
        """An outbox entry from its row."""
        id, entity, version, name, data = row
        text = self.loads(data, f"outbox row {id}")
        return OutboxEntry(id, entity, version, name, text, self.spec.name)
