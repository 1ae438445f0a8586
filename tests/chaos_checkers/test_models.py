"""The sequential reference models."""

from __future__ import annotations

import pytest

from chaos.models import UNKNOWN, Input, ModelError, MutexModel, RegisterModel


def test_register_read_write_delete() -> None:
    m = RegisterModel()
    assert m.init() is None
    assert m.step(None, Input("read", None), None) == (True, None)
    assert m.step(None, Input("read", None), 1)[0] is False
    assert m.step(None, Input("write", None), None) == (True, None)
    assert m.step(3, Input("write", 4), 4) == (True, 4)
    assert m.step(3, Input("delete", None), None) == (True, None)
    assert RegisterModel(initial=0).init() == 0


def test_register_cas_outcomes() -> None:
    m = RegisterModel()
    cas = Input("cas", (1, 2))
    assert m.step(1, cas, True) == (True, 2)
    assert m.step(3, cas, True) == (False, 3)
    assert m.step(3, cas, False) == (True, 3)
    assert m.step(1, cas, False) == (False, 1)
    assert m.step(1, cas, "garbage") == (False, 1)


def test_register_unknown_outputs_accept_every_possible_outcome() -> None:
    m = RegisterModel()
    assert m.step(7, Input("read", None), UNKNOWN) == (True, 7)
    assert m.step(1, Input("cas", (1, 2)), UNKNOWN) == (True, 2)
    assert m.step(3, Input("cas", (1, 2)), UNKNOWN) == (True, 3)
    assert m.is_read_only(Input("read", None))
    assert not m.is_read_only(Input("cas", (1, 2)))


def test_register_rejects_unknown_functions_and_bad_cas_input() -> None:
    m = RegisterModel()
    with pytest.raises(ModelError):
        m.step(None, Input("increment", 1), None)
    with pytest.raises(ModelError):
        m.step(None, Input("cas", 1), True)


def test_mutex() -> None:
    m = MutexModel()
    assert m.step(m.init(), Input("acquire", None), None) == (True, True)
    assert m.step(True, Input("acquire", None), UNKNOWN)[0] is False
    assert m.step(True, Input("release", None), None) == (True, False)
    assert m.step(False, Input("release", None), None)[0] is False
    with pytest.raises(ModelError):
        m.step(False, Input("steal", None), None)
    assert repr(UNKNOWN) == "UNKNOWN"
