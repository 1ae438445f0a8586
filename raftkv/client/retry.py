"""Retries, in one place: which calls are retried, on what, how long, and how often.

Only calls that are safe to repeat are retried:

* reads (Range, read-only Txn, LeaseTimeToLive, Status, ...) always;
* writes carrying a request id that the server de-duplicates (raftkv does; the client
  probes once), so a retry returns the first result instead of applying twice;
* any call whose connection failed before the request was sent.

A write that fails ambiguously against a server that does not de-duplicate (etcd) is not
retried: it raises :class:`~raftkv.errors.OutcomeUnknownError`.

Retried failures are the transient ones: :class:`~raftkv.errors.UnavailableError` and its
subclasses (no leader, leader changed, member down, attempt timed out). Between attempts the
transport fails over to another member and the client waits an exponential backoff with
full jitter (``tenacity.wait_random_exponential``), until the call's overall deadline; then
:class:`~raftkv.errors.DeadlineExceededError` names the last failure.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    Future,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    stop_never,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from raftkv.errors import (
    ConfigError,
    DeadlineExceededError,
    OutcomeUnknownError,
    UnavailableError,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the client retries transient failures.

    Attributes:
        deadline_s: default overall deadline of one call, retries included (a call's own
            ``timeout=`` overrides it; ``None``: no deadline).
        attempt_timeout_s: the longest one attempt may take before it is abandoned and
            retried (bounded by what is left of the deadline).
        initial_backoff_s: the first backoff; it doubles per attempt, with jitter.
        max_backoff_s: the largest backoff.
        max_attempts: attempts per call (``None``: until the deadline). 1 disables retries.
    """

    deadline_s: float | None = 30.0
    attempt_timeout_s: float = 5.0
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 1.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        for name in ("attempt_timeout_s", "initial_backoff_s", "max_backoff_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"RetryPolicy.{name} must be > 0, got {getattr(self, name)}")
        if self.deadline_s is not None and self.deadline_s <= 0:
            raise ConfigError(f"RetryPolicy.deadline_s must be > 0 or None, got "
                              f"{self.deadline_s}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")

    @classmethod
    def never(cls, deadline_s: float | None = 30.0) -> RetryPolicy:
        """One attempt per call."""
        return cls(deadline_s=deadline_s, max_attempts=1)


def retryable(exc: BaseException) -> bool:
    """Transient, and safe to repeat (the caller turned unsafe ones into
    :class:`OutcomeUnknownError`)."""
    return isinstance(exc, UnavailableError) and not isinstance(exc, OutcomeUnknownError)


class Deadline:
    """An absolute deadline on the monotonic clock (``None``: none)."""

    def __init__(self, timeout_s: float | None) -> None:
        self.at = None if timeout_s is None else time.monotonic() + timeout_s

    def remaining(self) -> float | None:
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    def attempt_timeout(self, cap_s: float | None) -> float | None:
        """The timeout of the next attempt: what is left, at most ``cap_s``."""
        left = self.remaining()
        if cap_s is None:
            return left
        return cap_s if left is None else max(0.001, min(cap_s, left))


async def run(policy: RetryPolicy, deadline: Deadline,
              attempt: Callable[[], Awaitable[T]]) -> T:
    """Run ``attempt`` until it succeeds, fails for good, or the deadline passes.

    ``attempt`` raises :mod:`raftkv.errors` exceptions; :func:`retryable` ones are retried.
    """
    left = deadline.remaining()
    stop: stop_base = stop_never if left is None else stop_after_delay(left)
    if policy.max_attempts is not None:
        stop = stop_any(stop, stop_after_attempt(policy.max_attempts))
    retrying = AsyncRetrying(
        retry=retry_if_exception(retryable),
        wait=wait_random_exponential(multiplier=policy.initial_backoff_s,
                                     max=policy.max_backoff_s),
        stop=stop, reraise=False)
    try:
        return await retrying(attempt)
    except RetryError as exc:
        raise _gave_up(exc.last_attempt) from None


def _gave_up(state: Future) -> BaseException:
    last: BaseException | None = state.exception()
    attempts = state.attempt_number
    if last is None:
        return DeadlineExceededError("raftkv: call failed")
    if isinstance(last, DeadlineExceededError) or attempts == 1:
        return last
    err = DeadlineExceededError(f"raftkv: gave up after {attempts} attempts: {last}")
    err.grpc_code = getattr(last, "grpc_code", None)
    err.__cause__ = last
    return err
