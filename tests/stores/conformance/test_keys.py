"""Namespaces of idempotency keys, the same on every store: a mismatch never tells one caller
about another's entity, and ``key_scope`` (chosen when the store is made) narrows the
namespace from the whole spec to an actor, an entity or a tenant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from statekernel.kernel import Actor, Command, InvalidArgument, Rejected

from ..ledger import SPEC

ANN, BOB = Actor("ann"), Actor("bob")


def deposit(cents: int, actor: Actor | None = None) -> Command:
    return Command("deposit", {"amount": {"cents": cents}}, actor=actor)


def test_a_mismatch_on_another_entity_does_not_name_that_entity(make_store: Any) -> None:
    """It used to say "(on entity 'patient-7')" and carry the id in its details."""
    store = make_store(SPEC)
    store.handle("patient-7", deposit(5), idempotency_key="k1")
    for entity, command in (("mine", deposit(5)), ("patient-7", deposit(6))):
        d = store.handle(entity, command, idempotency_key="k1")
        assert isinstance(d, Rejected) and d.code == "idempotency_mismatch"
        assert d.details == {"key": "k1"}
        assert "patient-7" not in d.message and "patient-7" not in repr(d.details)
        assert d.message == "idempotency key 'k1' was first used for a different request"
    assert store.get("mine") is None


def test_the_default_scope_is_the_spec(make_store: Any) -> None:
    store = make_store(SPEC)
    assert store.handle("a", deposit(1, ANN), idempotency_key="k").accepted
    assert store.handle("b", deposit(1, BOB), idempotency_key="k").code == "idempotency_mismatch"


def test_keys_scoped_by_actor_do_not_collide_across_actors(make_store: Any) -> None:
    store = make_store(SPEC, key_scope="actor")
    first = store.handle("a", deposit(1, ANN), idempotency_key="k")
    assert first.accepted
    # another actor picking the same key is another request, not a mismatch
    theirs = store.handle("b", deposit(2, BOB), idempotency_key="k")
    assert theirs.accepted and theirs.replayed is False
    # within one actor's namespace the usual rules hold
    again = store.handle("a", deposit(1, ANN), idempotency_key="k")
    assert again == first and again.replayed is True
    assert store.handle("c", deposit(1, ANN), idempotency_key="k").code == "idempotency_mismatch"
    # commands without an actor share the spec's namespace
    assert store.handle("d", deposit(1), idempotency_key="k").accepted
    assert store.handle("e", deposit(1), idempotency_key="k").code == "idempotency_mismatch"
    # the audit trail keeps the key as the client sent it
    assert [r.idempotency_key for r in store.history("a")] == ["k"]
    assert [r.idempotency_key for r in store.history("b")] == ["k"]


def test_keys_scoped_by_entity_belong_to_their_entity(make_store: Any) -> None:
    store = make_store(SPEC, key_scope="entity")
    assert store.handle("a", deposit(1), idempotency_key="k").accepted
    assert store.handle("b", deposit(1), idempotency_key="k").replayed is False
    assert store.handle("a", deposit(2), idempotency_key="k").code == "idempotency_mismatch"
    assert store.handle("b", deposit(1), idempotency_key="k").replayed is True
    assert (store.get("a").version, store.get("b").version) == (1, 1)


def test_keys_scoped_by_a_function_per_tenant(make_store: Any) -> None:
    store = make_store(SPEC, key_scope=lambda entity, command: entity.split("/")[0])
    assert store.handle("acme/1", deposit(1), idempotency_key="k").accepted
    assert store.handle("globex/1", deposit(1), idempotency_key="k").accepted
    assert store.handle("acme/2", deposit(1), idempotency_key="k").code == "idempotency_mismatch"
    assert store.handle("globex/1", deposit(1), idempotency_key="k").replayed is True


def test_purge_keys_purges_every_namespace(make_store: Any) -> None:
    store = make_store(SPEC, key_scope="actor")
    old = datetime(2020, 1, 1, tzinfo=UTC)
    for actor in (ANN, BOB, None):
        store.handle("a", attrs.evolve(deposit(1, actor), at=old), idempotency_key="k")
    assert store.purge_keys(datetime(2021, 1, 1, tzinfo=UTC)) == 3
    assert store.handle("a", deposit(1, ANN), idempotency_key="k").replayed is False


@pytest.mark.parametrize("bad", ["tenant", 5, None])
def test_an_unknown_key_scope_is_refused_when_the_store_is_made(make_store: Any, bad: Any) -> None:
    with pytest.raises(InvalidArgument, match="key_scope"):
        make_store(SPEC, key_scope=bad)


@pytest.mark.parametrize("bad", [5, None, "t" * 256])
def test_a_key_scope_function_must_give_short_text(make_store: Any, bad: Any) -> None:
    store = make_store(SPEC, key_scope=lambda entity, command: bad)
    with pytest.raises(InvalidArgument, match="key scope"):
        store.handle("a", deposit(1), idempotency_key="k")
    assert store.handle("a", deposit(1)).accepted  # no key, no namespace needed
