"""Plain-data forms of snapshots, audit records and decisions, shared by every store.

Stores keep these as JSON. Each ``*_from_data`` function is the exact inverse of its
``*_to_data`` twin for the same spec: contexts and payloads are structured back strictly, so
nested attrs classes, tuples, optional fields and large integers round-trip unchanged.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._codec import UnsupportedType, unstructure
from ._model import Accepted, Actor, AuditRecord, Command, Decision, Message, Rejected, Snapshot

if TYPE_CHECKING:  # the spec compiles its rejections, which use plain()
    from ._spec import Spec

__all__ = [
    "actor_from_data",
    "actor_to_data",
    "decision_from_data",
    "decision_to_data",
    "plain",
    "record_from_data",
    "record_to_data",
    "request_fingerprint",
    "snapshot_from_data",
    "snapshot_to_data",
]


def plain(value: object) -> Any:
    """Best-effort plain data: :func:`unstructure`, with ``repr`` for anything it cannot
    convert (used for fingerprints and rejection details, never for contexts)."""
    try:
        return unstructure(value)
    except UnsupportedType:
        return repr(value)


def actor_to_data(actor: Actor | None) -> dict[str, Any] | None:
    """``{"id": ..., "roles": [sorted]}`` or ``None``."""
    if actor is None:
        return None
    return {"id": actor.id, "roles": sorted(actor.roles)}


def actor_from_data(data: Any) -> Actor | None:
    """Inverse of :func:`actor_to_data`."""
    if data is None:
        return None
    return Actor(data["id"], roles=data.get("roles", ()))


def _time_to_data(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _time_from_data(data: Any) -> datetime | None:
    return None if data is None else datetime.fromisoformat(data)


def snapshot_to_data(snapshot: Snapshot) -> dict[str, Any]:
    """``{"state", "context", "version"}`` with the context as plain data."""
    return {
        "state": snapshot.state,
        "context": unstructure(snapshot.context),
        "version": snapshot.version,
    }


def snapshot_from_data(spec: Spec, data: Any) -> Snapshot:
    """Inverse of :func:`snapshot_to_data` (the context is structured strictly)."""
    return Snapshot(data["state"], spec.structure_context(data["context"]), data["version"])


def record_to_data(record: AuditRecord) -> dict[str, Any]:
    """An audit record as plain data."""
    return {
        "version": record.version,
        "event": record.event,
        "payload": unstructure(record.payload),
        "actor": actor_to_data(record.actor),
        "from_state": record.from_state,
        "to_state": record.to_state,
        "at": _time_to_data(record.at),
        "idempotency_key": record.idempotency_key,
    }


def record_from_data(spec: Spec, data: Any) -> AuditRecord:
    """Inverse of :func:`record_to_data` (the payload is structured with the type of the
    transition the record names)."""
    return AuditRecord(
        version=data["version"],
        event=data["event"],
        payload=spec.structure_payload(data["from_state"], data["event"], data["payload"]),
        actor=actor_from_data(data["actor"]),
        from_state=data["from_state"],
        to_state=data["to_state"],
        at=_time_from_data(data["at"]),
        idempotency_key=data["idempotency_key"],
    )


def decision_to_data(decision: Decision) -> dict[str, Any]:
    """A decision as plain data (a ``spec_fault``'s exception is kept as its repr only)."""
    if isinstance(decision, Accepted):
        return {
            "accepted": True,
            "snapshot": snapshot_to_data(decision.snapshot),
            "record": record_to_data(decision.record),
            "effects": [{"name": m.name, "data": plain(m.data)} for m in decision.effects],
        }
    return {
        "accepted": False,
        "code": decision.code,
        "message": decision.message,
        "details": plain(decision.details),
    }


def decision_from_data(spec: Spec, data: Any) -> Decision:
    """Inverse of :func:`decision_to_data`."""
    if data["accepted"]:
        return Accepted(
            snapshot_from_data(spec, data["snapshot"]),
            record_from_data(spec, data["record"]),
            tuple(Message(m["name"], m["data"]) for m in data["effects"]),
        )
    return Rejected(data["code"], data["message"], data["details"])


def request_fingerprint(entity: str, command: Command) -> str:
    """A digest of everything that makes two requests "the same" for idempotency: the entity,
    event, payload, actor and expected version. The time ``at`` is left out: a retry happens
    later than the original."""
    body = [
        entity,
        plain(command.event),
        plain(command.payload),
        actor_to_data(command.actor) if isinstance(command.actor, Actor) else plain(command.actor),
        plain(command.expected_version),
    ]
    return hashlib.sha256(_canonical.encode(body).encode()).hexdigest()


_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=repr)
"""One encoder for every fingerprint: sorted keys, no spaces, ``repr`` for the unknown."""
