"""Helpers for the PostgreSQL store tests: a fresh schema per test, raw row counts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest


def fresh_pg_schema(request: pytest.FixtureRequest) -> tuple[str, str]:
    """``(dsn, schema)``: a new, empty PostgreSQL schema for one test, dropped at teardown.

    Asks for the ``pg_dsn`` fixture, so it skips (or fails) by the rule in tests/conftest.py.
    """
    import psycopg

    dsn: str = request.getfixturevalue("pg_dsn")
    schema = f"sk_test_{uuid.uuid4().hex[:16]}"

    def drop() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    request.addfinalizer(drop)
    return dsn, schema


def raw_counts(dsn: str, schema: str, entity: str, key: str | None = None) -> dict[str, Any]:
    """What is physically stored for ``entity`` (and ``key``), read past the store."""
    import psycopg

    s = f'"{schema}"'
    with psycopg.connect(dsn, autocommit=True) as conn:
        snap = conn.execute(
            f"SELECT version FROM {s}.snapshots WHERE entity = %s", (entity,)
        ).fetchone()
        audit = conn.execute(f"SELECT count(*) FROM {s}.audit WHERE entity = %s", (entity,))
        outbox = conn.execute(f"SELECT count(*) FROM {s}.outbox WHERE entity = %s", (entity,))
        audit_n, outbox_n = audit.fetchone()[0], outbox.fetchone()[0]  # type: ignore[index]
        keys = 0
        if key is not None:
            row = conn.execute(f"SELECT count(*) FROM {s}.keys WHERE key = %s", (key,))
            keys = row.fetchone()[0]  # type: ignore[index]
    return {
        "version": None if snap is None else snap[0],
        "audit": audit_n,
        "outbox": outbox_n,
        "keys": keys,
    }
