"""Shared fixtures and the rules for tests that need more than Python.

- PostgreSQL (DESIGN.md): tests that need it use the ``pg_dsn`` fixture. It reads
  ``STATEKERNEL_PG_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``) and skips
  when no server answers, unless ``STATEKERNEL_REQUIRE_PG=1``, in which case it fails.
- Diagram renderers (Graphviz, PlantUML, Mermaid's parser): the same rule with
  ``STATEKERNEL_REQUIRE_RENDERERS=1``, in ``tests/diagrams/renderers.py``.
- Tests marked ``slow`` skip unless ``STATEKERNEL_RUN_SLOW=1``.

``.ci/run`` sets all three switches, so in CI none of these tests may skip.
"""

from __future__ import annotations

import os

import pytest

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"

pytest_plugins = ("pytester",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``slow`` unless ``STATEKERNEL_RUN_SLOW=1``."""
    if os.environ.get("STATEKERNEL_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow test: set STATEKERNEL_RUN_SLOW=1 to run it (CI does)")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


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
