"""The seeded simulator: fixed seeds pass, runs replay exactly, failures carry a trace."""

from __future__ import annotations

import pytest

from chaos.sim import Faults, SimConfig, Simulator, Violation
from chaos.sim_cli import main

SEEDS_5 = range(1, 9)
SEEDS_3 = range(1, 7)


@pytest.mark.parametrize("seed", SEEDS_5)
def test_five_nodes_every_fault(seed: int) -> None:
    """Safety and liveness hold under every fault on 5 nodes (seeds are fixed)."""
    stats = Simulator(SimConfig(seed=seed, nodes=5)).run()
    assert stats.commits > 50
    assert stats.heal_commits > 0


@pytest.mark.parametrize("seed", SEEDS_3)
def test_three_nodes_every_fault(seed: int) -> None:
    stats = Simulator(SimConfig(seed=seed, nodes=3)).run()
    assert stats.commits > 50


def test_seed_replays_exactly() -> None:
    a = Simulator(SimConfig(seed=42, ticks=600, heal_ticks=200))
    b = Simulator(SimConfig(seed=42, ticks=600, heal_ticks=200))
    assert a.run() == b.run()
    assert a.format_trace() == b.format_trace()
    c = Simulator(SimConfig(seed=43, ticks=600, heal_ticks=200))
    assert c.run() != a.stats


def test_faults_are_injected() -> None:
    """A run with every fault enabled really partitions, crashes and changes membership."""
    total = [Simulator(SimConfig(seed=s, swarm=False)).run() for s in (1, 2)]
    assert sum(st.partitions for st in total) > 5
    assert sum(st.crashes for st in total) > 5
    assert sum(st.conf_changes for st in total) > 2
    assert sum(st.snapshots_sent for st in total) > 0
    assert sum(st.reads for st in total) > 50


def test_no_faults_is_quiet() -> None:
    stats = Simulator(SimConfig(seed=7, faults=Faults.none(), swarm=False)).run()
    assert stats.leaders == 1
    assert stats.crashes == 0


def test_violation_reports_seed_and_trace() -> None:
    sim = Simulator(SimConfig(seed=5, ticks=300, heal_ticks=100))
    sim.run()
    with pytest.raises(Violation) as info:
        sim.fail("planted")
    assert info.value.seed == 5
    assert "seed 5" in str(info.value)
    assert info.value.trace, "a violation carries the trace of the last steps"


def test_cli_reports_rate_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "2", "--nodes", "3", "--ticks", "400"]) == 0
    out = capsys.readouterr().out
    assert "2 seeds x 400 ticks on 3 nodes: 0 violation(s)" in out
    assert "seeds/min" in out


def test_cli_rejects_bad_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--nodes", "2"]) == 2
    assert "--nodes=2" in capsys.readouterr().err


def test_raftkv_chaos_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    from chaos.__main__ import main as chaos_main

    assert chaos_main(["sim", "--seeds", "1", "--nodes", "3", "--ticks", "300"]) == 0
    assert "0 violation(s)" in capsys.readouterr().out
    assert chaos_main(["bogus"]) == 2
    assert "unknown command 'bogus'" in capsys.readouterr().err
