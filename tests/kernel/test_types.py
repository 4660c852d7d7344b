"""One walker over the supported types: the codec, the explorer's payload samples and the
fuzzer's payloads agree on what a type is, which of its values are worth trying, and what is
refused."""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable
from typing import Any, Literal

import attrs
import pytest
from hypothesis import HealthCheck, given, settings

from statekernel.kernel import (
    Spec,
    SpecError,
    Transition,
    UnsupportedType,
    checker_for,
    sample_payloads,
    structurer_for,
    unstructure,
)
from statekernel.kernel._fuzz import Catalog, Faults, PayloadPool
from tests.strategies import TypeCase, supported_types, unsupported_types


@attrs.frozen
class Empty:
    pass


def _spec(payload: type | None = None, examples: tuple[object, ...] = ()) -> Spec:
    return Spec(
        name="walker",
        version=1,
        context=Empty,
        initial="a",
        states=["a", "b"],
        final=["b"],
        transitions=[
            Transition("send", "a", "a", payload=payload, examples=examples),
            Transition("end", "a", "b"),
        ],
    )


POOL = PayloadPool(_spec(examples=()))


def _payload_class(tp: object) -> type:
    """An attrs payload class with one field of type ``tp`` (``None`` spelt ``NoneType``: to
    attrs, ``type=None`` means no annotation)."""
    tp = type(None) if tp is None else tp
    return attrs.make_class("Payload", {"value": attrs.field(type=tp)}, frozen=True)


def reads_back(tp: object, plain: object) -> None:
    """``plain`` structures into a ``tp``, and that value reads back equal from its plain
    form, as a stored context or a replayed payload must."""
    structure = structurer_for(tp)
    value = structure(plain)
    assert structure(unstructure(value)) == value, (plain, value)
    checker_for(tp)(value)


many = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)


@many
@given(supported_types())
def test_every_explorer_sample_structures_and_reads_back(case: TypeCase) -> None:
    for sample in sample_payloads(case.tp):  # type: ignore[arg-type]
        reads_back(case.tp, sample)


@many
@given(supported_types())
def test_every_fuzzer_payload_structures_and_reads_back(case: TypeCase) -> None:
    for payload in POOL.payloads("send", case.tp):
        reads_back(case.tp, payload)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(supported_types())
def test_the_fuzzer_sends_the_explorer_samples_first(case: TypeCase) -> None:
    payload = _payload_class(case.tp)
    catalog = Catalog(_spec(payload), Faults())
    send = next(ev for ev in catalog.enabled["a"] if ev.name == "send")
    samples = list(sample_payloads(payload))
    # the fuzzer's boundary payloads start with the explorer's samples, and so do its
    # generated ones, before going wider; a type nested too deep to have samples still has
    # payloads to send
    assert list(send.payloads[: len(samples)]) == samples
    assert list(send.generated[: len(samples)]) == samples
    assert send.payloads
    for value in (*send.payloads, *send.generated):
        reads_back(payload, value)


@attrs.frozen
class Refund:
    order_total: int
    amount: int
    note: str | None = None


def test_the_fuzzer_also_tries_the_opposite_corner() -> None:
    # the explorer's samples vary one field at a time around 0, "", None; the fuzzer adds
    # the payload whose every field is at its second sample, what guards most often want
    corner = {"order_total": 1, "amount": 1, "note": "a"}
    assert corner not in sample_payloads(Refund)
    payloads = POOL.payloads("send", Refund)
    assert payloads[: len(sample_payloads(Refund)) + 1] == (*sample_payloads(Refund), corner)


def test_a_literal_enum_member_is_sent_as_the_member() -> None:
    class Color(enum.Enum):
        RED = "red"

    tp = Literal[Color.RED]
    assert sample_payloads(tp) == (Color.RED,)  # type: ignore[arg-type]
    for value in POOL.payloads("send", tp):
        assert structurer_for(tp)(value) is Color.RED


@attrs.frozen
class Old:
    n: typing.Optional[int]  # noqa: UP045
    m: typing.Union[int, str]  # noqa: UP007


@attrs.frozen
class New:
    n: int | None
    m: int | str


@attrs.frozen
class Chain:
    value: int
    next: Chain | None = None


@attrs.frozen
class Inner:
    bad: complex


@attrs.frozen
class Outer:
    ok: int
    inner: list[Inner]


def test_both_spellings_of_a_union_are_one_union() -> None:
    assert sample_payloads(Old) == sample_payloads(New)
    assert POOL.payloads("send", Old) == POOL.payloads("send", New)


def test_samples_stop_at_a_depth_and_stay_valid() -> None:
    deep = max(sample_payloads(Chain), key=lambda s: str(s).count("value"))
    assert deep == {"value": 0, "next": {"value": 0, "next": None}}
    for payload in POOL.payloads("send", Chain):
        reads_back(Chain, payload)


def _refusal(consume: Callable[[object], object], tp: object) -> str:
    with pytest.raises(UnsupportedType) as info:
        consume(tp)
    return str(info.value)


CONSUMERS: dict[str, Callable[[object], object]] = {
    "structurer": structurer_for,
    "checker": checker_for,
    "explorer samples": sample_payloads,  # type: ignore[dict-item]
    "fuzzer payloads": lambda tp: POOL.payloads("send", tp),
}


@settings(max_examples=60, deadline=None)
@given(unsupported_types())
def test_unsupported_types_are_refused_alike_by_every_consumer(tp: object) -> None:
    messages = {name: _refusal(consume, tp) for name, consume in CONSUMERS.items()}
    assert len(set(messages.values())) == 1, messages
    # and a spec refuses a payload type holding one when it is built, in the same words
    payload = _payload_class(tp)
    with pytest.raises(SpecError) as info:
        _spec(payload)
    for consume in CONSUMERS.values():
        assert _refusal(consume, payload) in str(info.value)


def test_refusals_name_the_field_and_the_type() -> None:
    for consume in CONSUMERS.values():
        assert _refusal(consume, Outer) == (
            "Outer.inner: Inner.bad: cannot convert values of type <class 'complex'> strictly"
        )
        assert _refusal(consume, dict[int, Any]) == "mapping keys must be str, not <class 'int'>"
