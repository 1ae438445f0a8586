"""raftkv's chaos tooling: everything that injects faults and judges the outcome.

The package sits next to :mod:`raftkv` (never imported by it) and holds:

* :mod:`chaos.sim` — the seeded, deterministic simulator of the pure Raft core;
* :mod:`chaos.history` — the recorded operation history (Jepsen's ``invoke`` / ``ok`` /
  ``fail`` / ``info`` events), stored as JSON lines;
* :mod:`chaos.models` — sequential reference models (register, mutex) the checkers replay;
* :mod:`chaos.checkers` — the linearizability checker (Wing & Gong / Lowe search with
  memoisation, partitioned per key) and the bank and lock invariant checkers.

The history, models and checkers are pure: they read no clock (a time budget takes an
injected clock), open no file unless handed one, and are shared by the unit tests and the
real-cluster harness.
"""
