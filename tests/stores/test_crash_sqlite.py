"""A child writing keyed commands is SIGKILLed at random moments; after each kill the file
is intact, the audit log replays to every snapshot, every acknowledged command is there
exactly once, and re-sending the last keys applies nothing twice."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from statekernel.adapters.sqlite import SqliteStore

from ._sqlite_workers import TALLY, crash_request

ROOT = Path(__file__).resolve().parents[2]
KILLS = 50


def _spawn(path: Path, run: int) -> subprocess.Popen[str]:
    env = dict(os.environ)
    roots = [str(ROOT / r) for r in ("kernel", "adapters", "specs")] + [str(ROOT)]
    env["PYTHONPATH"] = os.pathsep.join([*roots, env.get("PYTHONPATH", "")])
    code = "import sys; from tests.stores._sqlite_workers import crash_child; "
    code += f"crash_child(sys.argv[1], {run})"
    return subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def _check(store: SqliteStore, run: int, acked: list[tuple[int, str, int]]) -> None:
    conn = store.connection
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for entity in store.entities():
        snap = store.get(entity)
        assert snap is not None and snap.version == len(store.history(entity))
    report = store.verify()
    assert report.ok, report.mismatches
    rows = conn.execute(
        "SELECT idempotency_key, entity, version FROM statekernel_audit WHERE scope = 'tally'"
        " AND idempotency_key LIKE ?",
        (f"r{run}-%",),
    ).fetchall()
    by_key: dict[str, list[tuple[str, int]]] = {}
    for key, entity, version in rows:
        by_key.setdefault(key, []).append((entity, version))
    for i, entity, version in acked:  # every acknowledged command is there exactly once
        assert by_key[f"r{run}-{i}"] == [(entity, version)]
    assert all(len(v) == 1 for v in by_key.values())


@pytest.mark.slow
def test_kill_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    store = SqliteStore(TALLY, path)
    rng = random.Random(20240501)
    acked_total = 0
    for run in range(KILLS):
        child = _spawn(path, run)
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.005, 0.05))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL
        acked = []
        for line in out.splitlines(keepends=True):
            if line.endswith("\n"):  # a torn last line was not acknowledged
                _, i, entity, version = line.split()
                acked.append((int(i), entity, int(version)))
        acked_total += len(acked)
        store.reopen()
        _check(store, run, acked)
        # re-send the last acknowledged key and the next two (possibly committed, not acked)
        last = acked[-1][0] if acked else -1
        resend = range(max(last, 0), max(last, 0) + 3)
        for i in resend:
            entity, cmd, key = crash_request(run, i)
            d = store.handle(entity, cmd, idempotency_key=key)
            assert d.accepted
            if acked and i == last:
                assert (entity, d.snapshot.version) == acked[-1][1:]
        _check(store, run, acked)
        resent = store.connection.execute(
            "SELECT count(*) FROM statekernel_audit WHERE idempotency_key IN (?, ?, ?)",
            tuple(crash_request(run, i)[2] for i in resend),
        ).fetchone()[0]
        assert resent == 3
    assert acked_total > KILLS  # the kills did land in the middle of real work
    store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
