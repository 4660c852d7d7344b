"""A failed COMMIT on SQLite: an unknown outcome is claimed only when the outcome is unknown.

SQLite refuses a COMMIT it cannot complete (a full disk, a failed write, a busy lock) before
the commit record is whole, and then nothing was committed: the store raises what the failure
was, with nothing written. Only a failure after the commit record was written (an fsync, say)
leaves the outcome unknown: :class:`CommitOutcomeUnknown`, whose advice depends on whether the
request carried an idempotency key."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from statekernel.adapters.errors import (
    CommitOutcomeUnknown,
    StoreBusy,
    StoreReadOnly,
    StoreUnavailable,
)
from statekernel.adapters.sqlite import SqliteStore
from statekernel.kernel import Command

from .ledger import SPEC

ROOT = Path(__file__).resolve().parents[2]


def deposit(cents: int) -> Command:
    return Command("deposit", {"amount": {"cents": cents}})


class FailingCommit(sqlite3.Connection):
    """A real connection whose next COMMIT fails as ``fail`` says: ``(what SQLite did, code,
    name)``, what it did being ``"rolled back"``, ``"kept open"`` or ``"committed"``."""

    fail: tuple[str, int, str] | None = None

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        if sql == "COMMIT" and self.fail is not None:
            did, code, name = self.fail
            self.fail = None
            if did == "rolled back":
                super().execute("ROLLBACK")
            elif did == "committed":
                super().execute("COMMIT")
            exc = sqlite3.OperationalError(f"injected {name}")
            exc.sqlite_errorcode = code  # type: ignore[attr-defined]
            exc.sqlite_errorname = name  # type: ignore[attr-defined]
            raise exc
        return super().execute(sql, *args)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    conn = sqlite3.connect(
        tmp_path / "app.db", factory=FailingCommit, isolation_level=None, check_same_thread=False
    )
    store = SqliteStore(SPEC, conn)
    store.handle("a", deposit(1))
    yield store
    store.close()
    conn.close()


def stored(store: Any) -> tuple[Any, ...]:
    conn = store.connection
    keys = conn.execute("SELECT count(*) FROM statekernel_keys").fetchone()[0]
    return store.get("a").version, len(store.history("a")), len(store.outbox()), keys


REFUSED = [
    ("rolled back", 13, "SQLITE_FULL", StoreUnavailable, "is full"),
    ("rolled back", 778, "SQLITE_IOERR_WRITE", StoreUnavailable, "unavailable"),
    ("rolled back", 3, "SQLITE_PERM", StoreReadOnly, "cannot be written"),
    ("kept open", 5, "SQLITE_BUSY", StoreBusy, "locked"),
    ("kept open", 13, "SQLITE_FULL", StoreUnavailable, "is full"),
]


@pytest.mark.parametrize(("did", "code", "name", "error", "why"), REFUSED)
@pytest.mark.parametrize("key", [None, "k"])
def test_a_commit_sqlite_refused_raises_what_it_was_with_nothing_written(
    store: Any, did: str, code: int, name: str, error: type[Exception], why: str, key: str | None
) -> None:
    """These used to raise CommitOutcomeUnknown ("retry with the same idempotency key"), even
    for a command without a key, although nothing had committed."""
    before = stored(store)
    store.connection.fail = (did, code, name)
    with pytest.raises(error, match=why) as caught:
        store.handle("a", deposit(2), idempotency_key=key)
    assert not isinstance(caught.value, CommitOutcomeUnknown)
    assert not store.connection.in_transaction
    assert stored(store) == before
    assert store.handle("a", deposit(2), idempotency_key=key).snapshot.version == 2


@pytest.mark.parametrize(
    ("key", "advice"),
    [("k", "retry with the same idempotency key"), (None, "carried no idempotency key")],
)
def test_a_commit_that_failed_after_the_commit_record_is_an_unknown_outcome(
    store: Any, key: str | None, advice: str
) -> None:
    """A failed fsync after the commit record was written: the write may survive, so the
    outcome is unknown, and the advice fits the request (there is no key to retry with)."""
    store.connection.fail = ("committed", 1034, "SQLITE_IOERR_FSYNC")
    with pytest.raises(CommitOutcomeUnknown, match=advice) as caught:
        store.handle("a", deposit(2), idempotency_key=key)
    assert "may have landed" in str(caught.value)
    if key is None:
        assert "same idempotency key" not in str(caught.value)
    # here it did land: a keyed retry gets the first answer, applied once
    if key is not None:
        again = store.handle("a", deposit(2), idempotency_key=key)
        assert again.replayed is True and again.snapshot.version == 2
    assert len(store.history("a")) == 2


def test_a_batch_with_and_without_keys_gets_advice_for_both(store: Any) -> None:
    store.connection.fail = ("committed", 1034, "SQLITE_IOERR_FSYNC")
    with pytest.raises(CommitOutcomeUnknown, match="read their entity's history"):
        store.handle_many([("a", deposit(2), "k"), ("b", deposit(1), None)])


_CHILD = """
import json, os, resource, signal, sys
from statekernel.adapters.sqlite import SqliteStore
from statekernel.kernel import Command
sys.path.insert(0, sys.argv[2])
from tests.stores.ledger import SPEC

path, key = sys.argv[1], (sys.argv[3] or None)
store = SqliteStore(SPEC, path)
store.handle("a", Command("deposit", {"amount": {"cents": 1}}))
store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # an empty log, to grow at COMMIT
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))  # EFBIG past 1000 B
try:
    store.handle("a", Command("deposit", {"amount": {"cents": 2}}), idempotency_key=key)
    outcome = {"raised": None}
except Exception as exc:
    cause = exc.__cause__
    outcome = {
        "raised": [k.__name__ for k in type(exc).__mro__],
        "message": str(exc),
        "code": getattr(cause, "sqlite_errorname", None),
    }
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
store.reopen()
outcome["versions"] = [r.version for r in store.history("a")]
print(json.dumps(outcome))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX resource limits")
@pytest.mark.parametrize("key", ["", "k"])
def test_a_real_write_failure_at_commit_is_not_an_unknown_outcome(tmp_path: Path, key: str) -> None:
    """A real one: the process may not grow files past 1000 bytes, so SQLite's write of the
    commit to its log fails (EFBIG, SQLITE_IOERR_WRITE) and SQLite rolls back."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(ROOT / r) for r in ("kernel", "adapters", "specs")),
    }
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "app.db"), str(ROOT), key],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout
    outcome = json.loads(out)
    assert outcome["code"] == "SQLITE_IOERR_WRITE", outcome
    assert "StoreUnavailable" in outcome["raised"], outcome
    assert "CommitOutcomeUnknown" not in outcome["raised"], outcome
    assert outcome["versions"] == [1]  # nothing was committed
