"""The writer that test_postgres_crash.py kills: sends keyed deposits forever and appends
``<n> <version>`` to a file after each ``handle`` returns (the acknowledgement).

Run as ``python -m tests.stores.pg_crash_child DSN SCHEMA FIRST ACKFILE``.
"""

from __future__ import annotations

import os
import sys

from statekernel.kernel import Command

from .ledger import SPEC

ENTITIES = 3


def command_for(n: int) -> tuple[str, str, Command]:
    """``(entity, key, command)`` of the n-th request (the same every time it is sent)."""
    return f"acct-{n % ENTITIES}", f"key-{n}", Command("deposit", {"amount": {"cents": n + 1}})


def main(dsn: str, schema: str, first: int, ackfile: str) -> None:
    from statekernel.adapters.postgres import PostgresStore

    store = PostgresStore(SPEC, dsn, schema=schema)
    fd = os.open(ackfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    n = first
    while True:
        entity, key, command = command_for(n)
        d = store.handle(entity, command, idempotency_key=key)
        if n % 4 == 0:  # a client retry of the same request
            d = store.handle(entity, command, idempotency_key=key)
        assert d.accepted
        os.write(fd, f"{n} {d.snapshot.version}\n".encode())
        n += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
