"""The planner: idempotency and versions as kernel semantics, not adapter code.

A store loads two things inside its transaction, the entity's snapshot and any record stored
under the idempotency key, and hands them to :func:`plan` with the command. The plan is
either the stored answer (write nothing) or the complete write set: the new snapshot, its
audit record, the key record and the outbox messages. The store writes exactly that, in the
same transaction, and commits.

Rules, in order:

1. The entity id, the key and the command's envelope are checked first; a malformed one is a
   bug in the calling code and raises (:class:`~statekernel.kernel.InvalidIdentifier`,
   :class:`~statekernel.kernel.InvalidCommand`). Then the payload is screened: one that is
   not plain data within bounds (too deep, an integer too long, a float JSON cannot hold) is
   answered ``invalid_payload``, one larger than ``max_payload`` ``payload_too_large`` (see
   :mod:`._input`). Neither writes anything, not even under the key, so a retry runs again.
   This is the one boundary where caller input is checked: every store plans through here.
2. If a record exists under the key: the same request gets the first answer back, equal,
   marked ``replayed`` (see :attr:`~statekernel.kernel.Accepted.replayed`), and nothing is
   written; a different request under that key is ``idempotency_mismatch``
   and nothing is written. This comes *before* the version check, so a retry of a command
   that already moved the entity on still gets its original answer. The mismatch names the
   key but not the entity it was first used on (that would tell one client about another's
   requests).
3. Otherwise :func:`~statekernel.kernel.decide` runs on the snapshot (or the spec's start
   snapshot for an entity never seen). An accepted decision writes the snapshot, the audit
   record (carrying the key) and the outbox; with a key, the answer is also recorded under
   it. A rejection writes nothing to the entity; with a key its answer is recorded too, so a
   retry gets the same rejection, except ``spec_fault``, which is a bug in the spec and is
   not remembered (a retry after the fix runs again).

Keys are scoped by spec name (one namespace per workflow), not per entity: reusing a key on a
different entity is a client bug and is reported as ``idempotency_mismatch``. A store may
narrow the namespace further (its ``key_scope``: per actor, per entity or per tenant), as the
IETF Idempotency-Key draft recommends; the planner sees only the records of the caller's
namespace. Stores keep key records until they are purged (``purge_keys(older_than=...)``);
after a purge a retry of that key is treated as a new request, so keep keys at least as long
as clients may retry.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from ._decision import decide
from ._input import MAX_ID_LENGTH, MAX_PAYLOAD, check_command, check_identifier, payload_refusal
from ._model import Accepted, AuditRecord, Command, Decision, Message, Rejected, Snapshot
from ._serial import request_fingerprint
from ._spec import Spec

__all__ = ["MAX_ID_LENGTH", "KeyRecord", "Plan", "check_identifier", "plan"]


@attrs.frozen
class KeyRecord:
    """What a store keeps under an idempotency key: whose request it was (entity and
    fingerprint), the first answer, and when it was given (for purging)."""

    key: str
    entity: str
    fingerprint: str
    decision: Decision
    at: datetime | None = None


@attrs.frozen
class Plan:
    """What a store must do for one command.

    ``decision`` is the answer to return. ``replayed`` is true when it came from the key
    record (the decision then says so too: ``decision.replayed``). The other fields are the
    write set; ``None`` / empty means "do not write".
    """

    decision: Decision
    replayed: bool = False
    snapshot: Snapshot | None = None
    record: AuditRecord | None = None
    key_record: KeyRecord | None = None
    outbox: tuple[Message, ...] = ()

    @property
    def writes(self) -> bool:
        """Whether the plan writes anything at all."""
        return self.snapshot is not None or self.key_record is not None


def plan(
    spec: Spec,
    entity: str,
    current: Snapshot | None,
    command: Command,
    key: str | None = None,
    stored: KeyRecord | None = None,
    *,
    max_payload: int | None = MAX_PAYLOAD,
) -> Plan:
    """Plan ``command`` on ``entity`` given what the store loaded: ``current`` (``None`` for a
    new entity) and ``stored``, the record under ``key`` if there is one. ``max_payload`` is
    the store's limit on the payload's size (``None``: no limit; see the module
    documentation for the rules)."""
    check_identifier("entity id", entity)
    check_command(command)
    if key is not None:
        check_identifier("idempotency key", key)
    refused = payload_refusal(command, max_payload)
    if refused is not None:
        return Plan(refused)
    if key is None:
        d = decide(spec, current if current is not None else spec.start(), command)
        if isinstance(d, Accepted):
            return Plan(d, snapshot=d.snapshot, record=d.record, outbox=d.effects)
        return Plan(d)
    fingerprint = request_fingerprint(entity, command)
    if stored is not None:
        if stored.key != key:
            raise ValueError(f"the stored record is for key {stored.key!r}, not {key!r}")
        if stored.fingerprint == fingerprint and stored.entity == entity:
            return Plan(attrs.evolve(stored.decision, replayed=True), replayed=True)
        return Plan(
            Rejected(
                "idempotency_mismatch",
                f"idempotency key {key!r} was first used for a different request",
                {"key": key},
            )
        )
    d = decide(spec, current if current is not None else spec.start(), command)
    if isinstance(d, Accepted):
        r = d.record
        record = AuditRecord(
            r.version, r.event, r.payload, r.actor, r.from_state, r.to_state, r.at, key
        )
        d = Accepted(d.snapshot, record, d.effects)
        return Plan(
            d,
            snapshot=d.snapshot,
            record=record,
            key_record=KeyRecord(key, entity, fingerprint, d, command.at),
            outbox=d.effects,
        )
    if d.code == "spec_fault":
        return Plan(d)
    return Plan(d, key_record=KeyRecord(key, entity, fingerprint, d, command.at))
