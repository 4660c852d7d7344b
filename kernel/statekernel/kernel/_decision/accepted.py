"""Building an :class:`~statekernel.kernel.Accepted` fast: the one object a decision makes
on the hot path.

A frozen attrs class's own ``__init__`` costs a generic call per field; an accepted decision
holds three such objects (the ``Accepted``, its ``Snapshot``, its ``AuditRecord``, 14 fields
in all), which would cost more than the rest of the decision. :func:`accepted_source` writes
the straight-line statements that build them into the generated deciders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from .._model import Accepted, AuditRecord, Snapshot

__all__ = ["accepted_source"]

_ACCEPTED_PARTS: Final = (
    ("acc_snap", Snapshot, {"state": "target", "context": "context", "version": "version"}),
    (
        "acc_rec",
        AuditRecord,
        {
            "version": "version",
            "event": "event",
            "payload": "payload",
            "actor": "actor",
            "from_state": "source",
            "to_state": "target",
            "at": "at",
            "idempotency_key": "None",
        },
    ),
    (
        "acc",
        Accepted,
        {"snapshot": "acc_snap", "record": "acc_rec", "effects": "effects", "replayed": "False"},
    ),
)


def _filler(cls: type) -> type | None:
    """A private subclass of the frozen ``cls`` for building its instances quickly, or ``None``
    where the interpreter does not allow it.

    A frozen attrs class forbids ``obj.field = value``, so its own ``__init__`` (and any code
    filling its slots from outside) goes through a bound ``object.__setattr__`` or the slot
    descriptor's ``__set__``: a generic call per field. The filler adds no slots and no state
    and lets plain attribute assignment through, the interpreter's fastest store. An instance
    is created as a filler, its fields are assigned, and then its ``__class__`` is set to
    ``cls`` (allowed because the two classes have the same layout): from then on it is an
    ordinary, frozen ``cls`` instance, equal to and indistinguishable from one built by
    ``cls(...)``. Fillers never escape the generated code.
    """
    namespace = {
        "__slots__": (),
        "__init__": object.__init__,
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
        "__module__": __name__,
    }
    filler = type(f"_{cls.__name__}Filler", (cls,), namespace)
    try:
        obj = filler()
        for a in attrs.fields(cls):
            setattr(obj, a.name, None)
        obj.__class__ = cls
    except TypeError:  # the interpreter refuses the __class__ assignment
        return None
    return filler if type(obj) is cls else None


def accepted_source(values: Mapping[str, str]) -> tuple[list[str], dict[str, Any]]:
    """Straight-line source that builds an :class:`Accepted`, its snapshot and its audit record
    into the local ``acc``: the kernel's hot path, where an attrs ``__init__`` per object and a
    generic call per field would cost more than the rest of a decision.

    ``values`` maps ``target``, ``context``, ``version``, ``event``, ``payload``, ``actor``,
    ``source``, ``at`` and ``effects`` to names (several are read twice) in the code the lines
    go into. Returns the lines and the namespace they need; their own names start with ``acc``
    or ``set_acc``. Each object is built through its class's :func:`_filler` (plain attribute
    stores, then the ``__class__`` assignment) or, where the interpreter has no fillers, by
    filling its slots through their descriptors.
    """
    namespace: dict[str, Any] = {"acc_new": object.__new__}
    values = {
        **values,
        "acc_snap": "acc_snap",
        "acc_rec": "acc_rec",
        "None": "None",
        "False": "False",
    }
    lines = []
    for var, cls, fields in _ACCEPTED_PARTS:
        assert tuple(a.name for a in attrs.fields(cls)) == tuple(fields)
        namespace[f"{var}_cls"] = cls
        filler = _FILLERS[cls]
        if filler is not None:
            namespace[f"{var}_filler"] = filler
            lines.append(f"{var} = {var}_filler()")
            lines += [f"{var}.{name} = {values[value]}" for name, value in fields.items()]
            lines.append(f"{var}.__class__ = {var}_cls")
        else:
            lines.append(f"{var} = acc_new({var}_cls)")
            for name, value in fields.items():
                namespace[f"set_{var}_{name}"] = cls.__dict__[name].__set__
                lines.append(f"set_{var}_{name}({var}, {values[value]})")
    return lines, namespace


_FILLERS: Final = {cls: _filler(cls) for _, cls, _ in _ACCEPTED_PARTS}
