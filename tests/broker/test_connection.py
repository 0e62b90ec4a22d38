"""The pipelined connection, tested like a library: ordering, replies, errors, reconnection, timeouts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from quickdapp.broker.connection import (
    WRITE_EVERY,
    BrokerConnectionError,
    Connection,
    ConnectionClosedError,
    ReplyError,
    _Protocol,
)
from tests.helpers.socket_writes import note_writes


@pytest.fixture
async def admin(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_replies_stay_in_order_under_concurrency(redis_url: str) -> None:
    conn = Connection(redis_url)
    try:
        values = [f"v{n}" for n in range(3000)]
        replies = await asyncio.gather(*(conn.execute("ECHO", v) for v in values))
        assert replies == values
        counts = await asyncio.gather(*(conn.execute("INCR", "counter") for _ in range(2000)))
        assert counts == list(range(1, 2001))  # written and answered in issue order
    finally:
        await conn.close()


def _count_writes(conn: Connection) -> list[bytes]:
    """What each write of `conn`'s socket carries, from now on."""
    writes: list[bytes] = []
    note_writes(conn, writes.append)
    return writes


async def test_commands_of_a_loop_pass_go_out_together_a_few_at_a_time(redis_url: str) -> None:
    conn = Connection(redis_url)
    try:
        await conn.connect()
        writes = _count_writes(conn)
        replies = await asyncio.gather(*(conn.execute("PING") for _ in range(20)))
        assert replies == ["PONG"] * 20
        # The first at once (nothing in flight); the rest gathered, written every WRITE_EVERY
        # and at the end of the pass.
        pings = [data.count(b"PING") for data in writes]
        assert pings == [1, WRITE_EVERY, WRITE_EVERY, 19 - 2 * WRITE_EVERY]
    finally:
        await conn.close()


async def test_a_transaction_counts_as_one_call_and_goes_out_whole(redis_url: str) -> None:
    conn = Connection(redis_url)
    try:
        await conn.connect()
        writes = _count_writes(conn)
        replies = await asyncio.gather(*(conn.transaction([("PING",)] * 3) for _ in range(20)))
        assert replies == [["PONG"] * 3] * 20
        # Written as single commands are (a lone one at once too), each block whole.
        assert [data.count(b"MULTI") for data in writes] == [1, WRITE_EVERY, WRITE_EVERY, 3]
        assert all(data.count(b"PING") == 3 * data.count(b"EXEC") for data in writes)
    finally:
        await conn.close()


async def test_every_command_gets_its_own_reply_or_error(redis_url: str) -> None:
    conn = Connection(redis_url)
    try:
        await conn.execute("SET", "text", "x")
        calls = [
            conn.execute("GET", "text"),
            conn.execute("LPUSH", "text", "y"),  # WRONGTYPE
            conn.execute("NOSUCHCOMMAND"),
            conn.execute("GET", "missing"),
            conn.execute("EVALSHA", "0" * 40, 0),  # NOSCRIPT
            conn.execute("INCR", "n"),
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert results[0] == "x"
        assert isinstance(results[1], ReplyError) and "WRONGTYPE" in str(results[1])
        assert isinstance(results[2], ReplyError)
        assert results[3] is None
        assert isinstance(results[4], ReplyError) and str(results[4]).startswith("NOSCRIPT")
        assert results[5] == 1
    finally:
        await conn.close()


async def test_transaction_returns_errors_inside_exec(redis_url: str) -> None:
    conn = Connection(redis_url)
    try:
        sha = await conn.load_script("return redis.call('INCR', KEYS[1])")
        replies = await conn.transaction(
            [
                ("SET", "a", "1"),
                ("LPUSH", "a", "x"),  # fails at EXEC; the others still run (Redis semantics)
                ("EVALSHA", sha, 1, "b"),
                ("EVALSHA", "0" * 40, 0),  # NOSCRIPT inside EXEC
                ("GET", "a"),
            ]
        )
        assert replies[0] == "OK"
        assert isinstance(replies[1], ReplyError)
        assert replies[2] == 1
        assert isinstance(replies[3], ReplyError) and str(replies[3]).startswith("NOSCRIPT")
        assert replies[4] == "1"
        with pytest.raises(ReplyError, match="EXECABORT"):
            await conn.transaction([("SET", "c", "1"), ("NOSUCHCOMMAND",)])
        assert await conn.execute("GET", "c") is None  # the aborted block did nothing
    finally:
        await conn.close()


async def test_transactions_do_not_interleave_with_other_callers(redis_url: str) -> None:
    conn = Connection(redis_url)
    try:
        blocks = [
            conn.transaction([("RPUSH", "log", f"{n}:a"), ("RPUSH", "log", f"{n}:b")])
            for n in range(200)
        ]
        singles = [conn.execute("RPUSH", "log", f"single{n}") for n in range(200)]
        await asyncio.gather(*blocks, *singles)
        log = await conn.execute("LRANGE", "log", 0, -1)
        for n in range(200):
            a = log.index(f"{n}:a")
            assert log[a + 1] == f"{n}:b"
    finally:
        await conn.close()


async def test_reconnects_mid_flight(redis_url: str, admin: aioredis.Redis) -> None:
    conn = Connection(redis_url, name="under-test")
    try:
        sha = await conn.load_script("return 'scripted'")
        in_flight = [asyncio.ensure_future(conn.execute("BLPOP", "nothing", 5)) for _ in range(3)]
        await asyncio.sleep(0.1)
        await admin.script_flush()  # the scripts vanish too, as after a Redis restart
        await admin.client_kill_filter(_type=None, skipme=True)
        for future in in_flight:
            with pytest.raises(BrokerConnectionError):
                await asyncio.wait_for(future, 2)
        assert await conn.execute("PING") == "PONG"  # the next command reconnects
        assert conn.connects == 2
        assert await conn.execute("CLIENT", "GETNAME") == "under-test"
        assert await conn.execute("EVALSHA", sha, 0) == "scripted"  # reloaded on connect
    finally:
        await conn.close()


async def test_pipeline_holds_the_next_commands_behind_a_blocking_one(
    redis_url: str, admin: aioredis.Redis
) -> None:
    conn = Connection(redis_url)
    try:
        sent = asyncio.ensure_future(
            conn.pipeline([("BLPOP", "work", 5), ("SET", "after", "1"), ("HGET", "after", "x")])
        )
        await asyncio.sleep(0.2)
        assert await admin.get("after") is None  # queued behind the blocked BLPOP
        await admin.rpush("work", "job")
        popped, was_set, wrong_type = await asyncio.wait_for(sent, 2)
        assert (popped, was_set) == (["work", "job"], "OK")
        assert isinstance(wrong_type, ReplyError)  # an error reply in its place, not raised
        assert await conn.execute("ECHO", "next") == "next"  # the replies stayed in step
    finally:
        await conn.close()


async def test_tracked_client_id_is_the_current_sockets(redis_url: str, admin: aioredis.Redis) -> None:
    conn = Connection(redis_url, track_client_id=True)
    try:
        await conn.connect()
        first = conn.client_id
        assert first is not None and first == await conn.execute("CLIENT", "ID")
        blocked = asyncio.ensure_future(conn.execute("BLPOP", "nothing", 5))
        await asyncio.sleep(0.1)
        assert await admin.client_unblock(first)  # what the engine's close does
        assert await asyncio.wait_for(blocked, 1) is None
        await admin.client_kill_filter(_id=str(first))
        await asyncio.sleep(0.1)  # the loss is noticed; the next command reconnects
        assert await conn.execute("CLIENT", "ID") == conn.client_id != first
        assert conn.connects == 2
    finally:
        await conn.close()


async def test_concurrent_callers_share_one_reconnect(redis_url: str, admin: aioredis.Redis) -> None:
    conn = Connection(redis_url)
    try:
        await conn.connect()
        await admin.client_kill_filter(_type=None, skipme=True)
        await asyncio.sleep(0.05)
        replies = await asyncio.gather(*(conn.execute("ECHO", str(n)) for n in range(50)))
        assert replies == [str(n) for n in range(50)]
        assert conn.connects == 2
    finally:
        await conn.close()


async def test_refused_connection_fails_fast() -> None:
    conn = Connection("redis://127.0.0.1:1", connect_timeout=1.0)  # nothing listens on port 1
    started = time.monotonic()
    with pytest.raises(BrokerConnectionError):
        await conn.execute("PING")
    assert time.monotonic() - started < 1.0


async def _silent_server() -> tuple[asyncio.Server, int]:
    """A TCP server that accepts and reads but never answers: a hung Redis."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(1024):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_connect_timeout_covers_the_handshake() -> None:
    server, port = await _silent_server()
    try:
        conn = Connection(f"redis://127.0.0.1:{port}", name="x", connect_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(BrokerConnectionError, match="handshake"):
            await conn.connect()
        assert time.monotonic() - started < 1.0
    finally:
        server.close()


async def test_command_timeout_drops_a_silent_connection() -> None:
    server, port = await _silent_server()
    try:
        conn = Connection(f"redis://127.0.0.1:{port}", command_timeout=0.4)
        started = time.monotonic()
        with pytest.raises(BrokerConnectionError, match="no reply"):
            await conn.execute("PING")
        assert 0.3 < time.monotonic() - started < 1.5
        await conn.close()
    finally:
        server.close()


async def test_blocking_connection_has_no_client_timeout(redis_url: str) -> None:
    # A blocking wait longer than the command timeout of a normal connection is not cut.
    conn = Connection(redis_url, command_timeout=None)
    try:
        await conn.connect()
        started = time.monotonic()
        assert await conn.execute("BZPOPMIN", "marker", 1.5) is None
        assert time.monotonic() - started >= 1.4
        assert conn.connects == 1
    finally:
        await conn.close()


@pytest.mark.parametrize("call", ["execute", "pipeline"])
async def test_cancelled_caller_does_not_shift_replies(
    redis_url: str, caplog: pytest.LogCaptureFixture, call: str
) -> None:
    conn = Connection(redis_url, command_timeout=None)
    blocking = ("BLPOP", "queue", 2)
    try:
        if call == "execute":
            waiting = asyncio.ensure_future(conn.execute(*blocking))
        else:  # a pipeline whose commands after the blocking one get replies nobody reads
            waiting = asyncio.ensure_future(
                conn.pipeline([blocking, ("ECHO", "theirs"), ("HGET", "queue", "x")])
            )
        await asyncio.sleep(0.05)
        waiting.cancel()
        follow_up = asyncio.ensure_future(conn.execute("ECHO", "mine"))
        other = Connection(redis_url)
        await other.execute("RPUSH", "queue", "item")  # answers the cancelled BLPOP
        await other.close()
        assert await asyncio.wait_for(follow_up, 2) == "mine"
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        await conn.close()
    assert "never retrieved" not in caplog.text


async def test_close_fails_pending_and_later_commands(redis_url: str) -> None:
    conn = Connection(redis_url, command_timeout=None)
    pending = asyncio.ensure_future(conn.execute("BLPOP", "nothing", 5))
    await asyncio.sleep(0.05)
    await conn.close()
    with pytest.raises(ConnectionClosedError):
        await pending
    with pytest.raises(ConnectionClosedError):
        await conn.execute("PING")


async def test_a_pipeline_resumes_its_caller_in_the_loop_pass_after_its_last_reply(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The marker waiter's way to a job: one pass, not the three an asyncio.gather took.
    conn = Connection(redis_url)
    passes = 0

    async def count_passes() -> None:
        nonlocal passes
        while True:
            passes += 1
            await asyncio.sleep(0)

    received_at: list[int] = []
    original = _Protocol.data_received

    def noting(protocol: _Protocol, data: bytes) -> None:
        received_at.append(passes)
        original(protocol, data)

    # On the class, before the socket opens: uvloop looks the method up once, at connect.
    monkeypatch.setattr(_Protocol, "data_received", noting)
    counter = asyncio.ensure_future(count_passes())
    try:
        await conn.connect()
        for _ in range(20):
            received_at.clear()
            replies = await conn.pipeline([("PING",), ("ECHO", "x"), ("GET", "none")])
            assert replies == ["PONG", "x", None]
            assert passes - received_at[-1] <= 1, (received_at, passes)
    finally:
        counter.cancel()
        await conn.close()
