"""The kernel's exceptions: one root, a few subclasses carrying structured fields."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

__all__ = [
    "InvalidArgument",
    "InvalidCommand",
    "InvalidIdentifier",
    "PayloadError",
    "Problem",
    "SpecError",
    "StatekernelError",
    "UnsupportedType",
]


class StatekernelError(Exception):
    """Root of every exception statekernel raises on purpose."""


@attrs.frozen
class Problem:
    """One thing wrong with a spec: what is at fault and how to fix it."""

    culprit: str
    """The piece of the spec at fault, e.g. ``transition 'approve' (submitted -> approved)``."""
    message: str
    """What is wrong with it, phrased so the fix is obvious."""

    def __str__(self) -> str:
        return f"{self.culprit}: {self.message}"


class SpecError(StatekernelError, ValueError):
    """A spec that cannot be right. Lists **every** problem found, not just the first."""

    def __init__(self, spec_name: str, problems: Iterable[Problem]) -> None:
        self.spec_name = spec_name
        self.problems: tuple[Problem, ...] = tuple(problems)
        lines = [f"spec {spec_name!r} has {len(self.problems)} problem(s):"]
        lines.extend(f"  - {p}" for p in self.problems)
        super().__init__("\n".join(lines))


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` for a message, at most ``limit`` characters, never raising (a value
    whose ``__repr__`` raises is shown by its type) and never building the repr of a huge
    string first."""
    if isinstance(value, str | bytes) and len(value) > limit:
        value = value[:limit]
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__qualname__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InvalidArgument(StatekernelError, TypeError, ValueError):
    """An argument of the wrong type or value from the *calling code*: raised before anything
    is read or written, so nothing was. Both a ``TypeError`` and a ``ValueError``, so code
    that catches either builtin keeps working whichever of the two the mistake is.

    ``what`` names the argument, ``value`` holds it and ``reason`` says what is wrong. Bad
    input from a *client* (a payload that does not fit, is too deep or too large) is never an
    exception: the planner answers it with a rejection (``invalid_payload``,
    ``payload_too_large``).
    """

    def __init__(self, what: str, value: object, reason: str) -> None:
        self.what = what
        self.value = value
        self.reason = reason
        super().__init__(f"invalid {what} {shown(value)}: {reason}")


class InvalidIdentifier(InvalidArgument):
    """An entity id or idempotency key of the wrong shape (not a string, empty, too long or
    holding control characters). Raised before anything is read or written."""


class InvalidCommand(InvalidArgument):
    """A command whose envelope is malformed: not a :class:`~statekernel.kernel.Command`, an
    ``event`` that is not a string, an ``at`` that is not a ``datetime``, an ``actor`` that is
    not an :class:`~statekernel.kernel.Actor` (or whose id or roles are not short non-empty
    strings), or an ``expected_version`` that is not a 64-bit ``int``. These fields are set by
    the embedding code (the actor comes from authentication, the time from a clock), so a
    malformed one is a bug there, raised before anything is read or written; the payload,
    which a client sends, is checked too but answered with a rejection."""


class PayloadError(StatekernelError, ValueError):
    """Plain data does not fit a type. ``path`` names the field, ``reason`` says why."""

    def __init__(self, reason: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path

    def within(self, name: str) -> PayloadError:
        """The same error, one level further out (``name`` is the enclosing field)."""
        return type(self)(self.reason, (name, *self.path))

    @property
    def field(self) -> str:
        """The dotted path of the offending field (``""`` for the value itself)."""
        return ".".join(self.path)


class UnsupportedType(StatekernelError, TypeError):
    """A type that the codec cannot convert strictly, or a value that has no plain form."""
