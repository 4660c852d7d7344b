"""``statekernel check TARGET``: lint, explore, then fuzz a spec and a store.

1. **lint**: building the spec validates it (every problem listed, exit 2);
2. **explore**: every reachable ``(state, context)`` within the bounds (``--max-depth``,
   ``--max-states``, ``--time-budget``); a violation here is the spec's fault and ends the
   check (the fuzzer would only find it again);
3. **fuzz**: the generated Hypothesis stateful test drives a real store through a hostile
   network (``--store``, ``--examples``, ``--seed``; ``--max-depth`` also caps the steps of
   each fuzz run).

Verdict: ``violated`` if either found a violation, ``proved`` if the explorer saw the whole
bounded space and the fuzzer found nothing, ``undetermined`` otherwise. The report keeps the
two apart, since they show different things: the explorer's verdict with its bounds, how it
chose payloads (examples or samples) and the invariants it checked; the fuzzer's "no violation
in N runs / M steps", a sample and not a proof, with a warning naming every state and
transition it never reached and what the store could not be tested for. Exit 0 when nothing
was violated, 1 on a violation, 2 on a bad spec, target, store or argument.

Stores: ``memory``; ``sqlite`` (a fresh database file per fuzz run in a temporary folder, or
``--db PATH``, a file that must not exist yet, rewritten by each run so that it ends up
holding the last one); ``postgres`` (``STATEKERNEL_PG_DSN``, default
``postgresql://postgres@127.0.0.1:5432/test``; a fresh schema per run, all dropped at the
end); ``MODULE:FACTORY`` (a callable taking the spec and returning a fresh store that has
``handle``, ``get`` and ``history``; ``reopen``, ``entities`` and ``close`` are used where
they exist).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from statekernel.kernel import ExploreReport, Spec, StatekernelError
from statekernel.kernel.testing import DEFAULT_EXAMPLES, DEFAULT_STEPS, FuzzReport, run_fuzz

from ._explore import add_explore_arguments, explore_from_args, positive_int
from ._target import TargetError, load_object, load_spec

__all__ = ["StoreOptionError", "postgres_factory", "register", "run_check", "store_factory"]

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
"""The PostgreSQL DSN used when ``STATEKERNEL_PG_DSN`` is not set."""


class StoreOptionError(StatekernelError, ValueError):
    """A ``--store`` or ``--db`` that names no usable store (exit code 2)."""


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative seed, got {text!r}")
    return value


def register(sub: Any) -> None:
    """Add the ``check`` subcommand."""
    from ._help import epilog

    summary = "Lint a spec, explore its state space, then fuzz it on a store."
    p = sub.add_parser(
        "check",
        help=summary,
        description=f"""{summary}

The fuzzer drives a real store through a hostile network: retries, duplicates,
reordering, stale writers, crashes. A violation is named, with its numbered
trace. --store postgres makes a fresh schema per run (all dropped at the end)
on $STATEKERNEL_PG_DSN, by default {DEFAULT_PG_DSN}.""",
        epilog=epilog(
            {
                0: "no violation",
                1: "a violation (the invariant or property, and its numbered trace)",
                2: "a bad spec, target, store or argument (every problem listed)",
                3: "the store failed (busy, unreachable, read-only), or an unexpected error",
            },
            "statekernel check myapp.flows:SPEC --store sqlite --examples 200 --seed 1",
        ),
    )
    p.add_argument("target", metavar="TARGET", help="module.path:ATTR or path/file.py:ATTR")
    p.add_argument(
        "--store",
        default="memory",
        metavar="memory|sqlite|postgres|MODULE:FACTORY",
        help="the store to fuzz (default memory); FACTORY takes the spec and returns a fresh store",
    )
    p.add_argument(
        "--db",
        metavar="PATH",
        default=None,
        help="with --store sqlite: the database file (must not exist; each fuzz run rewrites "
        "it, so it ends up holding the last run)",
    )
    add_explore_arguments(p)
    p.add_argument(
        "--examples",
        type=positive_int,
        default=DEFAULT_EXAMPLES,
        help=f"fuzz runs (Hypothesis examples; default {DEFAULT_EXAMPLES})",
    )
    p.add_argument(
        "--seed", type=_seed, default=None, help="seed the fuzzer (default: a random seed)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON report")
    p.set_defaults(run=run_check)


# --- stores ----------------------------------------------------------------------------------


@contextlib.contextmanager
def store_factory(store: str, db: str | None, spec: Spec) -> Iterator[Callable[[Spec], Any]]:
    """A factory making a fresh, empty store per fuzz run for the ``--store`` option, and
    cleaning up what it made when the context ends."""
    if db is not None and store != "sqlite":
        raise StoreOptionError("--db goes with --store sqlite")
    if store == "memory":
        from statekernel.adapters.memory import MemoryStore

        yield MemoryStore
    elif store == "sqlite":
        with _sqlite_factory(db) as factory:
            yield factory
    elif store == "postgres":
        with postgres_factory(os.environ.get("STATEKERNEL_PG_DSN", DEFAULT_PG_DSN)) as factory:
            yield factory
    elif ":" in store:
        yield _user_factory(store, spec)
    else:
        raise StoreOptionError(
            f"unknown store {store!r}: use memory, sqlite, postgres or MODULE:FACTORY"
        )


@contextlib.contextmanager
def _sqlite_factory(db: str | None) -> Iterator[Callable[[Spec], Any]]:
    from statekernel.adapters.sqlite import SqliteStore

    if db is not None:
        path = Path(db)
        if path.exists():
            raise StoreOptionError(f"--db {db} exists; give a new path (each run rewrites it)")
        if not path.parent.is_dir():
            raise StoreOptionError(f"--db {db}: no such folder {path.parent}")

        def rewrite(spec: Spec) -> Any:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f"{path}{suffix}")
            return SqliteStore(spec, path)

        rewrite.__qualname__ = "SqliteStore"
        yield rewrite
        return
    folder = tempfile.mkdtemp(prefix="statekernel-check-")
    counter = itertools.count(1)

    def fresh(spec: Spec) -> Any:
        return SqliteStore(spec, os.path.join(folder, f"run-{next(counter)}.db"))

    fresh.__qualname__ = "SqliteStore"
    try:
        yield fresh
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def postgres_factory(dsn: str) -> Iterator[Callable[[Spec], Any]]:
    """Fresh ``PostgresStore`` instances on ``dsn``, each in its own new schema; the schemas
    are dropped when the context ends."""
    try:
        import psycopg

        from statekernel.adapters.postgres import PostgresStore
    except ImportError as exc:
        raise StoreOptionError(
            "--store postgres needs the postgres store (statekernel.adapters.postgres) and its "
            f"driver; install 'statekernel[postgres]' ({exc})"
        ) from exc
    prefix = f"statekernel_check_{os.getpid()}_{int(time.time())}"
    schemas: list[str] = []
    stores: list[Any] = []

    def fresh(spec: Spec) -> Any:
        schema = f"{prefix}_{len(schemas) + 1}"
        schemas.append(schema)
        store = PostgresStore(spec, dsn, schema=schema)
        stores.append(store)
        return store

    fresh.__qualname__ = "PostgresStore"
    try:
        yield fresh
    finally:
        for store in stores:
            with contextlib.suppress(Exception):
                store.close()
        if schemas:
            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(dsn, autocommit=True, connect_timeout=5) as admin,
            ):
                for schema in schemas:
                    admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _user_factory(target: str, spec: Spec) -> Callable[[Spec], Any]:
    try:
        factory = load_object(target)
    except TargetError as exc:
        raise StoreOptionError(f"--store {target}: {exc}") from exc
    if not callable(factory):
        raise StoreOptionError(f"--store {target} is a {type(factory).__name__}, not callable")
    try:  # try it once, so that a broken factory is a bad argument, not a violation
        store = factory(spec)
    except Exception as exc:
        raise StoreOptionError(f"--store {target} failed to make a store: {exc!r}") from exc
    missing = [m for m in ("handle", "get", "history") if not callable(getattr(store, m, None))]
    close = getattr(store, "close", None)  # optional, as for the fuzzer
    if callable(close):
        with contextlib.suppress(Exception):
            close()
    if missing:
        raise StoreOptionError(
            f"--store {target} made a {type(store).__name__}, which lacks {', '.join(missing)}"
        )
    result: Callable[[Spec], Any] = factory
    return result


# --- running ---------------------------------------------------------------------------------


class _FuzzProgress:
    """A one-line progress display on a terminal."""

    def __init__(self, stream: TextIO, examples: int) -> None:
        self.stream = stream
        self.examples = examples
        self.started = time.perf_counter()
        self.last = 0.0
        self.shown = False

    def __call__(self, runs: int, steps: int, states: int) -> None:
        now = time.perf_counter()
        if now - self.last < 0.2:
            return
        self.last = now
        self.stream.write(
            f"\rfuzzing: run {runs}/{self.examples}, {steps:,} steps, {states:,} distinct "
            f"snapshots, {now - self.started:.0f} s "
        )
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _verdict(explored: ExploreReport, fuzzed: FuzzReport | None) -> str:
    if explored.verdict == "violated" or (fuzzed is not None and not fuzzed.ok):
        return "violated"
    if explored.verdict == "proved":
        return "proved"
    return "undetermined"


def _violations(explored: ExploreReport, fuzzed: FuzzReport | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for v in explored.violations:
        out.append(
            {
                "property": v.property,
                "found_by": "explorer",
                "message": v.message,
                "trace": [s.to_data() for s in v.trace.steps],
            }
        )
    if fuzzed is not None and fuzzed.violation is not None:
        fv = fuzzed.violation
        out.append(
            {
                "property": fv.property,
                "found_by": "fuzzer",
                "message": fv.detail,
                "seed": fv.seed,
                "trace": [s.to_data() for s in fv.trace.steps],
            }
        )
    return out


def run_check(args: argparse.Namespace) -> int:
    """Lint, explore and fuzz; print the report; return the exit code."""
    started = time.perf_counter()
    spec = load_spec(args.target)  # lint: a SpecError is reported by main() with exit 2
    with store_factory(args.store, args.db, spec) as factory:
        explored = explore_from_args(spec, args)
        fuzzed: FuzzReport | None = None
        if explored.verdict != "violated":
            progress = _FuzzProgress(sys.stderr, args.examples) if sys.stderr.isatty() else None
            try:
                fuzzed = run_fuzz(
                    spec,
                    factory,
                    examples=args.examples,
                    steps=args.max_depth or DEFAULT_STEPS,
                    seed=args.seed,
                    progress=progress,
                )
            finally:
                if progress is not None:
                    progress.clear()
    verdict = _verdict(explored, fuzzed)
    seconds = time.perf_counter() - started
    if args.json:
        report = {
            "spec": spec.name,
            "spec_version": spec.version,
            "store": args.store,
            "verdict": verdict,
            "violations": _violations(explored, fuzzed),
            "states": explored.states,
            "seconds": round(seconds, 3),
            "explorer": explored.to_data(),
            "fuzzer": None if fuzzed is None else fuzzed.to_data(),
        }
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        _print_human(spec, verdict, explored, fuzzed, seconds)
    return 1 if verdict == "violated" else 0


def _print_human(
    spec: Spec,
    verdict: str,
    explored: ExploreReport,
    fuzzed: FuzzReport | None,
    seconds: float,
) -> None:
    print(
        f"lint: {spec.name} v{spec.version} ok ({len(spec.states)} states, "
        f"{len(spec.transitions)} transitions, {len(spec.invariants)} invariants)"
    )
    print()
    print("explorer: " + explored.format())
    print()
    if fuzzed is None:
        print("fuzzer: skipped (the explorer found the spec violated; fix it first)")
    else:
        print(fuzzed.format())
        if fuzzed.violation is not None:
            print()
            print(str(fuzzed.violation))
    print()
    print(f"verdict: {verdict.upper()} ({seconds:.1f} s)")
    print(f"  explorer: {_explorer_summary(explored)}")
    print(f"  fuzzer: {'skipped' if fuzzed is None else fuzzed.summary()}")
    if verdict == "undetermined":
        print(
            "  no violation found, but the explorer hit a bound before seeing every state: "
            "raise --max-depth/--max-states for a proof",
            file=sys.stderr,
        )


def _explorer_summary(explored: ExploreReport) -> str:
    """What the explorer showed, in one line."""
    if explored.verdict == "violated":
        return "VIOLATED - " + ", ".join(v.property for v in explored.violations)
    if explored.verdict == "undetermined":
        return (
            f"UNDETERMINED - {explored.bound_detail}; no violation in the "
            f"{explored.states:,} states seen, NOT a proof"
        )
    n = len(explored.invariants)
    holds = (
        f"{n} invariant{' holds' if n == 1 else 's hold'} in every one"
        if n
        else "no spec code failed in any (no invariants declared)"
    )
    return f"PROVED - the whole bounded space was seen ({explored.states:,} states); {holds}"
