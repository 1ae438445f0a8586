"""Sequential reference models for the linearizability checker.

A model is a deterministic, sequential specification of one object (Porcupine's
``Model``): an initial state, and a ``step`` that says whether an operation with a given
input could have produced a given output from a given state, and what the state becomes.
States must be hashable and compared by value: the checker memoises ``(linearized set,
state)`` pairs.

An operation whose outcome is unknown (``info``) is stepped with the output
:data:`UNKNOWN`; the model must then accept every outcome the operation could have had
*if it took effect* (the checker separately considers that it never took effect).

Adding a model: subclass :class:`Model`, implement :meth:`Model.init` and
:meth:`Model.step`, and override :meth:`Model.is_read_only` for functions that never change
the state (lets the checker drop indeterminate reads, which constrain nothing).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Hashable
from typing import Generic, NamedTuple, TypeAlias, TypeVar

from chaos.history import Value

__all__ = [
    "UNKNOWN",
    "Input",
    "Model",
    "ModelError",
    "MutexModel",
    "Output",
    "RegisterModel",
    "Unknown",
]


class Unknown(enum.Enum):
    """The type of :data:`UNKNOWN`."""

    UNKNOWN = "unknown"

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown.UNKNOWN
"""The output of an indeterminate (``info``) operation."""

Output: TypeAlias = "Value | Unknown"

S = TypeVar("S", bound=Hashable)


class ModelError(ValueError):
    """An operation the model does not know (a workload / model mismatch)."""


class Input(NamedTuple):
    """What the client asked for: the function and its argument."""

    f: str
    value: Value


class Model(abc.ABC, Generic[S]):
    """A sequential specification. Subclasses must be stateless (all state is in ``S``)."""

    name: str = "model"

    @abc.abstractmethod
    def init(self) -> S:
        """Returns the state before any operation."""

    @abc.abstractmethod
    def step(self, state: S, input: Input, output: Output) -> tuple[bool, S]:
        """Applies one operation.

        Args:
            state: the state before the operation.
            input: the function and argument the client sent.
            output: the observed result, or :data:`UNKNOWN` for indeterminate operations.

        Returns:
            ``(True, new_state)`` if the operation, applied to ``state``, can produce
            ``output``; ``(False, state)`` otherwise.

        Raises:
            ModelError: the model has no such function.
        """

    def is_read_only(self, input: Input) -> bool:
        """True if the operation never changes the state (default: False)."""
        del input
        return False

    def describe_state(self, state: S) -> str:
        """Renders a state for reports."""
        return repr(state)


class RegisterModel(Model[Value]):
    """A read / write / compare-and-set register (one per key), like an etcd key.

    Functions (``input.value`` → ``output`` of an ``ok`` completion):

    * ``read``: ``None`` → the value read (``None`` when the key is absent);
    * ``write``: the new value → ignored;
    * ``delete``: ``None`` → ignored (the register becomes ``None``);
    * ``cas``: ``(expected, new)`` → ``True`` if it swapped, ``False`` if the comparison
      failed (a failed comparison is a *result*, recorded as ``ok``, not as ``fail``).

    Values are compared with ``==`` and must be hashable.
    """

    name = "register"

    def __init__(self, initial: Value = None) -> None:
        """Creates the model.

        Args:
            initial: the register's value before the history starts.
        """
        self._initial = initial

    def init(self) -> Value:
        """Returns the initial value."""
        return self._initial

    def step(self, state: Value, input: Input, output: Output) -> tuple[bool, Value]:
        """See :meth:`Model.step`."""
        f = input.f
        if f == "read":
            return (output is UNKNOWN or output == state), state
        if f == "write":
            return True, input.value
        if f == "cas":
            expected, new = _pair(input.value)
            if output is UNKNOWN:
                return True, (new if state == expected else state)
            if output is True:
                return (True, new) if state == expected else (False, state)
            if output is False:
                return state != expected, state
            return False, state
        if f == "delete":
            return True, None
        raise ModelError(f"register model has no function {f!r}")

    def is_read_only(self, input: Input) -> bool:
        """Reads never change the register."""
        return input.f == "read"


def _pair(v: Value) -> tuple[Value, Value]:
    if not isinstance(v, tuple) or len(v) != 2:
        raise ModelError(f"cas input must be (expected, new), got {v!r}")
    return v[0], v[1]


class MutexModel(Model[bool]):
    """A mutex (Knossos' ``mutex``): the state is whether it is held.

    ``acquire`` succeeds only when free; ``release`` only when held. Outputs are ignored:
    an acquire that was refused should be recorded as ``fail``.
    """

    name = "mutex"

    def init(self) -> bool:
        """The mutex starts free."""
        return False

    def step(self, state: bool, input: Input, output: Output) -> tuple[bool, bool]:
        """See :meth:`Model.step`."""
        del output
        if input.f == "acquire":
            return (not state), True
        if input.f == "release":
            return state, False
        raise ModelError(f"mutex model has no function {input.f!r}")
