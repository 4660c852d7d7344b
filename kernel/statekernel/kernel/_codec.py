"""Strict, type-directed conversion between plain data and attrs classes.

Payloads arrive from the network as plain data (a ``dict`` decoded from JSON, say), and
contexts travel to and from storage as plain data. Both directions go through here:

- :func:`structurer_for` compiles, once per type, a function that turns plain data into an
  instance of that type **strictly**: unknown keys, missing keys and wrong types are errors;
  a ``bool`` is not an ``int``; ``NaN`` and the infinities are not numbers.
- :func:`unstructure` turns any supported value back into JSON-compatible data.

Supported types: ``int``, ``float``, ``str``, ``bool``, ``None``, ``typing.Any``/``object``,
``Literal[...]``, unions (``X | None`` included), ``tuple[X, ...]``, ``tuple[X, Y]``,
``list[X]``, ``frozenset[X]``, ``dict[str, X]``, ``enum.Enum`` subclasses and nested attrs
classes. Compilation fails with :class:`UnsupportedType` for anything else, which the spec
reports as a build-time problem.
"""

from __future__ import annotations

import contextlib
import enum
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs

__all__ = [
    "PayloadError",
    "Structurer",
    "UnsupportedType",
    "structurer_for",
    "unstructure",
]

Structurer = Callable[[object], Any]
"""Turns plain data (or an already-typed value) into a value of one type, or raises
:class:`PayloadError`."""


class PayloadError(Exception):
    """Plain data does not fit a type. ``path`` names the field, ``reason`` says why."""

    def __init__(self, reason: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path

    def within(self, name: str) -> PayloadError:
        """The same error, one level further out (``name`` is the enclosing field)."""
        return PayloadError(self.reason, (name, *self.path))

    @property
    def field(self) -> str:
        """The dotted path of the offending field (``""`` for the value itself)."""
        return ".".join(self.path)


class UnsupportedType(TypeError):
    """A type that the codec cannot convert strictly."""


def _describe(value: object) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


_cache: dict[object, Structurer] = {}


def structurer_for(tp: object) -> Structurer:
    """Compile (and cache) the strict structurer for ``tp``."""
    key = _cache_key(tp)
    try:
        return _cache[key]
    except (KeyError, TypeError):
        pass
    fn = _compile(tp)
    with contextlib.suppress(TypeError):  # unhashable type expressions are not cached
        _cache[key] = fn
    return fn


def _cache_key(tp: object) -> object:
    """``tp`` as a cache key. Unions compare equal whatever the order of their members
    (``int | float == float | int``, and so do ``list[int | float]`` and ``list[float |
    int]``), but the first member that fits wins, so members are keyed in order."""
    origin = typing.get_origin(tp)
    if origin is None or origin is Literal:  # Literal[1] != Literal[True], unlike 1 and True
        return tp
    return (origin, tuple(_cache_key(a) for a in typing.get_args(tp)))


def _compile(tp: object) -> Structurer:
    if tp is Any or tp is object:
        return _identity
    if tp is None or tp is type(None):
        return _none
    if tp is bool:
        return _bool
    if tp is int:
        return _int
    if tp is float:
        return _float
    if tp is str:
        return _str
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum(tp)
    if isinstance(tp, type) and attrs.has(tp):
        return _attrs_class(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return _literal(args)
    if origin is typing.Union or origin is types.UnionType:
        return _union(args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _sequence(structurer_for(args[0]), tuple, "tuple")
        if args == ((),):  # tuple[()]
            return _fixed_tuple(())
        return _fixed_tuple(tuple(structurer_for(a) for a in args))
    if origin is list:
        return _sequence(structurer_for(args[0]) if args else _identity, list, "list")
    if origin is frozenset:
        return _sequence(structurer_for(args[0]) if args else _identity, frozenset, "frozenset")
    if origin in (dict, Mapping):
        if args and args[0] is not str:
            raise UnsupportedType(f"mapping keys must be str, not {args[0]!r}")
        return _mapping(structurer_for(args[1]) if args else _identity)
    raise UnsupportedType(f"cannot convert values of type {tp!r} strictly")


def _identity(value: object) -> object:
    """``Any`` (and unparametrised containers): any plain data, normalised to the form it
    reads back as from storage (tuples become lists, enums their values...), so that a value
    and its stored copy are equal."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is float:
        if math.isfinite(value):  # type: ignore[arg-type]
            return value
        raise PayloadError(f"expected a finite number, got {_describe(value)}")
    try:
        plain = unstructure(value)
    except UnsupportedType:
        raise PayloadError(f"expected plain data, got {_describe(value)}") from None
    _check_finite(plain)
    return plain


def _check_finite(plain: object) -> None:
    if type(plain) is float and not math.isfinite(plain):
        raise PayloadError(f"expected a finite number, got {_describe(plain)}")
    if type(plain) is list:
        for item in plain:
            _check_finite(item)
    elif type(plain) is dict:
        for item in plain.values():
            _check_finite(item)


def _none(value: object) -> None:
    if value is not None:
        raise PayloadError(f"expected null, got {_describe(value)}")
    return None


def _bool(value: object) -> bool:
    if value is True or value is False:
        return value
    raise PayloadError(f"expected bool, got {_describe(value)}")


def _int(value: object) -> int:
    if type(value) is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise PayloadError(f"expected int, got {_describe(value)}")


def _float(value: object) -> float:
    if type(value) is float or (isinstance(value, int | float) and not isinstance(value, bool)):
        try:
            f = float(value)
        except OverflowError:  # an int beyond the float range
            f = math.inf
        if math.isfinite(f):
            return f
        raise PayloadError(f"expected a finite number, got {_describe(value)}")
    raise PayloadError(f"expected float, got {_describe(value)}")


def _str(value: object) -> str:
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    raise PayloadError(f"expected str, got {_describe(value)}")


def _enum(cls: type[enum.Enum]) -> Structurer:
    by_value = {m.value: m for m in cls}

    def structure(value: object) -> enum.Enum:
        if isinstance(value, cls):
            return value
        for v, member in by_value.items():
            if type(v) is type(value) and v == value:
                return member
        allowed = ", ".join(repr(v) for v in by_value)
        raise PayloadError(f"expected one of {allowed}, got {_describe(value)}")

    return structure


def _literal(choices: tuple[object, ...]) -> Structurer:
    def structure(value: object) -> object:
        for c in choices:
            if type(c) is type(value) and c == value:
                return c
        allowed = ", ".join(repr(c) for c in choices)
        raise PayloadError(f"expected one of {allowed}, got {_describe(value)}")

    return structure


def _union(args: tuple[object, ...]) -> Structurer:
    optional = type(None) in args
    rest = [a for a in args if a is not type(None)]
    if len(rest) == 1:
        inner = structurer_for(rest[0])

        def structure_optional(value: object) -> object:
            if value is None:
                return None
            return inner(value)

        return structure_optional
    members = [structurer_for(a) for a in rest]
    names = " | ".join(getattr(a, "__name__", repr(a)) for a in args)

    def structure(value: object) -> object:
        if value is None and optional:
            return None
        for member in members:
            try:
                return member(value)
            except PayloadError:
                continue
        raise PayloadError(f"expected {names}, got {_describe(value)}")

    return structure


def _sequence(item: Structurer, build: Callable[[Any], Any], name: str) -> Structurer:
    accepts: tuple[type, ...] = (list, tuple)
    if build is frozenset:
        accepts = (list, tuple, set, frozenset)

    def structure(value: object) -> object:
        if not isinstance(value, accepts):
            raise PayloadError(f"expected {name}, got {_describe(value)}")
        out = []
        items: Iterable[object] = value  # type: ignore[assignment]
        for i, v in enumerate(items):
            try:
                out.append(item(v))
            except PayloadError as exc:
                raise exc.within(str(i)) from None
        try:
            return build(out)
        except TypeError:  # frozenset items must be hashable (a list, a dict...)
            raise PayloadError(f"expected hashable items, got {_describe(value)}") from None

    return structure


def _fixed_tuple(items: tuple[Structurer, ...]) -> Structurer:
    def structure(value: object) -> tuple[object, ...]:
        if not isinstance(value, list | tuple):
            raise PayloadError(f"expected tuple, got {_describe(value)}")
        if len(value) != len(items):
            raise PayloadError(f"expected {len(items)} items, got {len(value)}")
        out = []
        for i, (s, v) in enumerate(zip(items, value, strict=True)):
            try:
                out.append(s(v))
            except PayloadError as exc:
                raise exc.within(str(i)) from None
        return tuple(out)

    return structure


def _mapping(item: Structurer) -> Structurer:
    def structure(value: object) -> dict[str, object]:
        if not isinstance(value, Mapping):
            raise PayloadError(f"expected an object, got {_describe(value)}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise PayloadError(f"keys must be strings, got {_describe(k)}")
            try:
                out[k] = item(v)
            except PayloadError as exc:
                raise exc.within(k) from None
        return out

    return structure


_FAST_CHECKS: dict[object, str] = {
    int: "type({v}) is int",
    str: "type({v}) is str",
    bool: "{v} is True or {v} is False",
}
"""Inline checks that let the common case skip a function call (float has none: NaN)."""


def _attrs_class(cls: type) -> Structurer:
    # A trampoline stands in the cache while the fields compile, so that a class whose fields
    # refer back to it (directly or not) compiles too.
    compiled: list[Structurer] = []

    def trampoline(value: object) -> object:
        return compiled[0](value)

    _cache[cls] = trampoline
    try:
        fn = _generate_attrs_structurer(cls)
    except BaseException:
        del _cache[cls]
        raise
    compiled.append(fn)
    _cache[cls] = fn
    return fn


def _generate_attrs_structurer(cls: type) -> Structurer:
    """Generate straight-line code for one attrs class: no loops over fields, no kwargs dict
    when every field is required, inline checks for the common primitive types."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:
        raise UnsupportedType(
            f"cannot resolve the field types of {cls.__qualname__}: {exc}"
        ) from exc
    fields: list[tuple[str, str, object, bool]] = []  # (alias, attribute name, type, required)
    for a in attrs.fields(cls):
        if not a.init:
            continue
        tp = hints.get(a.name, a.type)
        if tp is None:
            raise UnsupportedType(f"field {cls.__qualname__}.{a.name} has no type annotation")
        fields.append((a.alias, a.name, tp, a.default is attrs.NOTHING))
    namespace: dict[str, Any] = {
        "cls": cls,
        "PayloadError": PayloadError,
        "known": frozenset(alias for alias, _, _, _ in fields),
    }
    for i, (alias, _, tp, _) in enumerate(fields):
        try:
            namespace[f"s{i}"] = structurer_for(tp)
        except UnsupportedType as exc:
            raise UnsupportedType(f"{cls.__qualname__}.{alias}: {exc}") from exc
    field_list = ", ".join(alias for alias, _, _, _ in fields) or "(none)"
    attr_names = [(alias, name) for alias, name, _, _ in fields]

    def coerce(value: object) -> Mapping[Any, object]:
        if isinstance(value, cls):
            return {alias: getattr(value, name) for alias, name in attr_names}
        if isinstance(value, Mapping):
            return value
        raise PayloadError(f"expected an object with fields {field_list}, got {_describe(value)}")

    def unknown(data: Mapping[Any, object]) -> None:
        extra = sorted(str(k) for k in data.keys() - namespace["known"])
        raise PayloadError("unknown field", (extra[0],))

    namespace["coerce"] = coerce
    namespace["unknown"] = unknown
    all_required = all(required for _, _, _, required in fields)
    lines = [
        "def structure(value):",
        "    data = value if type(value) is dict else coerce(value)",
        "    for k in data:",
        "        if k not in known:",
        "            unknown(data)",
    ]
    if not all_required:
        lines.append("    kw = {}")
    for i, (alias, _, tp, required) in enumerate(fields):
        key = repr(alias)
        v = f"v{i}"
        fast = _FAST_CHECKS.get(tp)
        body: list[str] = []
        if fast is not None:
            body += [
                f"if not ({fast.format(v=v)}):",
                "    try:",
                f"        {v} = s{i}({v})",
                "    except PayloadError as exc:",
                f"        raise exc.within({key}) from None",
            ]
        else:
            body += [
                "try:",
                f"    {v} = s{i}({v})",
                "except PayloadError as exc:",
                f"    raise exc.within({key}) from None",
            ]
        if required:
            lines += [
                "    try:",
                f"        {v} = data[{key}]",
                "    except KeyError:",
                f"        raise PayloadError('missing', ({key},)) from None",
            ]
            lines += ["    " + b for b in body]
            if not all_required:
                lines.append(f"    kw[{key}] = {v}")
        else:
            lines.append(f"    if {key} in data:")
            lines.append(f"        {v} = data[{key}]")
            lines += ["        " + b for b in body]
            lines.append(f"        kw[{key}] = {v}")
    if all_required and _takes_fields_in_order(cls, [alias for alias, _, _, _ in fields]):
        # Positional arguments: the same call as the keyword one below, without the kwargs.
        lines.append(f"    return cls({', '.join(f'v{i}' for i in range(len(fields)))})")
    elif all_required:
        args = ", ".join(f"{alias}=v{i}" for i, (alias, _, _, _) in enumerate(fields))
        lines.append(f"    return cls({args})")
    else:
        lines.append("    return cls(**kw)")
    exec("\n".join(lines), namespace)
    fn: Structurer = namespace["structure"]
    return fn


def _takes_fields_in_order(cls: type, aliases: list[str]) -> bool:
    """Whether ``cls(*values)`` is the same call as ``cls(**dict(zip(aliases, values)))``: a
    plain class (no metaclass, no ``__new__`` of its own) whose ``__init__`` takes exactly
    ``aliases``, in that order, as ordinary parameters."""
    if type(cls) is not type or any("__new__" in vars(base) for base in cls.__mro__[:-1]):
        return False
    try:
        params = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return False
    ordinary = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return [p.name for p in params] == aliases and all(p.kind is ordinary for p in params)


_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})
_unstructurers: dict[type, Callable[[Any], Any]] = {}


def unstructure(value: object) -> Any:
    """Turn a supported value into JSON-compatible data (dicts, lists, str, int, float, bool,
    None). attrs instances become dicts keyed by their ``__init__`` argument names; tuples
    and lists become lists, sets sorted lists, enums their values."""
    t = type(value)
    if t in _PLAIN_TYPES:
        return value
    fn = _unstructurers.get(t)
    if fn is None:
        fn = _unstructurer_for(t)
    return fn(value)


def _unstructurer_for(t: type) -> Callable[[Any], Any]:
    """Pick (and cache, per runtime type) how to unstructure values of type ``t``."""
    fn: Callable[[Any], Any]
    if attrs.has(t):
        names = [(a.alias, a.name) for a in attrs.fields(t) if a.init]
        body = ", ".join(f"{alias!r}: u(v.{name})" for alias, name in names)
        namespace: dict[str, Any] = {"u": unstructure}
        exec(f"def unstructure_attrs(v):\n    return {{{body}}}", namespace)
        fn = namespace["unstructure_attrs"]
    elif issubclass(t, enum.Enum):
        fn = _unstructure_enum
    elif issubclass(t, Mapping):
        fn = _unstructure_mapping
    elif issubclass(t, frozenset | set):
        fn = _unstructure_set
    elif issubclass(t, list | tuple):
        fn = _unstructure_sequence
    elif issubclass(t, bool):
        fn = bool
    elif issubclass(t, int):
        fn = int
    elif issubclass(t, float):
        fn = float
    elif issubclass(t, str):
        fn = str
    else:
        raise UnsupportedType(f"cannot turn {t.__qualname__} into plain data")
    _unstructurers[t] = fn
    return fn


def _unstructure_enum(value: enum.Enum) -> Any:
    return unstructure(value.value)


def _unstructure_mapping(value: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): unstructure(v) for k, v in value.items()}


def _unstructure_set(value: Iterable[Any]) -> list[Any]:
    items = [unstructure(v) for v in value]
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=repr)


def _unstructure_sequence(value: Iterable[Any]) -> list[Any]:
    return [unstructure(v) for v in value]
