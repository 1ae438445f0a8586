"""``--tls``: the run's certificates, the members' mTLS flags and the harness's credentials.

One CA per run, made in the run's directory (``<out>/tls``, mode 0700, files 0600) with
:mod:`raftkv.certs`::

    ca.pem                       the run's CA (its key, ca-key.pem, is kept next to it)
    nK.pem, nK-key.pem           member K: serverAuth + clientAuth, for the client and
                                 the peer listener and for dialing peers
    client.pem, client-key.pem   the harness's clients: clientAuth only

Each member's certificate carries as IP SANs exactly the addresses the backend says the
member is reached at and connects from (:meth:`chaos.net.Network.cert_hosts`): the peer
listener refuses a peer whose certificate's IP SANs do not include the address it connects
from (etcd's rule), so a certificate with the wrong addresses shows up as refused peers
(counted by :func:`rejections` from the member logs) and a cluster without a quorum.

Members get ``https://`` URLs, both listeners' certificate, CA and
``--client-cert-auth``/``--peer-client-cert-auth`` (mutual TLS on both sides); every
channel the harness opens (raw stubs, raftkv.client, the probes and the Cluster API calls of
the member nemesis) presents the client certificate and verifies the member's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

import raftkv.client
from raftkv.certs import CA_CERT, CA_KEY, issue, make_ca, write_file

__all__ = ["CLIENT", "ClusterTLS", "make_certs", "rejections"]

CLIENT = "client"
"""The name of the harness's client certificate (``client.pem``)."""

_REJECTED = re.compile(r"rejected connection on the (\w+) listener from \S+ \(error (.*)\)$")


@dataclass(frozen=True)
class ClusterTLS:
    """Where a run's certificates are (see the module docstring)."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / CA_CERT

    def cert_file(self, name: str) -> Path:
        return self.directory / f"{name}.pem"

    def key_file(self, name: str) -> Path:
        return self.directory / f"{name}-key.pem"

    def server_flags(self, member: str) -> list[str]:
        """``raftkv serve``'s mutual-TLS flags for ``member`` (client and peer side)."""
        cert, key, ca = (str(p) for p in (self.cert_file(member), self.key_file(member),
                                          self.ca_file))
        return ["--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca,
                "--client-cert-auth=true",
                "--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", ca,
                "--peer-client-cert-auth=true"]

    def client(self) -> raftkv.client.TLS:
        """raftkv.client's settings: the run's CA and the client certificate."""
        return raftkv.client.TLS(ca_file=str(self.ca_file),
                                 cert_file=str(self.cert_file(CLIENT)),
                                 key_file=str(self.key_file(CLIENT)))

    def credentials(self) -> grpc.ChannelCredentials:
        """gRPC credentials for the harness's raw channels (the same files)."""
        return self.client().credentials()


def make_certs(directory: Path, members: Iterable[tuple[str, Sequence[str]]]) -> ClusterTLS:
    """A new CA and one certificate per ``(member name, its IP addresses)``, plus the
    client certificate, written into ``directory``."""
    ca = make_ca("raftkv-chaos CA", days=7)
    write_file(directory / CA_KEY, ca.key_pem())
    write_file(directory / CA_CERT, ca.cert_pem())
    tls = ClusterTLS(directory)
    leaves = [(name, issue(ca, name, hosts=list(hosts), days=7)) for name, hosts in members]
    leaves.append((CLIENT, issue(ca, CLIENT, hosts=(), server=False, days=7)))
    for name, leaf in leaves:
        write_file(tls.key_file(name), leaf.key_pem())
        write_file(tls.cert_file(name), leaf.cert_pem())
    return tls


def rejections(logs: Iterable[Path]) -> dict[str, int]:
    """Connections the members' TLS fronts refused, by ``<side>`` and, for refusals a
    certificate caused, ``<side>-certificate`` (wrong IP SANs, unknown CA, no client
    certificate): the member logs' ``rejected connection on the ... listener`` lines."""
    counts: dict[str, int] = {}
    for path in logs:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            match = _REJECTED.search(line)
            if match is None:
                continue
            side, why = match.group(1), match.group(2)
            counts[side] = counts.get(side, 0) + 1
            if "certificate" in why.lower() or "SANs" in why:
                key = f"{side}-certificate"
                counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
