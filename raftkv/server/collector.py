"""Garbage-collector settings for a process that runs a member.

CPython's cyclic collector starts a young-generation pass every 700 net allocations of
container objects. A member under load allocates a few dozen per request (the request, its
future, its result, the applied record, the watch event), almost all of them freed by
reference counting long before any cycle matters; with the defaults, collections took
about 9% of a busy member's CPU and the full ones paused it for tens of milliseconds
(measured in docs/performance.md). A member raises the young threshold instead: the
collector still runs, just about 70 times less often, and each pass finds mostly dead
objects already gone.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""Net allocations between two young-generation collections (CPython's default: 700)."""
MIDDLE_THRESHOLD = 20
"""Young collections between two middle-generation ones (CPython's default: 10)."""


def relax() -> None:
    """Raise the collector's thresholds for a member's allocation pattern. Never lowers a
    threshold the process set higher, and leaves a disabled collector (0) alone."""
    young, middle, old = gc.get_threshold()
    if 0 < young < YOUNG_THRESHOLD:
        gc.set_threshold(YOUNG_THRESHOLD, max(middle, MIDDLE_THRESHOLD), old)


def freeze_startup() -> None:
    """Collect once, then exempt every object alive now (modules, protobuf descriptors,
    the loaded state) from future collections: they live as long as the process. Only for
    a process that runs nothing but the member (``raftkv serve``)."""
    gc.collect()
    gc.freeze()
