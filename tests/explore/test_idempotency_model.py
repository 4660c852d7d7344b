"""The explorer's idempotency model: keyed deliveries, duplicates and retries through the
planner. A correct planner passes; planners broken in the ways the rules forbid are caught
with the shortest trace."""

from __future__ import annotations

from typing import Any

import pytest

from statekernel.kernel import Plan, Snapshot, Spec, explore, plan, replay_trace
from statekernel.kernel._explore import key_search as explore_module

from . import explore_specs as specs


@pytest.mark.parametrize("clients", [1, 2, 3])
def test_the_kernel_planner_keeps_every_key_at_most_once(clients: int) -> None:
    report = explore(specs.SAFE, idempotency=True, clients=clients)
    assert report.verdict == "proved"
    assert report.idempotency_clients == clients
    assert report.key_states > report.states  # the model tracks pending requests too


def test_more_than_two_clients_add_nothing() -> None:
    two = explore(specs.DOUBLING, idempotency=True, clients=2)
    three = explore(specs.DOUBLING, idempotency=True, clients=3)
    assert two.key_states == three.key_states


def test_spec_violations_are_still_reported_in_idempotency_mode() -> None:
    report = explore(specs.DOUBLING, idempotency=True)
    assert [v.property for v in report.violations] == ["invariant_violated: below_ten"]


def _forgetful(
    spec: Spec,
    entity: str,
    current: Snapshot | None,
    command: Any,
    key: str | None = None,
    stored: Any = None,
) -> Plan:
    """A broken planner that ignores the key record and decides again."""
    return plan(spec, entity, current, command, key, None)


def _version_first(
    spec: Spec,
    entity: str,
    current: Snapshot | None,
    command: Any,
    key: str | None = None,
    stored: Any = None,
) -> Plan:
    """A broken planner that only replays while the entity has not moved on."""
    if stored is not None and current is not None:
        first = stored.decision
        at = first.snapshot.version if first.accepted else None
        if at is not None and at != current.version:
            return plan(spec, entity, current, command, key, None)
    return plan(spec, entity, current, command, key, stored)


def test_a_planner_that_forgets_keys_is_caught_by_the_duplicate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(explore_module, "plan", _forgetful)
    report = explore(specs.SAFE, idempotency=True)
    assert report.verdict == "violated"
    props = {v.property: v for v in report.violations}
    assert set(props) == {"idempotency: at most once", "idempotency: equal answers"}
    for v in props.values():
        assert v.code == "idempotency"
        first, dup = v.trace.steps
        assert (first.action, dup.action) == ("send", "duplicate")
        assert first.idempotency_key == dup.idempotency_key == "c1-k1"
        assert first.client == dup.client == "c1"
    # the trace replays with the real planner, which answers the duplicate from the key
    v = props["idempotency: equal answers"]
    result = replay_trace(specs.SAFE, v.trace)
    assert result.ok
    assert result.decisions[0] == result.decisions[1]


def test_a_planner_that_checks_the_version_first_needs_a_second_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(explore_module, "plan", _version_first)
    alone = explore(specs.SAFE, idempotency=True, clients=1)
    assert alone.verdict == "proved"
    report = explore(specs.SAFE, idempotency=True, clients=2)
    assert report.verdict == "violated"
    v = next(v for v in report.violations if v.property == "idempotency: equal answers")
    assert v.depth == 3
    assert [(s.client, s.action) for s in v.trace.steps] == [
        ("c1", "send"),
        ("c2", "send"),
        ("c1", "retry"),
    ]
    assert v.trace.steps[0].idempotency_key == v.trace.steps[2].idempotency_key
    assert "[c1] retry inc() on e1" in report.format()
