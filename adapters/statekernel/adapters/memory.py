"""``MemoryStore``: the in-process reference store.

It follows the store contract exactly, so the other stores can be tested against it and
users can test their code without a database. It is driven by the same core as SQLite and
PostgreSQL (:mod:`statekernel.adapters._core`): its "database" is a few dictionaries under one
lock, holding the very rows the core encodes (contexts, answers under keys and outbox
messages as JSON text), so it refuses what they refuse (a context that would not read back
equal, a float JSON cannot hold) and a caller that mutates an answer cannot rewrite history.
A transaction writes in place and undoes its writes if anything fails, so ``handle_many`` is
all or nothing here too. It keeps everything across :meth:`MemoryStore.reopen` (a
process-local "crash" loses nothing that was acknowledged, as a durable store must).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

from statekernel.kernel import MAX_PAYLOAD, AuditRecord, Spec

from ._core import MAX_CONTEXT, Core, KeyRow, KeyScope, OutboxRow, SnapshotRow, Writes
from ._shell import SyncStore
from .base import as_utc, utcnow
from .errors import StoreCorrupt

__all__ = ["MemoryStore"]

_T = TypeVar("_T")


class _Tables:
    """The memory store's database: rows as the core writes them."""

    def __init__(self) -> None:
        self.snapshots: dict[str, SnapshotRow] = {}
        self.history: dict[str, list[AuditRecord]] = {}
        self.keys: dict[str, KeyRow] = {}
        self.outbox: list[OutboxRow] = []
        self.delivered: dict[int, datetime] = {}


class _Transaction:
    """Writes go straight into the tables; ``undo`` puts them back if the transaction fails."""

    def __init__(self, tables: _Tables) -> None:
        self.tables = tables
        self.undo: list[Callable[[], object]] = []

    def roll_back(self) -> None:
        while self.undo:
            self.undo.pop()()


class MemoryStore(SyncStore[_Transaction]):
    """An in-memory store for ``spec``. Thread-safe; every ``handle`` is atomic.

    ``clock`` stamps commands that carry no ``at`` and outbox rows marked delivered;
    ``max_payload``, ``max_context`` and ``key_scope`` are the size limits and the namespace
    of idempotency keys every store takes (see :mod:`statekernel.adapters.base`)."""

    def __init__(
        self,
        spec: Spec,
        *,
        clock: Callable[[], datetime] = utcnow,
        max_payload: int | None = MAX_PAYLOAD,
        max_context: int | None = MAX_CONTEXT,
        key_scope: str | KeyScope = "spec",
    ) -> None:
        self.spec = spec
        self._clock = clock
        self._core = Core(
            spec,
            cache_limit=None,
            max_payload=max_payload,
            max_context=max_context,
            key_scope=key_scope,
        )
        self._lock = threading.RLock()
        self._tables = _Tables()

    def _run(
        self, work: Callable[[_Transaction, bool], _T], rerun: bool, doing: Callable[[], str]
    ) -> _T:
        with self._lock:
            tx = _Transaction(self._tables)
            try:
                return work(tx, rerun)
            except BaseException:
                tx.roll_back()
                raise

    @contextmanager
    def _reading(self, doing: str, *, consistent: bool = False) -> Iterator[_Transaction]:
        with self._lock:
            yield _Transaction(self._tables)

    def _load(
        self, tx: _Transaction, entity: str, key: str | None, lock: bool
    ) -> tuple[SnapshotRow | None, KeyRow | None]:
        return tx.tables.snapshots.get(entity), None if key is None else tx.tables.keys.get(key)

    def _write(self, tx: _Transaction, w: Writes) -> None:
        t, entity = tx.tables, w.entity
        if w.snapshot is not None and w.record is not None and w.result is not None:
            state, version, context, expected = w.snapshot
            before = t.snapshots.get(entity)
            if (None if before is None else before[1]) != expected:
                raise StoreCorrupt(f"the snapshot of {entity!r} changed under the store's lock")
            t.snapshots[entity] = (state, version, context)
            tx.undo.append(
                (lambda: t.snapshots.pop(entity))
                if before is None
                else (lambda: t.snapshots.__setitem__(entity, before))
            )
            records = t.history.setdefault(entity, [])
            records.append(w.record)
            tx.undo.append(records.pop)
            for name, data in w.outbox:
                t.outbox.append((len(t.outbox) + 1, entity, version, name, data))
                tx.undo.append(t.outbox.pop)
            self._core.remember(entity, version, context, w.result)
        if w.key is not None:
            k = w.key
            t.keys[k.key] = (k.entity, k.fingerprint, k.answer, k.at)
            tx.undo.append(lambda: t.keys.pop(k.key))

    def _snapshot_row(self, tx: _Transaction, entity: str) -> SnapshotRow | None:
        return tx.tables.snapshots.get(entity)

    def _history(self, tx: _Transaction, entity: str) -> Sequence[AuditRecord]:
        return tx.tables.history.get(entity, ())

    def _entity_ids(self, tx: _Transaction) -> list[str]:
        return list(tx.tables.snapshots)

    def _outbox_rows(self, tx: _Transaction, after: int, limit: int) -> list[OutboxRow]:
        return tx.tables.outbox[max(after, 0) : max(after, 0) + limit]

    def _pending_rows(self, tx: _Transaction, limit: int) -> Iterator[OutboxRow]:
        delivered = tx.tables.delivered
        pending = (row for row in tx.tables.outbox if row[0] not in delivered)
        return (row for _, row in zip(range(limit), pending, strict=False))

    def _mark(self, tx: _Transaction, ids: list[int], at: datetime) -> int:
        t = tx.tables
        fresh = [i for i in ids if 1 <= i <= len(t.outbox) and i not in t.delivered]
        for i in fresh:
            t.delivered[i] = at
            tx.undo.append(functools.partial(t.delivered.pop, i))
        return len(fresh)

    def _purge(self, tx: _Transaction, older_than: datetime) -> int:
        cutoff = as_utc(older_than)
        keys = tx.tables.keys
        old = [k for k, row in keys.items() if row[3] is not None and as_utc(row[3]) < cutoff]
        for k in old:
            tx.undo.append(functools.partial(keys.__setitem__, k, keys.pop(k)))
        return len(old)

    def reopen(self) -> None:
        """A simulated restart: nothing acknowledged is lost (decoded values are dropped, so
        the next reads decode the stored rows again)."""
        self._core.forget()

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"MemoryStore({self.spec.name!r} v{self.spec.version})"
