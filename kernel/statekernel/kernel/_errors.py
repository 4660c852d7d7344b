"""The kernel's exceptions: one root, a few subclasses carrying structured fields."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

__all__ = [
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


class InvalidIdentifier(StatekernelError, ValueError):
    """An entity id or idempotency key of the wrong shape (not a string, empty, too long or
    holding control characters). Raised before anything is read or written."""

    def __init__(self, what: str, value: object, reason: str) -> None:
        self.what = what
        self.value = value
        self.reason = reason
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"invalid {what} {shown}: {reason}")


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
