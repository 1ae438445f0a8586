"""The ``raftkv`` command line (see :mod:`raftkv.cli.main`)."""

import os

# Before anything imports grpc, whose C core reads GRPC_VERBOSITY once, at import: keep it
# from printing its own copies of the errors the commands report in one line (a failed TLS
# handshake, say) unless the user asks for them.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

from raftkv.cli.local import LocalCluster, LocalMember, is_member_process, serve_argv
from raftkv.cli.main import build_parser, main
from raftkv.cli.serve import serve_config

__all__ = ["LocalCluster", "LocalMember", "build_parser", "is_member_process", "main",
           "serve_argv", "serve_config"]
