"""An auto-pipelined Redis connection: many commands in flight on one socket.

A command issued while nothing is in flight is written at once; those issued while replies
are due are gathered and written together at the end of the loop pass (as ioredis does), or
as soon as WRITE_EVERY of them wait, so Redis starts on the first of a large batch while the
worker is still producing the rest. Replies are parsed by hiredis and handed to the waiting
futures in order (Redis answers in the order it was asked). One socket thus carries the
commands of all of a worker's job slots without a round trip each.

Failure model, what callers can rely on:
- Every command gets exactly one outcome: its reply, a `ReplyError` (an error reply, also
  one nested inside an EXEC result), or a `BrokerConnectionError` when the connection was
  lost before its reply arrived (the command may or may not have run).
- After a loss the next command reconnects (one attempt shared by all callers); the
  connection re-sends its start-up commands first (AUTH, SELECT, CLIENT SETNAME, SCRIPT LOAD
  of registered scripts; CLIENT ID with `track_client_id`), so names and scripts survive a
  Redis restart.
- `command_timeout` bounds how long the oldest unanswered command may wait for a reply;
  past it the socket is considered dead and dropped (replies are ordered: one cannot be
  skipped). `None` turns it off, for the blocking connection, whose BZPOPMIN carries its
  own server-side timeout and must never be cut by the client.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from collections import deque
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis

logger = logging.getLogger(__name__)

Arg = str | bytes | int | float
WRITE_EVERY = 8
"""Most calls (a command, or a whole transaction) held back for the end of a loop pass. When
50 slots finish in one pass, one write at its end left Redis idle while the worker built all
50, then the worker idle while Redis ran them; writing every 8 lets the two overlap. On 2
cores, a 1x50 no-op drain in one process (bench/worker_cpu.py's) went from 12.2k to 18.3k
jobs/s and 59 to 47 µs of CPU per job (medians of 10 runs each, the two settings alternating;
2, 4 and 16 did no better). A transaction counts once: counted by its commands, the audit's
4-command finishing calls were written every 2 jobs, at about 30 µs of CPU a write."""
Command = Sequence[Arg]


def _pack(command: Command) -> bytes:
    """RESP-encode one command (hiredis; its stub wrongly types the argument as a 1-tuple)."""
    packed: bytes = hiredis.pack_command(tuple(command))  # type: ignore[arg-type]
    return packed


_MULTI, _EXEC = _pack(("MULTI",)), _pack(("EXEC",))


class ReplyError(Exception):
    """An error reply from Redis (e.g. NOSCRIPT, WRONGTYPE, a Lua error)."""


class BrokerConnectionError(ConnectionError):
    """The connection failed or was lost; the command's effect is unknown."""


class ConnectionClosedError(BrokerConnectionError):
    """The connection was closed on purpose; no further commands are accepted."""


class _Protocol(asyncio.Protocol):
    """Feeds socket bytes to hiredis and resolves the queue of waiting futures in order."""

    def __init__(self, owner: Connection) -> None:
        self._owner = owner
        self._reader = hiredis.Reader(replyError=ReplyError, encoding="utf-8", errors="surrogateescape")
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is no subclass of asyncio.Transport, only alike).
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A silent dead peer is then noticed even on the blocking connection.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        pending = self._owner._pending
        reader.feed(data)
        self._owner._last_progress = self._owner._loop.time()
        try:
            while (reply := reader.gets()) is not False:
                waiter = pending.popleft()
                # None: a reply nobody waits for (MULTI's +OK, each +QUEUED); done: cancelled.
                if waiter is None or waiter.done():
                    continue
                if isinstance(reply, ReplyError):
                    waiter.set_exception(reply)
                else:
                    waiter.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:
            # Out of step with the server: nothing read afterwards can be trusted.
            logger.error("Redis protocol error, dropping the connection: %s", exc)
            if self.transport is not None:
                self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._on_lost(self, exc)


class Connection:
    """One auto-pipelined Redis connection (see the module docstring for its guarantees)."""

    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        connect_timeout: float = 5.0,
        command_timeout: float | None = 30.0,
        track_client_id: bool = False,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", ""):
            raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r} (redis:// only)")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        path = parts.path.lstrip("/")
        self._db = int(path) if path else 0
        self.name = name
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._loop = asyncio.get_running_loop()
        self._pending: deque[asyncio.Future[Any] | None] = deque()
        self._wbuf: list[bytes] = []
        self._flush_scheduled = False
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._scripts: dict[str, str] = {}  # sha -> text, loaded on every connect
        self._closed = False
        self._last_progress = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self.connects = 0  # how many times a socket was (re)opened; for tests and logs
        self._track_client_id = track_client_id
        self.client_id: int | None = None  # with track_client_id: the socket's CLIENT ID

    @property
    def connected(self) -> bool:
        """Whether a socket is open and ready for commands."""
        return self._protocol is not None and self._connecting is None

    async def connect(self) -> None:
        """Open the socket now (commands also connect on demand); raise if it fails."""
        await self._ensure_connected()

    async def execute(self, *args: Arg) -> Any:
        """Send one command and return its reply (raises `ReplyError` for an error reply)."""
        if self._protocol is None or self._connecting is not None:
            await self._ensure_connected()
        future: asyncio.Future[Any] = self._loop.create_future()
        self._enqueue(_pack(args), future)
        return await future

    async def pipeline(self, commands: Sequence[Command]) -> list[Any]:
        """Send `commands` back to back, with nobody else's in between; their replies in order,
        an error reply as a `ReplyError` in its place (a lost connection raises). Unlike a
        transaction, Redis runs each as it comes: a blocking command holds back the next ones
        until it returns, which then run at once."""
        if self._protocol is None or self._connecting is not None:
            await self._ensure_connected()
        replies = await self._replies(commands)
        for reply in replies:
            if isinstance(reply, BaseException) and not isinstance(reply, ReplyError):
                raise reply
        return replies

    async def transaction(self, commands: Sequence[Command]) -> list[Any]:
        """Run commands in MULTI/EXEC; return EXEC's replies (errors in it as `ReplyError`).

        The whole block goes out in one write, so no other caller's command can land
        inside it. A command rejected while queueing aborts the block (`ReplyError`
        EXECABORT); one failing while it runs does not stop the others (Redis semantics).
        """
        if self._protocol is None or self._connecting is not None:
            await self._ensure_connected()
        future: asyncio.Future[Any] = self._loop.create_future()
        packed = b"".join([_MULTI, *map(_pack, commands), _EXEC])
        self._enqueue(packed, future, queued=len(commands) + 1)
        reply = await future
        if not isinstance(reply, list):
            raise ReplyError(f"EXEC returned {reply!r}")
        return reply

    async def load_script(self, text: str) -> str:
        """Register a Lua script (loaded now and after every reconnect); return its SHA1."""
        sha = hashlib.sha1(text.encode()).hexdigest()
        if sha not in self._scripts:
            self._scripts[sha] = text
            if self.connected:
                await self.execute("SCRIPT", "LOAD", text)
        return sha

    async def reload_scripts(self) -> None:
        """Load every registered script again (after a NOSCRIPT, e.g. a SCRIPT FLUSH)."""
        await asyncio.gather(*(self.execute("SCRIPT", "LOAD", t) for t in self._scripts.values()))

    async def close(self) -> None:
        """Close for good: pending commands fail with `ConnectionClosedError`."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()
        self._fail_pending(ConnectionClosedError("connection closed"))
        await asyncio.sleep(0)

    def abort(self) -> None:
        """Drop the socket at once (the next command reconnects); for outage handling."""
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            protocol.transport.abort()

    # -- internals ---------------------------------------------------------------

    def _enqueue(self, packed: bytes, future: asyncio.Future[Any], queued: int = 0) -> None:
        """Send `packed` (one call: a command, or a whole transaction) for `future`, whose reply
        comes after `queued` others that no one waits for (a transaction's OK and QUEUEDs)."""
        idle = not self._pending
        self._pending.extend([None] * queued)
        self._pending.append(future)
        if idle:
            # Nothing in flight: write at once (a lone command waits for no loop pass); what
            # follows in this pass is batched behind it, and so on while replies are due.
            self._last_progress = self._loop.time()
            protocol = self._protocol
            if protocol is not None and protocol.transport is not None and not self._wbuf:
                protocol.transport.write(packed)
                return
        self._wbuf.append(packed)
        if len(self._wbuf) >= WRITE_EVERY:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        protocol = self._protocol
        if not self._wbuf:
            return
        data = b"".join(self._wbuf)
        self._wbuf.clear()
        if protocol is not None and protocol.transport is not None:
            protocol.transport.write(data)

    async def _ensure_connected(self) -> None:
        if self._closed:
            raise ConnectionClosedError("connection closed")
        if self._connecting is None:
            self._connecting = self._loop.create_task(self._open())
        # Shielded: a caller that gives up must not cancel the attempt the others share.
        await asyncio.shield(self._connecting)

    async def _open(self) -> None:
        try:
            try:
                _, protocol = await asyncio.wait_for(
                    self._loop.create_connection(lambda: _Protocol(self), self.host, self.port),
                    self.connect_timeout,
                )
            except (OSError, TimeoutError) as exc:
                raise BrokerConnectionError(
                    f"cannot connect to Redis at {self.host}:{self.port}: {exc or 'timeout'}"
                ) from exc
            self._protocol = protocol
            self.connects += 1
            try:
                await asyncio.wait_for(self._handshake(), self.connect_timeout)
            except BaseException as exc:
                self.abort()
                if isinstance(exc, TimeoutError):
                    raise BrokerConnectionError("Redis handshake timed out") from exc
                raise
            if self.command_timeout is not None:
                self._arm_watchdog()
        finally:
            self._connecting = None

    async def _handshake(self) -> None:
        """The start-up commands, sent before any caller's command on a new socket."""
        commands: list[Command] = []
        if self._password is not None:
            auth: list[Arg] = ["AUTH", self._password]
            if self._username:
                auth.insert(1, self._username)
            commands.append(auth)
        if self._db:
            commands.append(("SELECT", self._db))
        if self.name:
            commands.append(("CLIENT", "SETNAME", self.name))
        asks_id = len(commands)
        if self._track_client_id:  # so that its blocked call can be ended (CLIENT UNBLOCK)
            commands.append(("CLIENT", "ID"))
        commands.extend(("SCRIPT", "LOAD", text) for text in self._scripts.values())
        results = await self._replies(commands)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        if self._track_client_id:
            client_id = results[asks_id]
            self.client_id = client_id if isinstance(client_id, int) else None

    async def _replies(self, commands: Sequence[Command]) -> list[Any]:
        """Send `commands` back to back; their replies, each error in its place.

        Replies come in order, and a lost connection fails every pending future at once, so
        the last future done means all are: the caller waits on that one alone. (asyncio.gather
        woke it two loop passes later, on the marker waiter's way to a job: ~20-30 µs.)
        """
        futures: list[asyncio.Future[Any]] = []
        for command in commands:
            future: asyncio.Future[Any] = self._loop.create_future()
            self._enqueue(_pack(command), future)
            futures.append(future)
        if not futures:
            return []
        try:
            await futures[-1]
        except asyncio.CancelledError:
            for future in futures:
                # A reply that comes now is dropped (see data_received); one that came is read,
                # so that its error is not reported as never retrieved.
                if not future.cancel() and not future.cancelled():
                    future.exception()
            raise
        except Exception:  # its error is returned in its place, as the others'
            pass
        return [future.exception() or future.result() for future in futures]

    def _on_lost(self, protocol: _Protocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return
        self._protocol = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if not self._closed:
            logger.info("Redis connection %s lost: %s", self.name or "", exc or "closed by peer")
        reason = f"Redis connection lost: {exc}" if exc else "Redis connection closed by peer"
        self._fail_pending(
            ConnectionClosedError("connection closed") if self._closed else BrokerConnectionError(reason)
        )

    def _fail_pending(self, error: BrokerConnectionError) -> None:
        self._wbuf.clear()
        pending, self._pending = self._pending, deque()
        for waiter in pending:
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)

    def _arm_watchdog(self) -> None:
        assert self.command_timeout is not None
        self._watchdog = self._loop.call_later(self.command_timeout / 4, self._check_progress)

    def _check_progress(self) -> None:
        self._watchdog = None
        if self._protocol is None or self.command_timeout is None:
            return
        stalled_for = self._loop.time() - self._last_progress
        if self._pending and stalled_for > self.command_timeout:
            logger.warning(
                "Redis gave no reply for %.1f s (%d commands waiting): reconnecting",
                stalled_for,
                len(self._pending),
            )
            self._fail_pending(BrokerConnectionError(f"no reply within {self.command_timeout} s"))
            self.abort()
            return
        self._arm_watchdog()
