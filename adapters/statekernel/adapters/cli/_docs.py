"""``statekernel docs TARGET... -o DIR [--check]``: one Markdown page per spec and an index."""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path
from typing import Any

from statekernel.kernel import Spec
from statekernel.kernel.docs import index_page, page_filename, spec_page

from ._files import write_folder
from ._help import FAILED, epilog
from ._target import TargetError, load_spec

__all__ = ["INDEX", "register", "render_pages", "run_docs"]

INDEX = "index.md"
"""The name of the index page."""


def register(sub: Any) -> None:
    """Add the ``docs`` subcommand."""
    summary = "Write one Markdown page per spec, and an index, into a folder."
    p = sub.add_parser(
        "docs",
        help=summary,
        description=f"""{summary}

Each page holds the spec's states, transitions, invariants and a Mermaid
diagram; index.md links them. DIR is created if missing, and the pages are
written all or none. With --check, write nothing and exit 1 if the pages in DIR
differ from the specs.""",
        epilog=epilog(
            {
                0: "the pages were written (with --check: they are up to date)",
                1: "with --check: a page is missing, differs from its spec or has no spec",
                2: "a bad spec, target or folder (every problem listed)",
                3: FAILED,
            },
            "statekernel docs myapp.flows:ORDERS myapp.flows:REFUNDS -o docs/flows",
            "statekernel docs myapp.flows:ORDERS myapp.flows:REFUNDS -o docs/flows --check",
        ),
    )
    p.add_argument("targets", metavar="TARGET", nargs="+", help="module.path:ATTR or file.py:ATTR")
    p.add_argument("-o", "--output", metavar="DIR", required=True, help="the folder to write")
    p.add_argument(
        "--check",
        action="store_true",
        help="compare DIR with the specs instead of writing; exit 1 when out of date",
    )
    p.set_defaults(run=run_docs)


def render_pages(specs: list[Spec]) -> dict[str, str]:
    """File name -> Markdown text for every page, the index included. Two specs with the same
    page file name are a :class:`TargetError`."""
    pages: dict[str, str] = {}
    for spec in specs:
        name = page_filename(spec)
        if name in pages or name == INDEX:
            raise TargetError(f"two specs would both be written to {name}; rename one")
        pages[name] = spec_page(spec)
    pages[INDEX] = index_page(specs)
    return pages


def run_docs(args: argparse.Namespace) -> int:
    """Write the pages, or with ``--check`` list the files that are out of date."""
    pages = render_pages([load_spec(t) for t in args.targets])
    out = Path(args.output)
    if args.check:
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), args.output)
        stale = []
        for name, text in sorted(pages.items()):
            path = out / name
            if not path.is_file():
                stale.append(f"{path}: missing")
            elif path.read_text(encoding="utf-8") != text:
                stale.append(f"{path}: differs from the spec")
        if out.is_dir():
            stale.extend(
                f"{p}: no spec generates it"
                for p in sorted(out.glob("*.md"))
                if p.name not in pages
            )
        if stale:
            print("out of date (regenerate with statekernel docs ... -o DIR):", file=sys.stderr)
            for line in stale:
                print(f"  {line}", file=sys.stderr)
            return 1
        print(f"{out}: {len(pages)} pages up to date")
        return 0
    write_folder(out, pages)
    print(f"wrote {len(pages)} pages to {out}")
    return 0
