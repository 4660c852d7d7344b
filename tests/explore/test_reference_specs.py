"""The reference specs explore completely within their documented bounds, and the explorer
agrees with a naive search through ``decide``. Skipped where a reference spec is not
installed."""

from __future__ import annotations

import importlib

import pytest

from statekernel.kernel import explore

from .test_explore import _reference

NAMES = ["enrollment", "payment", "booking", "order"]


@pytest.mark.parametrize("name", NAMES)
def test_reference_spec_is_proved_within_its_bounds(name: str) -> None:
    try:
        module = importlib.import_module(f"statekernel.specs.{name}")
    except ModuleNotFoundError:
        pytest.skip(f"statekernel.specs.{name} is not available")
    spec = module.SPEC
    report = explore(spec, max_states=100_000)
    assert report.verdict == "proved", report.format()
    assert report.bound is None
    kinds = {w.kind for w in report.warnings}
    assert not kinds & {"deadlock", "unreachable_state", "transition_never_fired"}, report.format()
    seen, violations, deadlocks = _reference(spec)
    assert report.states == len(seen)
    assert violations == {}
    assert deadlocks == set()
