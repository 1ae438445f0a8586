"""The I/O shell of a raftkv member.

The asyncio node driver, the peer transport, the ``grpc.aio`` services, the server
configuration (:mod:`raftkv.server.config`) and the composition root
(:mod:`raftkv.server.app`). Everything that waits lives here; everything that decides
lives in the pure layers (:mod:`raftkv.raft`, :mod:`raftkv.state`).
"""
