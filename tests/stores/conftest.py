"""The store conformance fixtures: every test that takes ``make_store`` runs once per store.

``make_store(spec)`` returns a fresh, empty store bound to ``spec``. Stores register their
factory in ``STORE_FACTORIES``; a PostgreSQL factory asks for the ``pg_dsn`` fixture, so it
skips or fails by the rule in ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from statekernel.adapters.memory import MemoryStore
from statekernel.adapters.sqlite import SqliteStore
from statekernel.kernel import Spec

from .pgutil import fresh_pg_schema

StoreFactory = Callable[[Spec], Any]


def _memory(request: pytest.FixtureRequest, tmp_path: Any) -> StoreFactory:
    return MemoryStore


def _sqlite(request: pytest.FixtureRequest, tmp_path: Any) -> StoreFactory:
    counter = iter(range(1_000_000))

    def factory(spec: Spec) -> SqliteStore:
        return SqliteStore(spec, tmp_path / f"store-{next(counter)}.db")

    return factory


def _postgres(request: pytest.FixtureRequest, tmp_path: Any) -> StoreFactory:
    from statekernel.adapters.postgres import PostgresStore

    dsn, schema = fresh_pg_schema(request)
    return lambda spec: PostgresStore(spec, dsn, schema=schema)


# name -> builder(request, tmp_path) -> factory(spec) -> store
STORE_FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Any], StoreFactory]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(params=sorted(STORE_FACTORIES))
def make_store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[StoreFactory]:
    """A factory for fresh stores of one kind; closes what it made at teardown."""
    build = STORE_FACTORIES[request.param](request, tmp_path)
    made: list[Any] = []

    def factory(spec: Spec) -> Any:
        store = build(spec)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()
