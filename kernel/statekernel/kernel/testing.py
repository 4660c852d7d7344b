"""Invariant fuzz suites: a Hypothesis stateful test generated from a spec and a store.

One line per spec in a test module gives pytest a test class::

    from statekernel.adapters.memory import MemoryStore
    from statekernel.kernel.testing import fuzz_test
    from myapp.workflows import ENROLLMENT

    TestEnrollment = fuzz_test(ENROLLMENT, MemoryStore)

The generated ``RuleBasedStateMachine`` plays several clients against several entities
through a hostile network: requests under idempotency keys wait in flight and arrive in any
order, are duplicated, are retried after a lost reply or before the first attempt arrived,
carry stale ``expected_version`` values, and the store crashes and reopens when it has a
``reopen()`` method. Commands come from the spec: enabled events with their ``examples``,
boundary values and payloads generated from the payload types, plus unknown events, junk
payloads, missing roles, stale versions and reused keys; most of them are commands the
kernel would accept in the entity's current state, so that rare states are reached.

After every step the store is checked against a model built from the pure planner (never
from a store): its answers, snapshots and audit logs; retried keys answer as the first time
and take effect once; an ``idempotency_mismatch`` changes nothing; acknowledged writes
survive a crash; the audit log replays to the stored snapshot; the spec's invariants hold
on every stored entity. A decision ``invariant_violated`` or ``spec_fault`` means the spec
itself is wrong (its guards let through what its invariants forbid).

A failure raises :class:`FuzzViolation`: the property, the shrunk trace as numbered steps,
the seed, and the same trace as JSON for a one-line regression test
(:func:`~statekernel.kernel.assert_trace_passes` for spec bugs, :func:`assert_store_passes`
for store bugs). :func:`run_fuzz` runs the same test with a budget and a seed and returns a
:class:`FuzzReport` (the ``statekernel check`` command uses it).

This is the only module of ``statekernel.kernel`` that imports Hypothesis.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import threading
import time
import unittest
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import attrs
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from ._fuzz import (
    STEP_CHOICES,
    WHY_NOT_TESTED,
    Catalog,
    Faults,
    FuzzViolation,
    Harness,
    Stats,
    close_store,
    replay_against_store,
    shrink_steps,
)
from ._model import AuditRecord, Command, Decision, Snapshot
from ._spec import Spec
from ._trace import Trace, check_trace_spec

__all__ = [
    "DEFAULT_EXAMPLES",
    "DEFAULT_STEPS",
    "Faults",
    "FuzzReport",
    "FuzzViolation",
    "FuzzableStore",
    "StoreFactory",
    "assert_store_passes",
    "fuzz_test",
    "run_fuzz",
]

DEFAULT_EXAMPLES = 100
"""How many runs of the state machine (Hypothesis examples) a fuzz test makes by default."""

DEFAULT_STEPS = 50
"""How many steps each run takes at most by default."""


class FuzzableStore(Protocol):
    """What the fuzzer needs from a store: ``handle``, ``get`` and ``history``, nothing more,
    so a wrapper around a store (or a store of your own) is fuzzed through the same three
    calls your code makes.

    Three more methods are used where they exist (every statekernel store has them):
    ``reopen()`` closes and opens the database again, as after a crash, and turns on the crash
    tests; ``entities()`` (every entity id with a snapshot, sorted) is compared with the
    model's entities; ``close()`` is called when a run ends. A store without them is fuzzed
    on everything else, and :attr:`FuzzReport.not_tested` says what it escaped. Whatever the
    store has, every entity id the fuzzer uses is read back with ``get`` and ``history`` after
    every step.
    """

    def handle(
        self, entity: str, command: Command, *, idempotency_key: str | None = None
    ) -> Decision:
        """Decide and commit ``command`` on ``entity``."""
        ...

    def get(self, entity: str) -> Snapshot | None:
        """The entity's snapshot, or ``None``."""
        ...

    def history(self, entity: str) -> Sequence[AuditRecord]:
        """The entity's audit records, oldest first."""
        ...


StoreFactory = Callable[[Spec], FuzzableStore]
"""Takes the spec and returns a fresh, empty store bound to it (``MemoryStore`` itself is
one). The fuzzer calls it once per run of the state machine and closes what it returns, when
it has ``close()``."""


@attrs.frozen
class FuzzReport:
    """What :func:`run_fuzz` found.

    ``violation`` is ``None`` when every property held. ``examples`` counts the runs of the
    state machine and ``steps`` the network moves they made, each checked; after a violation,
    up to the one that found it (the run that found it is the last one counted, and the
    reruns that shrank its trace are left out). ``states`` counts the distinct (state,
    context) snapshots reached; ``state_hits`` how often each state was entered and
    ``transition_hits`` how often each ``event (source -> target)`` fired, over the whole
    run; ``not_tested`` what the store could not be tested for, because it lacks an optional
    method: ``"crash and reopen"`` (no ``reopen()``), ``"the store's list of entities"`` (no
    ``entities()``).

    A run without a violation is not a proof: it shows that no violation came up in these
    runs, and nothing about the states and transitions it never reached
    (:attr:`unreached_states`, :attr:`unreached_transitions`).
    """

    spec: str
    store: str
    seed: int
    examples: int
    steps: int
    seconds: float
    states: int
    state_hits: Mapping[str, int]
    transition_hits: Mapping[str, int]
    violation: FuzzViolation | None = None
    not_tested: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no property failed."""
        return self.violation is None

    @property
    def steps_per_second(self) -> float:
        """Steps (network moves, each checked) per second."""
        return self.steps / self.seconds if self.seconds > 0 else 0.0

    @property
    def unreached_states(self) -> tuple[str, ...]:
        """The spec's states no entity ever entered, in the spec's order."""
        return tuple(name for name, n in self.state_hits.items() if not n)

    @property
    def unreached_transitions(self) -> tuple[str, ...]:
        """The edges (``event (source -> target)``) that never fired, sorted."""
        return tuple(name for name, n in self.transition_hits.items() if not n)

    def to_data(self) -> dict[str, Any]:
        """Plain data for JSON: the figures, ``violation`` (``None`` or its property, detail
        and trace), ``violations`` (a list of none or one, each with ``property``,
        ``message``, ``seed`` and ``trace``: its list of steps), ``unreached`` (``states``
        and ``transitions``) and ``not_tested``."""
        v = self.violation
        return {
            "spec": self.spec,
            "store": self.store,
            "seed": self.seed,
            "examples": self.examples,
            "runs": self.examples,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "states": self.states,
            "state_hits": dict(self.state_hits),
            "transition_hits": dict(self.transition_hits),
            "violation": None
            if v is None
            else {"property": v.property, "detail": v.detail, "trace": v.trace.to_data()},
            "violations": []
            if v is None
            else [
                {
                    "property": v.property,
                    "message": v.detail,
                    "seed": v.seed,
                    "trace": [step.to_data() for step in v.trace.steps],
                }
            ],
            "unreached": {
                "states": list(self.unreached_states),
                "transitions": list(self.unreached_transitions),
            },
            "not_tested": list(self.not_tested),
        }

    def headline(self) -> str:
        """One line: what the runs showed, and no more. ``no violation in N runs / M steps``
        when every property held (a sample, not a proof), or the property that failed."""
        if self.violation is None:
            runs = f"{self.examples:,} run{'s' if self.examples != 1 else ''}"
            return f"no violation in {runs} / {self.steps:,} steps on {self.store}"
        return (
            f"VIOLATED - {self.violation.property}, found on {self.store} in run "
            f"{self.examples:,} after {self.steps:,} steps in all"
        )

    def format(self) -> str:
        """A readable summary: the headline and figures, hit counts (never-reached ones
        flagged), then, when no violation was found, a warning listing what was never
        reached; last, what the store could not be tested for."""
        lines = [
            f"fuzzer: {self.headline()}",
            f"  {self.spec}, seed {self.seed}, {self.seconds:.2f} s "
            f"({self.steps_per_second:,.0f} steps/s), {self.states:,} distinct snapshots",
            "  states entered:",
        ]
        width = max((len(k) for k in (*self.state_hits, *self.transition_hits)), default=0)
        for name, n in self.state_hits.items():
            lines.append(f"    {name.ljust(width)}  {n}" + ("  (never)" if not n else ""))
        lines.append("  transitions fired:")
        for name, n in self.transition_hits.items():
            lines.append(f"    {name.ljust(width)}  {n}" + ("  (never)" if not n else ""))
        never = self._never_reached()
        if self.violation is None and never:
            lines.append(
                f"  WARNING: the fuzzer never reached {never}, so the store was not tested there:"
            )
            lines.extend(f"    state {name}" for name in self.unreached_states)
            lines.extend(f"    transition {name}" for name in self.unreached_transitions)
        lines.extend(
            f"  not tested: {what} ({WHY_NOT_TESTED.get(what, 'the store lacks it')})"
            for what in self.not_tested
        )
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: the headline, then, when no violation was found, that this is a sample
        and not a proof, what was never reached (or that everything was) and what was not
        tested."""
        if self.violation is not None:
            return self.headline()
        never = self._never_reached()
        line = f"{self.headline()} (a sample, not a proof); " + (
            f"never reached {never}"
            if never
            else "every state was entered and every transition fired"
        )
        if self.not_tested:
            line += "; not tested: " + ", ".join(self.not_tested)
        return line

    def _never_reached(self) -> str:
        """``"2 states and 3 transitions"`` never reached, or ``""``."""
        counts = (
            (len(self.unreached_states), "state"),
            (len(self.unreached_transitions), "transition"),
        )
        return " and ".join(f"{n} {word}{'s' if n != 1 else ''}" for n, word in counts if n)


# --- the state machine -----------------------------------------------------------------------


def _machine_class(
    spec: Spec, store_factory: StoreFactory, catalog: Catalog, stats: Stats
) -> type[RuleBasedStateMachine]:
    """A ``RuleBasedStateMachine`` subclass for ``spec``.

    It has a single rule, ``step``, taking one integer that the harness decodes into a network
    move, a client, an entity and a command (see ``STEP_CHOICES``). One rule with one draw
    keeps Hypothesis' own cost per step near that of a bare stateful test, and shrinking an
    integer toward zero makes each step plainer: a send, of a command the kernel accepts, by
    the first client, to the first entity.
    """

    class Machine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.store = store_factory(spec)
            self.harness = Harness(catalog, self.store, stats)

        @rule(choice=st.integers(0, STEP_CHOICES - 1))
        def step(self, choice: int) -> None:
            self.harness.step(choice)

        def teardown(self) -> None:
            try:
                self.harness.finish()
            finally:
                close_store(self.store)

        def __repr__(self) -> str:
            return f"<fuzz {spec.name}>"

    Machine.__name__ = Machine.__qualname__ = f"Fuzz{_camel(spec.name)}Machine"
    Machine.__doc__ = f"Fuzz the {spec.name!r} spec against a store through a hostile network."
    return Machine


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^0-9A-Za-z]+", name) if p)


def _settings(examples: int, steps: int) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        derandomize=False,
        print_blob=False,
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )


_constants_lock = threading.Lock()
_constants_users = 0
_constants_saved: Any = None


@contextlib.contextmanager
def _without_local_constants() -> Iterator[None]:
    """Keep the source code of the modules loaded in the process out of the run.

    Hypothesis (since 6.131) gives each integer, float, string and bytes draw a small chance
    of returning a literal harvested from the source of every non-installed module in
    ``sys.modules``. What it draws then depends on which modules happen to be imported (and
    on their text), and since picking a literal consumes random numbers, every later draw
    shifts too: the same seed gave different runs in a process that had imported one more
    store adapter. The fuzzer's step integers are scrambled before use, so such literals
    mean nothing to it; for the duration of the run Hypothesis sees none and the run depends
    on the seed alone. Hypothesis versions without the feature are left as they are.
    """
    global _constants_users, _constants_saved
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:  # pragma: no cover - a Hypothesis without local constants
        yield
        return
    if not callable(getattr(providers, "_get_local_constants", None)):  # pragma: no cover
        yield
        return
    none = Constants()

    def no_local_constants() -> Constants:
        return none

    with _constants_lock:
        if _constants_users == 0:
            _constants_saved = providers._get_local_constants
            providers._get_local_constants = no_local_constants
            providers.CONSTANTS_CACHE.cache.clear()
        _constants_users += 1
    try:
        yield
    finally:
        with _constants_lock:
            _constants_users -= 1
            if _constants_users == 0:
                providers._get_local_constants = _constants_saved
                _constants_saved = None
                providers.CONSTANTS_CACHE.cache.clear()


def _find_violation(exc: BaseException) -> FuzzViolation | None:
    if isinstance(exc, FuzzViolation):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find_violation(inner)
            if found is not None:
                return found
    return None


def _factory_name(store_factory: object) -> str:
    return str(getattr(store_factory, "__qualname__", None) or type(store_factory).__name__)


def run_fuzz(
    spec: Spec,
    store_factory: StoreFactory,
    *,
    faults: Faults | None = None,
    examples: int = DEFAULT_EXAMPLES,
    steps: int = DEFAULT_STEPS,
    seed: int | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> FuzzReport:
    """Fuzz ``spec`` on stores made by ``store_factory``: ``examples`` runs of at most
    ``steps`` steps, seeded with ``seed`` (a random one, reported, when ``None``).

    Returns a :class:`FuzzReport`; a failed property is in its ``violation`` (shrunk to a
    minimal trace), never raised. ``progress(runs, steps, states)`` is called after every run.
    Exceptions that are not property failures (a store factory that raises, say) propagate.
    """
    if type(examples) is not int or examples < 1:
        raise ValueError(f"examples must be a positive int, got {examples!r}")
    if type(steps) is not int or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    catalog = Catalog(spec, faults or Faults())

    def on_example(stats: Stats) -> None:
        if progress is not None:
            progress(stats.examples, stats.steps, stats.states)

    stats = Stats(catalog, on_example)
    machine = hypothesis_seed(seed)(_machine_class(spec, store_factory, catalog, stats))
    violation: FuzzViolation | None = None
    started = time.perf_counter()
    try:
        with _without_local_constants():
            run_state_machine_as_test(machine, settings=_settings(examples, steps))
    except (FuzzViolation, FlakyFailure) as exc:
        found = _find_violation(exc)
        if found is None:
            raise
        violation = shrink_steps(catalog, store_factory, found).with_seed(seed)
    seconds = time.perf_counter() - started
    return FuzzReport(
        spec=spec.name,
        store=_factory_name(store_factory),
        seed=seed,
        examples=stats.examples,
        steps=stats.steps,
        seconds=seconds,
        states=stats.states,
        state_hits=dict(stats.state_hits),
        transition_hits=dict(stats.transition_hits),
        violation=violation,
        not_tested=tuple(stats.not_tested),
    )


def fuzz_test(
    spec: Spec,
    store_factory: StoreFactory,
    *,
    faults: Faults | None = None,
    examples: int = DEFAULT_EXAMPLES,
    steps: int = DEFAULT_STEPS,
    seed: int | None = None,
) -> type[unittest.TestCase]:
    """A test class for pytest (or unittest) that fuzzes ``spec`` on stores made by
    ``store_factory``; assign it to a name starting with ``Test`` in a test module::

        TestEnrollment = fuzz_test(ENROLLMENT, MemoryStore)

    The test fails with :class:`FuzzViolation` (property, minimal numbered trace, seed and
    trace JSON). Each run uses a fresh random seed unless ``seed`` is given.
    """
    options = {"faults": faults, "examples": examples, "steps": steps, "seed": seed}

    def runTest(self: unittest.TestCase) -> None:
        report = run_fuzz(spec, store_factory, **options)  # type: ignore[arg-type]
        if report.violation is not None:
            raise report.violation

    doc = (
        f"Fuzz the {spec.name!r} spec (v{spec.version}) on {_factory_name(store_factory)} "
        "through a hostile network; the spec's invariants and the store's promises hold."
    )
    return type(
        f"Test{_camel(spec.name)}Fuzz",
        (unittest.TestCase,),
        {
            "runTest": runTest,
            "__doc__": doc,
            "spec": spec,
            "store_factory": staticmethod(store_factory),
            "options": options,
        },
    )


def assert_store_passes(
    spec: Spec, store_factory: StoreFactory, trace: Trace | str | os.PathLike[str]
) -> None:
    """Replay ``trace`` (a :class:`~statekernel.kernel.Trace` or the path of its JSON file)
    against a fresh store from ``store_factory``, checking after every step as the fuzzer
    does; raise :class:`FuzzViolation` if a property still fails. Use it to keep a store
    bug's counterexample as a regression test::

        def test_retries_answer_once():
            assert_store_passes(SPEC, MyStore, "tests/traces/retry.json")

    A trace of another spec is refused with :class:`~statekernel.kernel.TraceMismatch` (a
    ``ValueError``) before any store is made.
    """
    if not isinstance(trace, Trace):
        trace = Trace.load(trace)
    check_trace_spec(spec, trace)
    store = store_factory(spec)
    try:
        replay_against_store(spec, store, trace.steps)
    finally:
        close_store(store)
