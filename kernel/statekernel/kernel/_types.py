"""The types the codec supports, each read once into a description.

:func:`describe` reads a type annotation into a small tree, one class per kind of supported
type. Everything in the kernel that walks a type is a fold over that tree: the strict
structurer and the checker (``_codec``), the payload samples (:func:`samples`, here) and the
fuzzer's payload generator (``_fuzz``). So the set of supported types, the one rule that tells
a union, and the refusal of everything else each live here: :class:`UnsupportedType` is
raised by :func:`describe` alone, in the same words whichever consumer asked.

Supported: ``int``, ``float``, ``str``, ``bool``, ``None``, ``typing.Any``/``object``,
``Literal[...]``, unions (``X | Y`` and ``typing.Union``/``Optional`` alike),
``tuple[X, ...]``, ``tuple[X, Y]``, ``tuple[()]``, ``list[X]``, ``frozenset[X]``,
``dict[str, X]``/``Mapping[str, X]``, ``enum.Enum`` subclasses and attrs classes, whose
fields may refer back to the class.

:func:`samples` is the one sample set: a few values of each type worth trying (zero and the
numbers either side of it, the empty string, ``None``, every member of an enum, empty
containers...). The explorer sends them (:func:`sample_payloads`); the fuzzer sends them first
and then goes wider, drawing its random values from tables that start with them.
"""

from __future__ import annotations

import contextlib
import enum
import types
import typing
from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs

from ._errors import UnsupportedType

__all__ = [
    "MAX_SAMPLES",
    "SCALAR_SAMPLES",
    "AnyValue",
    "AttrsClass",
    "DictOf",
    "EnumOf",
    "Field",
    "FixedTuple",
    "LiteralOf",
    "Scalar",
    "SequenceOf",
    "TypeDescription",
    "UnionOf",
    "cache_key",
    "describe",
    "sample_payloads",
    "samples",
]


@attrs.frozen(eq=False)
class AnyValue:
    """``typing.Any`` or ``object``: any plain data."""

    tp: object
    key: object


@attrs.frozen(eq=False)
class Scalar:
    """``None``, ``bool``, ``int``, ``float`` or ``str``: ``tp`` is the class (``NoneType``
    for ``None``)."""

    tp: type
    key: object


@attrs.frozen(eq=False)
class EnumOf:
    """An ``enum.Enum`` subclass, ``tp``."""

    tp: type[enum.Enum]
    key: object


@attrs.frozen(eq=False)
class LiteralOf:
    """``Literal[...]``: exactly one of ``choices``, of the same type."""

    tp: object
    key: object
    choices: tuple[object, ...]


@attrs.frozen(eq=False)
class UnionOf:
    """A union: ``members`` in the order written (``None`` as the ``NoneType`` scalar);
    ``rest`` the members other than ``None``, and ``optional`` whether ``None`` is one."""

    tp: object
    key: object
    members: tuple[TypeDescription, ...]
    rest: tuple[TypeDescription, ...]
    optional: bool


@attrs.frozen(eq=False)
class FixedTuple:
    """``tuple[X, Y]`` (``tuple[()]`` has no items)."""

    tp: object
    key: object
    items: tuple[TypeDescription, ...]


@attrs.frozen(eq=False)
class SequenceOf:
    """``tuple[X, ...]``, ``list[X]`` or ``frozenset[X]``: ``origin`` is the container."""

    tp: object
    key: object
    origin: type
    item: TypeDescription


@attrs.frozen(eq=False)
class DictOf:
    """``dict[str, X]`` or ``Mapping[str, X]``."""

    tp: object
    key: object
    value: TypeDescription


@attrs.frozen
class Field:
    """One ``__init__`` field of an attrs class: its ``__init__`` argument name (``alias``,
    the key in plain data), attribute ``name``, ``type`` and whether it has no default."""

    alias: str
    name: str
    type: TypeDescription
    required: bool


@attrs.define(eq=False)
class AttrsClass:
    """An attrs class and its ``__init__`` fields, in order. ``fields`` is filled in once,
    right after the description is made, so that a field can refer back to the class."""

    tp: type
    key: object
    fields: tuple[Field, ...] = ()


TypeDescription = (
    AnyValue | Scalar | EnumOf | LiteralOf | UnionOf | FixedTuple | SequenceOf | DictOf | AttrsClass
)
"""What :func:`describe` returns: one of the classes above."""

_SCALARS: Final = (type(None), bool, int, float, str)


def cache_key(tp: object) -> object:
    """``tp`` as a cache key. Unions compare equal whatever the order of their members
    (``int | float == float | int``, and so do ``list[int | float]`` and ``list[float |
    int]``), but the first member that fits wins, so members are keyed in order. Raises
    nothing; the key may be unhashable (``Literal[[1]]``), and then it is not cached."""
    origin = typing.get_origin(tp)
    if origin is None or origin is Literal:  # Literal[1] != Literal[True], unlike 1 and True
        return tp
    return (origin, tuple(cache_key(a) for a in typing.get_args(tp)))


_described: dict[object, TypeDescription] = {}


def describe(tp: object) -> TypeDescription:
    """The description of the type annotation ``tp`` (cached), or :class:`UnsupportedType`
    naming the part the codec cannot convert (``Outer.inner: Inner.bad: cannot convert
    values of type <class 'complex'> strictly``)."""
    key = cache_key(tp)
    try:
        return _described[key]
    except (KeyError, TypeError):
        pass
    classes: dict[type, AttrsClass] = {}
    found = _describe(tp, key, classes)
    # only whole descriptions are kept: nothing is cached when a field somewhere failed
    for cls, described in classes.items():
        _described[cls] = described
    with contextlib.suppress(TypeError):  # unhashable type expressions are not cached
        _described[key] = found
    return found


def _is_union(origin: object) -> bool:
    """The one rule that tells a union: ``typing.Union[...]``/``Optional[...]`` or ``X | Y``."""
    return origin is typing.Union or origin is types.UnionType


def _describe(tp: object, key: object, classes: dict[type, AttrsClass]) -> TypeDescription:
    with contextlib.suppress(KeyError, TypeError):
        return _described[key]
    if tp is Any or tp is object:
        return AnyValue(tp, key)
    if tp is None:
        return Scalar(type(None), key)
    if any(tp is s for s in _SCALARS):
        return Scalar(tp, key)  # type: ignore[arg-type]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return EnumOf(tp, key)
    if isinstance(tp, type) and attrs.has(tp):
        return classes.get(tp) or _attrs_class(tp, key, classes)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    def inner(arg: object) -> TypeDescription:
        return _describe(arg, cache_key(arg), classes)

    if origin is Literal:
        return LiteralOf(tp, key, args)
    if _is_union(origin):
        members = tuple(inner(a) for a in args)
        rest = tuple(m for m in members if not (isinstance(m, Scalar) and m.tp is type(None)))
        return UnionOf(tp, key, members, rest, len(rest) < len(members))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return SequenceOf(tp, key, tuple, inner(args[0]))
        items = () if args == ((),) else args  # tuple[()]
        return FixedTuple(tp, key, tuple(inner(a) for a in items))
    if origin is list or origin is frozenset:
        return SequenceOf(tp, key, origin, inner(args[0]) if args else inner(Any))
    if origin is dict or origin is Mapping:
        if args and args[0] is not str:
            raise UnsupportedType(f"mapping keys must be str, not {args[0]!r}")
        return DictOf(tp, key, inner(args[1]) if args else inner(Any))
    raise UnsupportedType(f"cannot convert values of type {tp!r} strictly")


def _attrs_class(cls: type, key: object, classes: dict[type, AttrsClass]) -> AttrsClass:
    described = classes[cls] = AttrsClass(cls, key)  # stands in while the fields are read
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:
        raise UnsupportedType(
            f"cannot resolve the field types of {cls.__qualname__}: {exc}"
        ) from exc
    annotated: list[tuple[attrs.Attribute[Any], object]] = []
    for a in attrs.fields(cls):
        if not a.init:
            continue
        tp = hints.get(a.name, a.type)
        if tp is None:
            raise UnsupportedType(f"field {cls.__qualname__}.{a.name} has no type annotation")
        annotated.append((a, tp))
    fields = []
    for a, tp in annotated:
        try:
            field_type = _describe(tp, cache_key(tp), classes)
        except UnsupportedType as exc:
            raise UnsupportedType(f"{cls.__qualname__}.{a.alias}: {exc}") from exc
        alias = typing.cast(str, a.alias)  # attrs sets it on every field it makes
        fields.append(Field(alias, a.name, field_type, a.default is attrs.NOTHING))
    described.fields = tuple(fields)
    return described


# --- the one sample set ------------------------------------------------------------------

SCALAR_SAMPLES: Final[Mapping[type, tuple[object, ...]]] = {
    type(None): (None,),
    bool: (False, True),
    int: (0, 1, -1),
    float: (0.0, 1.0, -1.0),
    str: ("", "a"),
}
"""The values of each scalar type worth trying, first the one every other sample starts
from. The fuzzer's wider tables of edge values begin with these."""

MAX_SAMPLES: Final = 16
"""At most this many samples of a payload type (:func:`sample_payloads`)."""

_SAMPLE_DEPTH: Final = 3
"""An attrs class nested deeper than this has no samples (a union with ``None`` still has
``None``): the samples of a class that refers to itself stay finite."""


def samples(described: TypeDescription, depth: int = 0, *, second: bool = False) -> list[Any]:
    """A few plain-data values of a type, its interesting ones (see :func:`sample_payloads`),
    ``[]`` when there is none within the depth.

    With ``second``, the same values around the opposite corner: every scalar starts from its
    second sample (1, "a", True), a value before ``None``, a one-item container before the
    empty one. That is the corner the guards of a spec most often want (a positive amount, a
    non-empty name), which the fuzzer tries as well."""
    match described:
        case AnyValue():
            return [None]
        case Scalar():
            return _turn(SCALAR_SAMPLES[described.tp], second)
        case EnumOf():
            return _turn([m.value for m in described.tp], second)
        case LiteralOf():
            return _turn(described.choices, second)
        case UnionOf():
            out: list[Any] = [None] if described.optional and not second else []
            for m in described.rest:
                for v in samples(m, depth + 1, second=second):
                    if v not in out:
                        out.append(v)
            if described.optional and second and None not in out:
                out.append(None)
            return out
        case FixedTuple():
            items = [samples(i, depth + 1, second=second) for i in described.items]
            if any(not i for i in items):
                return []
            return [[i[0] for i in items]]
        case SequenceOf():
            inner = samples(described.item, depth + 1, second=second)
            if not inner:
                return [[]]
            return [[inner[0]], []] if second else [[], [inner[0]]]
        case DictOf():
            return [{}]
        case AttrsClass():
            if depth > _SAMPLE_DEPTH:
                return []
            fields = [
                (f.alias, samples(f.type, depth + 1, second=second)) for f in described.fields
            ]
            if any(not values for _, values in fields):
                return []
            base = {name: values[0] for name, values in fields}
            found = [base]
            for name, values in fields:
                for v in values[1:]:
                    found.append({**base, name: v})
            return found
    typing.assert_never(described)


def _turn(values: typing.Sequence[object], second: bool) -> list[Any]:
    """``values``, from the second one round to the first when ``second``."""
    if second and len(values) > 1:
        return [*values[1:], values[0]]
    return list(values)


def sample_payloads(tp: type) -> tuple[Any, ...]:
    """A small deterministic sample of plain payload data for the attrs class ``tp``, used by
    the explorer for transitions that have a payload type and no ``examples`` (and sent
    first by the fuzzer, before wider random values).

    Each field gets a few values of its type: ``bool`` False, True; ``int`` 0, 1, -1;
    ``float`` 0.0, 1.0, -1.0; ``str`` "", "a"; every member of a ``Literal`` or ``Enum``;
    ``None`` then the samples of ``X`` for ``X | None``; an empty and a one-item list for
    sequences; ``{}`` for mappings; ``None`` for ``Any``. The first sample sets every field to
    its first value; each further sample changes one field to one of its other values (so the
    count is one plus the sum of the extra values, not their product), capped at 16.
    Raises :class:`UnsupportedType` for a type the codec cannot convert, as
    :func:`structurer_for` does.
    """
    return tuple(samples(describe(tp)))[:MAX_SAMPLES]
