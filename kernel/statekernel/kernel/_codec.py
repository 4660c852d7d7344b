"""Strict, type-directed conversion between plain data and attrs classes.

Payloads arrive from the network as plain data (a ``dict`` decoded from JSON, say), and
contexts travel to and from storage as plain data. Both directions go through here:

- :func:`structurer_for` compiles, once per type, a function that turns plain data into an
  instance of that type **strictly**: unknown keys, missing keys and wrong types are errors;
  a ``bool`` is not an ``int``; ``NaN`` and the infinities are not numbers.
- :func:`unstructure` turns any supported value back into JSON-compatible data.
- :func:`checker_for` compiles, once per type, a function that says whether a value reads
  back equal from its plain form, without building that plain form when it need not.

Supported types: ``int``, ``float``, ``str``, ``bool``, ``None``, ``typing.Any``/``object``,
``Literal[...]``, unions (``X | None`` included), ``tuple[X, ...]``, ``tuple[X, Y]``,
``list[X]``, ``frozenset[X]``, ``dict[str, X]``, ``enum.Enum`` subclasses and nested attrs
classes. Compilation fails with :class:`UnsupportedType` for anything else, which the spec
reports as a build-time problem. Which types those are is decided in one place,
``_types.describe``: both compilers here are folds over its descriptions.
"""

from __future__ import annotations

import contextlib
import enum
import inspect
import math
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from ._errors import PayloadError, UnsupportedType
from ._types import (
    AnyValue,
    AttrsClass,
    DictOf,
    EnumOf,
    FixedTuple,
    LiteralOf,
    Scalar,
    SequenceOf,
    TypeDescription,
    UnionOf,
    describe,
)

__all__ = [
    "Checker",
    "PayloadError",
    "Structurer",
    "UnsupportedType",
    "checker_for",
    "structurer_for",
    "unstructure",
]

Structurer = Callable[[object], Any]
"""Turns plain data (or an already-typed value) into a value of one type, or raises
:class:`PayloadError`."""


def _describe(value: object) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


_cache: dict[object, Structurer] = {}


def structurer_for(tp: object) -> Structurer:
    """Compile (and cache) the strict structurer for ``tp``."""
    return _structurer(describe(tp))


def _structurer(described: TypeDescription) -> Structurer:
    try:
        return _cache[described.key]
    except (KeyError, TypeError):
        pass
    fn = _compile(described)
    with contextlib.suppress(TypeError):  # unhashable type expressions are not cached
        _cache[described.key] = fn
    return fn


def _compile(described: TypeDescription) -> Structurer:
    match described:
        case AnyValue():
            return _identity
        case Scalar():
            return _SCALAR_STRUCTURERS[described.tp]
        case EnumOf():
            return _enum(described.tp)
        case LiteralOf():
            return _literal(described.choices)
        case UnionOf():
            return _union(described)
        case FixedTuple():
            return _fixed_tuple(tuple(_structurer(i) for i in described.items))
        case SequenceOf():
            origin = described.origin
            return _sequence(_structurer(described.item), origin, origin.__name__)
        case DictOf():
            return _mapping(_structurer(described.value))
        case AttrsClass():
            return _attrs_class(described)
    typing.assert_never(described)


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


_SCALAR_STRUCTURERS: dict[type, Structurer] = {
    type(None): _none,
    bool: _bool,
    int: _int,
    float: _float,
    str: _str,
}


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


def _union(described: UnionOf) -> Structurer:
    optional = described.optional
    rest = described.rest
    if len(rest) == 1:
        inner = _structurer(rest[0])

        def structure_optional(value: object) -> object:
            if value is None:
                return None
            return inner(value)

        return structure_optional
    members = [_structurer(a) for a in rest]
    names = " | ".join(getattr(m.tp, "__name__", repr(m.tp)) for m in described.members)

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


_FAST_CHECKS: dict[type, str] = {
    int: "type({v}) is int",
    str: "type({v}) is str",
    bool: "{v} is True or {v} is False",
}
"""Inline checks that let the common case skip a function call (float has none: NaN)."""


def _attrs_class(described: AttrsClass) -> Structurer:
    # A trampoline stands in the cache while the fields compile, so that a class whose fields
    # refer back to it (directly or not) compiles too.
    compiled: list[Structurer] = []
    cls = described.tp

    def trampoline(value: object) -> object:
        return compiled[0](value)

    _cache[cls] = trampoline
    try:
        fn = _generate_attrs_structurer(described)
    except BaseException:
        del _cache[cls]
        raise
    compiled.append(fn)
    _cache[cls] = fn
    return fn


def _generate_attrs_structurer(described: AttrsClass) -> Structurer:
    """Generate straight-line code for one attrs class: no loops over fields, no kwargs dict
    when every field is required, inline checks for the common primitive types."""
    cls = described.tp
    fields = described.fields
    aliases = [f.alias for f in fields]
    namespace: dict[str, Any] = {
        "cls": cls,
        "PayloadError": PayloadError,
        "known": frozenset(aliases),
    }
    for i, f in enumerate(fields):
        namespace[f"s{i}"] = _structurer(f.type)
    field_list = ", ".join(aliases) or "(none)"
    attr_names = [(f.alias, f.name) for f in fields]

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
    all_required = all(f.required for f in fields)
    lines = [
        "def structure(value):",
        "    data = value if type(value) is dict else coerce(value)",
        "    for k in data:",
        "        if k not in known:",
        "            unknown(data)",
    ]
    if not all_required:
        lines.append("    kw = {}")
    for i, f in enumerate(fields):
        key = repr(f.alias)
        v = f"v{i}"
        fast = _FAST_CHECKS.get(f.type.tp) if isinstance(f.type, Scalar) else None
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
        if f.required:
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
    if all_required and _takes_fields_in_order(cls, aliases):
        # Positional arguments: the same call as the keyword one below, without the kwargs.
        lines.append(f"    return cls({', '.join(f'v{i}' for i in range(len(fields)))})")
    elif all_required:
        args = ", ".join(f"{alias}=v{i}" for i, alias in enumerate(aliases))
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


# --------------------------------------------------------------------------------------------
# Checkers: does a value read back equal from its plain form?

Checker = Callable[[object], None]
"""Returns ``None`` when a value reads back equal from its plain form (``structure(unstructure(
value)) == value``), raises :class:`PayloadError` naming the field otherwise."""

_Pred = Callable[[object], bool]

_INF = math.inf
_NINF = -math.inf

_KIND_OF: dict[type, str] = {
    type(None): "none",
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    list: "list",
    dict: "dict",
}
"""The kind of each plain type, which is what a union's members are told apart by."""

_ALL_KINDS = frozenset(_KIND_OF.values())


class _Node:
    """What the checker knows about one type.

    ``pred`` is the fast path: ``True`` only for values that certainly read back equal (exact
    types, finite floats...), without allocating. ``check`` is exact: the fast path, then the
    round trip itself for whatever the fast path cannot vouch for. ``accepts`` is the kinds of
    plain data the structurer takes, ``fast`` the kinds that values passing ``pred`` turn into;
    unions use both to know when the first member that takes a value is the one it fits."""

    __slots__ = ("accepts", "check", "fast", "pred")

    def __init__(
        self, pred: _Pred, check: Checker, accepts: frozenset[str], fast: frozenset[str]
    ) -> None:
        self.pred = pred
        self.check = check
        self.accepts = accepts
        self.fast = fast


_nodes: dict[object, _Node] = {}


class _NotPlain(PayloadError):
    """A value that has no plain form at all."""


class _Unequal(PayloadError):
    """A value that has a plain form, which structures into something else."""


def _rank(exc: PayloadError) -> int:
    """How the round trip would report it: a value with no plain form anywhere first (it
    fails while turning the whole value into plain data), then a part that does not
    structure, then a copy that is not equal."""
    return 2 if isinstance(exc, _NotPlain) else 0 if isinstance(exc, _Unequal) else 1


def _first(found: PayloadError | None, exc: PayloadError) -> PayloadError:
    """Of two failures met in field order, the one the round trip would report."""
    return found if found is not None and _rank(found) >= _rank(exc) else exc


_Locate = Callable[[object, type[PayloadError]], PayloadError | None]


def checker_for(tp: object) -> Checker:
    """Compile (and cache) the checker for ``tp``: a function that returns ``None`` when a
    value reads back equal from its plain form, ``structurer_for(tp)(unstructure(value)) ==
    value``, and raises :class:`PayloadError` naming the offending field otherwise.

    It answers exactly what that round trip answers, but the common case (every value of its
    field's exact type: ``int`` not ``bool``, finite ``float``, an attrs instance of the
    declared class, a ``tuple`` for a tuple field, plain data in an ``Any`` field...) is
    checked by generated code without building the plain form or a copy. Only a value of
    another type (an ``int`` in a ``float`` field, a subclass, a ``tuple`` in an ``Any``
    field) takes the round trip. Raises :class:`UnsupportedType` like :func:`structurer_for`.

    Equal means ``==``, as attrs compares fields: an ``int`` in a ``float`` field passes when
    the float it comes back as is equal to it (``1`` does, ``2**53 + 1`` does not), an
    ``IntEnum`` member in an ``int`` field passes, and so does a ``set`` in a ``frozenset``
    field. An instance of a subclass of an attrs class does not: it comes back as the
    declared class, and attrs' ``__eq__`` compares classes.
    """
    return _node(describe(tp)).check


def _node(described: TypeDescription) -> _Node:
    try:
        return _nodes[described.key]
    except (KeyError, TypeError):
        pass
    node = _compile_node(described)
    with contextlib.suppress(TypeError):
        _nodes[described.key] = node
    return node


def _round_trip(structure: Structurer, locate: _Locate | None = None) -> Checker:
    """The exact check: structure the plain form and compare. ``locate`` looks for the first
    part of a failed value that fails the same way, to name it rather than the whole value."""

    def check(value: object) -> None:
        try:
            plain = unstructure(value)
        except UnsupportedType as exc:
            found = locate(value, _NotPlain) if locate is not None else None
            raise found or _NotPlain(f"it holds a value that is not plain data: {exc}") from None
        back = structure(plain)
        if back == value:
            return
        found = locate(value, _Unequal) if locate is not None else None
        raise found or _Unequal(
            f"{_describe(value)} does not read back equal from plain data "
            f"(it would read back as {_describe(back)})"
        )

    return check


def _with_fast_path(pred: _Pred, slow: Checker) -> Checker:
    def check(value: object) -> None:
        if pred(value):
            return
        slow(value)

    return check


def _locate_items(item: Checker) -> _Locate:
    def locate(value: object, kind: type[PayloadError]) -> PayloadError | None:
        if type(value) is list or type(value) is tuple:
            for i, v in enumerate(value):
                try:
                    item(v)
                except PayloadError as exc:
                    if type(exc) is kind:
                        return exc.within(str(i))
        return None

    return locate


def _locate_values(item: Checker) -> _Locate:
    def locate(value: object, kind: type[PayloadError]) -> PayloadError | None:
        if type(value) is dict:
            for k, v in value.items():
                if type(k) is str:
                    try:
                        item(v)
                    except PayloadError as exc:
                        if type(exc) is kind:
                            return exc.within(k)
        return None

    return locate


def _leaf(structure: Structurer, pred: _Pred, accepts: set[str], fast: set[str]) -> _Node:
    slow = _round_trip(structure)
    return _Node(pred, _with_fast_path(pred, slow), frozenset(accepts), frozenset(fast))


def _is_none(value: object) -> bool:
    return value is None


def _is_bool(value: object) -> bool:
    return value is True or value is False


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_float(value: object) -> bool:
    return type(value) is float and _NINF < value < _INF


def _is_str(value: object) -> bool:
    return type(value) is str


def _is_plain(value: object) -> bool:
    """Plain data that an ``Any`` field gives back as it is: str, int, finite float, bool,
    None, and lists and str-keyed dicts of those."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return True
    if t is float:
        return _NINF < value < _INF  # type: ignore[operator]
    if t is list:
        for v in value:  # type: ignore[attr-defined]  # noqa: SIM110 (no generator)
            if not _is_plain(v):
                return False
        return True
    if t is dict:
        for k, v in value.items():  # type: ignore[attr-defined]  # noqa: SIM110
            if type(k) is not str or not _is_plain(v):
                return False
        return True
    return False


_SCALAR_NODES: dict[type, tuple[_Pred, set[str], set[str]]] = {
    type(None): (_is_none, {"none"}, {"none"}),
    bool: (_is_bool, {"bool"}, {"bool"}),
    int: (_is_int, {"int"}, {"int"}),
    float: (_is_float, {"int", "float"}, {"float"}),
    str: (_is_str, {"str"}, {"str"}),
}
"""Per scalar type: the fast path, the kinds it accepts and the kinds its fast path vouches
for."""


def _compile_node(described: TypeDescription) -> _Node:
    structure = _structurer(described)
    match described:
        case AnyValue():
            locate_any: list[Checker] = []

            def locate(value: object, kind: type[PayloadError]) -> PayloadError | None:
                return _locate_items(locate_any[0])(value, kind) or _locate_values(locate_any[0])(
                    value, kind
                )

            check = _with_fast_path(_is_plain, _round_trip(structure, locate))
            locate_any.append(check)
            return _Node(_is_plain, check, _ALL_KINDS, _ALL_KINDS)
        case Scalar():
            return _leaf(structure, *_SCALAR_NODES[described.tp])
        case EnumOf():
            return _enum_node(described.tp, structure)
        case LiteralOf():
            return _literal_node(described.choices, structure)
        case UnionOf():
            return _union_node(described, structure)
        case FixedTuple():
            return _fixed_tuple_node(tuple(_node(i) for i in described.items), structure)
        case SequenceOf():
            return _sequence_node(described.origin, _node(described.item), structure)
        case DictOf():
            return _mapping_node(_node(described.value), structure)
        case AttrsClass():
            return _attrs_node(described)
    typing.assert_never(described)


def _kinds(values: Iterable[object]) -> set[str]:
    return {_KIND_OF[type(v)] for v in values if type(v) in _KIND_OF}


def _enum_node(cls: type[enum.Enum], structure: Structurer) -> _Node:
    # Which members read back as themselves is a fixed fact about the enum (a member whose
    # value is a tuple, say, comes back as a list and matches no member): work it out once.
    good = []
    for member in cls:
        try:
            if structure(unstructure(member)) == member:
                good.append(member)
        except (PayloadError, UnsupportedType):
            pass
    members = frozenset(good)
    if len(good) == len(cls):

        def pred(value: object) -> bool:
            return type(value) is cls

    else:

        def pred(value: object) -> bool:
            return type(value) is cls and value in members

    accepts = _kinds(m.value for m in cls)
    fast = {_KIND_OF[type(unstructure(m))] for m in good}
    return _Node(
        pred, _with_fast_path(pred, _round_trip(structure)), frozenset(accepts), frozenset(fast)
    )


def _literal_node(choices: tuple[object, ...], structure: Structurer) -> _Node:
    # A plain choice comes back as itself; a float choice (NaN is never equal) or an enum
    # member choice (it comes back as its value, which matches no choice) takes the round trip.
    by_type: dict[type, set[object]] = {}
    for c in choices:
        if type(c) in (str, int, bool, type(None)):
            by_type.setdefault(type(c), set()).add(c)
    sets = {t: frozenset(cs) for t, cs in by_type.items()}

    def pred(value: object) -> bool:
        allowed = sets.get(type(value))
        return allowed is not None and value in allowed

    return _leaf(structure, pred, _kinds(choices), {_KIND_OF[t] for t in sets})


def _union_node(described: UnionOf, structure: Structurer) -> _Node:
    optional = described.optional
    rest = described.rest
    nodes = [_node(a) for a in rest]
    if optional and len(rest) == 1:
        # the structurer takes None first and hands anything else to the one member
        inner = nodes[0]
        inner_pred = inner.pred
        inner_check = inner.check

        def pred_optional(value: object) -> bool:
            return value is None or inner_pred(value)

        def check_optional(value: object) -> None:
            if value is not None:
                inner_check(value)

        return _Node(pred_optional, check_optional, inner.accepts | {"none"}, inner.fast | {"none"})
    # The structurer tries the members in order and keeps the first that takes the plain
    # form, so a member's fast path vouches for a value only if no earlier member could take
    # what that value turns into (``float | int`` holding an int reads back as a float).
    handled_first = {"none"} if optional else set()
    terms = ["value is None"] if optional else []
    namespace: dict[str, Any] = {"_INF": _INF, "_NINF": _NINF}
    earlier: set[str] = set()
    fast: set[str] = set(handled_first)
    for i, (a, n) in enumerate(zip(rest, nodes, strict=True)):
        kinds = n.fast - handled_first
        if not kinds & earlier:
            inline = _inline_pred(a)
            namespace[f"p{i}"] = n.pred
            terms.append(inline.format(x="value") if inline is not None else f"p{i}(value)")
            fast |= kinds
        earlier |= n.accepts
    # one expression, no loop over the members: nothing to allocate
    exec(f"def pred(value):\n    return {' or '.join(terms) or 'False'}", namespace)
    pred: _Pred = namespace["pred"]

    accepts = set(earlier) | handled_first
    return _Node(
        pred, _with_fast_path(pred, _round_trip(structure)), frozenset(accepts), frozenset(fast)
    )


def _sequence_node(exact: type, item: _Node, structure: Structurer) -> _Node:
    item_pred = item.pred

    def pred(value: object) -> bool:
        if type(value) is not exact:
            return False
        for v in value:  # type: ignore[attr-defined]  # noqa: SIM110 (no generator)
            if not item_pred(v):
                return False
        return True

    # a frozenset is compared as a set, not item by item: its round trip alone decides
    locate = None if exact is frozenset else _locate_items(item.check)
    check = _with_fast_path(pred, _round_trip(structure, locate))
    return _Node(pred, check, frozenset({"list"}), frozenset({"list"}))


def _fixed_tuple_node(items: tuple[_Node, ...], structure: Structurer) -> _Node:
    preds = tuple(n.pred for n in items)
    checks = tuple(n.check for n in items)
    size = len(items)

    def pred(value: object) -> bool:
        if type(value) is not tuple or len(value) != size:
            return False
        for p, v in zip(preds, value, strict=True):  # noqa: SIM110 (no generator)
            if not p(v):
                return False
        return True

    def locate(value: object, kind: type[PayloadError]) -> PayloadError | None:
        if type(value) is tuple and len(value) == size:
            for i, (c, v) in enumerate(zip(checks, value, strict=True)):
                try:
                    c(v)
                except PayloadError as exc:
                    if type(exc) is kind:
                        return exc.within(str(i))
        return None

    check = _with_fast_path(pred, _round_trip(structure, locate))
    return _Node(pred, check, frozenset({"list"}), frozenset({"list"}))


def _mapping_node(item: _Node, structure: Structurer) -> _Node:
    item_pred = item.pred

    def pred(value: object) -> bool:
        if type(value) is not dict:
            return False
        for k, v in value.items():  # noqa: SIM110 (no generator)
            if type(k) is not str or not item_pred(v):
                return False
        return True

    check = _with_fast_path(pred, _round_trip(structure, _locate_values(item.check)))
    return _Node(pred, check, frozenset({"dict"}), frozenset({"dict"}))


_INLINE_PREDS: dict[type, str] = {
    int: "type({x}) is int",
    str: "type({x}) is str",
    bool: "({x} is True or {x} is False)",
    type(None): "{x} is None",
    float: "(type({x}) is float and _NINF < {x} < _INF)",
}
"""Fast paths inlined into the generated code of an attrs class, to spare a call."""


def _inline_pred(described: TypeDescription) -> str | None:
    if isinstance(described, Scalar):
        return _INLINE_PREDS[described.tp]
    if isinstance(described, UnionOf) and len(described.members) == 2:
        first, second = described.members
        if isinstance(second, Scalar) and second.tp is type(None) and isinstance(first, Scalar):
            return f"({{x}} is None or {_INLINE_PREDS[first.tp]})"
    return None


def _attrs_node(described: AttrsClass) -> _Node:
    # Stand-ins hold the cache while the fields compile, for classes that refer to themselves.
    compiled: list[_Node] = []
    cls = described.tp

    def pred_trampoline(value: object) -> bool:
        return compiled[0].pred(value)

    def check_trampoline(value: object) -> None:
        compiled[0].check(value)

    dicts = frozenset({"dict"})
    _nodes[cls] = _Node(pred_trampoline, check_trampoline, dicts, dicts)
    try:
        node = _generate_attrs_checker(described)
    except BaseException:
        del _nodes[cls]
        raise
    compiled.append(node)
    _nodes[cls] = node
    return node


def _compares_init_fields(cls: type) -> bool:
    """Whether the round trip of an instance of exactly ``cls`` is, field by field, the round
    trip of each ``__init__`` argument: attrs' own ``__init__`` and ``__eq__``, no hooks, no
    converters or validators (the structurer calls ``cls(...)`` again), and ``__eq__``
    comparing exactly the fields ``__init__`` takes."""
    if type(cls) is not type or any("__new__" in vars(base) for base in cls.__mro__[:-1]):
        return False
    if hasattr(cls, "__attrs_pre_init__") or hasattr(cls, "__attrs_post_init__"):
        return False
    owner = next(base for base in cls.__mro__ if "__attrs_attrs__" in vars(base))
    for name in ("__init__", "__eq__", "__ne__"):
        fn = vars(owner).get(name)
        if fn is None or getattr(cls, name) is not fn:
            return False
    for name in ("__init__", "__eq__"):
        code = getattr(vars(owner)[name], "__code__", None)
        if code is None or not code.co_filename.startswith("<attrs generated"):
            return False
    for a in attrs.fields(cls):
        if a.converter is not None or a.validator is not None:
            return False
        if a.eq != a.init or (a.eq and a.eq_key is not None):
            return False
    return True


def _generate_attrs_checker(described: AttrsClass) -> _Node:
    cls = described.tp
    structure = _structurer(described)
    whole = _round_trip(structure)
    dicts = frozenset({"dict"})
    if not _compares_init_fields(cls):

        def never(value: object) -> bool:
            return False

        return _Node(never, whole, dicts, frozenset())
    namespace: dict[str, Any] = {
        "cls": cls,
        "whole": whole,
        "PayloadError": PayloadError,
        "first": _first,
        "_INF": _INF,
        "_NINF": _NINF,
    }
    pred_lines = ["def pred(value):", "    if type(value) is not cls:", "        return False"]
    check_lines = [
        "def check(value):",
        "    if type(value) is not cls:",
        "        return whole(value)",
        "    found = None",
    ]
    for i, f in enumerate(described.fields):
        node = _node(f.type)
        namespace[f"p{i}"] = node.pred
        namespace[f"c{i}"] = node.check
        inline = _inline_pred(f.type)
        cond = inline.format(x="v") if inline is not None else f"p{i}(v)"
        pred_lines += [f"    v = value.{f.name}", f"    if not {cond}:", "        return False"]
        check_lines += [
            f"    v = value.{f.name}",
            f"    if not {cond}:",
            "        try:",
            f"            c{i}(v)",
            "        except PayloadError as exc:",
            f"            found = first(found, exc.within({f.alias!r}))",
        ]
    pred_lines.append("    return True")
    check_lines += ["    if found is not None:", "        raise found"]
    exec("\n".join(pred_lines) + "\n" + "\n".join(check_lines), namespace)
    return _Node(namespace["pred"], namespace["check"], dicts, dicts)
