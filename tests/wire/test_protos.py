"""The generated wire code is fresh, and it speaks etcd's v3 gRPC API.

Part (a) regenerates ``raftkv/wire/pb`` into a temporary directory with
``scripts/gen_protos.py`` and fails if the committed tree differs.

Part (b) pins the wire facts etcd clients depend on, read from the generated descriptors:
every service method's full path, streaming kind and request/response types, and for every
message of the five etcd packages each field's name, number, type, cardinality and oneof, plus
every enum. The tables were transcribed from etcd's own protos (etcd-io/etcd
``api/etcdserverpb/rpc.proto``, ``api/mvccpb/kv.proto``, ``api/authpb/auth.proto``,
``server/etcdserver/api/v3lock/v3lockpb/v3lock.proto`` and
``server/etcdserver/api/v3election/v3electionpb/v3election.proto``), not from ours; a few
hand-encoded byte strings check the encoding independently of the descriptors.
"""

from __future__ import annotations

import difflib
import importlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from raftkv.wire.pb.authpb import auth_pb2
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from raftkv.wire.pb.mvccpb import kv_pb2
from raftkv.wire.pb.v3electionpb import v3election_pb2, v3election_pb2_grpc
from raftkv.wire.pb.v3lockpb import v3lock_pb2, v3lock_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto"
PB_DIR = REPO_ROOT / "raftkv" / "wire" / "pb"
GEN_SCRIPT = REPO_ROOT / "scripts" / "gen_protos.py"

# grpcio ships no type information; loaded this way it is Any whether or not stubs are added.
grpc: Any = importlib.import_module("grpc")

ETCD_MODULES: dict[str, ModuleType] = {
    "etcdserverpb": rpc_pb2,
    "mvccpb": kv_pb2,
    "authpb": auth_pb2,
    "v3lockpb": v3lock_pb2,
    "v3electionpb": v3election_pb2,
}


# --------------------------------------------------------------------------------------
# (a) freshness


def _tree(root: Path) -> dict[Path, bytes]:
    """The generated files (.py, .pyi) under ``root``, relative to it."""
    return {
        p.relative_to(root): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.suffix in {".py", ".pyi"} and "__pycache__" not in p.parts
    }


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(GEN_SCRIPT), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    fresh = _tree(tmp_path / "raftkv" / "wire" / "pb")
    committed = _tree(PB_DIR)
    hint = "raftkv/wire/pb is stale; run: .venv/bin/python scripts/gen_protos.py"
    assert sorted(committed) == sorted(fresh), hint
    for rel, data in sorted(fresh.items()):
        if committed[rel] != data:
            diff = difflib.unified_diff(
                committed[rel].decode().splitlines(),
                data.decode().splitlines(),
                f"committed/{rel}",
                f"regenerated/{rel}",
                lineterm="",
            )
            pytest.fail(f"{hint}\n" + "\n".join(list(diff)[:60]))


def _proto_modules() -> list[str]:
    """Module name of the ``_pb2`` generated from each .proto under proto/."""
    return [
        ".".join(p.relative_to(PROTO_ROOT).with_suffix("").parts) + "_pb2"
        for p in sorted(PROTO_ROOT.rglob("*.proto"))
    ]


@pytest.mark.parametrize("module", _proto_modules())
def test_every_proto_imports(module: str) -> None:
    assert importlib.import_module(module).DESCRIPTOR.name.endswith(".proto")


# --------------------------------------------------------------------------------------
# (b) services: full method path -> (kind, request type, response type)

UU, US, SU, SS = "unary_unary", "unary_stream", "stream_unary", "stream_stream"


def _methods(service: str, kind_req_resp: dict[str, tuple[str, str, str]]) -> dict[str, Any]:
    package = service.split(".")[0]
    return {
        f"/{service}/{method}": (kind, f"{package}.{req}", f"{package}.{resp}")
        for method, (kind, req, resp) in kind_req_resp.items()
    }


EXPECTED_METHODS: dict[str, tuple[str, str, str]] = {
    **_methods(
        "etcdserverpb.KV",
        {
            "Range": (UU, "RangeRequest", "RangeResponse"),
            "Put": (UU, "PutRequest", "PutResponse"),
            "DeleteRange": (UU, "DeleteRangeRequest", "DeleteRangeResponse"),
            "Txn": (UU, "TxnRequest", "TxnResponse"),
            "Compact": (UU, "CompactionRequest", "CompactionResponse"),
        },
    ),
    **_methods("etcdserverpb.Watch", {"Watch": (SS, "WatchRequest", "WatchResponse")}),
    **_methods(
        "etcdserverpb.Lease",
        {
            "LeaseGrant": (UU, "LeaseGrantRequest", "LeaseGrantResponse"),
            "LeaseRevoke": (UU, "LeaseRevokeRequest", "LeaseRevokeResponse"),
            "LeaseKeepAlive": (SS, "LeaseKeepAliveRequest", "LeaseKeepAliveResponse"),
            "LeaseTimeToLive": (UU, "LeaseTimeToLiveRequest", "LeaseTimeToLiveResponse"),
            "LeaseLeases": (UU, "LeaseLeasesRequest", "LeaseLeasesResponse"),
        },
    ),
    **_methods(
        "etcdserverpb.Cluster",
        {
            "MemberAdd": (UU, "MemberAddRequest", "MemberAddResponse"),
            "MemberRemove": (UU, "MemberRemoveRequest", "MemberRemoveResponse"),
            "MemberUpdate": (UU, "MemberUpdateRequest", "MemberUpdateResponse"),
            "MemberList": (UU, "MemberListRequest", "MemberListResponse"),
            "MemberPromote": (UU, "MemberPromoteRequest", "MemberPromoteResponse"),
        },
    ),
    **_methods(
        "etcdserverpb.Maintenance",
        {
            "Alarm": (UU, "AlarmRequest", "AlarmResponse"),
            "Status": (UU, "StatusRequest", "StatusResponse"),
            "Defragment": (UU, "DefragmentRequest", "DefragmentResponse"),
            "Hash": (UU, "HashRequest", "HashResponse"),
            "HashKV": (UU, "HashKVRequest", "HashKVResponse"),
            "Snapshot": (US, "SnapshotRequest", "SnapshotResponse"),
            "MoveLeader": (UU, "MoveLeaderRequest", "MoveLeaderResponse"),
            "Downgrade": (UU, "DowngradeRequest", "DowngradeResponse"),
        },
    ),
    **_methods(
        "etcdserverpb.Auth",
        {
            "AuthEnable": (UU, "AuthEnableRequest", "AuthEnableResponse"),
            "AuthDisable": (UU, "AuthDisableRequest", "AuthDisableResponse"),
            "AuthStatus": (UU, "AuthStatusRequest", "AuthStatusResponse"),
            "Authenticate": (UU, "AuthenticateRequest", "AuthenticateResponse"),
            "UserAdd": (UU, "AuthUserAddRequest", "AuthUserAddResponse"),
            "UserGet": (UU, "AuthUserGetRequest", "AuthUserGetResponse"),
            "UserList": (UU, "AuthUserListRequest", "AuthUserListResponse"),
            "UserDelete": (UU, "AuthUserDeleteRequest", "AuthUserDeleteResponse"),
            "UserChangePassword": (
                UU,
                "AuthUserChangePasswordRequest",
                "AuthUserChangePasswordResponse",
            ),
            "UserGrantRole": (UU, "AuthUserGrantRoleRequest", "AuthUserGrantRoleResponse"),
            "UserRevokeRole": (UU, "AuthUserRevokeRoleRequest", "AuthUserRevokeRoleResponse"),
            "RoleAdd": (UU, "AuthRoleAddRequest", "AuthRoleAddResponse"),
            "RoleGet": (UU, "AuthRoleGetRequest", "AuthRoleGetResponse"),
            "RoleList": (UU, "AuthRoleListRequest", "AuthRoleListResponse"),
            "RoleDelete": (UU, "AuthRoleDeleteRequest", "AuthRoleDeleteResponse"),
            "RoleGrantPermission": (
                UU,
                "AuthRoleGrantPermissionRequest",
                "AuthRoleGrantPermissionResponse",
            ),
            "RoleRevokePermission": (
                UU,
                "AuthRoleRevokePermissionRequest",
                "AuthRoleRevokePermissionResponse",
            ),
        },
    ),
    **_methods(
        "v3lockpb.Lock",
        {
            "Lock": (UU, "LockRequest", "LockResponse"),
            "Unlock": (UU, "UnlockRequest", "UnlockResponse"),
        },
    ),
    **_methods(
        "v3electionpb.Election",
        {
            "Campaign": (UU, "CampaignRequest", "CampaignResponse"),
            "Proclaim": (UU, "ProclaimRequest", "ProclaimResponse"),
            "Leader": (UU, "LeaderRequest", "LeaderResponse"),
            "Observe": (US, "LeaderRequest", "LeaderResponse"),
            "Resign": (UU, "ResignRequest", "ResignResponse"),
        },
    ),
}


def test_method_table_from_descriptors() -> None:
    actual = {}
    for module in ETCD_MODULES.values():
        for service in module.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                kind = ("stream" if m.client_streaming else "unary") + (
                    "_stream" if m.server_streaming else "_unary"
                )
                path = f"/{service.full_name}/{m.name}"
                actual[path] = (kind, m.input_type.full_name, m.output_type.full_name)
    assert actual == EXPECTED_METHODS


class _RecordingChannel:
    """Stands in for a grpc.Channel; records the path and kind of each stub method."""

    def __init__(self) -> None:
        self.paths: dict[str, str] = {}

    def _recorder(self, kind: str) -> Callable[..., None]:
        def record(path: str, *args: object, **kwargs: object) -> None:
            self.paths[path] = kind

        return record

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name in (UU, US, SU, SS):
            return self._recorder(name)
        raise AttributeError(name)


def test_stub_paths_are_etcds() -> None:
    channel = _RecordingChannel()
    for grpc_module in (rpc_pb2_grpc, v3lock_pb2_grpc, v3election_pb2_grpc):
        for name in dir(grpc_module):
            if name.endswith("Stub"):
                getattr(grpc_module, name)(channel)
    assert channel.paths == {path: kind for path, (kind, _, _) in EXPECTED_METHODS.items()}


@pytest.fixture
def kv_server() -> Iterator[str]:
    """A real grpc server on loopback whose KV.Range echoes the request key."""

    class EchoKV(rpc_pb2_grpc.KVServicer):
        def Range(self, request: Any, context: Any) -> Any:
            kv = kv_pb2.KeyValue(key=request.key, value=b"v", create_revision=2)
            return rpc_pb2.RangeResponse(kvs=[kv], count=1)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    add_servicer: Any = rpc_pb2_grpc.add_KVServicer_to_server  # generated without annotations
    add_servicer(EchoKV(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def test_servicer_serves_etcd_path_with_raw_bytes(kv_server: str) -> None:
    # What an etcd client puts on the wire for `etcdctl get a`: RangeRequest{key="a"}.
    with grpc.insecure_channel(kv_server) as channel:
        call = channel.unary_unary("/etcdserverpb.KV/Range")
        reply = call(b"\x0a\x01a", timeout=10)
    # RangeResponse{kvs=[{key="a", create_revision=2, value="v"}], count=1}
    assert reply == b"\x12\x08\x0a\x01a\x10\x02\x2a\x01v\x20\x01"


# --------------------------------------------------------------------------------------
# (b) messages: every field of every message of the etcd packages

HEADER = "header=1 etcdserverpb.ResponseHeader"
MEMBERS = "members=2 repeated etcdserverpb.Member"

EXPECTED_FIELDS: dict[str, str] = {
    # mvccpb
    "mvccpb.KeyValue": "key=1 bytes, create_revision=2 int64, mod_revision=3 int64,"
    " version=4 int64, value=5 bytes, lease=6 int64",
    "mvccpb.Event": "type=1 mvccpb.Event.EventType, kv=2 mvccpb.KeyValue,"
    " prev_kv=3 mvccpb.KeyValue",
    # authpb
    "authpb.UserAddOptions": "no_password=1 bool",
    "authpb.User": "name=1 bytes, password=2 bytes, roles=3 repeated string,"
    " options=4 authpb.UserAddOptions",
    "authpb.Permission": "permType=1 authpb.Permission.Type, key=2 bytes, range_end=3 bytes",
    "authpb.Role": "name=1 bytes, keyPermission=2 repeated authpb.Permission",
    # etcdserverpb: KV
    "etcdserverpb.ResponseHeader": "cluster_id=1 uint64, member_id=2 uint64, revision=3 int64,"
    " raft_term=4 uint64",
    "etcdserverpb.RangeRequest": "key=1 bytes, range_end=2 bytes, limit=3 int64,"
    " revision=4 int64, sort_order=5 etcdserverpb.RangeRequest.SortOrder,"
    " sort_target=6 etcdserverpb.RangeRequest.SortTarget, serializable=7 bool,"
    " keys_only=8 bool, count_only=9 bool, min_mod_revision=10 int64,"
    " max_mod_revision=11 int64, min_create_revision=12 int64, max_create_revision=13 int64",
    "etcdserverpb.RangeResponse": f"{HEADER}, kvs=2 repeated mvccpb.KeyValue, more=3 bool,"
    " count=4 int64",
    "etcdserverpb.PutRequest": "key=1 bytes, value=2 bytes, lease=3 int64, prev_kv=4 bool,"
    " ignore_value=5 bool, ignore_lease=6 bool",
    "etcdserverpb.PutResponse": f"{HEADER}, prev_kv=2 mvccpb.KeyValue",
    "etcdserverpb.DeleteRangeRequest": "key=1 bytes, range_end=2 bytes, prev_kv=3 bool",
    "etcdserverpb.DeleteRangeResponse": f"{HEADER}, deleted=2 int64,"
    " prev_kvs=3 repeated mvccpb.KeyValue",
    "etcdserverpb.RequestOp": "request_range=1 etcdserverpb.RangeRequest oneof request,"
    " request_put=2 etcdserverpb.PutRequest oneof request,"
    " request_delete_range=3 etcdserverpb.DeleteRangeRequest oneof request,"
    " request_txn=4 etcdserverpb.TxnRequest oneof request",
    "etcdserverpb.ResponseOp": "response_range=1 etcdserverpb.RangeResponse oneof response,"
    " response_put=2 etcdserverpb.PutResponse oneof response,"
    " response_delete_range=3 etcdserverpb.DeleteRangeResponse oneof response,"
    " response_txn=4 etcdserverpb.TxnResponse oneof response",
    "etcdserverpb.Compare": "result=1 etcdserverpb.Compare.CompareResult,"
    " target=2 etcdserverpb.Compare.CompareTarget, key=3 bytes,"
    " version=4 int64 oneof target_union, create_revision=5 int64 oneof target_union,"
    " mod_revision=6 int64 oneof target_union, value=7 bytes oneof target_union,"
    " lease=8 int64 oneof target_union, range_end=64 bytes",
    "etcdserverpb.TxnRequest": "compare=1 repeated etcdserverpb.Compare,"
    " success=2 repeated etcdserverpb.RequestOp, failure=3 repeated etcdserverpb.RequestOp",
    "etcdserverpb.TxnResponse": f"{HEADER}, succeeded=2 bool,"
    " responses=3 repeated etcdserverpb.ResponseOp",
    "etcdserverpb.CompactionRequest": "revision=1 int64, physical=2 bool",
    "etcdserverpb.CompactionResponse": HEADER,
    # etcdserverpb: Watch
    "etcdserverpb.WatchRequest": "create_request=1 etcdserverpb.WatchCreateRequest"
    " oneof request_union, cancel_request=2 etcdserverpb.WatchCancelRequest"
    " oneof request_union, progress_request=3 etcdserverpb.WatchProgressRequest"
    " oneof request_union",
    "etcdserverpb.WatchCreateRequest": "key=1 bytes, range_end=2 bytes,"
    " start_revision=3 int64, progress_notify=4 bool,"
    " filters=5 repeated etcdserverpb.WatchCreateRequest.FilterType, prev_kv=6 bool,"
    " watch_id=7 int64, fragment=8 bool",
    "etcdserverpb.WatchCancelRequest": "watch_id=1 int64",
    "etcdserverpb.WatchProgressRequest": "",
    "etcdserverpb.WatchResponse": f"{HEADER}, watch_id=2 int64, created=3 bool,"
    " canceled=4 bool, compact_revision=5 int64, cancel_reason=6 string, fragment=7 bool,"
    " events=11 repeated mvccpb.Event",
    # etcdserverpb: Lease
    "etcdserverpb.LeaseGrantRequest": "TTL=1 int64, ID=2 int64",
    "etcdserverpb.LeaseGrantResponse": f"{HEADER}, ID=2 int64, TTL=3 int64, error=4 string",
    "etcdserverpb.LeaseRevokeRequest": "ID=1 int64",
    "etcdserverpb.LeaseRevokeResponse": HEADER,
    "etcdserverpb.LeaseCheckpoint": "ID=1 int64, remaining_TTL=2 int64",
    "etcdserverpb.LeaseCheckpointRequest": "checkpoints=1 repeated etcdserverpb.LeaseCheckpoint",
    "etcdserverpb.LeaseCheckpointResponse": HEADER,
    "etcdserverpb.LeaseKeepAliveRequest": "ID=1 int64",
    "etcdserverpb.LeaseKeepAliveResponse": f"{HEADER}, ID=2 int64, TTL=3 int64",
    "etcdserverpb.LeaseTimeToLiveRequest": "ID=1 int64, keys=2 bool",
    "etcdserverpb.LeaseTimeToLiveResponse": f"{HEADER}, ID=2 int64, TTL=3 int64,"
    " grantedTTL=4 int64, keys=5 repeated bytes",
    "etcdserverpb.LeaseLeasesRequest": "",
    "etcdserverpb.LeaseStatus": "ID=1 int64",
    "etcdserverpb.LeaseLeasesResponse": f"{HEADER}, leases=2 repeated etcdserverpb.LeaseStatus",
    # etcdserverpb: Cluster
    "etcdserverpb.Member": "ID=1 uint64, name=2 string, peerURLs=3 repeated string,"
    " clientURLs=4 repeated string, isLearner=5 bool",
    "etcdserverpb.MemberAddRequest": "peerURLs=1 repeated string, isLearner=2 bool",
    "etcdserverpb.MemberAddResponse": f"{HEADER}, member=2 etcdserverpb.Member,"
    " members=3 repeated etcdserverpb.Member",
    "etcdserverpb.MemberRemoveRequest": "ID=1 uint64",
    "etcdserverpb.MemberRemoveResponse": f"{HEADER}, {MEMBERS}",
    "etcdserverpb.MemberUpdateRequest": "ID=1 uint64, peerURLs=2 repeated string",
    "etcdserverpb.MemberUpdateResponse": f"{HEADER}, {MEMBERS}",
    "etcdserverpb.MemberListRequest": "linearizable=1 bool",
    "etcdserverpb.MemberListResponse": f"{HEADER}, {MEMBERS}",
    "etcdserverpb.MemberPromoteRequest": "ID=1 uint64",
    "etcdserverpb.MemberPromoteResponse": f"{HEADER}, {MEMBERS}",
    # etcdserverpb: Maintenance
    "etcdserverpb.AlarmRequest": "action=1 etcdserverpb.AlarmRequest.AlarmAction,"
    " memberID=2 uint64, alarm=3 etcdserverpb.AlarmType",
    "etcdserverpb.AlarmMember": "memberID=1 uint64, alarm=2 etcdserverpb.AlarmType",
    "etcdserverpb.AlarmResponse": f"{HEADER}, alarms=2 repeated etcdserverpb.AlarmMember",
    "etcdserverpb.StatusRequest": "",
    "etcdserverpb.StatusResponse": f"{HEADER}, version=2 string, dbSize=3 int64,"
    " leader=4 uint64, raftIndex=5 uint64, raftTerm=6 uint64, raftAppliedIndex=7 uint64,"
    " errors=8 repeated string, dbSizeInUse=9 int64, isLearner=10 bool,"
    " storageVersion=11 string, dbSizeQuota=12 int64,"
    " downgradeInfo=13 etcdserverpb.DowngradeInfo,"
    # raftkv's extension: a field number etcd never uses, and a message of its own
    " raftkv_peers=1000 repeated etcdserverpb.RaftkvPeerStatus",
    "etcdserverpb.RaftkvPeerStatus": "ID=1 uint64, last_contact_ms=2 int64, match_index=3 uint64",
    "etcdserverpb.DowngradeInfo": "enabled=1 bool, targetVersion=2 string",
    "etcdserverpb.DefragmentRequest": "",
    "etcdserverpb.DefragmentResponse": HEADER,
    "etcdserverpb.HashRequest": "",
    "etcdserverpb.HashResponse": f"{HEADER}, hash=2 uint32",
    "etcdserverpb.HashKVRequest": "revision=1 int64",
    "etcdserverpb.HashKVResponse": f"{HEADER}, hash=2 uint32, compact_revision=3 int64,"
    " hash_revision=4 int64",
    "etcdserverpb.SnapshotRequest": "",
    "etcdserverpb.SnapshotResponse": f"{HEADER}, remaining_bytes=2 uint64, blob=3 bytes,"
    " version=4 string",
    "etcdserverpb.MoveLeaderRequest": "targetID=1 uint64",
    "etcdserverpb.MoveLeaderResponse": HEADER,
    "etcdserverpb.DowngradeRequest": "action=1 etcdserverpb.DowngradeRequest.DowngradeAction,"
    " version=2 string",
    "etcdserverpb.DowngradeResponse": f"{HEADER}, version=2 string",
    # etcdserverpb: Auth
    "etcdserverpb.AuthEnableRequest": "",
    "etcdserverpb.AuthEnableResponse": HEADER,
    "etcdserverpb.AuthDisableRequest": "",
    "etcdserverpb.AuthDisableResponse": HEADER,
    "etcdserverpb.AuthStatusRequest": "",
    "etcdserverpb.AuthStatusResponse": f"{HEADER}, enabled=2 bool, authRevision=3 uint64",
    "etcdserverpb.AuthenticateRequest": "name=1 string, password=2 string",
    "etcdserverpb.AuthenticateResponse": f"{HEADER}, token=2 string",
    "etcdserverpb.AuthUserAddRequest": "name=1 string, password=2 string,"
    " options=3 authpb.UserAddOptions, hashedPassword=4 string",
    "etcdserverpb.AuthUserAddResponse": HEADER,
    "etcdserverpb.AuthUserGetRequest": "name=1 string",
    "etcdserverpb.AuthUserGetResponse": f"{HEADER}, roles=2 repeated string",
    "etcdserverpb.AuthUserDeleteRequest": "name=1 string",
    "etcdserverpb.AuthUserDeleteResponse": HEADER,
    "etcdserverpb.AuthUserChangePasswordRequest": "name=1 string, password=2 string,"
    " hashedPassword=3 string",
    "etcdserverpb.AuthUserChangePasswordResponse": HEADER,
    "etcdserverpb.AuthUserGrantRoleRequest": "user=1 string, role=2 string",
    "etcdserverpb.AuthUserGrantRoleResponse": HEADER,
    "etcdserverpb.AuthUserRevokeRoleRequest": "name=1 string, role=2 string",
    "etcdserverpb.AuthUserRevokeRoleResponse": HEADER,
    "etcdserverpb.AuthUserListRequest": "",
    "etcdserverpb.AuthUserListResponse": f"{HEADER}, users=2 repeated string",
    "etcdserverpb.AuthRoleAddRequest": "name=1 string",
    "etcdserverpb.AuthRoleAddResponse": HEADER,
    "etcdserverpb.AuthRoleGetRequest": "role=1 string",
    "etcdserverpb.AuthRoleGetResponse": f"{HEADER}, perm=2 repeated authpb.Permission",
    "etcdserverpb.AuthRoleListRequest": "",
    "etcdserverpb.AuthRoleListResponse": f"{HEADER}, roles=2 repeated string",
    "etcdserverpb.AuthRoleDeleteRequest": "role=1 string",
    "etcdserverpb.AuthRoleDeleteResponse": HEADER,
    "etcdserverpb.AuthRoleGrantPermissionRequest": "name=1 string, perm=2 authpb.Permission",
    "etcdserverpb.AuthRoleGrantPermissionResponse": HEADER,
    "etcdserverpb.AuthRoleRevokePermissionRequest": "role=1 string, key=2 bytes, range_end=3 bytes",
    "etcdserverpb.AuthRoleRevokePermissionResponse": HEADER,
    # v3lockpb
    "v3lockpb.LockRequest": "name=1 bytes, lease=2 int64",
    "v3lockpb.LockResponse": f"{HEADER}, key=2 bytes",
    "v3lockpb.UnlockRequest": "key=1 bytes",
    "v3lockpb.UnlockResponse": HEADER,
    # v3electionpb
    "v3electionpb.CampaignRequest": "name=1 bytes, lease=2 int64, value=3 bytes",
    "v3electionpb.CampaignResponse": f"{HEADER}, leader=2 v3electionpb.LeaderKey",
    "v3electionpb.LeaderKey": "name=1 bytes, key=2 bytes, rev=3 int64, lease=4 int64",
    "v3electionpb.LeaderRequest": "name=1 bytes",
    "v3electionpb.LeaderResponse": f"{HEADER}, kv=2 mvccpb.KeyValue",
    "v3electionpb.ResignRequest": "leader=1 v3electionpb.LeaderKey",
    "v3electionpb.ResignResponse": HEADER,
    "v3electionpb.ProclaimRequest": "leader=1 v3electionpb.LeaderKey, value=2 bytes",
    "v3electionpb.ProclaimResponse": HEADER,
}

EXPECTED_ENUMS: dict[str, str] = {
    "mvccpb.Event.EventType": "PUT=0 DELETE=1",
    "authpb.Permission.Type": "READ=0 WRITE=1 READWRITE=2",
    "etcdserverpb.RangeRequest.SortOrder": "NONE=0 ASCEND=1 DESCEND=2",
    "etcdserverpb.RangeRequest.SortTarget": "KEY=0 VERSION=1 CREATE=2 MOD=3 VALUE=4",
    "etcdserverpb.Compare.CompareResult": "EQUAL=0 GREATER=1 LESS=2 NOT_EQUAL=3",
    "etcdserverpb.Compare.CompareTarget": "VERSION=0 CREATE=1 MOD=2 VALUE=3 LEASE=4",
    "etcdserverpb.WatchCreateRequest.FilterType": "NOPUT=0 NODELETE=1",
    "etcdserverpb.AlarmType": "NONE=0 NOSPACE=1 CORRUPT=2",
    "etcdserverpb.AlarmRequest.AlarmAction": "GET=0 ACTIVATE=1 DEACTIVATE=2",
    "etcdserverpb.DowngradeRequest.DowngradeAction": "VALIDATE=0 ENABLE=1 CANCEL=2",
}

_SCALARS = {
    "TYPE_BOOL": "bool",
    "TYPE_BYTES": "bytes",
    "TYPE_STRING": "string",
    "TYPE_INT32": "int32",
    "TYPE_INT64": "int64",
    "TYPE_UINT32": "uint32",
    "TYPE_UINT64": "uint64",
    "TYPE_SINT32": "sint32",
    "TYPE_SINT64": "sint64",
    "TYPE_FIXED32": "fixed32",
    "TYPE_FIXED64": "fixed64",
    "TYPE_SFIXED32": "sfixed32",
    "TYPE_SFIXED64": "sfixed64",
    "TYPE_DOUBLE": "double",
    "TYPE_FLOAT": "float",
}


def _type_name(field: Any) -> str:
    if field.message_type is not None:
        return str(field.message_type.full_name)
    if field.enum_type is not None:
        return str(field.enum_type.full_name)
    names = {getattr(field, const): name for const, name in _SCALARS.items()}
    return names[field.type]


def _describe(field: Any) -> str:
    """One field in the notation of EXPECTED_FIELDS: ``name=N [repeated ]type[ oneof O]``."""
    text = f"{field.name}={field.number} "
    if field.is_repeated:
        text += "repeated "
    text += _type_name(field)
    oneof = field.containing_oneof
    if oneof is not None:
        text += f" oneof {oneof.name}"
    return text


def _walk(messages: Any) -> Iterator[Any]:
    for message in messages:
        yield message
        yield from _walk(message.nested_types)


def _all_messages() -> dict[str, Any]:
    return {
        m.full_name: m
        for module in ETCD_MODULES.values()
        for m in _walk(module.DESCRIPTOR.message_types_by_name.values())
    }


def _all_enums() -> dict[str, Any]:
    enums = [e for mod in ETCD_MODULES.values() for e in mod.DESCRIPTOR.enum_types_by_name.values()]
    enums += [e for m in _all_messages().values() for e in m.enum_types]
    return {e.full_name: e for e in enums}


def test_proto_packages_are_etcds() -> None:
    assert {name: mod.DESCRIPTOR.package for name, mod in ETCD_MODULES.items()} == {
        name: name for name in ETCD_MODULES
    }


def test_every_etcd_message_is_pinned() -> None:
    assert sorted(_all_messages()) == sorted(EXPECTED_FIELDS)


@pytest.mark.parametrize("message", sorted(EXPECTED_FIELDS))
def test_message_fields(message: str) -> None:
    spec = EXPECTED_FIELDS[message]
    expected = [f.strip() for f in spec.split(",")] if spec else []
    descriptor = _all_messages()[message]
    actual = [_describe(f) for f in sorted(descriptor.fields, key=lambda f: f.number)]
    assert actual == expected


def test_every_etcd_enum_is_pinned() -> None:
    actual = {
        name: " ".join(f"{v.name}={v.number}" for v in enum.values)
        for name, enum in _all_enums().items()
    }
    assert actual == EXPECTED_ENUMS


# --------------------------------------------------------------------------------------
# (b) encodings computed by hand from the protobuf wire format


@pytest.mark.parametrize(
    ("message", "encoded"),
    [
        # etcdctl get --prefix foo: key=1 "foo", range_end=2 "fop"
        (rpc_pb2.RangeRequest(key=b"foo", range_end=b"fop"), b"\x0a\x03foo\x12\x03fop"),
        # limit=3 varint, revision=4 varint, sort_order=5 DESCEND, sort_target=6 CREATE
        (
            rpc_pb2.RangeRequest(
                limit=1,
                revision=7,
                sort_order=rpc_pb2.RangeRequest.DESCEND,
                sort_target=rpc_pb2.RangeRequest.CREATE,
            ),
            b"\x18\x01\x20\x07\x28\x02\x30\x02",
        ),
        # Compare.range_end is field 64: tag (64 << 3) | 2 = 514 = varint 0x82 0x04
        (rpc_pb2.Compare(range_end=b"z"), b"\x82\x04\x01z"),
        # a oneof member set to its zero value is still sent: create_revision=5 int64 0
        (rpc_pb2.Compare(target=rpc_pb2.Compare.CREATE, create_revision=0), b"\x10\x01\x28\x00"),
        # WatchResponse.events is field 11; watch_id=2 -1 is a ten-byte int64 varint
        (
            rpc_pb2.WatchResponse(watch_id=-1, events=[kv_pb2.Event()]),
            b"\x10" + b"\xff" * 9 + b"\x01" + b"\x5a\x00",
        ),
        # WatchRequest{progress_request={}}: field 3, empty message
        (
            rpc_pb2.WatchRequest(progress_request=rpc_pb2.WatchProgressRequest()),
            b"\x1a\x00",
        ),
        # LeaseGrantRequest{TTL=1 60, ID=2 0}
        (rpc_pb2.LeaseGrantRequest(TTL=60), b"\x08\x3c"),
        # ResponseHeader member_id=2 uint64 max: ten-byte varint, not zigzag
        (rpc_pb2.ResponseHeader(member_id=2**64 - 1), b"\x10" + b"\xff" * 9 + b"\x01"),
        # HashKVResponse.hash=2 uint32
        (rpc_pb2.HashKVResponse(hash=0xFFFFFFFF), b"\x10\xff\xff\xff\xff\x0f"),
        # Member{ID=1, name=2, peerURLs=3, clientURLs=4, isLearner=5}
        (
            rpc_pb2.Member(ID=1, name="n", peerURLs=["p"], clientURLs=["c"], isLearner=True),
            b"\x08\x01\x12\x01n\x1a\x01p\x22\x01c\x28\x01",
        ),
        # StatusResponse{leader=4, raftIndex=5, raftTerm=6, raftAppliedIndex=7, isLearner=10}
        (
            rpc_pb2.StatusResponse(
                leader=9, raftIndex=8, raftTerm=2, raftAppliedIndex=8, isLearner=True
            ),
            b"\x20\x09\x28\x08\x30\x02\x38\x08\x50\x01",
        ),
        # v3lockpb.LockRequest{name=1 "l", lease=2 5}
        (v3lock_pb2.LockRequest(name=b"l", lease=5), b"\x0a\x01l\x10\x05"),
        # v3electionpb.LeaderKey{name=1, key=2, rev=3, lease=4}
        (
            v3election_pb2.LeaderKey(name=b"e", key=b"e/1", rev=3, lease=1),
            b"\x0a\x01e\x12\x03e/1\x18\x03\x20\x01",
        ),
    ],
)
def test_wire_encoding(message: Any, encoded: bytes) -> None:
    assert message.SerializeToString(deterministic=True) == encoded
    assert type(message).FromString(encoded) == message
