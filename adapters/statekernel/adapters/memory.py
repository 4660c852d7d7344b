"""``MemoryStore``: the in-process reference store.

It follows the store contract exactly, with plain dictionaries under one lock, so the other
stores can be tested against it and users can test their code without a database. Like a real
store it keeps what it must remember as plain data (answers under keys, outbox messages) and
refuses a context it could not store exactly (:class:`~.errors.StoreDataError`), so code that
passes on it passes on SQLite and PostgreSQL too, and a caller that mutates an answer cannot
rewrite history. It keeps everything across :meth:`MemoryStore.reopen` (a process-local
"crash" loses nothing that was acknowledged, as a durable store must).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from statekernel.kernel import (
    AuditRecord,
    Command,
    Decision,
    KeyRecord,
    Snapshot,
    Spec,
    UnsupportedType,
    check_identifier,
    decision_from_data,
    decision_to_data,
    plan,
    unstructure,
)

from .base import OutboxEntry, as_utc, check_limit, outbox_ids, stamp, utcnow
from .errors import StoreDataError

__all__ = ["MemoryStore"]


class MemoryStore:
    """An in-memory store for ``spec``. Thread-safe; every ``handle`` is atomic."""

    def __init__(self, spec: Spec, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.spec = spec
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshots: dict[str, Snapshot] = {}
        self._history: dict[str, list[AuditRecord]] = {}
        self._keys: dict[str, tuple[KeyRecord, Any]] = {}  # key -> (record, answer as data)
        self._outbox: list[OutboxEntry] = []
        self._delivered: dict[int, datetime] = {}

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        """Decide ``command`` on ``entity`` and apply the plan atomically."""
        with self._lock:
            kept = self._keys.get(idempotency_key) if type(idempotency_key) is str else None
            stored = None
            if kept is not None:
                record, answer = kept
                stored = KeyRecord(
                    record.key,
                    record.entity,
                    record.fingerprint,
                    decision_from_data(self.spec, answer),
                    record.at,
                )
            p = plan(
                self.spec,
                entity,
                self._snapshots.get(entity) if type(entity) is str else None,
                stamp(command, self._clock()),
                idempotency_key,
                stored,
            )
            if p.replayed:
                return p.decision
            # Everything is converted before anything is written: all or nothing.
            try:
                if p.snapshot is not None:
                    problem = self.spec.context_problem(p.snapshot.context)
                    if problem is not None:
                        raise StoreDataError(
                            f"{command.event!r} on {entity!r} cannot be stored: the new "
                            f"context {problem} (nothing was written)"
                        )
                messages = [(m.name, unstructure(m.data)) for m in p.outbox]
                answer = decision_to_data(p.decision) if p.key_record is not None else None
            except UnsupportedType as exc:
                raise StoreDataError(
                    f"{command.event!r} on {entity!r} cannot be stored: {exc} (nothing was written)"
                ) from exc
            if p.snapshot is not None and p.record is not None:
                self._snapshots[entity] = p.snapshot
                self._history.setdefault(entity, []).append(p.record)
                for name, data in messages:
                    self._outbox.append(
                        OutboxEntry(
                            len(self._outbox) + 1,
                            entity,
                            p.record.version,
                            name,
                            data,
                            self.spec.name,
                        )
                    )
            if p.key_record is not None:
                self._keys[p.key_record.key] = (p.key_record, answer)
            return p.decision

    def get(self, entity: str) -> Snapshot | None:
        """The entity's snapshot, or ``None``."""
        check_identifier("entity id", entity)
        return self._snapshots.get(entity)

    def history(self, entity: str) -> Sequence[AuditRecord]:
        """The entity's audit records, oldest first."""
        check_identifier("entity id", entity)
        return tuple(self._history.get(entity, ()))

    def entities(self) -> Iterator[str]:
        """Every entity id with a snapshot, sorted."""
        return iter(sorted(self._snapshots))

    def outbox(self, *, after: int = 0, limit: int = 100) -> Sequence[OutboxEntry]:
        """Outbox rows with ``id > after``, oldest first, delivered or not (the outbox as
        history; relay with :meth:`pending_outbox`)."""
        with self._lock:
            return tuple(e for e in self._outbox if e.id > after)[:limit]

    def pending_outbox(self, *, limit: int = 100) -> Sequence[OutboxEntry]:
        """Outbox rows not yet marked delivered, oldest first, at most ``limit``."""
        check_limit(limit)
        with self._lock:
            pending = (e for e in self._outbox if e.id not in self._delivered)
            return tuple(e for _, e in zip(range(limit), pending, strict=False))

    def mark_delivered(self, ids: Iterable[int]) -> int:
        """Mark these outbox rows delivered now; return how many were not already."""
        wanted = outbox_ids(ids)
        with self._lock:
            fresh = [i for i in wanted if 1 <= i <= len(self._outbox) and i not in self._delivered]
            if fresh:
                now = self._clock()
                for i in fresh:
                    self._delivered[i] = now
            return len(fresh)

    def purge_keys(self, older_than: datetime) -> int:
        """Forget key records first answered before ``older_than`` (a naive time is taken as
        UTC, as in every store)."""
        cutoff = as_utc(older_than)
        with self._lock:
            old = [
                k for k, (r, _) in self._keys.items() if r.at is not None and as_utc(r.at) < cutoff
            ]
            for k in old:
                del self._keys[k]
            return len(old)

    def reopen(self) -> None:
        """A simulated restart: nothing acknowledged is lost."""

    def close(self) -> None:
        """Nothing to release."""
