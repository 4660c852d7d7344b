"""Shared fixtures: the PostgreSQL rule of DESIGN.md.

Tests that need PostgreSQL use the ``pg_dsn`` fixture. It reads ``STATEKERNEL_PG_DSN``
(default ``postgresql://postgres@127.0.0.1:5432/test``) and skips when no server answers,
unless ``STATEKERNEL_REQUIRE_PG=1``, in which case it fails.
"""

from __future__ import annotations

import os

import pytest

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_answers(dsn: str) -> str | None:
    """None if a server answers at ``dsn``, else the reason it does not."""
    try:
        import psycopg
    except ImportError as exc:  # the postgres extra is not installed
        return f"psycopg is not installed: {exc}"
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:
        return f"no PostgreSQL server answers at {dsn}: {exc}"
    return None


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The DSN of a PostgreSQL server that answers (or skip/fail per the rule above)."""
    dsn = os.environ.get("STATEKERNEL_PG_DSN", DEFAULT_PG_DSN)
    why = _pg_answers(dsn)
    if why is not None:
        if os.environ.get("STATEKERNEL_REQUIRE_PG") == "1":
            pytest.fail(f"STATEKERNEL_REQUIRE_PG=1 but {why}")
        pytest.skip(why)
    return dsn
