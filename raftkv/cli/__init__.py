"""The ``raftkv`` command line (see :mod:`raftkv.cli.main`)."""

from raftkv.cli.local import LocalCluster, LocalMember, is_member_process, serve_argv
from raftkv.cli.main import build_parser, main
from raftkv.cli.serve import serve_config

__all__ = ["LocalCluster", "LocalMember", "build_parser", "is_member_process", "main",
           "serve_argv", "serve_config"]
