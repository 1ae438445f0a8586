"""``etcdserverpb.Maintenance``: Status (the rest of the service comes with the etcd API)."""

from __future__ import annotations

import grpc

from raftkv.raft.types import StateRole
from raftkv.server.services.kv import Header
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

Ctx = grpc.aio.ServicerContext[object, object]
ETCD_VERSION = "3.4.0"
"""The etcd API version we speak; etcdctl prints it in ``endpoint status``."""


class MaintenanceService(rpc_pb2_grpc.MaintenanceServicer):
    def __init__(self, header: Header, db_size: object) -> None:
        self.header = header
        self.db_size = db_size

    async def Status(self, request: rpc_pb2.StatusRequest,
                     context: Ctx) -> rpc_pb2.StatusResponse:
        d = self.header.driver
        raft = d.raw.raft
        size = self.db_size() if callable(self.db_size) else 0
        errors = [] if raft.lead else ["etcdserver: no leader"]
        return rpc_pb2.StatusResponse(
            header=self.header(), version=ETCD_VERSION, dbSize=size, dbSizeInUse=size,
            leader=raft.lead, raftIndex=raft.log.committed, raftTerm=raft.term,
            raftAppliedIndex=d.sm.applied_index, errors=errors,
            isLearner=raft.id in raft.learners and raft.role is not StateRole.LEADER)



