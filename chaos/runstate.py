"""What a harness run has created, on disk, so ``raftkv-chaos cleanup`` can undo it.

Each run writes ``<state dir>/<run id>.json`` (default state dir
``/tmp/raftkv-chaos-runs``, or ``$RAFTKV_CHAOS_STATE_DIR``) before it creates anything and
updates it whenever it starts a process. Every name the harness gives the kernel
(namespaces, bridge, veth links) starts with :data:`PREFIX` followed by the run id, so
leftovers are found by name even if a state file was lost. Member processes of a TLS run
get :attr:`RunState.tmp_dir` as ``TMPDIR`` (a TLS listener keeps its private Unix sockets in
a temporary directory, which a ``kill -9`` leaves behind); it is removed with the run.

``cleanup`` never touches a run whose harness process is still alive (unless forced), and
signals only recorded PIDs whose command line is still that run's ``raftkv serve``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["PREFIX", "RunState", "cleanup", "new_run_id", "state_dir"]

PREFIX = "rkvc"
RUN_ID_LEN = 5


def state_dir() -> Path:
    """Where run state files live."""
    return Path(os.environ.get("RAFTKV_CHAOS_STATE_DIR", "/tmp/raftkv-chaos-runs"))


def new_run_id() -> str:
    """Five hex digits: short enough for 15-byte interface names."""
    return secrets.token_hex(3)[:RUN_ID_LEN]


@dataclass
class RunState:
    """One run's footprint (see the module docstring)."""

    run_id: str
    out_dir: str
    backend: str
    harness_pid: int = field(default_factory=os.getpid)
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        """The prefix of every kernel object this run creates."""
        return PREFIX + self.run_id

    @property
    def path(self) -> Path:
        return state_dir() / f"{self.run_id}.json"

    @property
    def tmp_dir(self) -> Path:
        """The members' ``TMPDIR`` (short: Unix socket paths are limited to 107 bytes)."""
        return Path(tempfile.gettempdir()) / f"{self.prefix}-tmp"

    def remove_tmp_dir(self) -> list[str]:
        if not self.tmp_dir.exists():
            return []
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        return [f"removed {self.tmp_dir}"]

    def save(self) -> None:
        """Write the state file atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> RunState:
        data = json.loads(path.read_text())
        return cls(run_id=str(data["run_id"]), out_dir=str(data["out_dir"]),
                   backend=str(data["backend"]), harness_pid=int(data["harness_pid"]),
                   pids={str(k): int(v) for k, v in data.get("pids", {}).items()})


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def harness_alive(state: RunState) -> bool:
    """True if the run's harness process still runs (and is a chaos harness)."""
    return state.harness_pid != os.getpid() and b"chaos" in _cmdline(state.harness_pid)


def is_run_member(pid: int, state: RunState) -> bool:
    """True if ``pid`` is still a ``raftkv serve`` process of this run."""
    cmd = _cmdline(pid)
    return b"raftkv" in cmd and b"serve" in cmd and state.out_dir.encode() in cmd


def kill_members(state: RunState) -> list[str]:
    """SIGKILL (after SIGCONT) every recorded member process still running."""
    done = []
    for name, pid in sorted(state.pids.items()):
        if is_run_member(pid, state):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGCONT)
            done.append(f"killed {name} (pid {pid})")
    return done


def _ip(*args: str) -> str:
    try:
        out = subprocess.run(["ip", *args], capture_output=True, text=True, check=False,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout


def kernel_objects(prefix: str = PREFIX) -> tuple[list[str], list[str]]:
    """Network namespaces and links whose names start with ``prefix``."""
    namespaces = [line.split()[0] for line in _ip("netns", "list").splitlines()
                  if line.strip() and line.split()[0].startswith(prefix)]
    links = []
    for line in _ip("-o", "link", "show").splitlines():
        parts = line.split(": ")
        if len(parts) > 1:
            name = parts[1].split("@")[0]
            if name.startswith(prefix):
                links.append(name)
    return namespaces, links


def remove_kernel_objects(prefix: str) -> list[str]:
    """Delete the namespaces and links named ``prefix...`` (killing a namespace removes its
    nftables tables and its end of every veth)."""
    namespaces, links = kernel_objects(prefix)
    done = []
    for ns in namespaces:
        _ip("netns", "delete", ns)
        done.append(f"deleted netns {ns}")
    for link in links:
        _ip("link", "delete", link)
        done.append(f"deleted link {link}")
    return done


def cleanup(*, force: bool = False) -> tuple[list[str], list[str]]:
    """Remove every leftover of finished (or, with ``force``, running) harness runs.

    Returns:
        (what was done, runs skipped because their harness is alive).
    """
    done: list[str] = []
    live: list[str] = []
    directory = state_dir()
    paths = sorted(directory.glob("*.json")) if directory.is_dir() else []
    for path in paths:
        try:
            state = RunState.load(path)
        except (OSError, ValueError, KeyError) as exc:
            done.append(f"ignored unreadable {path}: {exc}")
            continue
        if harness_alive(state) and not force:
            live.append(state.run_id)
            continue
        done += kill_members(state)
        done += remove_kernel_objects(state.prefix)
        done += state.remove_tmp_dir()
        state.remove()
        done.append(f"removed {path}")
    done += _remove_orphans({PREFIX + run for run in live})
    return done, live


def _run_prefix(name: str) -> str:
    return name[:len(PREFIX) + RUN_ID_LEN]


def _remove_orphans(live_prefixes: set[str]) -> list[str]:
    """Objects named like the harness's with no state file here: removed unless some
    process still runs inside one of that run's namespaces (a run whose state lives in
    another state directory)."""
    namespaces, links = kernel_objects()
    busy = set(live_prefixes)
    busy |= {_run_prefix(ns) for ns in namespaces if _ip("netns", "pids", ns).strip()}
    done: list[str] = []
    for run in sorted({_run_prefix(n) for n in (*namespaces, *links)} - busy):
        done += remove_kernel_objects(run)
    return done
