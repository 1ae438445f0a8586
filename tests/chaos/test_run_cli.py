"""``raftkv-chaos run`` flags that change the servers the harness starts."""

from __future__ import annotations

import pytest

from chaos.run_cli import build_parser, run_config, run_main


def test_snapshot_count_reaches_the_server_flags() -> None:
    cfg = run_config(build_parser().parse_args(["--out", "o", "--snapshot-count", "200"]))
    flags = cfg.server_flags
    assert flags[flags.index("--snapshot-count") + 1] == "200"
    assert flags[flags.index("--snapshot-catchup-entries") + 1] == "40"
    default = run_config(build_parser().parse_args(["--out", "o"])).server_flags
    assert "--snapshot-count" not in default


def test_a_bad_snapshot_count_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["--out", "o", "--snapshot-count", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--snapshot-count" in err[0]
