"""Benchmark: ``SqliteStore.handle`` against a raw sqlite3 loop writing the same rows.

Run from the repository root::

    python tests/benchmarks/bench_store.py [--commands N] [--rounds R]

Both sides run in this one process, on a file, one command per transaction, at the same
``synchronous`` level (FULL, then NORMAL), alternating round by round; the figures are
medians. The raw loop is what a careful hand-written version does per command: ``BEGIN
IMMEDIATE``, update the snapshot with a version check, insert the audit row, insert the
idempotency key row, ``COMMIT``, serialising the context, payload and answer as JSON. The
store does that plus everything the raw loop leaves out: loading and checking the key and the
snapshot, the pure decision (guards, invariants), the fingerprint and the strict round trip
of the context. A batch section measures ``handle_many``. A PostgreSQL section runs when a
server answers at ``STATEKERNEL_PG_DSN`` and ``statekernel.adapters.postgres`` is importable.
The last line is the headline ratio.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
for root in ("kernel", "adapters", "specs"):
    if str(ROOT / root) not in sys.path:
        sys.path.insert(0, str(ROOT / root))

from statekernel.adapters.sqlite import SqliteStore  # noqa: E402
from statekernel.kernel import Command, Spec, Transition, guard, invariant  # noqa: E402

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@attrs.frozen
class Counter:
    total: int = 0
    last: int | None = None


@attrs.frozen
class Add:
    n: int


@guard
def non_negative(ctx: Counter, p: Add) -> bool:
    """Only non-negative amounts are added."""
    return p.n >= 0


@invariant
def total_not_negative(state: str, ctx: Counter) -> bool:
    """The total never goes below zero."""
    return ctx.total >= 0


SPEC = Spec(
    name="bench_counter",
    version=1,
    context=Counter,
    initial="open",
    states=["open", "closed"],
    final=["closed"],
    transitions=[
        Transition(
            "add",
            "open",
            "open",
            payload=Add,
            guards=[non_negative],
            update=lambda c, p: attrs.evolve(c, total=c.total + p.n, last=p.n),
        ),
        Transition("close", "open", "closed"),
    ],
    invariants=[total_not_negative],
)


def run_store(path: Path, n: int, synchronous: str) -> float:
    """Commands per second through ``SqliteStore.handle`` with a key each."""
    store = SqliteStore(SPEC, path, synchronous=synchronous)  # type: ignore[arg-type]
    tag = uuid.uuid4().hex[:8]
    commands = [Command("add", {"n": i}) for i in range(n)]
    start = time.perf_counter()
    for i, cmd in enumerate(commands):
        store.handle("acct", cmd, idempotency_key=f"{tag}-{i}")
    elapsed = time.perf_counter() - start
    store.close()
    return n / elapsed


def run_store_batch(path: Path, n: int, synchronous: str, size: int) -> float:
    """Commands per second through ``SqliteStore.handle_many``, ``size`` per transaction."""
    store = SqliteStore(SPEC, path, synchronous=synchronous)  # type: ignore[arg-type]
    tag = uuid.uuid4().hex[:8]
    requests = [("acct", Command("add", {"n": i}), f"{tag}-{i}") for i in range(n)]
    start = time.perf_counter()
    for i in range(0, n, size):
        store.handle_many(requests[i : i + size])
    elapsed = time.perf_counter() - start
    store.close()
    return n / elapsed


def run_raw(path: Path, n: int, synchronous: str) -> float:
    """Commands per second for the hand-written loop (same schema, same rows)."""
    SqliteStore(SPEC, path).close()  # the same tables
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    scope, entity, tag = SPEC.name, "acct", uuid.uuid4().hex[:8]
    conn.execute(
        "INSERT INTO statekernel_snapshots (scope, entity, state, version, context)"
        " VALUES (?, ?, 'open', 0, ?)",
        (scope, entity, dumps({"total": 0, "last": None})),
    )
    total = 0
    start = time.perf_counter()
    for i in range(n):
        version = i
        at = time.time()
        conn.execute("BEGIN IMMEDIATE")
        total += i
        cur = conn.execute(
            "UPDATE statekernel_snapshots SET state = ?, version = ?, context = ?"
            " WHERE scope = ? AND entity = ? AND version = ?",
            ("open", version + 1, dumps({"total": total, "last": i}), scope, entity, version),
        )
        assert cur.rowcount == 1
        version = i + 1
        key = f"{tag}-{i}"
        conn.execute(
            "INSERT INTO statekernel_audit (scope, entity, version, event, payload, actor,"
            " from_state, to_state, at, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (scope, entity, version, "add", dumps({"n": i}), None, "open", "open", str(at), key),
        )
        conn.execute(
            "INSERT INTO statekernel_keys (scope, key, entity, fingerprint, decision, at, at_us)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (scope, key, entity, key, dumps({"accepted": True, "version": version}), str(at), 0),
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def median_of(rounds: int, fn: Callable[[int], float]) -> float:
    return statistics.median(fn(r) for r in range(rounds))


def sqlite_section(tmp: Path, n: int, rounds: int) -> dict[str, float]:
    results: dict[str, float] = {}
    for level, count in (("FULL", n), ("NORMAL", n * 3)):
        store_runs: list[float] = []
        raw_runs: list[float] = []
        for r in range(rounds):  # alternate, so drift hits both sides alike
            raw_runs.append(run_raw(tmp / f"raw-{level}-{r}.db", count, level))
            store_runs.append(run_store(tmp / f"store-{level}-{r}.db", count, level))
        store, raw = statistics.median(store_runs), statistics.median(raw_runs)
        results[level] = store / raw
        print(
            f"sqlite {level:<6} commands={count:<6} raw sqlite3: {raw:8.0f} tx/s   "
            f"SqliteStore.handle: {store:8.0f} tx/s   ratio {store / raw:.2f}"
        )
    for size in (10, 100):
        batch = median_of(
            rounds, lambda r, s=size: run_store_batch(tmp / f"batch-{s}-{r}.db", n * 2, "FULL", s)
        )
        print(
            f"sqlite FULL   handle_many, {size:>3} commands per transaction: {batch:8.0f} "
            "commands/s"
        )
    return results


def postgres_section(n: int, rounds: int) -> None:
    dsn = os.environ.get("STATEKERNEL_PG_DSN", DEFAULT_PG_DSN)
    try:
        module = importlib.import_module("statekernel.adapters.postgres")
    except ImportError as exc:
        print(f"postgres: skipped (statekernel.adapters.postgres is not importable: {exc})")
        return
    try:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:
        print(f"postgres: skipped (no server answers at {dsn}: {exc})")
        return
    store_cls = module.PostgresStore

    def run(workers: int) -> float:
        stores = [store_cls(SPEC, dsn) for _ in range(workers)]
        tag = uuid.uuid4().hex[:8]
        per = max(1, n // workers)
        barrier = threading.Barrier(workers + 1)

        def work(w: int) -> None:
            barrier.wait()
            for i in range(per):
                stores[w].handle(
                    f"{tag}-e{w}", Command("add", {"n": i}), idempotency_key=f"{tag}-{w}-{i}"
                )

        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for t in threads:
            t.start()
        barrier.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        for s in stores:
            s.close()
        return per * workers / elapsed

    for workers in (1, 8):
        rate = median_of(rounds, lambda r, w=workers: run(w))
        print(f"postgres workers={workers}  PostgresStore.handle: {rate:8.0f} tx/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=2000, help="commands per FULL round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = sqlite_section(Path(tmp), args.commands, args.rounds)
    postgres_section(args.commands, args.rounds)
    print(f"ratio store/raw_sqlite (NORMAL): {results['NORMAL']:.2f}")
    print(f"ratio store/raw_sqlite (FULL): {results['FULL']:.2f}")


if __name__ == "__main__":
    main()
