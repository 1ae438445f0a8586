"""ServerConfig: etcd's defaults, validate() errors that name the value, TOML, ids."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import random
from pathlib import Path

import pytest

from raftkv.errors import ConfigError
from raftkv.server.config import (
    Endpoint,
    ServerConfig,
    cluster_id,
    format_initial_cluster,
    load_toml,
    member_id,
    parse_initial_cluster,
    parse_url,
    read_config_file,
)

REPO = Path(__file__).resolve().parents[2]
THREE = "n1=http://127.0.0.1:2380,n2=http://127.0.0.1:2382,n3=http://127.0.0.1:2384"


def n1(**changes: object) -> ServerConfig:
    """Member n1 of a valid 3-member cluster, with ``changes`` applied."""
    base: dict[str, object] = {
        "name": "n1", "initial_cluster": parse_initial_cluster(THREE),
        "listen_client_urls": ("http://127.0.0.1:2379",),
        "listen_peer_urls": ("http://127.0.0.1:2380",),
    }
    base.update(changes)
    return ServerConfig(**base)  # type: ignore[arg-type]


def invalid(cfg: ServerConfig, *needles: str) -> str:
    with pytest.raises(ConfigError) as info:
        cfg.validate()
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


# -- defaults -----------------------------------------------------------------------------

def test_defaults_are_etcds() -> None:
    cfg = ServerConfig()
    cfg.validate()
    assert cfg.name == "default"
    assert cfg.data_dir == "default.raftkv"
    assert cfg.listen_client_urls == cfg.advertise_client_urls == ("http://127.0.0.1:2379",)
    assert cfg.listen_peer_urls == cfg.initial_advertise_peer_urls == ("http://127.0.0.1:2380",)
    assert dict(cfg.initial_cluster) == {"default": "http://127.0.0.1:2380"}
    assert cfg.initial_cluster_state == "new"
    assert cfg.initial_cluster_token == "raftkv-cluster"
    assert (cfg.heartbeat_interval_ms, cfg.election_timeout_ms) == (100, 1000)
    assert (cfg.snapshot_count, cfg.snapshot_catchup_entries) == (100_000, 5_000)
    assert cfg.max_request_bytes == 1_572_864 == int(1.5 * 1024 * 1024)
    assert cfg.quota_backend_bytes == 2 * 1024**3


def test_derived_defaults_follow_the_name_and_listen_urls() -> None:
    cfg = ServerConfig(name="n7", listen_peer_urls=("http://10.0.0.7:2380",),
                       listen_client_urls=("http://10.0.0.7:2379",))
    assert cfg.data_dir == "n7.raftkv"
    assert cfg.initial_advertise_peer_urls == ("http://10.0.0.7:2380",)
    assert cfg.advertise_client_urls == ("http://10.0.0.7:2379",)
    assert dict(cfg.initial_cluster) == {"n7": "http://10.0.0.7:2380"}
    cfg.validate()


def test_frozen_and_validate_changes_nothing() -> None:
    cfg = n1()
    before = dataclasses.asdict(cfg)
    cfg.validate()
    assert dataclasses.asdict(cfg) == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "n2"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.initial_cluster["n9"] = "http://x:1"  # type: ignore[index]
    assert hash(cfg) == hash(n1())
    assert cfg == n1() != n1(name="n2")
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    assert copy.deepcopy(cfg) == cfg


def test_timing_is_derived_like_etcd() -> None:
    cfg = n1(heartbeat_interval_ms=50, election_timeout_ms=500)
    assert cfg.tick_interval_s == pytest.approx(0.05)
    assert cfg.heartbeat_ticks == 1
    assert cfg.election_ticks == 10
    raft = cfg.to_raft_config(random.Random(1), applied=7)
    raft.validate()
    assert (raft.id, raft.election_ticks, raft.heartbeat_ticks, raft.applied) == (
        cfg.member_id, 10, 1, 7)


def test_endpoints() -> None:
    cfg = n1(listen_client_urls=("http://127.0.0.1:2379", "http://[::1]:2379"))
    assert cfg.listen_client_endpoints == (Endpoint("127.0.0.1", 2379), Endpoint("::1", 2379))
    assert [e.address for e in cfg.listen_client_endpoints] == ["127.0.0.1:2379", "[::1]:2379"]
    assert cfg.peer_endpoint("n3") == Endpoint("127.0.0.1", 2384)
    assert [m.name for m in cfg.members] == ["n1", "n2", "n3"]


# -- ids ----------------------------------------------------------------------------------

def test_ids_match_etcd() -> None:
    # etcd's well-known ids of a default single-member cluster (etcd --name default).
    mid = member_id("default", ["http://localhost:2380"], "etcd-cluster")
    assert f"{mid:x}" == "8e9e05c52164694d"
    assert f"{cluster_id([mid]):x}" == "cdf818194e3a8c32"


def test_ids_are_deterministic_and_distinct() -> None:
    a, b = n1(), n1()
    assert a.member_id == b.member_id
    assert a.cluster_id == b.cluster_id
    ids = [m.id for m in a.members]
    assert len(set(ids)) == 3
    assert 0 not in ids
    assert a.member_id == ids[0]
    other_token = n1(initial_cluster_token="another")
    assert other_token.member_id != a.member_id
    assert other_token.cluster_id != a.cluster_id
    # peer URL order and spelling do not matter; the name is not hashed (as in etcd)
    assert member_id("x", ["http://B:2", "http://a:1/"], "t") == member_id(
        "y", ["http://a:1", "http://b:2"], "t")
    assert cluster_id([3, 1, 2]) == cluster_id([1, 2, 3]) != cluster_id([1, 2])
    # every member computes the same cluster id
    assert {n1(name=n, listen_peer_urls=(u,)).cluster_id
            for n, u in parse_initial_cluster(THREE).items()} == {a.cluster_id}


# -- URLs ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "needle"), [
    ("127.0.0.1:2379", "127.0.0.1:2379"),
    ("http://", "http://"),
    ("http://host", "has no port"),
    ("http://host:0", "port 0"),
    ("http://host:70000", "70000"),
    ("http://host:abc", "http://host:abc"),
    ("http://host:1/path", "/path"),
    ("ftp://host:1", "ftp://host:1"),
    ("https://host", "no port"),
])
def test_parse_url_errors(url: str, needle: str) -> None:
    with pytest.raises(ConfigError, match="--flag") as info:
        parse_url(url, flag="--flag")
    assert needle in str(info.value)


def test_parse_url() -> None:
    assert parse_url("http://Example.COM:80/") == Endpoint("example.com", 80)
    assert parse_url(" http://[::1]:2379 ") == Endpoint("::1", 2379)


@pytest.mark.parametrize(("changes", "needles"), [
    ({"listen_client_urls": ("http://127.0.0.1",)}, ["--listen-client-urls", "no port"]),
    ({"listen_client_urls": ("http://127.0.0.1:99999",)},
     ["--listen-client-urls", "99999", "out of range"]),
    ({"listen_peer_urls": ("https://127.0.0.1:2380",)}, ["--listen-peer-urls", "TLS"]),
    ({"advertise_client_urls": ("not a url",)}, ["--advertise-client-urls", "not a url"]),
    ({"listen_client_urls": ()}, ["--listen-client-urls is empty"]),
    ({"listen_client_urls": ("http://127.0.0.1:2379", "http://127.0.0.1:2379/")},
     ["--listen-client-urls", "twice"]),
    ({"listen_client_urls": ("http://127.0.0.1:2380",)},
     ["--listen-client-urls and --listen-peer-urls", "127.0.0.1:2380"]),
    ({"listen_client_urls": ("http://0.0.0.0:2379",)},
     ["--advertise-client-urls", "0.0.0.0", "wildcard"]),
])
def test_bad_urls(changes: dict[str, object], needles: list[str]) -> None:
    invalid(n1(**changes), *needles)


def test_wildcard_listen_is_fine_with_an_advertised_address() -> None:
    n1(listen_client_urls=("http://0.0.0.0:2379",),
       advertise_client_urls=("http://10.0.0.1:2379",)).validate()


def test_url_list_given_as_comma_separated_string() -> None:
    cfg = n1(listen_client_urls="http://127.0.0.1:2379, http://127.0.0.1:3379")
    assert cfg.listen_client_urls == ("http://127.0.0.1:2379", "http://127.0.0.1:3379")


# -- initial cluster ----------------------------------------------------------------------

def test_parse_initial_cluster_round_trip() -> None:
    parsed = parse_initial_cluster(THREE)
    assert list(parsed) == ["n1", "n2", "n3"]
    assert format_initial_cluster(parsed) == THREE


@pytest.mark.parametrize(("text", "needle"), [
    ("", "--initial-cluster is empty"),
    ("n1", "'n1' is not name=peer-url"),
    ("n1=http://a:1,,n2=http://b:2", "'' is not name=peer-url"),
    ("=http://a:1", "'=http://a:1'"),
    ("n1=http://a:1,n1=http://b:2", "names 'n1' twice"),
])
def test_malformed_initial_cluster(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_initial_cluster(text)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_initial_cluster_must_name_this_member() -> None:
    invalid(n1(name="n4", listen_peer_urls=("http://127.0.0.1:2386",)),
            "--initial-cluster=", "does not name this member 'n4'")


def test_advertised_peer_url_must_match_the_entry() -> None:
    invalid(n1(initial_advertise_peer_urls=("http://127.0.0.1:2390",)),
            "--initial-advertise-peer-urls=http://127.0.0.1:2390",
            "n1=http://127.0.0.1:2380")


def test_duplicate_peer_urls() -> None:
    cluster = {"n1": "http://127.0.0.1:2380", "n2": "http://127.0.0.1:2380"}
    invalid(n1(initial_cluster=cluster), "'n1' and 'n2'", "same peer URL")


@pytest.mark.parametrize(("cluster", "needle"), [
    ({"n1": "http://127.0.0.1:2380", "n2": "http://127.0.0.1"}, "--initial-cluster n2"),
    ({"n1": "http://127.0.0.1:2380", "n 2": "http://127.0.0.1:2382"}, "'n 2'"),
    ({"n1": "http://127.0.0.1:2380", "n2": "http://0.0.0.0:2382"}, "wildcard"),
])
def test_bad_initial_cluster_entries(cluster: dict[str, str], needle: str) -> None:
    invalid(n1(initial_cluster=cluster), needle)


def test_bad_state_and_token_and_name() -> None:
    invalid(n1(initial_cluster_state="joining"), "--initial-cluster-state='joining'",
            "'new'", "'existing'")
    n1(initial_cluster_state="existing").validate()
    invalid(n1(initial_cluster_token=" "), "--initial-cluster-token")
    invalid(ServerConfig(name=""), "--name", "''")
    invalid(ServerConfig(name="a=b"), "--name", "'a=b'")
    invalid(n1(data_dir=" "), "--data-dir")
    invalid(n1(log_level="loud"), "--log-level='loud'")


# -- numbers ------------------------------------------------------------------------------

def test_election_must_be_five_heartbeats() -> None:
    invalid(n1(heartbeat_interval_ms=100, election_timeout_ms=400),
            "--election-timeout[400ms]", "--heartbeat-interval[100ms]", "5 times")
    n1(heartbeat_interval_ms=100, election_timeout_ms=500).validate()
    invalid(n1(election_timeout_ms=60_000), "--election-timeout[60000ms] is too long")


@pytest.mark.parametrize(("attr", "flag"), [
    ("heartbeat_interval_ms", "--heartbeat-interval"),
    ("election_timeout_ms", "--election-timeout"),
    ("snapshot_count", "--snapshot-count"),
    ("snapshot_catchup_entries", "--snapshot-catchup-entries"),
    ("max_request_bytes", "--max-request-bytes"),
    ("quota_backend_bytes", "--quota-backend-bytes"),
])
@pytest.mark.parametrize("value", [0, -1])
def test_sizes_must_be_positive(attr: str, flag: str, value: int) -> None:
    invalid(n1(**{attr: value}), f"{flag}={value}", "positive")


def test_sizes_must_be_integers() -> None:
    invalid(n1(snapshot_count=True), "--snapshot-count=True", "integer")
    invalid(n1(snapshot_count="10"), "--snapshot-count='10'", "integer")


# -- TOML ---------------------------------------------------------------------------------

def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "n1.toml"
    path.write_text(text)
    return path


def test_load_toml(tmp_path: Path) -> None:
    path = write(tmp_path, f"""
name = "n1"
data-dir = "/var/lib/raftkv/n1"
listen_client_urls = "http://127.0.0.1:2379"
listen-peer-urls = ["http://127.0.0.1:2380"]
initial-cluster = "{THREE}"
initial-cluster-state = "existing"
heartbeat-interval = 50
election_timeout = 500
snapshot-count = 100
max-request-bytes = 4096
log-level = "debug"
""")
    cfg = load_toml(path)
    cfg.validate()
    assert (cfg.name, cfg.data_dir, cfg.initial_cluster_state) == (
        "n1", "/var/lib/raftkv/n1", "existing")
    assert cfg.listen_peer_urls == ("http://127.0.0.1:2380",)
    assert list(cfg.initial_cluster) == ["n1", "n2", "n3"]
    assert (cfg.heartbeat_interval_ms, cfg.election_timeout_ms, cfg.snapshot_count) == (
        50, 500, 100)
    assert cfg.max_request_bytes == 4096
    assert cfg.log_level == "debug"


def test_toml_initial_cluster_as_a_table(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "n2"\nlisten-peer-urls = "http://127.0.0.1:2382"\n'
                           'listen-client-urls = "http://127.0.0.1:2381"\n'
                           '[initial-cluster]\nn1 = "http://127.0.0.1:2380"\n'
                           'n2 = "http://127.0.0.1:2382"\n')
    cfg = load_toml(path)
    cfg.validate()
    assert dict(cfg.initial_cluster) == {"n1": "http://127.0.0.1:2380",
                                         "n2": "http://127.0.0.1:2382"}


@pytest.mark.parametrize(("text", "needles"), [
    ('name = "n1"\nelection-timout = 1000\n', ["unknown key 'election-timout'", "known:"]),
    ("heartbeat-interval = \"fast\"\n", ["'heartbeat-interval'", "integer", "string"]),
    ("heartbeat-interval = true\n", ["'heartbeat-interval'", "integer", "boolean"]),
    ("snapshot-count = 1.5\n", ["'snapshot-count'", "float"]),
    ("name = 3\n", ["'name'", "string"]),
    ("listen-client-urls = [1, 2]\n", ["'listen-client-urls'", "array"]),
    ('initial-cluster = "n1"\n', ["--initial-cluster", "'n1'"]),
    ('data-dir = "a"\ndata_dir = "b"\n', ["'data-dir' is given twice"]),
    ("name = \n", ["not valid TOML"]),
])
def test_toml_errors_name_the_key_and_file(tmp_path: Path, text: str,
                                           needles: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert f"config file {path}" in message
    for needle in needles:
        assert needle in message, message


def test_missing_toml_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_toml(tmp_path / "nope.toml")


def test_from_options_accepts_strings() -> None:
    cfg = ServerConfig.from_options({"name": "n1", "initial-cluster": THREE,
                                     "heartbeat-interval": "50", "election-timeout": 500,
                                     "listen-peer-urls": "http://127.0.0.1:2380"})
    cfg.validate()
    assert cfg.heartbeat_interval_ms == 50


# -- shipped configs ----------------------------------------------------------------------

SHIPPED = sorted((REPO / "cluster").glob("[0-9]*/*.toml"))


def test_shipped_cluster_configs_exist() -> None:
    assert [p.relative_to(REPO / "cluster").as_posix() for p in SHIPPED] == [
        "3/n1.toml", "3/n2.toml", "3/n3.toml",
        "5/n1.toml", "5/n2.toml", "5/n3.toml", "5/n4.toml", "5/n5.toml"]


@pytest.mark.parametrize("size", [3, 5])
def test_shipped_cluster_configs_validate_and_agree(size: int) -> None:
    configs = [load_toml(p) for p in SHIPPED if p.parent.name == str(size)]
    for cfg in configs:
        cfg.validate()
    assert len(configs) == size
    assert [c.name for c in configs] == list(configs[0].initial_cluster)
    assert len({c.cluster_id for c in configs}) == 1
    assert len({c.member_id for c in configs}) == size
    ports = [e.port for c in configs
             for e in (*c.listen_client_endpoints, *c.listen_peer_endpoints)]
    assert len(set(ports)) == 2 * size
