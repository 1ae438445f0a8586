"""A raftkv member inside this process: keys, a transaction, and a lock with a fencing token.

Run it with ``.venv/bin/python examples/embed_tour.py [DATA_DIR]``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile

from raftkv import embed
from raftkv.client import Compare, Op


async def main(data_dir: str) -> None:
    async with embed.start_node(data_dir, name="tour") as node:
        print(f"member {node.name} ({node.member_id:x}) serving gRPC on {node.endpoints[0]}")
        client = node.client()  # in-process: no sockets on the way
        await client.put("config/mode", "active")
        kv = await client.get("config/mode")
        assert kv is not None
        print(f"config/mode = {kv.value.decode()} (mod_revision {kv.mod_revision})")

        # compare-and-swap: only if nobody changed the key since we read it
        result = await (client.txn()
                        .if_(Compare.mod_revision("config/mode").equal(kv.mod_revision))
                        .then(Op.put("config/mode", "standby"))
                        .otherwise(Op.get("config/mode"))
                        .commit())
        print(f"txn succeeded: {result.succeeded}")

        # a lock whose writes are fenced: each succeeds only while the lock is still ours
        async with client.lock("jobs/nightly", ttl=10) as lock:
            print(f"holding {lock.key.decode()} with fencing token {lock.fencing_token}")
            await lock.put("jobs/nightly/owner", "tour")
        await client.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()))
