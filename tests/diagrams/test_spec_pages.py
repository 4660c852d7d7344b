"""The Markdown spec pages: their content, and ``docs/specs/`` kept in step with the specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from statekernel.adapters.cli import main
from statekernel.kernel.diagrams import to_mermaid
from statekernel.kernel.docs import index_page, page_filename, spec_page

from .diagram_specimens import AWKWARD, ENROLLMENT, SPECIMENS, reference_specs

DOCS_SPECS = Path(__file__).resolve().parents[2] / "docs" / "specs"
REFERENCE = reference_specs()


def test_docs_specs_is_up_to_date_with_the_reference_specs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not REFERENCE:
        # No reference spec yet: then no page may claim to document one.
        stale = sorted(p.name for p in DOCS_SPECS.glob("*.md")) if DOCS_SPECS.is_dir() else []
        assert stale == [], f"docs/specs has pages but statekernel.specs defines no SPEC: {stale}"
        return
    targets = [f"{module}:SPEC" for module in REFERENCE]
    code = main(["docs", *targets, "-o", str(DOCS_SPECS), "--check"])
    assert code == 0, (
        "docs/specs is out of date; regenerate it with\n  statekernel docs "
        + " ".join(targets)
        + " -o docs/specs\n"
        + capsys.readouterr().err
    )


@pytest.mark.parametrize("spec", [*REFERENCE.values(), *SPECIMENS.values()], ids=lambda s: s.name)
def test_a_page_holds_every_part_of_the_spec(spec: object) -> None:
    from statekernel.kernel import Spec

    assert isinstance(spec, Spec)
    page = spec_page(spec)
    assert page.startswith(f"# {spec.name}\n")
    if spec.description:
        assert spec.description.strip() in page
    states = page.split("## States")[1].split("## Transitions")[0]
    transitions = page.split("## Transitions")[1].split("## Invariants")[0]
    invariants = page.split("## Invariants")[1].split("## Diagram")[0]
    state_rows = [r for r in states.splitlines() if r.startswith("| `")]
    assert len(state_rows) == len(spec.states)
    rows = [r for r in transitions.splitlines() if r.startswith("| `")]
    assert len(rows) == len(spec.transitions)
    for row, t in zip(rows, spec.transitions, strict=True):
        assert f"`{t.event}`" in row.replace("\\|", "|")
        for g in t.guards:
            assert g.name in row
            assert " ".join(g.description.split()).replace("|", "\\|") in row
        for r in t.roles:
            assert r.replace("|", "\\|") in row
        if t.payload is not None:
            assert t.payload.__qualname__ in row
        cells = row.replace("\\|", "").split(" | ")
        assert cells[-1].rstrip(" |") == (", ".join(f"`{e.name}`" for e in t.effects) or "-")
    for inv in spec.invariants:
        assert f"`{inv.name}`: {' '.join(inv.description.split())}" in invariants
    assert f"```mermaid\n{to_mermaid(spec)}```" in page


def test_a_page_lists_every_effect_and_the_transitions_that_emit_it() -> None:
    from .diagram_specimens import CONNECTION

    page = spec_page(CONNECTION)
    header = next(r for r in page.splitlines() if r.startswith("| From |"))
    assert header.endswith("| Effects |")
    effects = page.split("## Effects")[1].split("## Invariants")[0]
    assert "- `ack`: `syn_ack` (`syn_sent` to `established`)" in effects
    assert "`fin` (`established` to `close_wait`)" in effects
    rst = next(line for line in effects.splitlines() if line.startswith("- `rst`"))
    assert rst.startswith("- `rst`: `abort` (`listen`, `syn_sent`")
    assert "- `ack`" in effects and effects.count("- `ack`") == 1


def test_payload_fields_are_listed_with_their_types() -> None:
    attach = next(
        r for r in spec_page(ENROLLMENT).splitlines() if r.startswith("| `draft` | `attach`")
    )
    assert "`Attach` `count: int`" in attach


def test_table_cells_escape_pipes() -> None:
    page = spec_page(AWKWARD)
    done = next(r for r in page.splitlines() if r.startswith("| `x:y;z` | `done`"))
    assert "`c\\|d`" in done
    assert done.count(" | ") + done.count("| ") >= 6


def test_index_links_every_page_sorted_by_name() -> None:
    index = index_page([ENROLLMENT, AWKWARD])
    links = [line.split("](")[1].split(")")[0] for line in index.splitlines() if "](" in line]
    assert links == [page_filename(AWKWARD), page_filename(ENROLLMENT)]


def test_an_internal_row_says_the_entity_stays() -> None:
    from .diagram_specimens import LINE

    page = spec_page(LINE)
    assert "| `idle`, `open` | `ping` | (internal: stays) | - | anyone | - |" in page
    assert "| `closed` | `close` | (internal: stays) | - | `peer` | - |" in page
