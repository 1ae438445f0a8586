"""Cases that need more than one etcdctl at a time: watch with a concurrent put, two lock
holders, an election with an observer, membership with a real fourth member, snapshot,
move-leader. Each returns the transcript to normalise and compare."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time

from tests.compat.clusters import ELECTION_MS, ETCD_BIN, HEARTBEAT_MS
from tests.compat.runner import Run, Scenario, ids_in_order, sh, transcript

_seq = itertools.count()


class Bg:
    """A background etcdctl whose output goes to files (read at any time)."""

    def __init__(self, run: Run, *args: str, on: str = "all") -> None:
        n = next(_seq)
        self.out_path = run.target.root / f"bg{n}.out"
        self.err_path = run.target.root / f"bg{n}.err"
        env = {"ETCDCTL_API": "3", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                ["etcdctl", f"--endpoints={run.endpoints_for(on)}",
                 *(run.fill(a) for a in args)], stdout=out, stderr=err, env=env)

    def out(self) -> str:
        return self.out_path.read_text()

    def wait_for(self, text: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.out():
                return True
            if self.proc.poll() is not None:
                return text in self.out()
            time.sleep(0.02)
        return False

    def wait_lines(self, n: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.out().splitlines()) < n:
            if self.proc.poll() is not None:
                return
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 5.0) -> str:
        """Signal (if still running), wait, and return its transcript."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        cp = subprocess.CompletedProcess(self.proc.args, self.proc.returncode, self.out(),
                                         self.err_path.read_text())
        return transcript(cp)

    def stop_after_exit(self, timeout: float = 10.0) -> str:
        """Let it finish on its own (then stop it anyway) and return its transcript."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout)
        return self.stop()


def watch_concurrent(key: str, *flags: str) -> Scenario:
    """``etcdctl watch`` in the background, then puts/dels through another etcdctl; the
    watcher's output (after SIGINT) is the result."""
    def scenario(run: Run) -> str:
        w = Bg(run, "watch", key, *flags)
        time.sleep(0.7)  # the watch is created before the writes
        base = f"{key}x" if "--prefix" in flags else key
        steps = [run.step(sh("put", base, "v1")), run.step(sh("put", base, "v2")),
                 run.step(sh("put", f"{key}-not-watched" if "--prefix" not in flags
                             else "zz-unwatched", "x")),
                 run.step(sh("del", base))]
        w.wait_lines(4 * 2 + (3 * 2 if "--prev-kv" in flags else 0), timeout=3)
        time.sleep(0.2)
        return "".join(f"[writer] {s}" for s in steps) + w.stop()
    return scenario


def watch_history(key: str, *flags: str) -> Scenario:
    """``etcdctl watch --rev`` replays history; stopped once the replay has arrived."""
    def scenario(run: Run) -> str:
        w = Bg(run, "watch", key, *flags)
        w.wait_lines(6, timeout=3)
        time.sleep(0.3)
        return w.stop()
    return scenario


def lock_mutual_exclusion(run: Run) -> str:
    """A holds the lock; B (with a command) must block until A exits, then run."""
    a = Bg(run, "lock", "compat-lock")
    got_a = a.wait_for("compat-lock/", timeout=8)
    b = Bg(run, "lock", "compat-lock", "--", "sh", "-c", "echo B has the lock: $ETCD_LOCK_KEY")
    time.sleep(1.0)
    b_blocked = b.proc.poll() is None and "B has" not in b.out()
    a_text = a.stop()
    b.wait_for("B has", timeout=8)
    b_text = b.stop(timeout=8)
    return (f"A acquired: {got_a}\nB blocked while A held the lock: {b_blocked}\n"
            f"[A] {a_text}[B] {b_text}")


def lock_with_command(run: Run) -> str:
    """Two ``etcdctl lock name cmd`` at once: their critical sections must not overlap."""
    log = run.target.root / f"lockcmd{next(_seq)}.log"
    body = f"echo in $0 >> {log}; sleep 0.4; echo out $0 >> {log}"
    p1 = Bg(run, "lock", "compat-lock2", "--", "sh", "-c", body, "P1")
    p2 = Bg(run, "lock", "compat-lock2", "--", "sh", "-c", body, "P2")
    t1, t2 = p1.stop_after_exit(), p2.stop_after_exit()
    events = log.read_text().split("\n") if log.exists() else []
    events = [e for e in events if e]
    first = events[0].split()[1] if events else "P1"
    second = "P2" if first == "P1" else "P1"
    seq = " ".join(e.replace(first, "first").replace(second, "second") for e in events)
    return f"critical sections: {seq}\n[P1] {t1}[P2] {t2}"


def election(run: Run) -> str:
    """An observer (``elect -l``), candidate A (leader), candidate B (waits); A resigns
    (SIGINT) and B becomes leader; the observer saw alpha then beta."""
    obs = Bg(run, "elect", "-l", "compat-elect")
    time.sleep(0.5)
    a = Bg(run, "elect", "compat-elect", "alpha")
    a_lead = a.wait_for("alpha", timeout=8)
    obs.wait_for("alpha", timeout=5)
    b = Bg(run, "elect", "compat-elect", "beta")
    time.sleep(1.0)
    b_waiting = b.proc.poll() is None and "beta" not in b.out()
    a_text = a.stop()
    b_lead = b.wait_for("beta", timeout=8)
    obs.wait_for("beta", timeout=5)
    time.sleep(0.2)
    b_text = b.stop()
    obs_text = obs.stop()
    return (f"A leader: {a_lead}\nB waited while A led: {b_waiting}\nB leader: {b_lead}\n"
            f"[A] {a_text}[B] {b_text}[observer] {obs_text}")


def move_leader(run: Run) -> str:
    out = run.step(sh("move-leader", "{id_F1}"))
    time.sleep(0.3)
    lead = run.target.leader()
    return out + f"new leader is the target: {lead is run.roles['F1']}\n"


def snapshot_save(run: Run) -> str:
    path = run.target.root / "snapshot.db"
    path.unlink(missing_ok=True)
    out = run.step(sh("snapshot", "save", str(path), on="leader", timeout=30))
    size = path.stat().st_size if path.exists() else -1
    return out + f"file exists: {path.exists()}, non-empty: {size > 0}\n"


def _start_fourth(run: Run, peer_url: str, client_port: int, learner_list: str) -> \
        subprocess.Popen[bytes]:
    """Start a real fourth member (``--initial-cluster-state existing``)."""
    t = run.target
    data = t.root / "n4"
    ep = f"http://127.0.0.1:{client_port}"
    common = ["--name", "n4", "--data-dir", str(data), "--listen-client-urls", ep,
              "--advertise-client-urls", ep, "--listen-peer-urls", peer_url,
              "--initial-advertise-peer-urls", peer_url, "--initial-cluster", learner_list,
              "--initial-cluster-state", "existing",
              "--heartbeat-interval", HEARTBEAT_MS, "--election-timeout", ELECTION_MS]
    if t.label == "etcd":
        args = [ETCD_BIN, *common, "--logger", "zap", "--log-outputs", "stderr"]
    else:
        args = [sys.executable, "-m", "raftkv", "serve", *common]
    with open(t.root / "n4.log", "ab") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


def member_add(run: Run, name: str, peer: str) -> subprocess.CompletedProcess[str]:
    """``member add --learner``, retried while the cluster is too young for etcd's strict
    reconfiguration check (``unhealthy cluster`` in the first seconds after start)."""
    deadline = time.monotonic() + 10
    while True:
        p = run.exec(sh("member", "add", name, f"--peer-urls={peer}", "--learner"))
        if "unhealthy cluster" not in p.stderr or time.monotonic() > deadline:
            return p
        time.sleep(0.5)


def member_list(*flags: str) -> Scenario:
    """``member list``; rows are compared as a set (ids differ), and whether they are in
    ascending id order (as etcd lists them) is checked on the raw output."""
    def scenario(run: Run) -> str:
        p = run.exec(sh("member", "list", *flags))
        return transcript(p) + f"members in id order: {ids_in_order(p.stdout)}\n"
    return scenario


def membership(run: Run) -> str:
    """member add --learner (a real 4th member started with the printed
    ETCD_INITIAL_CLUSTER), member list, promote once caught up, remove; back to 3."""
    from tests.integration.procs import free_ports

    t = run.target
    peer = t.spare_peer_urls[0]
    parts = []
    p = member_add(run, "n4", peer)
    parts.append(transcript(p))
    initial = ""
    for line in p.stdout.splitlines():
        if line.startswith("ETCD_INITIAL_CLUSTER="):
            initial = line.split("=", 1)[1].strip('"')
    if p.returncode != 0 or not run.new_members:
        return "".join(parts)
    new_id = f"{run.new_members[0]:x}"
    parts.append(run.step(sh("member", "list")))
    port = free_ports(1)[0]
    run.new_client_urls.append(f"http://127.0.0.1:{port}")
    proc = _start_fourth(run, peer, port, initial)
    try:
        # wait until the learner has started (published its name), as an operator would
        deadline = time.monotonic() + 20
        started = False
        while time.monotonic() < deadline and not started:
            lst = run.exec(sh("member", "list")).stdout
            started = any(line.startswith(f"{new_id}, started") for line in lst.splitlines())
            time.sleep(0.2)
        parts.append(f"learner started: {started}\n")
        promoted = ""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            q = run.exec(sh("member", "promote", new_id))
            promoted = transcript(q)
            if q.returncode == 0:
                break
            time.sleep(0.3)
        parts.append(promoted)
        parts.append(run.step(sh("member", "list")))
        parts.append(run.step(sh("member", "remove", new_id)))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    parts.append(run.step(sh("member", "list")))
    return "".join(parts)


def promote_unstarted(run: Run) -> str:
    """Promoting a learner that never started is refused with etcd's error."""
    peer = run.target.spare_peer_urls[1]
    parts = [transcript(member_add(run, "n5", peer))]
    if run.new_members:
        mid = f"{run.new_members[-1]:x}"
        parts.append(run.step(sh("member", "promote", mid)))
        parts.append(run.step(sh("member", "remove", mid)))
    return "".join(parts)
