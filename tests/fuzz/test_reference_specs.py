"""Every reference spec survives the fuzzer on every store.

The first four lines are what a user writes in their own suite: one line per spec. The
SQLite and PostgreSQL runs use a smaller budget (each run opens a fresh database) and, for
SQLite, ``synchronous=NORMAL``: the fuzzer's crashes are process restarts (``reopen()``),
which WAL mode survives at NORMAL; only power loss needs FULL.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from statekernel.adapters.cli._check import postgres_factory
from statekernel.adapters.memory import MemoryStore
from statekernel.adapters.sqlite import SqliteStore
from statekernel.kernel import Spec
from statekernel.kernel.testing import fuzz_test, run_fuzz
from statekernel.specs import booking, enrollment, order, payment

TestEnrollment = fuzz_test(enrollment.SPEC, MemoryStore)
TestPayment = fuzz_test(payment.SPEC, MemoryStore)
TestBooking = fuzz_test(booking.SPEC, MemoryStore)
TestOrder = fuzz_test(order.SPEC, MemoryStore)

SPECS = [enrollment.SPEC, payment.SPEC, booking.SPEC, order.SPEC]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_reference_spec_reaches_every_state_and_transition(spec: Spec) -> None:
    # booking's rarest transitions (cancel_booking, release) are reached in about one run in
    # five: a seed that reaches them is pinned (seed 3 does, with the payloads of today and
    # of before the fuzzer took the explorer's samples)
    report = run_fuzz(spec, MemoryStore, seed=3)
    assert report.ok, report.violation
    never = [k for k, n in {**report.state_hits, **report.transition_hits}.items() if not n]
    assert never == [], report.format()


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_reference_spec_on_sqlite(spec: Spec, tmp_path: Path) -> None:
    counter = itertools.count()

    def factory(spec: Spec) -> SqliteStore:
        return SqliteStore(spec, tmp_path / f"run-{next(counter)}.db", synchronous="NORMAL")

    report = run_fuzz(spec, factory, examples=20, seed=11)
    assert report.ok, report.violation
    assert report.examples == 20 and next(counter) >= 20


@pytest.mark.postgres
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_reference_spec_on_postgres(spec: Spec, pg_dsn: str) -> None:
    pytest.importorskip("statekernel.adapters.postgres")
    with postgres_factory(pg_dsn) as factory:
        report = run_fuzz(spec, factory, examples=10, seed=13)
    assert report.ok, report.violation
