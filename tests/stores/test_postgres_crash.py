"""A writer process is SIGKILLed at random moments; after each kill the database must be
whole: versions match audit rows, the audit log replays to the snapshots, every
acknowledged command is there exactly once, and re-sending the last keys applies nothing
twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from statekernel.adapters.base import verify
from statekernel.adapters.postgres import PostgresStore
from statekernel.kernel import Accepted

from .ledger import SPEC
from .pg_crash_child import command_for
from .pgutil import fresh_pg_schema

KILLS = 12
ROOT = Path(__file__).resolve().parents[2]


def read_acks(path: Path) -> dict[int, int]:
    """Request number -> acknowledged version (complete lines only)."""
    if not path.exists():
        return {}
    acks = {}
    for line in path.read_text().split("\n")[:-1]:
        n, version = line.split()
        acks[int(n)] = int(version)
    return acks


def wait_for(what: str, done: object, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def backends_of(dsn: str, app: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_killed_writer_leaves_a_whole_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    dsn, schema = fresh_pg_schema(request)
    app = f"sk-crash-{schema}"
    child_dsn = psycopg.conninfo.make_conninfo(dsn, application_name=app)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, sys.path)])}
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    store = PostgresStore(SPEC, dsn, schema=schema)
    request.addfinalizer(store.close)
    acked: dict[int, int] = {}
    first = 0
    for run in range(KILLS):
        ackfile = tmp_path / f"acks-{run}"
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.stores.pg_crash_child",
                child_dsn,
                schema,
                str(first),
                str(ackfile),
            ],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
        )
        wait_for(
            "the writer's first acknowledgement",
            lambda c=child, f=ackfile: read_acks(f) or c.poll() is not None,
        )
        assert child.poll() is None, child.stderr.read().decode()  # type: ignore[union-attr]
        time.sleep(rng.uniform(0, 0.15))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stderr.close()  # type: ignore[union-attr]
        wait_for("the killed writer's sessions to end", lambda: backends_of(dsn, app) == 0)

        new = read_acks(ackfile)
        acked.update(new)
        last = max(new)
        context = f"seed {seed}, run {run}, last acknowledged request {last}"

        report = verify(store)
        assert report.ok, (context, report.mismatches)
        histories = {e: store.history(e) for e in store.entities()}
        for entity, history in histories.items():
            assert store.get(entity).version == len(history), context
        used = Counter(r.idempotency_key for h in histories.values() for r in h)
        assert all(c == 1 for c in used.values()), (context, used.most_common(3))
        for n, version in acked.items():
            entity, key, _ = command_for(n)
            assert used[key] == 1, (context, key)
            assert [r.version for r in histories[entity] if r.idempotency_key == key] == [
                version
            ], (context, key)

        # the client re-sends its last requests (the one in flight may or may not have landed)
        for n in range(max(0, last - 2), last + 2):
            entity, key, command = command_for(n)
            d = store.handle(entity, command, idempotency_key=key)
            assert isinstance(d, Accepted), context
            if n in acked:
                assert d.snapshot.version == acked[n], context
        used = Counter(r.idempotency_key for e in store.entities() for r in store.history(e))
        assert all(c == 1 for c in used.values()), context
        assert verify(store).ok, context
        first = last + 2
    assert len(acked) >= KILLS
