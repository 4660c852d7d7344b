"""A spec's reference twin: the same declaration, built to decide through the plain loop.

``STATEKERNEL_DECIDE=reference`` set while a spec is built makes its deciders (and the
explorer's probes of it) the reference loop's instead of generated code. The differential and
agreement tests build each spec's twin that way and compare the two, decision by decision.
"""

from __future__ import annotations

import attrs
import pytest

from statekernel.kernel import Accepted, AuditRecord, Decision, Rejected, Snapshot, Spec
from statekernel.kernel._decision import SWITCH

__all__ = ["reference_twin", "same_decision"]


def reference_twin(spec: Spec) -> Spec:
    """``spec`` built again with ``STATEKERNEL_DECIDE=reference``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SWITCH, "reference")
        twin = attrs.evolve(spec)
    assert twin._compiled.reference
    return twin


def same_decision(new: Decision, ref: Decision) -> None:
    """``new`` and ``ref`` are equal, print the same and are built of the same types, down to
    the type of a ``spec_fault``'s exception."""
    assert type(new) is type(ref)
    assert new == ref, (new, ref)
    assert repr(new) == repr(ref)
    if isinstance(new, Rejected):
        assert isinstance(ref, Rejected)
        assert type(new.error) is type(ref.error)
        assert type(new.details) is type(ref.details)
    else:
        assert isinstance(ref, Accepted)
        assert type(new.snapshot) is Snapshot and type(new.record) is AuditRecord
        assert type(new.snapshot.context) is type(ref.snapshot.context)
        assert type(new.record.payload) is type(ref.record.payload)
