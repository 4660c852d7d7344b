"""``docs/api.md`` is generated from the code's own docstrings and signatures; this test fails
when it is out of date. Regenerate it with::

    python tests/test_api_reference.py
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
API_PAGE = ROOT / "docs" / "api.md"
ROOTS = ("kernel", "adapters", "specs")


def public_modules() -> list[str]:
    """Every public module of the three parts, in a stable order."""
    names = []
    for root in ROOTS:
        pkg = importlib.import_module(f"statekernel.{root}")
        names.append(pkg.__name__)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                names.append(info.name)
    return sorted(names)


def _signature(obj: object) -> str:
    try:
        text = str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    return re.sub(r" at 0x[0-9a-f]+", "", text)


def render() -> str:
    """The whole API reference page."""
    out = [
        "# API reference",
        "",
        "<!-- generated from the docstrings by `python tests/test_api_reference.py`; "
        "do not edit -->",
        "",
        "Every public module and every name in its `__all__`, with its signature and docstring.",
        "",
    ]
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        names = list(getattr(module, "__all__", []))
        out += [f"## `{module_name}`", "", inspect.cleandoc(module.__doc__ or ""), ""]
        for name in names:
            obj = getattr(module, name)
            if inspect.isclass(obj):
                kind = "exception" if issubclass(obj, BaseException) else "class"
                out.append(f"### {kind} `{name}{_signature(obj)}`")
                doc = inspect.getdoc(obj) or ""
            elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
                out.append(f"### function `{name}{_signature(obj)}`")
                doc = inspect.getdoc(obj) or ""
            elif inspect.ismodule(obj):
                out.append(f"### module `{name}`")
                doc = (inspect.getdoc(obj) or "").split("\n\n")[0]
            elif type(obj).__name__ in ("Guard", "Invariant"):
                out.append(f"### {type(obj).__name__.lower()} `{name}`")
                doc = obj.description
            elif type(obj).__name__ == "Spec":
                out.append(f"### spec `{name}`")
                doc = f"The `{obj.name}` spec, version {obj.version}: {obj.description}"
            elif isinstance(obj, int | str | float | tuple | frozenset):
                out.append(f"### constant `{name}`")
                shown = f"frozenset({sorted(obj)!r})" if isinstance(obj, frozenset) else repr(obj)
                doc = f"`{name} = {shown}`"
            else:
                out.append(f"### `{name}`")
                doc = f"`{name} = {obj!r}`" if len(repr(obj)) <= 300 else type(obj).__name__
            out += ["", doc, ""]
    return "\n".join(out).rstrip() + "\n"


def test_api_reference_is_up_to_date() -> None:
    expected = render()
    actual = API_PAGE.read_text(encoding="utf-8") if API_PAGE.exists() else ""
    assert actual == expected, (
        "docs/api.md is out of date with the code; regenerate it with "
        "`python tests/test_api_reference.py`"
    )


def test_every_public_name_has_a_section() -> None:
    text = render()
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            assert re.search(rf"^### .*`{re.escape(name)}[(`]", text, re.M), (module_name, name)


if __name__ == "__main__":
    for root in ROOTS:
        sys.path.insert(0, str(ROOT / root))
    API_PAGE.write_text(render(), encoding="utf-8")
    print(f"wrote {API_PAGE.relative_to(ROOT)}")
