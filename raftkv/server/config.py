"""Configuration of one raftkv member: what ``raftkv serve`` is started with.

Names and defaults follow etcd's flags (``--name``, ``--initial-cluster``, ...), so an
etcd operator can read a raftkv configuration without a glossary. A configuration comes
from three places, later ones winning: the dataclass defaults, a TOML file
(:func:`read_config_file`, :func:`load_toml`) and command-line flags (``raftkv.cli.serve``).

``ServerConfig(...)`` fills the defaults that depend on other values (``data_dir`` from
``name``, advertised URLs from listen URLs, ``initial_cluster`` from this member) and
changes nothing after that; :meth:`ServerConfig.validate` checks a configuration and
raises :class:`~raftkv.errors.ConfigError` with a one-line message that names the value
(by its flag name) and says how to fix it.

Identities are derived the way etcd derives them, so they are deterministic and every
member of a cluster computes the same ones without talking to the others:

* ``member_id``: the first 8 bytes, read big-endian, of
  ``sha1("".join(sorted(peer_urls)) + initial_cluster_token)``;
* ``cluster_id``: the first 8 bytes, read big-endian, of ``sha1`` over the sorted member
  ids, each written as 8 big-endian bytes.

URLs are canonicalised (``http://host:port``, host lower-cased) before hashing, so the
ids equal etcd's for the same URLs written in that form.

Timing follows etcd too: the heartbeat interval is the tick, a leader heartbeats every
tick, and a follower's election timeout is ``election_timeout_ms // heartbeat_interval_ms``
ticks, which must be at least 5.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import random
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, cast
from urllib.parse import urlsplit

from raftkv.errors import ConfigError
from raftkv.raft.config import Config as RaftConfig
from raftkv.server.tls import TLSInfo, TLSPolicy

__all__ = [
    "DEFAULT_CLIENT_URL",
    "DEFAULT_PEER_URL",
    "OPTION_KEYS",
    "Endpoint",
    "FrozenMap",
    "Member",
    "ServerConfig",
    "cluster_id",
    "coerce_options",
    "format_initial_cluster",
    "load_toml",
    "member_id",
    "parse_initial_cluster",
    "parse_url",
    "read_config_file",
]

DEFAULT_CLIENT_URL = "http://127.0.0.1:2379"
DEFAULT_PEER_URL = "http://127.0.0.1:2380"
#: etcd refuses election timeouts above 50 s.
MAX_ELECTION_TIMEOUT_MS = 50_000
#: etcd requires the election timeout to be at least this many heartbeat intervals.
MIN_ELECTION_TICKS = 5
LOG_LEVELS = ("debug", "info", "warn", "warning", "error")
CLUSTER_STATES = ("new", "existing")


class Endpoint(NamedTuple):
    """The host and port of a URL. ``host`` has no brackets, even for IPv6; ``scheme`` is
    ``http`` or ``https`` (TLS)."""

    host: str
    port: int
    scheme: str = "http"

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}"

    @property
    def address(self) -> str:
        """``host:port`` as gRPC and sockets want it (IPv6 hosts in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_unspecified(self) -> bool:
        """True for ``0.0.0.0`` / ``::``: fine to listen on, useless to advertise."""
        try:
            return ipaddress.ip_address(self.host).is_unspecified
        except ValueError:
            return False


class Member(NamedTuple):
    """One entry of the initial cluster."""

    name: str
    id: int
    peer_url: str


class FrozenMap(Mapping[str, str]):
    """An ordered, immutable, hashable, picklable ``{str: str}`` (the initial cluster)."""

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._data: dict[str, str] = dict(items)

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(tuple(self._data.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


def parse_url(url: str, *, flag: str = "url") -> Endpoint:
    """Parse ``http://host:port`` or ``https://host:port`` into an :class:`Endpoint`.

    The port is required and must be in 1..65535; a path other than ``/``, a query,
    a fragment or user info is an error. ``flag`` names the value in error messages.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{flag}: {text!r} is not a valid URL ({exc}); "
                          "write it as http://host:port") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{flag}: {text!r} is not a URL of the form http://host:port "
                          "(or https://host:port with TLS)")
    if port is None:
        raise ConfigError(f"{flag}: {text!r} has no port; write it as http://host:port")
    if not 1 <= port <= 65535:
        raise ConfigError(f"{flag}: port {port} in {text!r} is out of range; "
                          "use a port in 1..65535")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ConfigError(f"{flag}: {text!r} must be just http://host:port "
                          "(no path, query or user)")
    return Endpoint(parts.hostname.lower(), port, parts.scheme)


def canonical_url(url: str, *, flag: str = "url") -> str:
    """``http(s)://host:port`` with the host lower-cased and no trailing slash."""
    return parse_url(url, flag=flag).url


def split_urls(text: str) -> tuple[str, ...]:
    """Split a comma-separated URL list (etcd's flag syntax); blanks are dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_initial_cluster(text: str) -> dict[str, str]:
    """Parse ``n1=http://a:2380,n2=http://b:2380`` into an ordered ``{name: peer URL}``.

    The URLs are checked by :meth:`ServerConfig.validate`, not here.
    """
    example = "e.g. n1=http://127.0.0.1:2380,n2=http://127.0.0.1:2382"
    entries = [part.strip() for part in text.split(",")]
    if not any(entries):
        raise ConfigError(f"--initial-cluster is empty; give name=peer-url pairs, {example}")
    cluster: dict[str, str] = {}
    for entry in entries:
        name, sep, url = entry.partition("=")
        name, url = name.strip(), url.strip()
        if not sep or not name or not url:
            raise ConfigError(f"--initial-cluster: entry {entry!r} is not name=peer-url; "
                              f"{example}")
        if name in cluster:
            raise ConfigError(f"--initial-cluster names {name!r} twice; "
                              "give each member exactly one entry")
        cluster[name] = url
    return cluster


def format_initial_cluster(cluster: Mapping[str, str]) -> str:
    """The inverse of :func:`parse_initial_cluster`."""
    return ",".join(f"{name}={url}" for name, url in cluster.items())


def member_id(name: str, peer_urls: Iterable[str], token: str) -> int:
    """The id of a member, derived as etcd derives it (see the module docstring).

    ``name`` is not part of the hash (etcd does not hash it either); it only names the
    member in errors. Distinct peer URLs give distinct ids with overwhelming probability.
    """
    urls = sorted(canonical_url(u, flag=f"peer URL of member {name!r}") for u in peer_urls)
    if not urls:
        raise ConfigError(f"member {name!r} has no peer URL; give it one in --initial-cluster")
    digest = hashlib.sha1(("".join(urls) + token).encode(), usedforsecurity=False).digest()
    value = int.from_bytes(digest[:8], "big")
    if value == 0:  # 0 means "no node" to the Raft core; sha1 will not give it in practice
        raise ConfigError(f"member {name!r} hashes to id 0; change --initial-cluster-token")
    return value


def cluster_id(member_ids: Iterable[int]) -> int:
    """The id of a cluster from its members' ids, derived as etcd derives it."""
    data = b"".join(i.to_bytes(8, "big") for i in sorted(member_ids))
    return int.from_bytes(hashlib.sha1(data, usedforsecurity=False).digest()[:8], "big")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything one member needs to start. Frozen; :meth:`validate` changes nothing.

    Attributes:
        name: this member's name in ``initial_cluster`` (``--name``).
        data_dir: where the member keeps its LevelDB data; ``""`` means ``<name>.raftkv``.
        listen_client_urls: URLs the etcd-compatible client API listens on.
        advertise_client_urls: URLs clients are told to use; ``()`` means the listen URLs.
        listen_peer_urls: URLs the peer (Raft) service listens on.
        initial_advertise_peer_urls: the URL other members reach this one at; ``()``
            means the listen peer URLs. Must equal this member's ``initial_cluster`` entry.
        initial_cluster: ordered ``{name: peer URL}`` of the bootstrap members; empty
            means a one-member cluster ``{name: initial_advertise_peer_urls[0]}``.
        initial_cluster_state: ``new`` to bootstrap, ``existing`` to join a running one.
        initial_cluster_token: mixed into the ids, so two clusters started from the same
            URLs do not mistake each other's members.
        heartbeat_interval_ms: the tick; the leader heartbeats every tick.
        election_timeout_ms: a follower without a leader for this long campaigns.
        snapshot_count: applied entries between two snapshots.
        snapshot_catchup_entries: log entries kept behind a snapshot for slow followers.
        max_request_bytes: largest client request accepted (etcd: 1.5 MiB).
        quota_backend_bytes: backend size above which writes are refused (etcd: 2 GiB).
        max_txn_ops: most operations in one txn (etcd: 128); equal on every member.
        log_level: ``debug``, ``info``, ``warn`` or ``error``.
        cert_file ... tls_max_version: etcd's security flags (``--cert-file``,
            ``--key-file``, ``--trusted-ca-file``, ``--client-cert-auth``,
            ``--client-crl-file``, ``--client-cert-allowed-hostname``, their ``--peer-*``
            twins plus ``--peer-cert-allowed-cn``, ``--cipher-suites``,
            ``--tls-min-version``, ``--tls-max-version``); see :mod:`raftkv.server.tls`.
    """

    name: str = "default"
    data_dir: str = ""
    listen_client_urls: tuple[str, ...] = (DEFAULT_CLIENT_URL,)
    advertise_client_urls: tuple[str, ...] = ()
    listen_peer_urls: tuple[str, ...] = (DEFAULT_PEER_URL,)
    initial_advertise_peer_urls: tuple[str, ...] = ()
    initial_cluster: Mapping[str, str] = field(default_factory=FrozenMap)
    initial_cluster_state: str = "new"
    initial_cluster_token: str = "raftkv-cluster"
    heartbeat_interval_ms: int = 100
    election_timeout_ms: int = 1000
    snapshot_count: int = 100_000
    snapshot_catchup_entries: int = 5_000
    max_request_bytes: int = 1_572_864
    quota_backend_bytes: int = 2 * 1024**3
    max_txn_ops: int = 128
    log_level: str = "info"
    cert_file: str = ""
    key_file: str = ""
    trusted_ca_file: str = ""
    client_cert_auth: bool = False
    client_crl_file: str = ""
    client_cert_allowed_hostname: tuple[str, ...] = ()
    peer_cert_file: str = ""
    peer_key_file: str = ""
    peer_trusted_ca_file: str = ""
    peer_client_cert_auth: bool = False
    peer_crl_file: str = ""
    peer_cert_allowed_cn: tuple[str, ...] = ()
    peer_cert_allowed_hostname: tuple[str, ...] = ()
    cipher_suites: tuple[str, ...] = ()
    tls_min_version: str = "TLS1.2"
    tls_max_version: str = ""
    auth_token: str = "simple"
    auth_token_ttl: int = 300
    bcrypt_cost: int = 10
    audit_log: str = ""

    def __post_init__(self) -> None:
        # Derived defaults, filled once at construction (the instance is frozen after).
        def put(attr: str, value: object) -> None:
            object.__setattr__(self, attr, value)

        for attr in ("listen_client_urls", "advertise_client_urls", "listen_peer_urls",
                     "initial_advertise_peer_urls", "client_cert_allowed_hostname",
                     "peer_cert_allowed_cn", "peer_cert_allowed_hostname", "cipher_suites"):
            value = getattr(self, attr)
            put(attr, split_urls(value) if isinstance(value, str) else tuple(value))
        if not self.data_dir:
            put("data_dir", f"{self.name}.raftkv")
        if not self.advertise_client_urls:
            put("advertise_client_urls", self.listen_client_urls)
        if not self.initial_advertise_peer_urls:
            put("initial_advertise_peer_urls", self.listen_peer_urls)
        cluster = dict(self.initial_cluster)
        if not cluster and self.initial_advertise_peer_urls:
            cluster = {self.name: self.initial_advertise_peer_urls[0]}
        put("initial_cluster", FrozenMap(cluster))

    @classmethod
    def from_options(cls, options: Mapping[str, object], *,
                     source: str = "options") -> ServerConfig:
        """Build from flag-named options (``{"initial-cluster": "n1=...", ...}``).

        Values may be strings (as on a command line) or already typed (as in TOML);
        see :func:`coerce_options`. Does not validate.
        """
        return cls(**cast("dict[str, Any]", coerce_options(options, source=source)))

    # -- derived values ---------------------------------------------------------------

    @property
    def tick_interval_s(self) -> float:
        """Seconds per Raft tick (the heartbeat interval)."""
        return self.heartbeat_interval_ms / 1000.0

    @property
    def heartbeat_ticks(self) -> int:
        """The leader heartbeats every tick."""
        return 1

    @property
    def election_ticks(self) -> int:
        """Election timeout in ticks: ``election_timeout_ms // heartbeat_interval_ms``."""
        return self.election_timeout_ms // self.heartbeat_interval_ms

    @property
    def member_id(self) -> int:
        """This member's id (see the module docstring)."""
        return member_id(self.name, self.initial_advertise_peer_urls,
                         self.initial_cluster_token)

    @property
    def members(self) -> tuple[Member, ...]:
        """The initial cluster with each member's id, in ``initial_cluster`` order."""
        token = self.initial_cluster_token
        return tuple(Member(n, member_id(n, [u], token), u)
                     for n, u in self.initial_cluster.items())

    @property
    def cluster_id(self) -> int:
        """The id of the initial cluster (see the module docstring)."""
        return cluster_id(m.id for m in self.members)

    @property
    def listen_client_endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(parse_url(u, flag="--listen-client-urls") for u in self.listen_client_urls)

    @property
    def listen_peer_endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(parse_url(u, flag="--listen-peer-urls") for u in self.listen_peer_urls)

    @property
    def advertise_client_endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(parse_url(u, flag="--advertise-client-urls")
                     for u in self.advertise_client_urls)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    def peer_endpoint(self, name: str) -> Endpoint:
        """Where member ``name`` of the initial cluster listens for peers."""
        return parse_url(self.initial_cluster[name], flag=f"--initial-cluster {name}")

    def to_raft_config(self, rng: random.Random, *, applied: int = 0,
                       logger: logging.Logger | None = None) -> RaftConfig:
        """The Raft core's configuration for this member (ticks, not milliseconds)."""
        return RaftConfig(id=self.member_id, rng=rng, election_ticks=self.election_ticks,
                          heartbeat_ticks=self.heartbeat_ticks, applied=applied,
                          logger=logger or logging.getLogger("raftkv.raft"))

    @property
    def client_tls(self) -> TLSInfo:
        """The client side's TLS flags."""
        return TLSInfo("client", self.cert_file, self.key_file, self.trusted_ca_file,
                       self.client_cert_auth, self.client_crl_file, (),
                       self.client_cert_allowed_hostname)

    @property
    def peer_tls(self) -> TLSInfo:
        """The peer side's TLS flags."""
        return TLSInfo("peer", self.peer_cert_file, self.peer_key_file,
                       self.peer_trusted_ca_file, self.peer_client_cert_auth,
                       self.peer_crl_file, self.peer_cert_allowed_cn,
                       self.peer_cert_allowed_hostname)

    @property
    def tls_policy(self) -> TLSPolicy:
        return TLSPolicy(self.cipher_suites, self.tls_min_version, self.tls_max_version)

    def tls_plan(self) -> list[str]:
        """Check the TLS flags against the URL schemes (etcd's startup rules) and return the
        warnings to log: an ``https://`` URL without a certificate is an error; an
        ``http://`` URL while certificates are given is served in plaintext, with a warning.
        """
        policy = self.tls_policy
        policy.validate()
        warnings: list[str] = []
        for info, flags in ((self.client_tls, ("--listen-client-urls",
                                               "--advertise-client-urls")),
                            (self.peer_tls, ("--listen-peer-urls",
                                             "--initial-advertise-peer-urls"))):
            info.validate()
            urls = self.listen_client_urls if info.side == "client" else self.listen_peer_urls
            side_urls = (urls, self.advertise_client_urls if info.side == "client"
                         else self.initial_advertise_peer_urls)
            for flag, group in zip(flags, side_urls, strict=True):
                for url in group:
                    ep = parse_url(url, flag=flag)
                    if ep.secure and not info.has_cert:
                        raise ConfigError(
                            f"{flag}: TLS key/cert ({info.flag('cert-file')}, "
                            f"{info.flag('key-file')})"
                            f" must be provided for {info.side} url {url} with HTTPS scheme; "
                            "give them or use http://")
                    if not ep.secure and info.has_cert and flag.startswith("--listen"):
                        warnings.append(f"{info.side} url {url}: scheme is http while key and "
                                        "cert files are present; ignoring key and cert files "
                                        "(serving plaintext)")
        return warnings

    # -- validation -------------------------------------------------------------------

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid value; never mutates."""
        _check_name(self.name, "--name")
        if not self.data_dir.strip():
            raise ConfigError("--data-dir is empty; give the directory for this member's data")
        self._validate_urls()
        self._validate_cluster()
        self._validate_numbers()
        self._validate_auth()
        if self.log_level.lower() not in LOG_LEVELS:
            raise ConfigError(f"--log-level={self.log_level!r} is not one of "
                              "debug, info, warn, error")

    def _validate_urls(self) -> None:
        groups = {
            "--listen-client-urls": self.listen_client_urls,
            "--advertise-client-urls": self.advertise_client_urls,
            "--listen-peer-urls": self.listen_peer_urls,
            "--initial-advertise-peer-urls": self.initial_advertise_peer_urls,
        }
        parsed: dict[str, list[Endpoint]] = {}
        for flag, urls in groups.items():
            if not urls:
                raise ConfigError(f"{flag} is empty; give at least one http://host:port")
            parsed[flag] = [parse_url(u, flag=flag) for u in urls]
            seen: set[str] = set()
            for ep in parsed[flag]:
                if ep.address in seen:
                    raise ConfigError(f"{flag} lists {ep.address} twice; give each URL once")
                seen.add(ep.address)
        for flag in ("--advertise-client-urls", "--initial-advertise-peer-urls"):
            for url, ep in zip(groups[flag], parsed[flag], strict=True):
                if ep.is_unspecified:
                    raise ConfigError(f"{flag}={url!r} is a wildcard address others cannot "
                                      f"reach; set {flag} to this host's address")
        both = ({e.address for e in parsed["--listen-client-urls"]}
                & {e.address for e in parsed["--listen-peer-urls"]})
        if both:
            raise ConfigError(f"--listen-client-urls and --listen-peer-urls both use "
                              f"{min(both)}; give them different ports")
        self.tls_plan()

    def _validate_cluster(self) -> None:
        if not self.initial_cluster:
            raise ConfigError("--initial-cluster is empty; give name=peer-url pairs")
        seen: dict[Endpoint, str] = {}
        for name, url in self.initial_cluster.items():
            _check_name(name, "--initial-cluster")
            ep = parse_url(url, flag=f"--initial-cluster {name}")
            if ep.is_unspecified:
                raise ConfigError(f"--initial-cluster {name}={url} is a wildcard address; "
                                  "give the address other members reach it at")
            if ep in seen:
                raise ConfigError(f"--initial-cluster gives {seen[ep]!r} and {name!r} the "
                                  f"same peer URL {url!r}; give each member its own")
            seen[ep] = name
        if self.name not in self.initial_cluster:
            raise ConfigError(f"--initial-cluster={format_initial_cluster(self.initial_cluster)}"
                              f" does not name this member {self.name!r}; add "
                              f"{self.name}=<its peer URL> or fix --name")
        mine = {parse_url(self.initial_cluster[self.name])}
        advertised = {parse_url(u) for u in self.initial_advertise_peer_urls}
        if advertised != mine:
            raise ConfigError(f"--initial-advertise-peer-urls="
                              f"{','.join(self.initial_advertise_peer_urls)} does not match "
                              f"this member's --initial-cluster entry "
                              f"{self.name}={self.initial_cluster[self.name]}; "
                              "make them the same URL")
        if self.initial_cluster_state not in CLUSTER_STATES:
            raise ConfigError(f"--initial-cluster-state={self.initial_cluster_state!r} must "
                              "be 'new' (bootstrap) or 'existing' (join a running cluster)")
        if not self.initial_cluster_token.strip():
            raise ConfigError("--initial-cluster-token is empty; give a name unique to "
                              "this cluster")

    def _validate_auth(self) -> None:
        kind = self.auth_token.split(",", 1)[0].strip()
        if kind == "jwt":
            raise ConfigError("--auth-token=jwt,...: JWT tokens are not supported yet; use "
                              "--auth-token=simple")
        if kind != "simple":
            raise ConfigError(f"--auth-token={self.auth_token!r} is not a token provider; "
                              "use --auth-token=simple")
        if not 4 <= self.bcrypt_cost <= 31:
            raise ConfigError(f"--bcrypt-cost={self.bcrypt_cost} is out of range; use 4..31 "
                              "(default 10)")
        if self.auth_token_ttl <= 0:
            raise ConfigError(f"--auth-token-ttl={self.auth_token_ttl} must be positive "
                              "(seconds; default 300)")

    def _validate_numbers(self) -> None:
        positive = {
            "--heartbeat-interval": self.heartbeat_interval_ms,
            "--election-timeout": self.election_timeout_ms,
            "--snapshot-count": self.snapshot_count,
            "--snapshot-catchup-entries": self.snapshot_catchup_entries,
            "--max-request-bytes": self.max_request_bytes,
            "--quota-backend-bytes": self.quota_backend_bytes,
            "--max-txn-ops": self.max_txn_ops,
        }
        for flag, value in positive.items():
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{flag}={value!r} must be an integer")
            if value <= 0:
                raise ConfigError(f"{flag}={value} must be positive")
        tick, election = self.heartbeat_interval_ms, self.election_timeout_ms
        if MIN_ELECTION_TICKS * tick > election:  # etcd's wording
            raise ConfigError(f"--election-timeout[{election}ms] should be at least as 5 "
                              f"times as --heartbeat-interval[{tick}ms]; raise "
                              "--election-timeout or lower --heartbeat-interval")
        if election > MAX_ELECTION_TIMEOUT_MS:
            raise ConfigError(f"--election-timeout[{election}ms] is too long, and should be "
                              f"set less than {MAX_ELECTION_TIMEOUT_MS}ms")


def _check_name(name: str, flag: str) -> None:
    if not name or name != name.strip() or any(c in name for c in ",= \t"):
        raise ConfigError(f"{flag}: member name {name!r} must be non-empty and contain no "
                          "spaces, ',' or '='")


# -- options: flags and TOML keys -------------------------------------------------------

_STR, _INT, _URLS, _CLUSTER = "a string", "an integer", "URLs", "a cluster"
_BOOL, _LIST = "a boolean", "a list"

#: Flag name (without ``--``) -> (ServerConfig field, kind).
_OPTIONS: dict[str, tuple[str, str]] = {
    "name": ("name", _STR),
    "data-dir": ("data_dir", _STR),
    "listen-client-urls": ("listen_client_urls", _URLS),
    "advertise-client-urls": ("advertise_client_urls", _URLS),
    "listen-peer-urls": ("listen_peer_urls", _URLS),
    "initial-advertise-peer-urls": ("initial_advertise_peer_urls", _URLS),
    "initial-cluster": ("initial_cluster", _CLUSTER),
    "initial-cluster-state": ("initial_cluster_state", _STR),
    "initial-cluster-token": ("initial_cluster_token", _STR),
    "heartbeat-interval": ("heartbeat_interval_ms", _INT),
    "election-timeout": ("election_timeout_ms", _INT),
    "snapshot-count": ("snapshot_count", _INT),
    "snapshot-catchup-entries": ("snapshot_catchup_entries", _INT),
    "max-request-bytes": ("max_request_bytes", _INT),
    "quota-backend-bytes": ("quota_backend_bytes", _INT),
    "max-txn-ops": ("max_txn_ops", _INT),
    "log-level": ("log_level", _STR),
    "cert-file": ("cert_file", _STR),
    "key-file": ("key_file", _STR),
    "trusted-ca-file": ("trusted_ca_file", _STR),
    "client-cert-auth": ("client_cert_auth", _BOOL),
    "client-crl-file": ("client_crl_file", _STR),
    "client-cert-allowed-hostname": ("client_cert_allowed_hostname", _LIST),
    "peer-cert-file": ("peer_cert_file", _STR),
    "peer-key-file": ("peer_key_file", _STR),
    "peer-trusted-ca-file": ("peer_trusted_ca_file", _STR),
    "peer-client-cert-auth": ("peer_client_cert_auth", _BOOL),
    "peer-crl-file": ("peer_crl_file", _STR),
    "peer-cert-allowed-cn": ("peer_cert_allowed_cn", _LIST),
    "peer-cert-allowed-hostname": ("peer_cert_allowed_hostname", _LIST),
    "cipher-suites": ("cipher_suites", _LIST),
    "tls-min-version": ("tls_min_version", _STR),
    "tls-max-version": ("tls_max_version", _STR),
    "auth-token": ("auth_token", _STR),
    "auth-token-ttl": ("auth_token_ttl", _INT),
    "bcrypt-cost": ("bcrypt_cost", _INT),
    "audit-log": ("audit_log", _STR),
}
#: The option names accepted as flags and as TOML keys (dashes or underscores).
OPTION_KEYS: tuple[str, ...] = tuple(_OPTIONS)


def _type_name(value: object) -> str:
    return {str: "a string", int: "an integer", bool: "a boolean", float: "a float",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


def _coerce(kind: str, value: object) -> object | None:
    """The typed value, or None when ``value`` cannot be read as ``kind``."""
    if kind == _STR:
        return value if isinstance(value, str) else None
    if kind == _INT:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
        return None
    if kind == _BOOL:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        return None
    if kind in (_URLS, _LIST):
        if isinstance(value, str):
            return split_urls(value)
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        return None
    if isinstance(value, str):
        return parse_initial_cluster(value)
    if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
        return dict(value)
    return None


def coerce_options(options: Mapping[str, object], *, source: str) -> dict[str, object]:
    """Check flag-named options and return them as ``ServerConfig`` keyword arguments.

    Keys may use dashes or underscores (``data-dir`` or ``data_dir``). URL lists may be
    a comma-separated string or a list of strings; ``initial-cluster`` may be etcd's
    ``n1=url,n2=url`` string or a ``{name: url}`` table; integers may be strings of
    digits. ``source`` (a file name, "command line") prefixes error messages.
    """
    out: dict[str, object] = {}
    given: dict[str, str] = {}
    for raw_key, value in options.items():
        key = raw_key.replace("_", "-")
        if key not in _OPTIONS:
            raise ConfigError(f"{source}: unknown key {raw_key!r} (known: "
                              f"{', '.join(OPTION_KEYS)})")
        if key in given:
            raise ConfigError(f"{source}: {key!r} is given twice (as {given[key]!r} and "
                              f"{raw_key!r}); keep one")
        given[key] = raw_key
        attr, kind = _OPTIONS[key]
        try:
            typed = _coerce(kind, value)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from exc
        if typed is None:
            hint = "comma-separated string or array of strings" if kind in (_URLS, _LIST) else (
                "'n1=url,n2=url' string or a table" if kind == _CLUSTER else kind)
            raise ConfigError(f"{source}: {raw_key!r} must be {hint}, got "
                              f"{_type_name(value)} ({value!r})")
        out[attr] = typed
    return out


def read_config_file(path: str | Path) -> dict[str, object]:
    """Read a TOML config file into ``ServerConfig`` keyword arguments.

    The keys are the flag names (``name = "n1"``, ``initial-cluster = "n1=..."``,
    ``heartbeat_interval = 100``). Unknown keys and wrong types raise
    :class:`ConfigError` naming the key and the file.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"config file {p}: cannot read it ({exc.strerror or exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p}: not valid TOML ({exc})") from exc
    return coerce_options(data, source=f"config file {p}")


def load_toml(path: str | Path) -> ServerConfig:
    """The :class:`ServerConfig` of a TOML config file (defaults for what it omits).

    Does not validate; call :meth:`ServerConfig.validate`.
    """
    return ServerConfig(**cast("dict[str, Any]", read_config_file(path)))
