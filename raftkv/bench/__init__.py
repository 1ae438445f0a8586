"""``raftkv bench``: a load generator for any etcd v3 endpoint list (raftkv or etcd).

Raw ``grpc.aio`` stubs in several client processes (so the client is not the bottleneck),
one common clock, and a report of ops/s, latency percentiles, errors and the client's own
CPU use. :func:`run` is the library entry point; :mod:`raftkv.bench.cli` the command.
"""

from raftkv.bench.config import BenchConfig, BenchConfigError
from raftkv.bench.report import BenchResult
from raftkv.bench.runner import BenchError, run

__all__ = ["BenchConfig", "BenchConfigError", "BenchError", "BenchResult", "run"]
