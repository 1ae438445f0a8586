"""Micro-benchmark of the state-machine record codec (:mod:`raftkv.state.codec`).

Times encode and decode of the records on the write path: a ``Request`` carrying a ``Put``
of a 256-byte value (as the server proposes an etcd client's put: ``client_id == 0`` and
its proposal counter as ``seq``; and as it proposes a raftkv client's: a 63-bit client id,
seq, ack and nonce), the ``KeyValue`` MVCC stores per put (without and with a lease), the
``PutResult`` the de-duplication table stores, and a ``Request`` carrying a ``Txn`` with 2
compares and 2 puts. Prints the best of ``--repeat`` runs in nanoseconds per operation.

    .venv/bin/python benchmarks/codec_micro.py
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raftkv.state import codec
from raftkv.state.commands import (
    Compare,
    CompareResult,
    CompareTarget,
    KeyValue,
    Put,
    PutResult,
    Request,
    Txn,
)

_KEY = b"/registry/services/endpoints/default/kubernetes-0042"
_VALUE = bytes(range(256))
_LEASE = 7_587_869_432_011_223_344
_KV = KeyValue(_KEY, 1_234_567, 1_234_890, 17, _VALUE)
_KV_LEASED = KeyValue(_KEY, 1_234_567, 1_234_890, 17, _VALUE, _LEASE)
_TXN = Txn(
    (
        Compare(_KEY, CompareTarget.MOD, CompareResult.EQUAL, 1_234_890),
        Compare(b"/lock/owner", CompareTarget.VALUE, CompareResult.EQUAL, b"node-3"),
    ),
    (Put(_KEY, _VALUE), Put(b"/lock/owner", b"node-3", lease=_LEASE)),
)


def _cases() -> dict[str, tuple[object, Callable[[], object], Callable[[], object]]]:
    """name -> (value, encode thunk, decode thunk)."""
    put = Request(0, 123_456, Put(_KEY, _VALUE))
    put_cid = Request(7_587_869_432_011_223_301, 912_345, Put(_KEY, _VALUE), 912_300, 123_456)
    put_raw, put_cid_raw = codec.encode_request(put), codec.encode_request(put_cid)
    kv_raw, kv_leased_raw = codec.encode(_KV), codec.encode(_KV_LEASED)
    result = PutResult(1_234_890, _KV)
    result_raw = codec.encode_response(result)
    txn = Request(0, 123_456, _TXN)
    txn_raw = codec.encode_request(txn)
    return {
        "request put": (put, lambda: codec.encode_request(put),
                        lambda: codec.decode_request(put_raw)),
        "request put+client id": (put_cid, lambda: codec.encode_request(put_cid),
                                  lambda: codec.decode_request(put_cid_raw)),
        "keyvalue": (_KV, lambda: codec.encode(_KV), lambda: codec.decode(kv_raw, KeyValue)),
        "keyvalue leased": (_KV_LEASED, lambda: codec.encode(_KV_LEASED),
                            lambda: codec.decode(kv_leased_raw, KeyValue)),
        "putresult prev_kv": (result, lambda: codec.encode_response(result),
                              lambda: codec.decode_response(result_raw)),
        "request txn 2cmp 2put": (txn, lambda: codec.encode_request(txn),
                                  lambda: codec.decode_request(txn_raw)),
    }  # fmt: skip


def _ns_per_op(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing run")
    parser.add_argument("--repeat", type=int, default=5, help="timing runs; the best is kept")
    args = parser.parse_args()
    print(f"{'case':<24} {'bytes':>6} {'encode ns/op':>13} {'decode ns/op':>13}")
    for name, (value, enc, dec) in _cases().items():
        size = len(codec.encode(value))
        enc_ns = _ns_per_op(enc, args.number, args.repeat)
        dec_ns = _ns_per_op(dec, args.number, args.repeat)
        print(f"{name:<24} {size:>6} {enc_ns:>13.0f} {dec_ns:>13.0f}")


if __name__ == "__main__":
    main()
