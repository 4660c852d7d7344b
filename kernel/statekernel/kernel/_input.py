"""What a caller hands the planner, checked once, where it enters a store.

A command has two parts, and bad input in each gets a different answer:

- The **envelope** (the command itself, its ``event``, ``actor``, ``at`` and
  ``expected_version``) is set by the embedding code: the actor comes from authentication,
  the time from a clock, the expected version from a parsed ``If-Match``. A malformed
  envelope is a bug in that code, so :func:`check_command` raises
  :class:`~statekernel.kernel.InvalidCommand` (both a ``TypeError`` and a ``ValueError``).
- The **payload** is what a client sent, a request body. A payload that is not plain data
  within bounds is the client's bad input, so :func:`payload_refusal` returns the rejection
  to answer it with: ``invalid_payload`` for a payload nested deeper than
  :data:`MAX_PAYLOAD_DEPTH` levels, holding an integer of more than :data:`MAX_INT_DIGITS`
  digits, a float JSON cannot hold (``NaN``, the infinities) or a value that is not plain
  data; ``payload_too_large`` for one whose canonical JSON is longer than the limit.

Neither answer writes anything, not even a record under the idempotency key (a payload that
cannot be read cannot be fingerprinted, and a limit is the store's configuration, not the
request's fate): a retry runs again. Neither is ``spec_fault``, which means the spec is wrong.

**The size of a payload** is the length, in characters, of its canonical JSON: compact and
ASCII-only, what ``json.dumps(unstructure(payload), separators=(",", ":"))`` gives. It is a
property of the request alone, so every store answers a payload near the limit alike. It is
measured without building that text and stops as soon as the limit is passed, so an oversized
payload costs no copy of itself.
"""

from __future__ import annotations

import enum
import math
import sys
from collections.abc import Mapping
from datetime import datetime
from json.encoder import encode_basestring_ascii as _encode
from typing import Any, Final

import attrs

from ._errors import InvalidCommand, InvalidIdentifier, shown
from ._model import Actor, Command, Rejected

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_INT_DIGITS",
    "MAX_PAYLOAD",
    "MAX_PAYLOAD_DEPTH",
    "check_command",
    "check_identifier",
    "payload_refusal",
]

MAX_ID_LENGTH: Final = 255
"""The longest entity id, idempotency key, event name, actor id or role accepted, in
characters."""

MAX_PAYLOAD: Final = 1 << 20
"""The default limit on a payload's size (1 MiB of canonical JSON; see the module
documentation)."""

MAX_PAYLOAD_DEPTH: Final = 100
"""How deeply a payload's containers (mappings, lists, attrs instances) may nest."""

MAX_INT_DIGITS: Final = 4300
"""The most digits an integer in a payload may have (Python's own default limit on turning
an integer into text: longer ones take time quadratic in their length to convert)."""

_MAX_INT_BITS: Final = math.ceil(MAX_INT_DIGITS * math.log2(10))
_VERSIONS: Final = range(-(2**63), 2**63)


def _identifier_problem(value: object) -> str | None:
    if type(value) is not str:
        return f"must be a str, not {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"is {len(value)} characters long; the limit is {MAX_ID_LENGTH}"
    if not value.isprintable():
        return "must not contain control characters"
    return None


def _name_problem(value: object) -> str | None:
    """An actor id or role: any text, as an identity provider issues it, but bounded."""
    if type(value) is not str:
        return f"must be a str, not {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"is {len(value)} characters long; the limit is {MAX_ID_LENGTH}"
    return None


def check_identifier(what: str, value: object) -> str:
    """Return ``value`` if it is a usable entity id or key, else raise
    :class:`~statekernel.kernel.InvalidIdentifier`: it must be a non-empty ``str`` of at most
    :data:`MAX_ID_LENGTH` characters without control characters."""
    problem = _identifier_problem(value)
    if problem is not None:
        raise InvalidIdentifier(what, value, problem)
    return value  # type: ignore[return-value]


def check_command(command: object) -> Command:
    """Return ``command`` if its envelope is well formed, else raise
    :class:`~statekernel.kernel.InvalidCommand` naming the field.

    A well-formed command is a :class:`~statekernel.kernel.Command` whose ``event`` is a
    ``str`` (a ``StrEnum`` member too) of at most :data:`MAX_ID_LENGTH` characters; whose
    ``at`` is ``None`` or a ``datetime`` (a naive one is taken as UTC); whose ``actor`` is
    ``None`` or an :class:`~statekernel.kernel.Actor` whose id and roles are non-empty
    ``str`` of at most :data:`MAX_ID_LENGTH` characters (any text: identity providers issue
    all sorts); and whose ``expected_version`` is ``None`` or an ``int`` (not a ``bool``) in
    the signed 64-bit range. The payload is not looked at here (see :func:`payload_refusal`).
    """
    if not isinstance(command, Command):
        raise InvalidCommand("command", command, f"must be a Command, not {type(command).__name__}")
    event = command.event
    if not isinstance(event, str):
        raise InvalidCommand("event", event, f"must be a str, not {type(event).__name__}")
    if len(event) > MAX_ID_LENGTH:
        raise InvalidCommand(
            "event", event, f"is {len(event)} characters long; the limit is {MAX_ID_LENGTH}"
        )
    at = command.at
    if at is not None and not isinstance(at, datetime):
        raise InvalidCommand(
            "command time (at)", at, f"must be a datetime or None, not {type(at).__name__}"
        )
    actor = command.actor
    if actor is not None:
        if not isinstance(actor, Actor):
            raise InvalidCommand(
                "actor", actor, f"must be an Actor or None, not {type(actor).__name__}"
            )
        problem = _name_problem(actor.id)
        if problem is not None:
            raise InvalidCommand("actor id", actor.id, problem)
        for role in actor.roles:
            problem = _name_problem(role)
            if problem is not None:
                raise InvalidCommand(f"role of actor {shown(actor.id)}", role, problem)
    expected = command.expected_version
    if expected is not None and (type(expected) is not int or expected not in _VERSIONS):
        reason = (
            "is outside the signed 64-bit range of versions"
            if type(expected) is int
            else f"must be an int or None, not {type(expected).__name__}"
        )
        raise InvalidCommand("expected_version", expected, reason)
    return command


# -- the payload ----------------------------------------------------------------------------


class _Refused(Exception):
    """Raised inside the walk: why the payload is refused, and where."""

    def __init__(self, code: str, reason: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.path = path

    def within(self, name: str) -> _Refused:
        self.path = (name, *self.path)
        return self


_TOO_LARGE: Final = "payload_too_large"
_INVALID: Final = "invalid_payload"


def _str_size(value: str, room: int) -> int:
    """The length of ``value`` as a JSON string (ASCII, quotes included)."""
    if len(value) + 2 > room:  # an encoded string is never shorter than this
        raise _Refused(_TOO_LARGE, "")
    if value.isascii() and value.isprintable():
        return len(value) + 2 + value.count('"') + value.count("\\")
    return len(_encode(value))


def _int_size(value: int) -> int:
    if value.bit_length() <= 64:
        return len(str(value))
    reason = f"an integer has more than {MAX_INT_DIGITS} digits"
    if value.bit_length() > _MAX_INT_BITS:  # refused before the costly conversion
        raise _Refused(_INVALID, reason)
    try:
        text = str(value)
    except ValueError:  # the interpreter's limit: ours, unless it was set lower
        allowed = sys.get_int_max_str_digits() or MAX_INT_DIGITS
        raise _Refused(
            _INVALID, f"an integer has more than {min(allowed, MAX_INT_DIGITS)} digits"
        ) from None
    if len(text) - (value < 0) > MAX_INT_DIGITS:
        raise _Refused(_INVALID, reason)
    return len(text)


def _size(value: object, room: int, depth: int) -> int:
    """The length of ``unstructure(value)`` as canonical JSON, refusing (``_Refused``) as
    soon as it exceeds ``room`` or a part is not plain data; mirrors
    :func:`~statekernel.kernel.unstructure` case by case."""
    t = type(value)
    if t is str:
        return _str_size(value, room)  # type: ignore[arg-type]
    if t is int:
        return _int_size(value)  # type: ignore[arg-type]
    if value is None:
        return 4
    if t is bool:
        return 4 if value else 5
    if t is float:
        return _float_size(value)  # type: ignore[arg-type]
    if t is dict:
        return _pairs_size(value.items(), room, _deeper(depth))  # type: ignore[attr-defined]
    if t is list or t is tuple:
        return _items_size(value, room, _deeper(depth))
    if attrs.has(t):
        fields = [(a.alias, getattr(value, a.name)) for a in attrs.fields(t) if a.init]
        return _pairs_size(fields, room, _deeper(depth))
    if isinstance(value, enum.Enum):
        return _size(value.value, room, depth)
    if isinstance(value, Mapping):
        return _pairs_size(value.items(), room, _deeper(depth))
    if isinstance(value, frozenset | set | list | tuple):
        return _items_size(value, room, _deeper(depth))
    if isinstance(value, bool):
        return 4 if value else 5
    if isinstance(value, int):
        return _int_size(int(value))
    if isinstance(value, float):
        return _float_size(float(value))
    if isinstance(value, str):
        return _str_size(str.__str__(value), room)
    raise _Refused(_INVALID, f"a {t.__qualname__} is not plain data")


def _deeper(depth: int) -> int:
    if depth >= MAX_PAYLOAD_DEPTH:
        raise _Refused(_INVALID, f"it nests deeper than {MAX_PAYLOAD_DEPTH} levels")
    return depth + 1


def _float_size(value: float) -> int:
    if not math.isfinite(value):
        raise _Refused(_INVALID, f"{value!r} is not a number JSON can hold")
    return len(float.__repr__(value))


_SHORT: Final = 512
"""Strings shorter than this are measured by encoding them (one C call); longer ones are
first checked against the room left, so a huge string is never copied."""
_WORD: Final = 2**63


def _items_size(items: Any, room: int, depth: int) -> int:
    total = 1
    for i, item in enumerate(items):
        t = type(item)  # the common scalars inline; the rest through _size
        if t is str and len(item) < _SHORT:
            total += 1 + len(_encode(item))
        elif t is int and -_WORD < item < _WORD:
            total += 1 + len(str(item))
        elif item is None or item is True:
            total += 5
        elif item is False:
            total += 6
        else:
            try:
                total += 1 + _size(item, room - total, depth)
            except _Refused as exc:
                raise exc.within(f"[{i}]") from None
        if total > room:
            raise _Refused(_TOO_LARGE, "")
    return max(total, 2)


def _pairs_size(pairs: Any, room: int, depth: int) -> int:
    total = 1
    for key, item in pairs:
        name = key if type(key) is str else _key_text(key)
        total += 2 + (len(_encode(name)) if len(name) < _SHORT else _str_size(name, room - total))
        t = type(item)  # the common scalars inline; the rest through _size
        if t is str and len(item) < _SHORT:
            total += len(_encode(item))
        elif t is int and -_WORD < item < _WORD:
            total += len(str(item))
        elif item is None or item is True:
            total += 4
        elif item is False:
            total += 5
        else:
            try:
                total += _size(item, room - total, depth)
            except _Refused as exc:
                raise exc.within(name) from None
        if total > room:
            raise _Refused(_TOO_LARGE, "")
    return max(total, 2)


def _key_text(key: object) -> str:
    """A mapping key as :func:`~statekernel.kernel.unstructure` writes it (``str(key)``)."""
    try:
        return str(key)
    except Exception:
        raise _Refused(_INVALID, f"a key of type {type(key).__qualname__} has no text") from None


def _path(parts: tuple[str, ...]) -> str:
    text = ".".join(parts).replace(".[", "[")
    return text if len(text) <= 120 else text[:117] + "..."


def payload_refusal(command: Command, max_payload: int | None = MAX_PAYLOAD) -> Rejected | None:
    """The rejection a payload gets before it is decided, or ``None`` when it is plain data
    within bounds: ``invalid_payload`` (too deep, an integer too long, a float JSON cannot
    hold, a value that is not plain data) or ``payload_too_large`` (canonical JSON longer than
    ``max_payload`` characters; ``None``: no limit). See the module documentation."""
    room = (1 << 62) if max_payload is None else max_payload
    payload = command.payload
    if payload is None and room >= 4:
        return None
    event = command.event
    try:
        if type(payload) is dict:  # the common case, one call shorter
            size = _pairs_size(payload.items(), room, 1)
        else:
            size = _size(payload, room, 0)
        if size > room:
            raise _Refused(_TOO_LARGE, "")
    except _Refused as exc:
        if exc.code == _TOO_LARGE:
            return Rejected(
                _TOO_LARGE,
                f"the payload of {event!r} is larger than the store's limit of {room} "
                "characters of JSON; nothing was written",
                {"event": event, "limit": room},
            )
        field = _path(exc.path)
        where = f"field {field!r}: " if field else ""
        return Rejected(
            _INVALID,
            f"invalid payload for {event!r}: {where}{exc.reason}; nothing was written",
            {"event": event, "field": field, "reason": exc.reason},
        )
    except RecursionError:  # a recursive attrs value, say: refused like a deep one
        return Rejected(
            _INVALID,
            f"invalid payload for {event!r}: it nests too deeply; nothing was written",
            {"event": event, "field": "", "reason": "it nests too deeply"},
        )
    return None
