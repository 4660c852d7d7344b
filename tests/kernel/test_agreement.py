"""One rule, four places it runs: ``decide`` (through the generated deciders), the reference
loop, the explorer's generated probes and the reference loop's probes agree on every command
of the shared small specs (``tests/strategies.py``).

For each small spec, its reference twin is built with ``STATEKERNEL_DECIDE=reference``. A walk
of plausible commands must be decided alike by both. Then, from every snapshot the walk
reached, every command the explorer sends from that state (each payload, actor and time it
would try) is decided by both and probed the explorer's way: the moves the explorer leaves
out must be ones ``decide`` turns down for the actor or the payload; for the others, the
generated probe and the reference probe must give the same answer, record the same guard
outcomes and fired transitions, and agree with the decision: the new ``(state, context)`` of
an acceptance, ``None`` for a command the rows turn down, and an exception for a decision that
is a violation (the explorer then asks ``decide``). Last, a bounded exploration of the spec
and of its twin must report the same.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statekernel.kernel import (
    VIOLATION_CODES,
    Accepted,
    Command,
    Decision,
    Rejected,
    Snapshot,
    Spec,
    decide,
    explore,
)
from statekernel.kernel._explore.moves import _passing, _sends

from ..strategies import STATES, plausible_commands, small_specs
from .twins import reference_twin, same_decision

EXAMPLES = 100
"""Small specs per run."""


def _probe(spec: Spec, snapshot: Snapshot, command: Command, fitting: Any, payload: Any) -> Any:
    """What the explorer's probe of ``spec`` says about ``command`` on ``snapshot``, with the
    guard outcomes and fired transitions it recorded; ``"left out"`` when the explorer does
    not send it (no row passes the actor and the payload)."""
    assert command.actor is not None
    rows = _passing(fitting, command.actor)
    if not rows:
        return "left out"
    probe = spec._compiled.probe(snapshot.state, command.event, rows)
    slots = 2 * len(spec._compiled.guard_slots)
    seen_true: list[Any] = [None] * slots
    seen_false: list[Any] = [None] * slots
    fired_at = [-1] * len(spec.transitions)
    try:
        result = probe(snapshot.context, payload, command, 7, 3, seen_true, seen_false, fired_at)
    except Exception:
        result = "asks decide"
    return result, seen_true, seen_false, fired_at


def _agrees(decision: Decision, probed: Any) -> None:
    if probed == "left out":
        assert isinstance(decision, Rejected) and decision.code in ("forbidden", "invalid_payload")
        return
    result, _, _, fired_at = probed
    if isinstance(decision, Accepted):
        assert result == (decision.snapshot.state, decision.snapshot.context)
        assert fired_at.count(7) == 1
    elif decision.code in VIOLATION_CODES:
        assert result == "asks decide", decision
    else:
        assert decision.code == "guard_rejected", decision
        assert result is None
        assert fired_at.count(7) == 0


def _comparable(report: Any) -> Any:
    data = report.to_data()
    for figure in ("seconds", "states_per_second", "peak_rss_bytes", "key_seconds"):
        data.pop(figure)
    return data


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decide_the_reference_loop_and_the_explorer_agree_on_small_specs(
    data: st.DataObject,
) -> None:
    spec = data.draw(small_specs())
    twin = reference_twin(spec)
    snapshot = spec.start()
    reached = {(snapshot.state, snapshot.context): snapshot}
    for _ in range(data.draw(st.integers(1, 12))):
        if data.draw(st.integers(0, 9)) == 0:  # jump to any state, keeping the context
            snapshot = Snapshot(data.draw(st.sampled_from(STATES)), snapshot.context, 3)
            reached.setdefault((snapshot.state, snapshot.context), snapshot)
        command = data.draw(plausible_commands(spec, snapshot))
        decision = decide(spec, snapshot, command)
        same_decision(decision, decide(twin, snapshot, command))
        if isinstance(decision, Accepted):
            snapshot = decision.snapshot
            reached.setdefault((snapshot.state, snapshot.context), snapshot)

    for snap in reached.values():
        for event, raw, fitting, payload, senders in _sends(spec, snap.state):
            for actor, times in senders:
                for at in times:
                    command = Command(event, raw, actor=actor, at=at)
                    decision = decide(spec, snap, command)
                    same_decision(decision, decide(twin, snap, command))
                    probed = _probe(spec, snap, command, fitting, payload)
                    assert probed == _probe(twin, snap, command, fitting, payload)
                    _agrees(decision, probed)

    bounds = {"max_states": 12, "max_depth": 3}
    assert _comparable(explore(spec, **bounds)) == _comparable(explore(twin, **bounds))
