"""The normaliser labels what must differ between two clusters and nothing else (no
clusters needed)."""

from __future__ import annotations

from pathlib import Path

from tests.compat.clusters import Node, Target
from tests.compat.runner import Run, ids_in_order, normalise


def make_run(base_rev: int = 100) -> Run:
    nodes = [Node("n1", "127.0.0.1:40001", "http://127.0.0.1:40002", 0x1111),
             Node("n2", "127.0.0.1:40003", "http://127.0.0.1:40004", 0xABCDEF0123),
             Node("n3", "127.0.0.1:40005", "http://127.0.0.1:40006", 0x9999)]
    run = Run(Target("t", nodes, Path("/tmp/compat-x"), ["http://127.0.0.1:40007"]),
              base_rev=base_rev)
    run.roles = {"L": nodes[1], "F1": nodes[0], "F2": nodes[2]}
    run.vars["cluster_id"] = str(0x77)
    return run


def test_ids_endpoints_names_by_role() -> None:
    text = (f"{0xABCDEF0123:x}, started, n2, http://127.0.0.1:40004, "
            "http://127.0.0.1:40003, false\n"
            f"Member {0x1111:16x} added to cluster {0x77:16x}\n")
    assert normalise(text, make_run()) == (
        "ID_L, started, NAME_L, PEER_L, EP_L, false\n"
        "Member ID_F1 added to cluster CLUSTER_ID\n")


def test_revisions_are_relative_and_deltas_still_compared() -> None:
    a = normalise('{"header":{"revision":103},"kvs":[{"create_revision":101}]}\n',
                  make_run(100))
    b = normalise('{"header":{"revision":503},"kvs":[{"create_revision":502}]}\n',
                  make_run(500))
    assert a == '{"header":{"revision":"r+3"},"kvs":[{"create_revision":"r+1"}]}\n'
    assert a != b
    assert normalise("compacted revision 98\n", make_run(100)) == "compacted revision r-2\n"


def test_values_keys_counts_and_versions_are_not_touched() -> None:
    text = '{"kvs":[{"key":"YQ==","version":3,"value":"eA=="}],"count":12,"more":true}\n'
    assert normalise(text, make_run()) == text
    assert normalise("lim/a\n1\n", make_run()) != normalise("lim/a\n2\n", make_run())


def test_leases_labelled_in_order_of_appearance() -> None:
    text = "lease 694d7f3a1b2c3d4e granted with TTL(100s)\nlock/694d7f3a1b2c3d4e\n"
    assert normalise(text, make_run()) == (
        "lease LEASE1 granted with TTL(100s)\nlock/LEASE1\n")


def test_remaining_ttl_only_close_to_granted_is_folded() -> None:
    close = "lease 1 granted with TTL(100s), remaining(98s)"
    far = "lease 1 granted with TTL(100s), remaining(40s)"
    assert "remaining(~TTL)" in normalise(close, make_run())
    assert "remaining(40s)" in normalise(far, make_run())


def test_hashes_keep_equality_structure() -> None:
    same = "127.0.0.1:40001, 5\n127.0.0.1:40003, 5\n"
    split = "127.0.0.1:40001, 5\n127.0.0.1:40003, 6\n"
    assert normalise(same, make_run()) == "EP_F1, HASH1\nEP_L, HASH1\n"
    assert normalise(split, make_run()) == "EP_F1, HASH1\nEP_L, HASH2\n"


def test_client_log_lines_keep_message_and_error() -> None:
    line = ('{"level":"warn","ts":"2026-01-01T00:00:00Z","caller":"x.go:1","msg":"retrying",'
            '"target":"endpoint://client-1/127.0.0.1:40001","attempt":0,"error":"boom"}')
    assert normalise(f"! {line}\n", make_run()) == "! [client warn] retrying (boom)\n"


def test_member_rows_sorted_and_id_order_checked() -> None:
    assert normalise(f"{0x9999:x}, started, n3, http://127.0.0.1:40006, "
                     f"http://127.0.0.1:40005, false\n{0x1111:x}, started, n1, "
                     "http://127.0.0.1:40002, http://127.0.0.1:40001, false\nend\n",
                     make_run()).splitlines()[0].startswith("ID_F1")
    assert ids_in_order("1a, started\n2b, started\n")
    assert not ids_in_order("2b, started\n1a, started\n")


def test_short_ids_in_table_rows_keep_separators() -> None:
    assert normalise(f"127.0.0.1:40001, {0x1111:x}, 3.4.0, 20 kB, true, false, 2, 9, 9, \n",
                     make_run()) == "EP_F1, ID_F1, VERSION, SIZE, true, false, T, IDX, IDX,\n"


def test_attached_keys_are_compared_as_a_set() -> None:
    out = "lease 1 granted with TTL(100s), remaining(99s), attached keys([lt/b lt/a])"
    assert "attached keys([lt/a lt/b])" in normalise(out, make_run())
