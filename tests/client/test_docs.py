"""docs/client.md says every example runs as shown: run its ```python blocks against a
real 3-member cluster. Whole programs (*Connect*, *Synchronous code*) run as they are; the
fragments in between run, in order, inside the *Connect* program's ``main()`` with
``client`` connected -- as the page says. Only the endpoints are swapped for the test
cluster's, and they must be the ones ``raftkv cluster up`` / ``./dev up`` start."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from raftkv.cli.local import DEFAULT_BASE_PORT
from tests.integration.procs import ProcCluster

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "client.md"
CLUSTER_UP = ",".join(f"127.0.0.1:{DEFAULT_BASE_PORT + 2 * i}" for i in range(3))

_HARNESS = """\
import asyncio
from raftkv.client import Client

async def main() -> None:
    async with Client({endpoints!r}) as client:
{body}

asyncio.run(main())
"""


def _blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.S | re.M)


def _programs(endpoints: str) -> list[tuple[str, str]]:
    """(name, source): each whole program, then the fragments as one program."""
    programs, fragments = [], []
    for i, block in enumerate(_blocks()):
        if "asyncio.run(" in block or "SyncClient(" in block:
            programs.append((f"block {i}", block.replace(CLUSTER_UP, endpoints)))
        else:
            fragments.append(block)
    body = textwrap.indent("\n".join(fragments), " " * 8)
    programs.append(("fragments", _HARNESS.format(endpoints=endpoints, body=body)))
    return programs


def test_examples_use_the_endpoints_users_start() -> None:
    text = DOC.read_text()
    ports = set(re.findall(r"127\.0\.0\.1:(\d+)", text))
    assert ports <= {str(DEFAULT_BASE_PORT + 2 * i) for i in range(3)} | {"2379"}
    for i, block in enumerate(_blocks()):
        if "asyncio.run(" in block or "SyncClient(" in block:
            assert CLUSTER_UP in block, f"block {i} does not dial {CLUSTER_UP}"


@pytest.mark.parametrize("index", range(3))
def test_docs_examples_run_as_shown(cluster: ProcCluster, index: int) -> None:
    programs = _programs(cluster.endpoints)
    assert len(programs) == 3  # Connect, Synchronous code, and the fragments
    name, source = programs[index]
    try:
        done = subprocess.run([sys.executable, "-c", source], cwd=ROOT, text=True,
                              capture_output=True, timeout=120)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"docs/client.md {name} hung:\n{source}\n{exc.stdout!r}")
    assert done.returncode == 0, f"docs/client.md {name} failed:\n{source}\n{done.stderr}"
    if name == "fragments":
        assert "lost" not in done.stdout  # on_lost stays quiet on a normal revoke
