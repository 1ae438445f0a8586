"""raftkv: a strongly consistent, replicated coordination service.

Raft over LevelDB, applying committed entries to a key-value / lease / lock state machine,
with a client API that is wire-compatible with the etcd v3 gRPC API.

The public surface grows with the project; today it is the pure Raft core
(:mod:`raftkv.raft`) and the exception tree (:mod:`raftkv.errors`).
"""

from raftkv.errors import ConfigError, RaftKVError

__all__ = ["ConfigError", "RaftKVError"]
__version__ = "0.1.0"
