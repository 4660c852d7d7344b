"""Stores as users write them: wrappers with only the three methods the fuzzer is promised,
``handle``, ``get`` and ``history``, over a ``MemoryStore``. No ``entities()``, no
``close()``, no ``reopen()``.

- ``Honest`` forwards the three calls;
- ``ForgetsKeys`` does not pass the idempotency key on (a service layer that dropped the
  header), so every retry is decided again as a new request;
- ``AppliesRetriesTwice`` re-executes a retry: a request it has seen before under the same key
  is applied once more without the key, then answered by the inner store under its key;
- ``StaleReads`` answers ``get`` from a cache filled on the first read, which writes never
  refresh;
- ``MixesUpEntities`` stores every entity under its id stripped of trailing digits, so that
  ``e1``, ``e2`` and ``e3`` share one record, kept under an id the fuzzer never uses.

Each factory takes the spec and returns a fresh store, as ``statekernel check --store
MODULE:FACTORY`` wants. Every one is deterministic: the same calls give the same answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from statekernel.adapters.memory import MemoryStore
from statekernel.kernel import AuditRecord, Command, Decision, Snapshot, Spec, request_fingerprint


class Honest:
    """Forwards ``handle``, ``get`` and ``history`` to a ``MemoryStore``; nothing else."""

    def __init__(self, spec: Spec) -> None:
        self._inner = MemoryStore(spec)

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        return self._inner.handle(entity, command, idempotency_key=idempotency_key)

    def get(self, entity: str) -> Snapshot | None:
        return self._inner.get(entity)

    def history(self, entity: str) -> Sequence[AuditRecord]:
        return self._inner.history(entity)


class ForgetsKeys(Honest):
    """Drops the idempotency key on the way in."""

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        return self._inner.handle(entity, command)


class AppliesRetriesTwice(Honest):
    """Applies a retried request (same key, same request) once more without its key before
    answering it under its key."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self._seen: dict[str, str] = {}

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        if idempotency_key is not None:
            fingerprint = request_fingerprint(entity, command)
            if self._seen.get(idempotency_key) == fingerprint:
                self._inner.handle(entity, command)
            self._seen.setdefault(idempotency_key, fingerprint)
        return self._inner.handle(entity, command, idempotency_key=idempotency_key)


class StaleReads(Honest):
    """Serves ``get`` from a read cache that writes do not invalidate."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self._cache: dict[str, Snapshot | None] = {}

    def get(self, entity: str) -> Snapshot | None:
        if entity not in self._cache:
            self._cache[entity] = self._inner.get(entity)
        return self._cache[entity]


class MixesUpEntities(Honest):
    """Stores every entity under its id without the trailing digits (a tenant prefix taken
    for the whole id), so ``e1``, ``e2`` and ``e3`` share one record, under an id the fuzzer
    never uses."""

    @staticmethod
    def _key(entity: str) -> str:
        return entity.rstrip("0123456789")

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        return self._inner.handle(self._key(entity), command, idempotency_key=idempotency_key)

    def get(self, entity: str) -> Snapshot | None:
        return self._inner.get(self._key(entity))

    def history(self, entity: str) -> Sequence[AuditRecord]:
        return self._inner.history(self._key(entity))
