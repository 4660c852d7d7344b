"""Hypothesis properties of decide: total, deterministic, invariant-preserving, and a
rejection changes nothing."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from statekernel.kernel import (
    VIOLATION_CODES,
    Accepted,
    Actor,
    Command,
    Rejected,
    Snapshot,
    decide,
)

from .example import SPEC, Application

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**200)
    | st.floats()
    | st.sampled_from([math.nan, math.inf, -math.inf])
    | st.text(max_size=8)
)
junk = st.recursive(
    json_scalars | st.binary(max_size=4) | st.builds(object),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=3)
    ),
    max_leaves=8,
)
events = st.sampled_from(sorted(SPEC.events)) | st.text(max_size=10) | st.none() | st.integers()
payloads = (
    junk
    | st.fixed_dictionaries({"count": junk})
    | st.fixed_dictionaries({"count": st.integers(-5, 15)})
    | st.fixed_dictionaries({"reviewer": junk})
    | st.fixed_dictionaries({"reviewer": st.text(max_size=5)})
)
actors = st.none() | st.builds(
    Actor, st.text(max_size=5), st.lists(st.sampled_from(["reviewer", "clerk", "x"]), max_size=2)
)
versions = st.none() | st.integers(-2, 12) | junk
plausible = st.builds(
    Command,
    st.sampled_from(sorted(SPEC.events)),
    st.fixed_dictionaries({"count": st.integers(-5, 15)})
    | st.fixed_dictionaries({"reviewer": st.text(max_size=5)})
    | st.none(),
    st.none() | st.just(Actor("rita", roles=["reviewer"])),
)
commands = plausible | st.builds(Command, events, payloads, actors, versions)
snapshots = st.builds(
    Snapshot,
    st.sampled_from(["draft", "draft", *SPEC.states]),
    st.builds(Application, st.integers(0, 12), st.none() | st.text(max_size=4)),
    st.integers(0, 10),
)


def holds(snapshot: Snapshot) -> bool:
    return all(inv(snapshot.state, snapshot.context) for inv in SPEC.invariants)


@settings(max_examples=400)
@given(snapshots, commands)
def test_decide_is_total_and_deterministic(snapshot: Snapshot, command: Command) -> None:
    first = decide(SPEC, snapshot, command)
    second = decide(SPEC, snapshot, command)
    assert isinstance(first, Accepted | Rejected)
    assert first == second


@settings(max_examples=400)
@given(snapshots.filter(holds), commands)
def test_accepted_snapshots_satisfy_every_invariant(snapshot: Snapshot, command: Command) -> None:
    d = decide(SPEC, snapshot, command)
    if isinstance(d, Accepted):
        assert holds(d.snapshot)
        assert d.snapshot.version == snapshot.version + 1
        assert d.record.from_state == snapshot.state and d.record.to_state == d.snapshot.state


@settings(max_examples=300)
@given(snapshots, commands)
def test_a_rejection_changes_nothing(snapshot: Snapshot, command: Command) -> None:
    before = (snapshot.state, snapshot.context, snapshot.version)
    d = decide(SPEC, snapshot, command)
    assert (snapshot.state, snapshot.context, snapshot.version) == before
    if isinstance(d, Rejected):
        assert not hasattr(d, "snapshot")
        assert d.code in {
            "unknown_event",
            "invalid_transition",
            "forbidden",
            "invalid_payload",
            "version_conflict",
            "guard_rejected",
        }, d  # the example spec's guards enforce its invariants: no fault, no violation


@settings(max_examples=300)
@given(st.lists(plausible | commands, max_size=12))
def test_runs_of_commands_keep_invariants_and_count_versions(cmds: list[Any]) -> None:
    """From the start snapshot, the example spec's guards let nothing through that its
    invariants forbid: no ``invariant_violated``, no ``spec_fault``."""
    snap = SPEC.start()
    accepted = 0
    for c in cmds:
        d = decide(SPEC, snap, c)
        if isinstance(d, Accepted):
            accepted += 1
            snap = d.snapshot
        else:
            assert d.code not in VIOLATION_CODES, d
        assert holds(snap)
    assert snap.version == accepted
