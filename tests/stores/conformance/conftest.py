"""The store conformance fixtures: every test that takes ``make_store`` runs once per store.

``make_store(spec, **options)`` returns a fresh, empty store bound to ``spec``;
``make_store.kind`` names the store and ``make_store.backdoor`` reaches past its public
methods, the way a hand editing the database (or a failing disk) would, so that one test
states a promise for every store.
Stores register a builder in ``STORE_KINDS``; the PostgreSQL builder asks for the ``pg_dsn``
fixture, so it skips or fails by the rule in ``tests/conftest.py``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from statekernel.adapters.errors import StoreError
from statekernel.adapters.memory import MemoryStore
from statekernel.adapters.sqlite import SqliteStore
from statekernel.kernel import Spec

from ..pgutil import fresh_pg_schema

StoreFactory = Callable[..., Any]  # (spec, **options such as clock) -> store


class MemoryBackdoor:
    """The memory store's tables, edited in place."""

    def corrupt_context(self, store: MemoryStore, entity: str, text: str) -> None:
        state, version, _ = store._tables.snapshots[entity]
        store._tables.snapshots[entity] = (state, version, text)

    def stored_answer(self, store: MemoryStore, key: str) -> Any:
        return json.loads(store._tables.keys[key][2])

    def refuse_key_records(self, store: MemoryStore) -> Callable[[], None]:
        keys = store._tables.keys

        class Refusing(dict[str, Any]):
            def __setitem__(self, key: str, value: Any) -> None:
                raise StoreError("key records refused")

        store._tables.keys = Refusing(keys)

        def lift() -> None:
            store._tables.keys = dict(store._tables.keys)

        return lift

    def delivered_at(self, store: MemoryStore, outbox_id: int) -> datetime | None:
        return store._tables.delivered.get(outbox_id)


class SqliteBackdoor:
    """SQL on the store's own connection (an authorizer to make inserts fail)."""

    def corrupt_context(self, store: SqliteStore, entity: str, text: str) -> None:
        with store.connection as conn:
            conn.execute(
                "UPDATE statekernel_snapshots SET context = ? WHERE entity = ?", (text, entity)
            )

    def stored_answer(self, store: SqliteStore, key: str) -> Any:
        row = store.connection.execute(
            "SELECT decision FROM statekernel_keys WHERE key = ?", (key,)
        ).fetchone()
        return json.loads(row[0])

    def refuse_key_records(self, store: SqliteStore) -> Callable[[], None]:
        conn = store.connection

        def authorizer(action: int, table: str | None, *_: Any) -> int:
            if action == sqlite3.SQLITE_INSERT and table == "statekernel_keys":
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK

        conn.set_authorizer(authorizer)
        return lambda: conn.set_authorizer(None)

    def delivered_at(self, store: SqliteStore, outbox_id: int) -> datetime | None:
        (text,) = store.connection.execute(
            "SELECT delivered_at FROM statekernel_outbox WHERE id = ?", (outbox_id,)
        ).fetchone()
        return None if text is None else datetime.fromisoformat(text)


class PostgresBackdoor:
    """SQL on a connection of its own (a trigger to make inserts fail)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def _run(self, sql: str, params: Any = None) -> Any:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchone() if cur.description else None

    def corrupt_context(self, store: Any, entity: str, text: str) -> None:
        self._run(
            f'UPDATE "{store.schema}".snapshots SET context = %s::jsonb WHERE entity = %s',
            (text, entity),
        )

    def stored_answer(self, store: Any, key: str) -> Any:
        return self._run(f'SELECT decision FROM "{store.schema}".keys WHERE key = %s', (key,))[0]

    def refuse_key_records(self, store: Any) -> Callable[[], None]:
        s = f'"{store.schema}"'
        self._run(
            f"CREATE FUNCTION {s}.refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'key records refused'; END$$"
        )
        self._run(
            f"CREATE TRIGGER refuse BEFORE INSERT ON {s}.keys FOR EACH ROW"
            f" EXECUTE FUNCTION {s}.refuse()"
        )
        return lambda: self._run(f"DROP TRIGGER refuse ON {s}.keys")

    def delivered_at(self, store: Any, outbox_id: int) -> datetime | None:
        row = self._run(
            f'SELECT delivered_at FROM "{store.schema}".outbox WHERE id = %s', (outbox_id,)
        )
        return row[0]  # type: ignore[no-any-return]


def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[StoreFactory, Any]:
    return MemoryStore, MemoryBackdoor()


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[StoreFactory, Any]:
    counter = iter(range(1_000_000))

    def factory(spec: Spec, **options: Any) -> SqliteStore:
        return SqliteStore(spec, tmp_path / f"store-{next(counter)}.db", **options)

    return factory, SqliteBackdoor()


def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[StoreFactory, Any]:
    from statekernel.adapters.postgres import PostgresStore

    dsn: str = request.getfixturevalue("pg_dsn")

    def factory(spec: Spec, **options: Any) -> Any:
        _, schema = fresh_pg_schema(request)  # a schema of its own: a fresh, empty store
        return PostgresStore(spec, dsn, schema=schema, **options)

    return factory, PostgresBackdoor(dsn)


# name -> builder(request, tmp_path) -> (factory(spec) -> store, backdoor)
STORE_KINDS: dict[str, Callable[[pytest.FixtureRequest, Path], tuple[StoreFactory, Any]]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgres": _postgres,
}


class MakeStore:
    """``make_store(spec, **options)``: a fresh store of one kind (options every store takes,
    such as ``clock``); closes what it made at teardown."""

    def __init__(self, kind: str, build: StoreFactory, backdoor: Any) -> None:
        self.kind = kind
        self.backdoor = backdoor
        self._build = build
        self.made: list[Any] = []

    def __call__(self, spec: Spec, **options: Any) -> Any:
        store = self._build(spec, **options)
        self.made.append(store)
        return store


@pytest.fixture(params=sorted(STORE_KINDS))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    """A factory for fresh stores of one kind, with its backdoor."""
    build, backdoor = STORE_KINDS[request.param](request, tmp_path)
    maker = MakeStore(request.param, build, backdoor)
    yield maker
    for store in maker.made:
        store.close()
