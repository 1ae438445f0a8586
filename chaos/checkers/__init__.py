"""Checkers that judge a recorded :class:`chaos.history.History`.

* :func:`check_linearizable` — linearizability against a sequential model
  (:mod:`chaos.models`), Porcupine-style, per key, with failing windows.
* :func:`check_bank` — bank transfers: every read of all accounts sums to the total and no
  balance is negative.
* :func:`check_lock` — lock with fencing: tokens strictly increase and accepted guarded
  writes never go back to an earlier holder.
"""

from chaos.checkers.bank import BankAnomaly, BankResult, check_bank
from chaos.checkers.linearizable import (
    FailureWindow,
    KeyResult,
    LinearizabilityResult,
    Outcome,
    check_key,
    check_linearizable,
)
from chaos.checkers.lock import LockAnomaly, LockResult, check_lock

__all__ = [
    "BankAnomaly",
    "BankResult",
    "FailureWindow",
    "KeyResult",
    "LinearizabilityResult",
    "LockAnomaly",
    "LockResult",
    "Outcome",
    "check_bank",
    "check_key",
    "check_linearizable",
    "check_lock",
]
