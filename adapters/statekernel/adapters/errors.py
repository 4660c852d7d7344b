"""The stores' typed errors: one root, a few subclasses, each also the builtin users expect.

Unlike :func:`~statekernel.kernel.decide`, which never raises (a command it refuses comes back
as a :class:`~statekernel.kernel.Rejected` decision with a stable code, from a store too), a
store raises when it cannot do its own job: the database is locked, unreachable, corrupt,
read-only or holds another spec's data, or a value cannot be stored. Each of those errors is a
:class:`StoreError` (itself a :class:`~statekernel.kernel.StatekernelError`), so one
``except StoreError`` catches them all, and each is also the builtin exception users expect
(:class:`StoreBusy` is a ``TimeoutError``, :class:`StoreUnavailable` a ``ConnectionError``).
Besides these, a store raises a :class:`~statekernel.kernel.InvalidArgument` (both a
``TypeError`` and a ``ValueError``) for a bad argument from the calling code:
:class:`~statekernel.kernel.InvalidIdentifier` for an entity id or idempotency key of the
wrong shape, :class:`~statekernel.kernel.InvalidCommand` for a command whose envelope is
malformed (an ``at`` that is not a ``datetime``, an actor id that is not a string, roles that
are not strings, an ``expected_version`` that is not an ``int``), and ``InvalidArgument``
itself for the rest (a ``limit`` below 1, an ``after`` or outbox id that is not an ``int``, a
purge cutoff that is not a ``datetime``, a batch request that is not a triple). A client's
bad payload is not an error: it is answered with a rejection (``invalid_payload``,
``payload_too_large``), like every refusal of :func:`~statekernel.kernel.decide`. Unless the
error says otherwise (:class:`CommitOutcomeUnknown`), nothing was written.

Driver exceptions (``sqlite3.Error``, ``psycopg.Error``) never escape a store raw: each store
translates them in one place and chains the original (``raise ... from exc``).
"""

from __future__ import annotations

from statekernel.kernel import StatekernelError

__all__ = [
    "CommitOutcomeUnknown",
    "SchemaMismatch",
    "SchemaMissing",
    "StoreBusy",
    "StoreCorrupt",
    "StoreDataError",
    "StoreError",
    "StoreReadOnly",
    "StoreUnavailable",
]


class StoreError(StatekernelError):
    """Root of every error a store raises on purpose. Nothing was written unless a subclass
    says otherwise."""


class StoreBusy(StoreError, TimeoutError):
    """The database stayed locked (or kept failing serialization) past the store's limit.
    Nothing was written; the command may be retried with the same idempotency key."""


class StoreUnavailable(StoreError, ConnectionError):
    """The database cannot be reached, cannot take writes for now (a full disk, a failed
    write), or the connection broke before the write committed. Nothing was written."""


class CommitOutcomeUnknown(StoreUnavailable):
    """COMMIT failed in a way that leaves its outcome unknown (the connection broke during it
    and the store could not find out whether the write landed, or the disk failed after the
    commit record was written), and only then: a COMMIT the database certainly refused raises
    the error that says why, with nothing written. The message says what to do: retry with
    the same idempotency key (the store answers from the key record if the write landed), or,
    for a request that carried none, read the entity's history before sending it again."""


class SchemaMismatch(StoreError):
    """The database holds data of another spec, another spec version, or a schema this
    version of statekernel does not know. Nothing was written."""


class SchemaMissing(SchemaMismatch):
    """A store opened with ``create=False`` found no statekernel tables, or no data of its
    spec, where it was pointed. Nothing was written: a store opened that way never creates
    anything."""


class StoreCorrupt(StoreError):
    """The database file is not a database, or failed its integrity check."""


class StoreReadOnly(StoreError, PermissionError):
    """The database cannot be written (read-only file, folder or connection)."""


class StoreDataError(StoreError, ValueError):
    """A value cannot be stored as plain data (a context or effect holding a type the codec
    does not know), or stored data no longer fits the spec's types. Nothing was written."""
