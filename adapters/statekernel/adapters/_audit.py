"""Explain and verify: answering "why does this record look like this?" for any store.

Both work through the public store methods only (``entities``, ``get``, ``history``), so they
serve every store, including users' own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

import attrs

from statekernel.kernel import (
    Accepted,
    AuditRecord,
    Command,
    Snapshot,
    Spec,
    decide,
    unstructure,
)

from .errors import StoreDataError

__all__ = ["Mismatch", "VerifyReport", "explain", "verify", "verify_entity"]


class _Readable(Protocol):
    spec: Spec

    def get(self, entity: str) -> Snapshot | None: ...

    def history(self, entity: str) -> Sequence[AuditRecord]: ...

    def entities(self) -> Iterable[str]: ...


def _changes(before: object, after: object) -> dict[str, tuple[object, object]]:
    old, new = unstructure(before), unstructure(after)
    if not isinstance(old, dict) or not isinstance(new, dict):
        return {} if old == new else {"": (old, new)}
    return {k: (old.get(k), new.get(k)) for k in sorted(new) if old.get(k) != new.get(k)}


def explain(store: _Readable, entity: str) -> str:
    """Every transition of ``entity``, oldest first: version, time, actor, event, payload,
    idempotency key, the state change and the context fields it changed."""
    records = store.history(entity)
    if not records:
        return f"{entity}: no history (never written)"
    spec = store.spec
    lines = [f"{entity} ({spec.name} v{spec.version}): {len(records)} transition(s)"]
    snap = spec.start()
    for rec in records:
        actor = (
            "no actor"
            if rec.actor is None
            else (f"{rec.actor.id} [{', '.join(sorted(rec.actor.roles)) or 'no roles'}]")
        )
        at = rec.at.isoformat() if rec.at is not None else "time unknown"
        payload = json.dumps(unstructure(rec.payload), sort_keys=True)
        lines.append(
            f"  v{rec.version}  {at}  {actor}  {rec.event} {payload}  "
            f"{rec.from_state} -> {rec.to_state}"
            + (f"  key={rec.idempotency_key}" if rec.idempotency_key else "")
        )
        d = decide(spec, snap, Command(rec.event, rec.payload, actor=rec.actor, at=rec.at))
        if isinstance(d, Accepted):
            for field, (old, new) in _changes(snap.context, d.snapshot.context).items():
                lines.append(f"        {field}: {old!r} -> {new!r}")
            snap = d.snapshot
        else:
            lines.append(f"        (replay rejected: {d.code}: {d.message})")
    current = store.get(entity)
    if current is not None:
        lines.append(f"  now: {current.state} at version {current.version}")
    return "\n".join(lines)


@attrs.frozen
class Mismatch:
    """One disagreement between an entity's audit log and its stored snapshot."""

    entity: str
    version: int | None
    problem: str

    def __str__(self) -> str:
        at = f" at v{self.version}" if self.version is not None else ""
        return f"{self.entity}{at}: {self.problem}"


@attrs.frozen
class VerifyReport:
    """The result of :func:`verify`: how many entities were checked and every mismatch."""

    entities: int
    mismatches: tuple[Mismatch, ...]

    @property
    def ok(self) -> bool:
        """True when every audit log replays to its stored snapshot."""
        return not self.mismatches


def verify_entity(
    spec: Spec, entity: str, snapshot: Snapshot | None, records: Sequence[AuditRecord]
) -> Iterator[Mismatch]:
    """Replay ``records`` through ``decide`` from the start snapshot and yield every
    disagreement with the records themselves and with ``snapshot``."""
    snap = spec.start()
    for i, rec in enumerate(records, 1):
        if rec.version != i:
            yield Mismatch(entity, rec.version, f"record #{i} has version {rec.version}")
        if rec.from_state != snap.state:
            yield Mismatch(
                entity,
                rec.version,
                f"record says from {rec.from_state!r}, replay is at {snap.state!r}",
            )
        d = decide(spec, snap, Command(rec.event, rec.payload, actor=rec.actor, at=rec.at))
        if not isinstance(d, Accepted):
            yield Mismatch(
                entity, rec.version, f"replay rejects {rec.event!r}: {d.code}: {d.message}"
            )
            return
        if d.snapshot.state != rec.to_state:
            yield Mismatch(
                entity,
                rec.version,
                f"record says to {rec.to_state!r}, replay reaches {d.snapshot.state!r}",
            )
        snap = d.snapshot
    if snapshot is None:
        if records:
            yield Mismatch(entity, None, "audit records exist but no snapshot is stored")
        return
    if snapshot.version != snap.version:
        yield Mismatch(
            entity, None, f"stored version {snapshot.version} but {len(records)} audit records"
        )
    if snapshot.state != snap.state:
        yield Mismatch(
            entity, None, f"stored state {snapshot.state!r}, replay reaches {snap.state!r}"
        )
    if snapshot.context != snap.context:
        diff = _changes(snap.context, snapshot.context)
        shown = ", ".join(f"{k}: replay {a!r}, stored {b!r}" for k, (a, b) in diff.items())
        yield Mismatch(entity, None, f"stored context differs from replay ({shown})")


def verify(store: _Readable) -> VerifyReport:
    """Replay every entity's audit log through the kernel and report every mismatch with its
    stored snapshot. A stored row that no longer fits the spec
    (:class:`~.errors.StoreDataError`) is a mismatch of its entity, and the others are still
    checked."""
    count = 0
    found: list[Mismatch] = []
    for entity in store.entities():
        count += 1
        try:
            snapshot, records = store.get(entity), store.history(entity)
        except StoreDataError as exc:
            found.append(Mismatch(entity, None, str(exc)))
            continue
        found.extend(verify_entity(store.spec, entity, snapshot, records))
    return VerifyReport(count, tuple(found))
