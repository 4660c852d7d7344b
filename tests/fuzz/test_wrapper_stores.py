"""A store with only ``handle``, ``get`` and ``history`` is fuzzed fully, through
:func:`run_fuzz` and through ``statekernel check --store MODULE:FACTORY``: the honest wrapper
passes, and each dishonest one is caught, by the same property, on every seed tried.

Why every seed and not a lucky one: each bug shows on a move that every run makes within its
first few steps, and the fuzzer checks the store after every step.

- ``ForgetsKeys``: the first accepted keyed request (nearly every request carries a key)
  is answered with an audit record without its key, and every answer is compared with the
  kernel's.
- ``StaleReads``: the fuzzer reads every entity after every step, so the cache holds each
  entity from the first step on; the next accepted write to any entity makes its read stale.
- ``AppliesRetriesTwice``: about one move in five repeats a request under its key (a duplicate,
  a retry, a delivery after a lost reply), and the kernel accepts most requests it is sent
  (most are drawn from the commands it accepts in the entity's current state), so the first
  repeat of one that can be applied again adds a version the kernel does not have.
- ``MixesUpEntities``: after every step the fuzzer reads back every entity id it uses, written
  or not, so the first accepted write shows up under the ids it did not go to. This is what
  comparing ``entities()`` with the model's entities catches on a full store, done through
  ``get`` and ``history``; what stays unseen without ``entities()`` is only an entity under an
  id the fuzzer never uses (here ``e``) and the listing itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from statekernel.adapters.cli import main
from statekernel.adapters.memory import MemoryStore
from statekernel.kernel import Spec, Trace
from statekernel.kernel.testing import FuzzViolation, assert_store_passes, run_fuzz
from statekernel.specs import enrollment

from . import wrapper_stores

SPEC = enrollment.SPEC
TARGET = "statekernel.specs.enrollment:SPEC"
WRAPPERS = Path(__file__).with_name("wrapper_stores.py")

DISHONEST = [
    # the wrapper, the property it breaks, what the detail says, the most steps a trace needs
    (
        wrapper_stores.ForgetsKeys,
        "store: answers_like_the_kernel",
        "they differ in record.idempotency_key: the store has None, the kernel 'c1-1'",
        1,
    ),
    (
        wrapper_stores.AppliesRetriesTwice,
        "store: key_takes_effect_once",
        "store.get('e1') is state 'draft' v2",
        3,
    ),
    (wrapper_stores.StaleReads, "store: reads_are_current", "stale read: store.get(", 2),
    (
        wrapper_stores.MixesUpEntities,
        "store: state_matches_kernel",
        "store.get('e2') is state 'draft' v1",
        1,
    ),
]


def test_the_wrappers_have_only_the_three_methods() -> None:
    for cls in (wrapper_stores.Honest, *(d[0] for d in DISHONEST)):
        public = {name for name in dir(cls) if not name.startswith("_")}
        assert public == {"handle", "get", "history"}, cls


def test_an_honest_wrapper_is_fuzzed_fully_and_passes() -> None:
    report = run_fuzz(SPEC, wrapper_stores.Honest, seed=0)
    assert report.ok, report.violation
    reference = run_fuzz(SPEC, MemoryStore, seed=0)
    # the same run as on the reference store, step for step, crashes aside: a wrapper
    # without reopen() is never crashed, so its runs differ from there on
    assert report.examples == reference.examples == 100
    assert report.steps == reference.steps
    assert set(report.transition_hits) == set(reference.transition_hits)
    assert report.not_tested == ("crash and reopen", "the store's list of entities")
    assert reference.not_tested == ()
    text = report.format()
    assert "  not tested: crash and reopen (the store has no reopen())" in text
    assert "  not tested: the store's list of entities (the store has no entities())" in text


def _caught(factory: Callable[[Spec], Any], seed: int) -> FuzzViolation:
    report = run_fuzz(SPEC, factory, seed=seed)
    assert report.violation is not None, report.format()
    return report.violation


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("factory", "prop", "detail", "most"), DISHONEST, ids=lambda v: str(v))
def test_a_dishonest_wrapper_is_caught_by_run_fuzz(
    factory: Callable[[Spec], Any], prop: str, detail: str, most: int, seed: int
) -> None:
    v = _caught(factory, seed)
    assert v.property == prop
    assert detail in v.detail
    assert 1 <= len(v.trace.steps) <= most
    assert f"property violated: {prop}" in str(v)
    # the trace replays: still failing on the wrapper, passing on the honest one
    trace = Trace.loads(v.trace.dumps())
    with pytest.raises(FuzzViolation) as again:
        assert_store_passes(SPEC, factory, trace)
    assert again.value.property == prop
    assert_store_passes(SPEC, wrapper_stores.Honest, trace)


def test_the_honest_wrapper_passes_check(capsys: pytest.CaptureFixture[str]) -> None:
    store = f"{WRAPPERS}:Honest"
    assert main(["check", TARGET, "--store", store, "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert "fuzzer: no violation in 100 runs / " in out
    lines = out.splitlines()
    assert "  not tested: crash and reopen (the store has no reopen())" in lines
    assert "  not tested: the store's list of entities (the store has no entities())" in lines
    assert lines[-3].startswith("verdict: PROVED (")
    assert lines[-2].startswith("  explorer: PROVED - the whole bounded space was seen")
    assert lines[-1].startswith("  fuzzer: no violation in 100 runs / ")
    assert " steps on Honest (a sample, not a proof); " in lines[-1]
    assert lines[-1].endswith("; not tested: crash and reopen, the store's list of entities")


@pytest.mark.parametrize(("factory", "prop", "detail", "most"), DISHONEST, ids=lambda v: str(v))
def test_a_dishonest_wrapper_is_caught_by_check(
    factory: Callable[[Spec], Any],
    prop: str,
    detail: str,
    most: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = f"{WRAPPERS}:{factory.__name__}"
    assert main(["check", TARGET, "--store", store, "--seed", "0"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert f"property violated: {prop}" in lines
    assert any(detail in line for line in lines)
    numbered = [line for line in lines if re.match(r"\s+\d+\. \[c\d\] ", line)]
    assert 1 <= len(numbered) <= most
    assert "seed: 0" in lines
    assert "verdict: VIOLATED" in out
    assert main(["check", TARGET, "--store", store, "--seed", "0", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    [violation] = data["violations"]
    assert violation["property"] == prop and violation["found_by"] == "fuzzer"
    assert data["fuzzer"]["violations"][0]["property"] == prop
