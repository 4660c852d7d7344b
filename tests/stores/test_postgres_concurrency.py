"""Several connections at once on one PostgreSQL schema: compare-and-swap writers and
duplicate keyed requests. Threads block in the driver, so the server sees real concurrency."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from statekernel.adapters.base import verify
from statekernel.adapters.postgres import PostgresStore
from statekernel.kernel import Accepted, Command, Decision

from .ledger import SPEC
from .pgutil import fresh_pg_schema

WORKERS = 6


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> tuple[str, str]:
    return fresh_pg_schema(request)


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in ``count`` threads started together; re-raise the first error."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_read_modify_write_has_one_winner_per_version(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    stores = [PostgresStore(SPEC, dsn, schema=schema) for _ in range(WORKERS)]
    wins: list[tuple[int, int]] = []  # (version, worker)
    conflicts = Counter[int]()
    lock = threading.Lock()

    def work(i: int) -> None:
        store = stores[i]
        for _ in range(25):
            snap = store.get("hot")
            seen = 0 if snap is None else snap.version
            d = store.handle(
                "hot", Command("deposit", {"amount": {"cents": 1}}, expected_version=seen)
            )
            with lock:
                if isinstance(d, Accepted):
                    assert d.snapshot.version == seen + 1
                    wins.append((d.snapshot.version, i))
                else:
                    assert d.code == "version_conflict", d
                    conflicts[i] += 1

    try:
        run_threads(WORKERS, work)
        final = stores[0].get("hot")
        history = stores[0].history("hot")
    finally:
        for s in stores:
            s.close()
    versions = sorted(v for v, _ in wins)
    assert versions == list(range(1, len(wins) + 1))  # one winner per version, no gap
    assert final.version == len(wins) == len(history)
    assert final.context.balance == len(wins)  # no lost update
    assert sum(conflicts.values()) == WORKERS * 25 - len(wins)


def test_duplicate_keyed_requests_take_effect_once(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    keys = [(f"k{n}", f"acct-{n % 4}", n + 1) for n in range(40)]
    answers: dict[str, list[Decision]] = {k: [] for k, _, _ in keys}
    lock = threading.Lock()
    with ConnectionPool(dsn, min_size=2, max_size=3) as pool:
        own = [PostgresStore(SPEC, dsn, schema=schema) for _ in range(WORKERS - 1)]
        shared = PostgresStore(SPEC, pool, schema=schema)  # one store, two threads
        stores: list[Any] = [*own, shared, shared]

        def work(i: int) -> None:
            order = keys[:]
            random.Random(i).shuffle(order)
            for key, entity, cents in order:
                d = stores[i].handle(
                    entity, Command("deposit", {"amount": {"cents": cents}}), idempotency_key=key
                )
                with lock:
                    answers[key].append(d)

        try:
            run_threads(len(stores), work)
            report = verify(shared)
            histories = {e: shared.history(e) for e in shared.entities()}
        finally:
            for s in own:
                s.close()
    assert report.ok, report.mismatches
    used = Counter(r.idempotency_key for h in histories.values() for r in h)
    assert used == Counter({k: 1 for k, _, _ in keys})  # each key took effect exactly once
    for key, got in answers.items():
        assert len(got) == len(stores)
        assert all(d == got[0] for d in got), key  # everyone got the same answer
        assert isinstance(got[0], Accepted)
    for entity, history in histories.items():
        expected = sum(c for _, e, c in keys if e == entity)
        assert sum(r.payload.amount.cents for r in history) == expected
