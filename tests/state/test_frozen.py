"""fast_init: the faster constructor keeps what the dataclass promised."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from raftkv._frozen import fast_init
from raftkv.raft.types import Message, MessageType
from raftkv.state.commands import KeyValue, Put, Request, SortOrder


def test_signature_defaults_equality_hash_and_frozenness_are_kept() -> None:
    kv = KeyValue(b"k", 1, mod_revision=2)
    assert (kv.key, kv.create_revision, kv.mod_revision, kv.version, kv.value) == (
        b"k", 1, 2, 0, b"")
    assert kv == KeyValue(b"k", 1, 2)
    assert hash(kv) == hash(KeyValue(b"k", 1, 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        kv.key = b"x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        KeyValue()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        KeyValue(b"k", nope=1)  # type: ignore[call-arg]
    req = Request(7, 1, Put(b"a", b"v"))
    assert req.ack == 0 and req.nonce == 0  # noqa: PT018
    m = Message(type=MessageType.APP, to=2)
    assert m.entries == () and m.snapshot is None  # noqa: PT018
    assert repr(KeyValue(b"k")).startswith("KeyValue(key=b'k'")


def test_enum_and_shared_defaults_are_the_declared_objects() -> None:
    from raftkv.state.commands import Range

    assert Range(b"k").sort_order is SortOrder.NONE


def test_classes_it_cannot_speed_up_are_refused() -> None:
    @dataclass(slots=True)
    class Mutable:
        x: int

    @dataclass(frozen=True, slots=True)
    class Factory:
        x: list[int] = field(default_factory=list)

    @dataclass(frozen=True)
    class NoSlots:
        x: int

    for cls in (Mutable, Factory, NoSlots):
        with pytest.raises(TypeError):
            fast_init(cls)
