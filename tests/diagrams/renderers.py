"""Drivers for the real renderers: Graphviz ``dot``, PlantUML and Mermaid's own parser.

The renderer rule, like PostgreSQL's in ``tests/conftest.py``: where a renderer is missing,
the tests that need it skip, with a reason saying how to install it, unless
``STATEKERNEL_REQUIRE_RENDERERS=1``, which makes the missing renderer a failure. ``.ci/run``
installs every renderer and sets it, so in CI these tests must run.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, NoReturn

import pytest

MERMAID_DIR = Path(__file__).parent / "mermaid"
SVG = "{http://www.w3.org/2000/svg}"


REQUIRE_RENDERERS = "STATEKERNEL_REQUIRE_RENDERERS"

# How to install each program the renderer tests run.
_INSTALL = {
    "dot": "install Graphviz (apt-get install graphviz, brew install graphviz)",
    "plantuml": "install PlantUML (apt-get install plantuml, brew install plantuml)",
    "node": "install Node.js 20+ and Mermaid's parser (npm ci --prefix tests/diagrams/mermaid)",
}


def missing(why: str, how: str) -> NoReturn:
    """Skip the running test because a renderer is missing, or fail it when
    ``STATEKERNEL_REQUIRE_RENDERERS=1``."""
    if os.environ.get(REQUIRE_RENDERERS) == "1":
        pytest.fail(f"{REQUIRE_RENDERERS}=1 but {why}; {how} (.ci/run does)")
    pytest.skip(
        f"{why}: {how} to run the renderer tests; {REQUIRE_RENDERERS}=1 makes a missing "
        "renderer a failure (CI sets it; see README.md)"
    )


def need(program: str) -> str:
    """The path of ``program``, a renderer the running test needs (see :func:`missing`)."""
    path = shutil.which(program)
    if path is None:
        missing(f"{program} is not installed", _INSTALL[program])
    return path


def svg_texts(svg: str) -> list[str]:
    """Every text element of an SVG document, in document order."""
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def render_dot(text: str) -> str:
    """Render DOT to SVG with Graphviz; any error or warning fails the test."""
    proc = subprocess.run(
        [need("dot"), "-Tsvg"], input=text, capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0 or proc.stderr.strip():
        pytest.fail(f"dot failed (exit {proc.returncode}):\n{proc.stderr}\n--- input:\n{text}")
    return proc.stdout


def render_plantuml(texts: list[str], workdir: Path) -> list[str]:
    """Render PlantUML sources to SVG in one PlantUML run; return the SVGs in order.

    PlantUML draws a syntax error as an image instead of failing, so besides its exit code
    (``-failfast2`` makes it non-zero) each SVG is searched for its error banner.
    """
    plantuml = need("plantuml")
    sources = []
    for i, text in enumerate(texts):
        path = workdir / f"diagram{i:03}.puml"
        path.write_text(text, encoding="utf-8")
        sources.append(path)
    proc = subprocess.run(
        [plantuml, "-tsvg", "-failfast2", "-charset", "UTF-8", *map(str, sources)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        pytest.fail(f"plantuml failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    svgs = []
    for path in sources:
        svg = path.with_suffix(".svg").read_text(encoding="utf-8")
        texts_ = svg_texts(svg)
        if any("Syntax Error" in t or "error" in t.lower().split() for t in texts_):
            pytest.fail(f"plantuml drew an error for {path.name}:\n{texts_}")
        svgs.append(svg)
    return svgs


def plantuml_errors(text: str, workdir: Path) -> bool:
    """Whether PlantUML reports ``text`` as broken (used to show the check can fail)."""
    path = workdir / "broken.puml"
    path.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [need("plantuml"), "-tsvg", "-failfast2", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    svg = path.with_suffix(".svg")
    drawn_error = svg.exists() and any("Syntax Error" in t for t in svg_texts(svg.read_text()))
    return proc.returncode != 0 or drawn_error


_ENTITY = re.compile(r"ﬂ°°(\d+)¶ß|ﬂ°(\w+)¶ß")


def mermaid_decode(text: str | None) -> str:
    """Undo Mermaid's internal encoding of ``#123;`` / ``#name;`` entity codes."""
    if text is None:
        return ""

    def one(m: re.Match[str]) -> str:
        if m[1] is not None:
            return chr(int(m[1]))
        return html.unescape(f"&{m[2]};")

    return _ENTITY.sub(one, text)


def parse_mermaid(texts: list[str]) -> list[dict[str, Any]]:
    """Parse diagrams with Mermaid's own parser (under Node.js, no browser); one result per
    text: ``{"ok": True, "nodes": [...], "edges": [...]}`` or ``{"ok": False, "error": ...}``."""
    node = need("node")
    if not (MERMAID_DIR / "node_modules" / "mermaid").is_dir():
        missing("Mermaid's parser is not installed", "run npm ci --prefix tests/diagrams/mermaid")
    proc = subprocess.run(
        [node, str(MERMAID_DIR / "check.mjs")],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        pytest.fail(f"the Mermaid checker crashed:\n{proc.stderr}")
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    return results
