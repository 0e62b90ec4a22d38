"""Which async Redis client for the engine: the engine's pattern, measured per client.

50 tasks each issuing EVALSHA of a script shaped like moveToActive's reply (a 20-field job hash)
on ONE client, while a BZPOPMIN blocks on a second connection; commands/s and this process's
CPU per command. The candidates are not project dependencies: install them in a scratch venv
(`pip install redis hiredis coredis valkey-glide msgpack`) and point PYTHONPATH at src/ for
`own` (quickdapp.broker.connection). Needs a Redis on PORT (default 6391).

    python bench/client_eval.py own|redis_py|redis_py_pool|coredis|glide
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

Setup = tuple[Callable[[int], Awaitable[Any]], Callable[[], Awaitable[Any]]]
"""One command of the measured kind (given a number), and the blocking wait beside it."""

PORT = int(os.environ.get("PORT", "6391"))
N = int(os.environ.get("N", "60000"))
CONC = 50
# Work like moveToActive/moveToFinished: touch a list + return a ~20-field hash (job data).
LUA = """
local k = KEYS[1]
local rcall = redis.call
rcall('INCR', k .. ':n')
return {rcall('HGETALL', k), ARGV[1], 0, 0}
"""


async def setup_redis_py() -> Setup:
    import redis.asyncio as r

    c = r.Redis(port=PORT, decode_responses=True, single_connection_client=True)
    sha = await c.script_load(LUA)
    b = r.Redis(port=PORT, decode_responses=True, single_connection_client=True)

    async def call(i: int) -> Any:
        return await c.evalsha(sha, 1, "job", str(i))

    async def block() -> Any:
        return await b.bzpopmin("marker", 30)

    return call, block


async def setup_redis_py_pool() -> Setup:
    import redis.asyncio as r

    c = r.Redis(port=PORT, decode_responses=True, max_connections=CONC)
    sha = await c.script_load(LUA)
    b = r.Redis(port=PORT, decode_responses=True, single_connection_client=True)

    async def call(i: int) -> Any:
        return await c.evalsha(sha, 1, "job", str(i))

    async def block() -> Any:
        return await b.bzpopmin("marker", 30)

    return call, block


async def setup_coredis() -> Setup:
    import coredis

    c = coredis.Redis(port=PORT, decode_responses=True, max_connections=2)
    await c.__aenter__()
    sha = await c.script_load(LUA)

    async def call(i: int) -> Any:
        return await c.evalsha(sha, ["job"], [str(i)])

    async def block() -> Any:
        return await c.bzpopmin(["marker"], 30)

    return call, block


async def setup_glide() -> Setup:
    from glide import GlideClient, GlideClientConfiguration, NodeAddress

    cfg = GlideClientConfiguration([NodeAddress("127.0.0.1", PORT)], request_timeout=60000)
    c = await GlideClient.create(cfg)
    b = await GlideClient.create(cfg)
    sha = (await c.custom_command(["SCRIPT", "LOAD", LUA])).decode()

    async def call(i: int) -> Any:
        return await c.custom_command(["EVALSHA", sha, "1", "job", str(i)])

    async def block() -> Any:
        return await b.custom_command(["BZPOPMIN", "marker", "30"])

    return call, block


async def setup_own() -> Setup:
    from quickdapp.broker.connection import Connection

    c = Connection(f"redis://127.0.0.1:{PORT}")
    b = Connection(f"redis://127.0.0.1:{PORT}", command_timeout=None)
    await c.connect()
    await b.connect()
    sha = await c.execute("SCRIPT", "LOAD", LUA)

    async def call(i: int) -> Any:
        return await c.execute("EVALSHA", sha, 1, "job", str(i))

    async def block() -> Any:
        return await b.execute("BZPOPMIN", "marker", 30)

    return call, block


async def main(which: str) -> None:
    import redis

    r = redis.Redis(port=PORT)
    r.delete("job", "job:n", "marker")
    r.hset("job", mapping={f"field{i}": "x" * 20 for i in range(20)})
    setups: dict[str, Callable[[], Awaitable[Setup]]] = {
        "own": setup_own,
        "redis_py": setup_redis_py,
        "redis_py_pool": setup_redis_py_pool,
        "coredis": setup_coredis,
        "glide": setup_glide,
    }
    call, block = await setups[which]()
    blocker = asyncio.ensure_future(block())
    await asyncio.sleep(0.1)
    per = N // CONC

    async def worker(w: int) -> None:
        for i in range(per):
            await call(i)

    await asyncio.gather(*(worker(w) for w in range(CONC // 5)))  # warm-up
    t0, c0 = time.perf_counter(), os.times()
    await asyncio.gather(*(worker(w) for w in range(CONC)))
    t1, c1 = time.perf_counter(), os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    n = per * CONC
    r.zadd("marker", {"0": 0})
    got = await asyncio.wait_for(blocker, 5)
    rate, per_cmd = n / (t1 - t0), cpu / n * 1e6
    print(f"{which:16s} {rate:9.0f} cmd/s  {per_cmd:6.1f} us CPU/cmd  blocker={bool(got)}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
