"""The renderer rule (the same as PostgreSQL's, see ``tests/conftest.py``): a test that needs
Graphviz, PlantUML or Mermaid's parser skips where it is missing, with a reason saying how to
install it, unless ``STATEKERNEL_REQUIRE_RENDERERS=1`` (``.ci/run`` sets it), which makes the
missing renderer a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import renderers


@pytest.fixture
def no_renderers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with no program on it, and no Mermaid parser installed."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(renderers, "MERMAID_DIR", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("draw", "program"),
    [
        (lambda tmp: renderers.render_dot("digraph {}"), "dot"),
        (lambda tmp: renderers.render_plantuml(["@startuml\n@enduml\n"], tmp), "plantuml"),
        (lambda tmp: renderers.parse_mermaid(["stateDiagram-v2\n"]), "node"),
    ],
    ids=["dot", "plantuml", "mermaid"],
)
def test_a_missing_renderer_skips_saying_how_to_enable_it(
    draw: object, program: str, no_renderers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATEKERNEL_REQUIRE_RENDERERS", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        draw(no_renderers)  # type: ignore[operator]
    reason = str(skipped.value)
    assert program in reason
    assert "STATEKERNEL_REQUIRE_RENDERERS=1" in reason
    assert "README" in reason


@pytest.mark.parametrize("program", ["dot", "plantuml", "node"])
def test_a_missing_renderer_fails_when_renderers_are_required(
    program: str, no_renderers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATEKERNEL_REQUIRE_RENDERERS", "1")
    with pytest.raises(
        pytest.fail.Exception, match=f"STATEKERNEL_REQUIRE_RENDERERS=1 but {program}"
    ):
        renderers.need(program)


def test_a_missing_mermaid_parser_skips_even_where_node_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if renderers.shutil.which("node") is None:
        node = tmp_path / "bin" / "node"
        node.parent.mkdir()
        node.write_text("#!/bin/sh\nexit 1\n")
        node.chmod(0o755)
        monkeypatch.setenv("PATH", str(node.parent))
    monkeypatch.setattr(renderers, "MERMAID_DIR", tmp_path)
    monkeypatch.delenv("STATEKERNEL_REQUIRE_RENDERERS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="npm ci --prefix tests/diagrams/mermaid"):
        renderers.parse_mermaid(["stateDiagram-v2\n"])
    monkeypatch.setenv("STATEKERNEL_REQUIRE_RENDERERS", "1")
    with pytest.raises(pytest.fail.Exception, match="Mermaid's parser is not installed"):
        renderers.parse_mermaid(["stateDiagram-v2\n"])
