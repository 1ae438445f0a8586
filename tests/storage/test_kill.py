"""Kill safety: a child writing batches is SIGKILLed at a random moment, several times over.

After every kill the directory is reopened and checked: every batch the child acknowledged
(printed after its write returned) is there, and the last batch is either entirely there or
entirely absent (log entries, hard state and state keys alike), then the child resumes.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from raftkv.raft.storage import MemoryStorage
from raftkv.storage import Store
from tests.storage import kill_child

ROOT = Path(__file__).resolve().parents[2]


def run_and_kill(path: Path, seed: int, rng: random.Random,
                 durable: dict[str, int]) -> dict[str, int]:
    """Start the child, SIGKILL it at a random moment; the last acknowledged batches
    (``durable``, what the previous round left on disk, counts as acknowledged)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.storage.kill_child", str(path),
                             str(seed)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    acked = dict(durable)
    started = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if len(parts) == 2 and line.endswith("\n"):
                acked[parts[0]] = int(parts[1])
                started.set()

    reader = threading.Thread(target=read)
    reader.start()
    if not started.wait(timeout=20):
        proc.kill()
        reader.join()
        err = proc.stderr.read() if proc.stderr else ""
        pytest.fail(f"child never acknowledged a batch: {err}")
    time.sleep(rng.uniform(0.0, 0.4))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reader.join()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    return acked


def expected_log(seed: int, upto: int) -> MemoryStorage:
    """The log after batches ``1 .. upto``, without compaction."""
    m = MemoryStorage()
    for k in range(1, upto + 1):
        start, count, _ = kill_child.plan(seed, k, m.last_index(), m.first_index())
        m.append(kill_child.entries(k, start, count))
    return m


def check(path: Path, seed: int, acked: dict[str, int]) -> dict[str, int]:
    """Reopen and check the durable state; returns the last durable batches."""
    with Store.open(path) as store:
        log = store.log
        durable = log.initial_state()[0].term
        assert durable in (acked["log"], acked["log"] + 1), (durable, acked)
        model = expected_log(seed, durable)
        first, last = log.first_index(), log.last_index()
        assert last == model.last_index()
        assert log.term(first - 1) == model.term(first - 1)
        assert log.entries(first, last + 1) == model.entries(first, last + 1)
        values = {store.backend.get(key) for key in kill_child.STATE_KEYS}
        assert len(values) == 1, f"state batch half applied: {values}"
        (value,) = values
        state = int(value) if value is not None else 0
        assert state in (acked["state"], acked["state"] + 1), (state, acked)
        assert state <= durable
        return {"log": durable, "state": state}


@pytest.mark.slow
def test_kill_at_random_moments(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    path = tmp_path / "db"
    durable = {"log": 0, "state": 0}
    for round_no in range(4):
        acked = run_and_kill(path, seed, rng, durable)
        try:
            durable = check(path, seed, acked)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}, round {round_no}: {exc}") from exc
    assert durable["log"] > 4, f"seed {seed}: the child made too little progress"
