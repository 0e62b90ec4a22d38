"""dramatiq (as pinned) with its RedisBroker on the bench Redis: P processes of C threads.

Worker process: `python -m bench.peers.dramatiq_peer URL THREADS`, one dramatiq Worker (what
each process of the `dramatiq` command runs), default options: an idle consumer polls Redis
with a back-off of up to 1 s (worker_timeout 1000 ms). Held jobs: the messages are stored
(HSET) but their ids not yet pushed on the queue's list; release pushes all ids in one RPUSH,
as its enqueue script would have one by one. Delays: send_with_options(delay=ms). dramatiq
has no bulk enqueue: "bulk" is group(...).run(), which still enqueues message by message.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
import time
from uuid import uuid4

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from redis.asyncio import Redis

from bench.peers.base import SLEEP_MS, EnqueueMode, Kind, Peer, now_ms
from bench.stamps import record_start
from bench.workers import Workers

QUEUE = "default"
NAMESPACE = "dramatiq"
MESSAGES = f"{NAMESPACE}:{QUEUE}.msgs"
DELAYED_MESSAGES = f"{NAMESPACE}:{QUEUE}.DQ.msgs"


def declare(broker: RedisBroker) -> dict[str, dramatiq.Actor[[str], None]]:
    """The three job kinds as actors of `broker`, no retries (as every system here)."""

    def echo(key: str) -> None:
        pass

    def sleep(key: str) -> None:
        time.sleep(SLEEP_MS / 1000)

    def stamp(key: str) -> None:
        record_start(key)

    return {
        fn.__name__: dramatiq.actor(broker=broker, actor_name=fn.__name__, max_retries=0)(fn)
        for fn in (echo, sleep, stamp)
    }


class DramatiqPeer(Peer):
    name = "dramatiq"
    slow = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.broker = RedisBroker(url=url)  # type: ignore[no-untyped-call]
        self.actors = declare(self.broker)
        self._redis: Redis | None = None
        self._held: list[str] = []

    @property
    def redis(self) -> Redis:
        assert self._redis is not None, "open() first"
        return self._redis

    async def open(self) -> None:
        self._redis = Redis.from_url(self.url)

    async def close(self) -> None:
        self.broker.close()
        if self._redis is not None:
            await self._redis.aclose()

    async def reset(self) -> None:
        await self.redis.flushall()
        self._held = []

    def redis_client(self) -> Redis:
        return self.redis

    async def start(self, workers: Workers, processes: int, concurrency: int) -> None:
        for _ in range(processes):
            args = [sys.executable, "-m", "bench.peers.dramatiq_peer", self.url, str(concurrency)]
            await workers.spawn(args)

    async def fill_held(self, kind: Kind, n: int) -> None:
        actor = self.actors[kind]
        pipe = self.redis.pipeline(transaction=False)
        for _ in range(n):
            redis_id = str(uuid4())
            message = actor.message(redis_id).copy(options={"redis_message_id": redis_id})
            pipe.hset(MESSAGES, redis_id, message.encode())
            self._held.append(redis_id)
        await pipe.execute()

    async def release(self) -> None:
        await self.redis.rpush(f"{NAMESPACE}:{QUEUE}", *self._held)
        self._held = []

    async def finished(self, n: int) -> bool:
        """No message left (acknowledged ones are deleted) but delayed ones not yet due."""
        if await self.redis.hlen(MESSAGES):
            return False
        waiting = await self.redis.hvals(DELAYED_MESSAGES)
        return all(json.loads(raw)["options"]["eta"] > now_ms() for raw in waiting)

    async def add(self, kind: Kind, delay_ms: int = 0) -> str:
        key = uuid4().hex
        actor = self.actors[kind]
        await asyncio.to_thread(actor.send_with_options, args=(key,), delay=delay_ms or None)
        return key

    async def enqueue(self, mode: EnqueueMode, n: int) -> float:
        return await asyncio.to_thread(self._enqueue, mode, n)

    def _enqueue(self, mode: EnqueueMode, n: int) -> float:
        echo = self.actors["echo"]
        echo.send("warm-up")  # connection open
        started = time.perf_counter()
        if mode == "one":
            for i in range(n):
                echo.send(str(i))
        else:
            for first in range(0, n, 1_000):
                messages = [echo.message(str(i)) for i in range(first, min(n, first + 1_000))]
                dramatiq.group(messages).run()  # type: ignore[no-untyped-call]
        return n / (time.perf_counter() - started)


def _work(url: str, threads: int) -> None:
    broker = RedisBroker(url=url)  # type: ignore[no-untyped-call]
    declare(broker)
    worker = dramatiq.Worker(broker, worker_threads=threads)
    worker.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    worker.stop(timeout=5_000)


if __name__ == "__main__":
    _work(sys.argv[1], int(sys.argv[2]))
