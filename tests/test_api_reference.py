"""``docs/api.md`` is generated from the code's own docstrings and signatures; this test fails
when it is out of date. Regenerate it with::

    python tests/test_api_reference.py

Every public module gets a section, with every name in its ``__all__``; a class also gets its
public methods and properties, those it inherits from the project's own classes included, and
its context-manager methods. ``statekernel.adapters.errors`` also gets a table of the errors
stores raise.
"""

from __future__ import annotations

import functools
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


# Dunder methods a reader calls through syntax (``with store:``), so they are documented.
_SYNTAX_DUNDERS = ("__enter__", "__exit__", "__aenter__", "__aexit__")


def class_members(cls: type) -> list[tuple[str, object]]:
    """The members of ``cls`` a reader calls: public methods, properties, class and static
    methods and the context-manager methods, with those inherited from classes of the same
    project (not from ``object``, builtins or ``typing``); the class's own first, each class's
    in the order it defines them."""
    home = cls.__module__.split(".")[0]
    seen: set[str] = set()
    found = []
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] != home:
            continue
        for name, member in vars(klass).items():
            if name in seen or (name.startswith("_") and name not in _SYNTAX_DUNDERS):
                continue
            if inspect.isfunction(member) or isinstance(
                member, property | functools.cached_property | classmethod | staticmethod
            ):
                seen.add(name)
                found.append((name, member))
    return found


def _member_doc(member: object) -> str:
    if isinstance(member, classmethod | staticmethod):
        member = member.__func__
    return inspect.getdoc(member) or ""


def _without_first(func: object) -> str:
    """The signature of a method as it is called: without ``self`` or ``cls``."""
    try:
        sig = inspect.signature(func)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    sig = sig.replace(parameters=list(sig.parameters.values())[1:])
    return re.sub(r" at 0x[0-9a-f]+", "", str(sig))


def render_members(cls: type) -> list[str]:
    """The ``####`` sections of ``cls``'s members (see :func:`class_members`)."""
    out = []
    for name, member in class_members(cls):
        title = f"{cls.__name__}.{name}"
        if isinstance(member, property | functools.cached_property):
            getter = member.fget if isinstance(member, property) else member.func
            returns = inspect.signature(getter).return_annotation  # type: ignore[arg-type]
            shown = "" if returns is inspect.Signature.empty else f": {returns!r}"
            out.append(f"#### property `{title}{shown}`")
        elif isinstance(member, classmethod):
            out.append(f"#### classmethod `{title}{_without_first(member.__func__)}`")
        elif isinstance(member, staticmethod):
            out.append(f"#### staticmethod `{title}{_signature(member.__func__)}`")
        else:
            out.append(f"#### method `{title}{_without_first(member)}`")
        out += ["", _member_doc(member), ""]
    return out


def _is_also(cls: type) -> str:
    """``cls``'s parent in the project and the most specific builtin exception it also is."""
    parents = [b for b in cls.__bases__ if b.__module__.startswith("statekernel.")]
    builtins = [
        k
        for k in cls.__mro__
        if k.__module__ == "builtins" and k not in (object, BaseException, Exception)
    ]
    return ", ".join(f"`{k.__name__}`" for k in [*parents, *builtins[:1]])


def _as_tree(classes: list[type]) -> list[type]:
    """``classes`` depth first: each right after its parent (its first base among
    ``classes``), siblings by name."""

    def parent(c: type) -> type | None:
        return next((b for b in c.__bases__ if b in classes), None)

    def below(top: type | None) -> list[type]:
        children = sorted((c for c in classes if parent(c) is top), key=lambda c: c.__name__)
        return [c for child in children for c in (child, *below(child))]

    return below(None)


def render_store_errors() -> list[str]:
    """The table of the errors stores raise: every error of ``statekernel.adapters.errors``,
    and the kernel's ``InvalidIdentifier``, which stores raise for a malformed id or key."""
    errors = importlib.import_module("statekernel.adapters.errors")
    kernel = importlib.import_module("statekernel.kernel")
    raised = _as_tree([getattr(errors, name) for name in errors.__all__])
    raised.append(kernel.InvalidIdentifier)
    out = [
        "### Errors stores raise",
        "",
        "| Error | Is a | Raised when |",
        "| --- | --- | --- |",
    ]
    for cls in raised:
        when = " ".join((inspect.getdoc(cls) or "").split()).replace("|", "\\|")
        out.append(f"| `{cls.__name__}` | {_is_also(cls)} | {when} |")
    return [*out, ""]


def render() -> str:
    """The whole API reference page."""
    out = [
        "# API reference",
        "",
        "<!-- generated from the docstrings by `python tests/test_api_reference.py`; "
        "do not edit -->",
        "",
        "Every public module and every name in its `__all__`, with its signature and docstring; "
        "each class with its public methods and properties, inherited ones included. "
        "`decide` never raises; the errors stores raise are listed under "
        "[`statekernel.adapters.errors`](#statekerneladapterserrors).",
        "",
    ]
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        names = list(getattr(module, "__all__", []))
        out += [f"## `{module_name}`", "", inspect.cleandoc(module.__doc__ or ""), ""]
        if module_name == "statekernel.adapters.errors":
            out += render_store_errors()
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
            if inspect.isclass(obj):
                out += render_members(obj)
    return "\n".join(out).rstrip() + "\n"


# The methods of a store (DESIGN.md, "Entry point"); every store documents those it has.
STORE_API = (
    "handle",
    "handle_many",
    "get",
    "history",
    "entities",
    "explain",
    "verify",
    "outbox",
    "pending_outbox",
    "mark_delivered",
    "purge_keys",
    "reopen",
    "close",
    "__enter__",
    "__exit__",
)


def _store_classes() -> list[type]:
    from statekernel.adapters import base, memory, postgres, sqlite

    return [base.Store, memory.MemoryStore, sqlite.SqliteStore, postgres.PostgresStore]


def test_the_store_api_is_in_the_reference() -> None:
    text = render()
    covered = set()
    for cls in _store_classes():
        for name in STORE_API:
            if hasattr(cls, name):
                heading = f"#### method `{cls.__name__}.{name}("
                assert heading in text, f"docs/api.md lacks {heading}`"
                covered.add(name)
    assert covered == set(STORE_API), set(STORE_API) - covered


def test_every_store_method_has_a_docstring() -> None:
    for cls in _store_classes():
        for name, member in class_members(cls):
            assert _member_doc(member), f"{cls.__name__}.{name} has no docstring"


class _Base:
    def shared(self, n: int = 1) -> int:
        """Defined on the base class."""
        return n

    def __enter__(self) -> _Base:
        """Enter."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Exit."""

    def _private(self) -> None:
        """Not public."""


class _Child(_Base):
    def own(self, x: int) -> int:
        """Defined on the class itself."""
        return x

    @property
    def size(self) -> int:
        """A property."""
        return 0

    @classmethod
    def make(cls, n: int) -> _Child:
        """A class method."""
        return cls()


def test_members_include_inherited_methods_and_the_context_manager() -> None:
    assert [name for name, _ in class_members(_Child)] == [
        "own",
        "size",
        "make",
        "shared",
        "__enter__",
        "__exit__",
    ]
    text = "\n".join(render_members(_Child))
    assert "#### method `_Child.own(x: 'int') -> 'int'`\n\nDefined on the class itself." in text
    assert "#### method `_Child.shared(n: 'int' = 1) -> 'int'`\n\nDefined on the base" in text
    assert "#### property `_Child.size: 'int'`\n\nA property." in text
    assert "#### classmethod `_Child.make(n: 'int') -> '_Child'`" in text
    assert "#### method `_Child.__exit__(*exc: 'object') -> 'None'`\n\nExit." in text
    assert "_private" not in text


def test_the_reference_lists_the_errors_stores_raise() -> None:
    from statekernel.adapters import errors

    text = render()
    assert "### Errors stores raise" in text
    table = text.split("### Errors stores raise")[1].split("\n### ")[0]
    for name in [*errors.__all__, "InvalidIdentifier"]:
        row = next((r for r in table.splitlines() if r.startswith(f"| `{name}` |")), None)
        assert row is not None, f"no row for {name}"
        cls = (
            getattr(errors, name, None)
            or importlib.import_module("statekernel.kernel").__dict__[name]
        )
        assert " ".join((inspect.getdoc(cls) or "").split()) in row
    assert "`TimeoutError`" in next(r for r in table.splitlines() if "`StoreBusy`" in r)
    errors_doc = " ".join((errors.__doc__ or "").split())
    assert "Unlike :func:`~statekernel.kernel.decide`, which never raises" in errors_doc


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
