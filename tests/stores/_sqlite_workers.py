"""Code that runs in child processes for the SQLite concurrency and crash tests (importable
by ``spawn`` children and by ``python -c``)."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import attrs

from statekernel.adapters.sqlite import SqliteStore
from statekernel.kernel import Command, Spec, Transition, decision_to_data


@attrs.frozen
class Tally:
    total: int = 0
    count: int = 0


@attrs.frozen
class Add:
    n: int


TALLY = Spec(
    name="tally",
    version=1,
    context=Tally,
    initial="open",
    states=["open"],
    transitions=[
        Transition(
            "add",
            "open",
            "open",
            payload=Add,
            update=lambda c, p: Tally(c.total + p.n, c.count + 1),
        )
    ],
)


def add(n: int, expected_version: int | None = None) -> Command:
    return Command("add", {"n": n}, expected_version=expected_version)


def racer(path: str, wid: int, wins_wanted: int, barrier: Any, out: Any) -> None:
    """Read-modify-write on one entity until ``wins_wanted`` commands won."""
    store = SqliteStore(TALLY, path, busy_timeout=60)
    wins: list[tuple[int, int]] = []
    conflicts = 0
    seq = 0
    barrier.wait()
    while len(wins) < wins_wanted:
        snap = store.get("hot")
        version = 0 if snap is None else snap.version
        n = wid * 1_000_000 + seq
        d = store.handle("hot", add(n, version), idempotency_key=f"w{wid}-{seq}")
        seq += 1
        if d.accepted:
            wins.append((d.snapshot.version, n))
        else:
            assert d.code == "version_conflict", d
            conflicts += 1
    store.close()
    out.put((wid, wins, conflicts))


def same_keys_request(k: int) -> tuple[str, Command, str]:
    """The one request that key ``k`` stands for."""
    return f"e{k % 3}", add(k + 1), f"key-{k}"


def duplicator(path: str, wid: int, keys: int, barrier: Any, out: Any) -> None:
    """Send every key's request, in a worker-specific order; report every answer."""
    store = SqliteStore(TALLY, path, busy_timeout=60)
    order = list(range(keys))
    random.Random(wid).shuffle(order)
    answers: dict[int, Any] = {}
    barrier.wait()
    for k in order:
        entity, cmd, key = same_keys_request(k)
        answers[k] = decision_to_data(store.handle(entity, cmd, idempotency_key=key))
    store.close()
    out.put((wid, answers))


def crash_request(run: int, i: int) -> tuple[str, Command, str]:
    """The request number ``i`` of crash run ``run``."""
    return f"e{i % 4}", add(i + 1), f"r{run}-{i}"


def crash_child(path: str, run: int) -> None:
    """Write keyed commands until killed; print an ack line after each ``handle`` returns."""
    store = SqliteStore(TALLY, Path(path))
    print("ready", flush=True)
    i = 0
    while True:
        entity, cmd, key = crash_request(run, i)
        d = store.handle(entity, cmd, idempotency_key=key)
        assert d.accepted
        sys.stdout.write(f"ack {i} {entity} {d.snapshot.version}\n")
        sys.stdout.flush()
        i += 1
