"""The explorer's warnings: suspicious but not violations, each with a witness trace where
one exists. Deadlocks (a reachable non-final snapshot where nothing is enabled), states never
reached (the spec validates statically reachable states, so these are unreachable given the
guards and contexts), transitions that never fire, and guards that are never true or never
false."""

from __future__ import annotations

from .._spec import Spec
from .report import (
    DEADLOCK,
    GUARD_NEVER_FALSE,
    GUARD_NEVER_TRUE,
    TRANSITION_NEVER_FIRED,
    UNREACHABLE_STATE,
    ExploreWarning,
)
from .spec_search import SpecSearch

__all__ = ["warnings"]


def warnings(search: SpecSearch, complete: bool) -> list[ExploreWarning]:
    spec = search.spec
    out: list[ExploreWarning] = []
    scope = "" if complete else " (within the bounds explored)"
    for state, (node, count) in search.deadlocks.items():
        trace, _ = search.trace(node, prop=f"deadlock in {state}")
        others = f"; {count} such snapshots" if count > 1 else ""
        out.append(
            ExploreWarning(
                DEADLOCK,
                f"state {state!r}",
                f"a reachable non-final snapshot where no transition is enabled{others}",
                trace,
            )
        )
    reached = {spec.initial} | {
        t.target
        for t, at in zip(spec.transitions, search.fired_at, strict=True)
        if at >= 0 and t.target is not None
    }
    for state in spec.states:
        if state not in reached:
            out.append(
                ExploreWarning(
                    UNREACHABLE_STATE,
                    f"state {state!r}",
                    f"never reached given the guards and contexts{scope}",
                )
            )
    for t, at in zip(spec.transitions, search.fired_at, strict=True):
        if at < 0:
            out.append(ExploreWarning(TRANSITION_NEVER_FIRED, t.label(), f"never fired{scope}"))
    after = len(search.slots)
    for slot, (tidx, gpos) in enumerate(search.slots):
        t = spec.transitions[tidx]
        g = t.guards[gpos]
        subject = f"guard {g.name!r} of {t.label()}"
        first_yes = search.guard_true[slot]
        yes = first_yes or search.guard_true[slot + after]
        no = search.guard_false[slot] or search.guard_false[slot + after]
        if yes is None:
            witness = None if no is None else search.trace(no[0], no[1], f"{g.name} false")[0]
            what = "never true" if no is not None else "never evaluated"
            out.append(ExploreWarning(GUARD_NEVER_TRUE, subject, what + scope, witness))
        elif no is None:
            witness = search.trace(yes[0], yes[1], f"{g.name} true")[0]
            what = "never false" + scope
            if first_yes is None:  # only ever evaluated once an earlier row had given way
                what += _complementary(spec, tidx)
            out.append(ExploreWarning(GUARD_NEVER_FALSE, subject, what, witness))
    return out


def _complementary(spec: Spec, tidx: int) -> str:
    """Why a guard that is never false, and only ever evaluated after an earlier row sharing
    its source and event turned the command down at a guard, decides nothing, and what to do."""
    t = spec.transitions[tidx]
    earlier: list[str] = []
    for source in t.source:
        for other in spec.candidates(source, t.event):
            if other is t:
                break
            if other.guards and other.label() not in earlier:
                earlier.append(other.label())
    rows = " or ".join(earlier) if earlier else "an earlier row"
    fix = (
        f"with no guard left the row is the fallback of {t.event!r}, which must be tried last"
        if len(t.guards) == 1
        else "the row's other guards still apply"
    )
    return (
        f": it is only evaluated once the earlier row {rows} has turned the command down at a "
        "guard, and then it always holds. The earlier row already takes the other case, so "
        f"this guard decides nothing: drop it ({fix}), or fix it if it was meant to turn "
        "something down"
    )
