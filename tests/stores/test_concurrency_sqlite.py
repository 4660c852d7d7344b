"""Several processes on one SQLite file: no lost update, and every key takes effect once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from statekernel.adapters.sqlite import SqliteStore

from ._sqlite_workers import TALLY, duplicator, racer, same_keys_request

WORKERS = 4


def _run(target: Any, args: tuple[Any, ...]) -> list[Any]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(*args[:1], w, *args[1:], barrier, out))
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


@pytest.mark.slow
def test_read_modify_write_has_one_winner_per_version_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    SqliteStore(TALLY, path).close()
    wins_each = 25
    results = _run(racer, (str(path), wins_each))
    wins = sorted(w for _, ws, _ in results for w in ws)
    total = WORKERS * wins_each
    assert [v for v, _ in wins] == list(range(1, total + 1))  # exactly one winner per version
    store = SqliteStore(TALLY, path)
    snap = store.get("hot")
    assert snap is not None and snap.version == total
    assert snap.context.count == total
    assert snap.context.total == sum(n for _, n in wins)  # no lost update
    history = store.history("hot")
    assert [(r.version, r.payload.n) for r in history] == wins
    assert store.verify().ok


@pytest.mark.slow
def test_same_keys_from_many_processes_take_effect_once(tmp_path: Path) -> None:
    path = tmp_path / "dup.db"
    SqliteStore(TALLY, path).close()
    keys = 60
    results = _run(duplicator, (str(path), keys))
    answers = [a for _, a in results]
    for k in range(keys):
        first = answers[0][k]
        assert first["accepted"]
        assert all(a[k] == first for a in answers[1:]), k  # everyone got the same answer
    store = SqliteStore(TALLY, path)
    counts = dict(
        store.connection.execute(
            "SELECT idempotency_key, count(*) FROM statekernel_audit GROUP BY idempotency_key"
        ).fetchall()
    )
    assert counts == {f"key-{k}": 1 for k in range(keys)}
    for e in ("e0", "e1", "e2"):
        expected = [same_keys_request(k)[1].payload for k in range(keys) if f"e{k % 3}" == e]
        snap = store.get(e)
        assert snap is not None and snap.version == len(expected)
        assert snap.context.total == sum(p["n"] for p in expected)  # type: ignore[index]
    assert store.verify().ok
