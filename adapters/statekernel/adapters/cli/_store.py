"""``statekernel history DB ENTITY`` and ``statekernel verify DB --spec TARGET``.

``DB`` is a SQLite file or a ``postgresql://`` DSN (served by ``statekernel.adapters.postgres``
when it is installed). These commands never write: a SQLite file is opened read-only, and both
stores are opened with ``create=False``, so a database without the spec's data is reported
(exit 2) instead of being given a schema, and one that lacks later migrations is read as it
is.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from statekernel.adapters.base import explain, verify
from statekernel.kernel import Spec, StatekernelError

from ._help import STORE_FAILED, epilog
from ._target import load_spec

__all__ = ["StoreArgumentError", "open_store", "register"]

_DSN_PREFIXES = ("postgresql://", "postgres://")
_SQLITE_HEADER = b"SQLite format 3\x00"
_SHOWN_ENTITIES = 5


class StoreArgumentError(StatekernelError, ValueError):
    """A DB argument that names no usable database (reported with exit code 2)."""


def register(sub: Any) -> None:
    """Add the ``history`` and ``verify`` subcommands."""
    summary = "Print an entity's audit trail, or with --spec explain each change."
    history = sub.add_parser(
        "history",
        help=summary,
        description=f"""{summary}

Without --spec, every stored audit row of ENTITY as one JSON object per line
(SQLite only: no spec code needed). With --spec, each transition with its
actor, payload, state change and the context fields it changed. Nothing is ever
written.""",
        epilog=epilog(
            {
                0: "the history was printed",
                2: "an unknown entity (a few are listed), no statekernel data, a bad target",
                3: STORE_FAILED,
            },
            "statekernel history app.db order-17",
            "statekernel history postgresql://app@db/app order-17 --spec myapp.flows:SPEC",
            "statekernel history postgresql://db/app order-17 --spec app:SPEC --schema app",
        ),
    )
    history.add_argument("db", metavar="DB", help="a SQLite file or a postgresql:// DSN")
    history.add_argument("entity", metavar="ENTITY", help="the entity id")
    history.add_argument(
        "--spec",
        metavar="TARGET",
        help="module.path:ATTR or path/file.py:ATTR; explain each transition's changes",
    )
    _schema_option(history)
    history.set_defaults(run=run_history)
    summary = "Replay every entity's audit log and compare it with the stored snapshot."
    verify = sub.add_parser(
        "verify",
        help=summary,
        description=f"""{summary}

Each mismatch is printed (entity, version, what differs); nothing is ever
written.""",
        epilog=epilog(
            {
                0: "every entity's log replays to its snapshot",
                1: "a mismatch (each one printed)",
                2: "a DB without the spec's data, or a bad spec, target or path",
                3: STORE_FAILED,
            },
            "statekernel verify app.db --spec myapp.flows:SPEC",
            "statekernel verify postgresql://app@db/app --spec app:SPEC --schema billing",
        ),
    )
    verify.add_argument("db", metavar="DB", help="a SQLite file or a postgresql:// DSN")
    verify.add_argument(
        "--spec", metavar="TARGET", required=True, help="module.path:ATTR or path/file.py:ATTR"
    )
    _schema_option(verify)
    verify.set_defaults(run=run_verify)


def _schema_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schema",
        metavar="NAME",
        help="the PostgreSQL schema holding the store's tables (default: statekernel); "
        "PostgreSQL only",
    )


def _is_dsn(db: str) -> bool:
    return db.startswith(_DSN_PREFIXES)


def _readonly_uri(db: str) -> str:
    """The read-only URI of an existing SQLite file (an ``OSError`` if it cannot be read)."""
    with open(db, "rb") as file:  # a missing, unreadable or folder path: main() says which
        header = file.read(len(_SQLITE_HEADER))
    if header and header != _SQLITE_HEADER:
        raise StoreArgumentError(f"{db}: not a SQLite database file; check the path")
    return f"file:{quote(str(Path(db).resolve()))}?mode=ro"


def _sqlite_readonly(db: str) -> sqlite3.Connection:
    uri = _readonly_uri(db)
    try:
        return sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreArgumentError(f"cannot open {db}: {exc}") from exc


def _postgres_module() -> Any:
    try:
        return importlib.import_module("statekernel.adapters.postgres")
    except ImportError as exc:
        raise StoreArgumentError(
            "PostgreSQL databases need the postgres store (statekernel.adapters.postgres) and "
            f"its driver; install 'statekernel[postgres]' ({exc})"
        ) from exc


def open_store(db: str, spec: Spec, schema: str | None = None) -> Any:
    """A store for ``spec`` on ``db`` that creates and writes nothing: a SQLite file opened
    read-only, or a PostgreSQL DSN (in ``schema``, by default the store's own default);
    both with ``create=False``. The caller closes it."""
    if _is_dsn(db):
        options: dict[str, Any] = {"create": False}
        if schema is not None:
            options["schema"] = schema
        return _postgres_module().PostgresStore(spec, db, **options)
    _no_schema(db, schema)
    from statekernel.adapters.sqlite import SqliteStore, stored_specs

    conn = _sqlite_readonly(db)
    try:
        specs = stored_specs(conn)
    finally:
        conn.close()
    if spec.name not in specs:
        held = ", ".join(f"{k} v{v}" for k, v in specs.items()) or "no statekernel data"
        raise StoreArgumentError(f"{db} holds no data of spec {spec.name!r} (it holds: {held})")
    return SqliteStore(spec, _readonly_uri(db), create=False)


def _no_schema(db: str, schema: str | None) -> None:
    """Refuse ``--schema`` for a SQLite file."""
    if schema is not None:
        raise StoreArgumentError(
            f"--schema names a PostgreSQL schema, but {db} is a SQLite file (a SQLite file "
            "has no schemas; the specs in it are told apart by name)"
        )


def run_history(args: argparse.Namespace) -> int:
    """Print the entity's history: with ``--spec``, the explanation (state and context
    changes); without, every stored audit row as one JSON object per line."""
    if args.spec is not None:
        spec = load_spec(args.spec)
        store = open_store(args.db, spec, args.schema)
        try:
            if not store.history(args.entity):
                raise _unknown_entity(args, f" of spec {spec.name!r}", list(store.entities()))
            print(explain(store, args.entity))
        finally:
            store.close()
        return 0
    if _is_dsn(args.db):
        raise StoreArgumentError("history of a PostgreSQL database needs --spec TARGET")
    _no_schema(args.db, args.schema)
    from statekernel.adapters.sqlite import read_audit_rows, read_entity_ids, stored_specs

    conn = _sqlite_readonly(args.db)
    try:
        if not stored_specs(conn):
            raise StoreArgumentError(
                f"{args.db} is not a statekernel database (it holds no statekernel data)"
            )
        rows = read_audit_rows(conn, args.entity)
        if not rows:
            raise _unknown_entity(args, "", read_entity_ids(conn))
    finally:
        conn.close()
    for row in rows:
        print(json.dumps(row, sort_keys=True))
    return 0


def _shown(db: str) -> str:
    """``db`` for a message: a DSN without its password."""
    if not _is_dsn(db):
        return db
    parts = urlsplit(db)
    if parts.password is None:
        return db
    netloc = parts.netloc.rpartition("@")[2]
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


def _unknown_entity(args: argparse.Namespace, of: str, known: list[str]) -> StoreArgumentError:
    """The error for an entity ``args.db`` has no history of, naming a few it has."""
    where = f"{_shown(args.db)} has no entity {args.entity!r}{of}"
    if not known:
        return StoreArgumentError(f"{where}; it holds none yet")
    shown = ", ".join(known[:_SHOWN_ENTITIES])
    if len(known) > _SHOWN_ENTITIES:
        shown += f", ... ({len(known)} in all)"
    return StoreArgumentError(f"{where}; entities there: {shown}")


def run_verify(args: argparse.Namespace) -> int:
    """Replay every entity's audit log; print each mismatch and exit 1, or exit 0."""
    spec = load_spec(args.spec)
    store = open_store(args.db, spec, args.schema)
    try:
        report = store.verify() if hasattr(store, "verify") else verify(store)
    finally:
        store.close()
    for mismatch in report.mismatches:
        print(f"MISMATCH {mismatch}")
    verdict = "ok" if report.ok else f"{len(report.mismatches)} mismatch(es)"
    print(f"{spec.name} v{spec.version}: {report.entities} entities verified, {verdict}")
    return 0 if report.ok else 1
