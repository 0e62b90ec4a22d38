"""No secret leaves: every URL setting and key set to secret-bearing values, the CLI, a server
with workers, failing chain jobs and the dashboard API run against them, and then all output,
logs, Redis (every key's value) and the database tables are searched for the secrets.

Services of its own: a Redis with requirepass (port 6400-6409), a PostgreSQL role with a
password and its own database, and a JSON-RPC node that fails (tests/helpers/fake_rpc.py) or
nothing at all, reached through a URL with user:password and a key in its path.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis
from sqlalchemy.engine import make_url

from quickdapp.devtools.anvil import free_port
from quickdapp.devtools.redis_manager import RedisManager, RedisUnavailableError
from tests.helpers.fake_rpc import failing_node
from tests.helpers.paths import ROOT
from tests.helpers.services import postgres_server, unavailable
from tests.helpers.waiting import eventually

REDIS_PORTS = range(6400, 6410)
DASHBOARD_LINE = re.compile(r"dashboard: (http://127\.0\.0\.1:\d+/admin/queues/)")
TIMEOUT = 60


@dataclass(frozen=True)
class Secrets:
    redis_password: str = "redis-pw-" + secrets.token_hex(8)
    database_password: str = "db-pw-" + secrets.token_hex(8)
    rpc_password: str = "rpc-pw-" + secrets.token_hex(8)
    rpc_key: str = "rpckey" + secrets.token_hex(16)
    wallet_key: str = "0x" + secrets.token_hex(32)
    admin_password: str = "admin-pw-" + secrets.token_hex(8)
    admin_token: str = "admin-token-" + secrets.token_hex(12)

    def all(self) -> dict[str, str]:
        return dict(vars(self))


@pytest.fixture(scope="module")
def secret() -> Secrets:
    return Secrets()


def _free_redis_port() -> int:
    for port in REDIS_PORTS:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    unavailable(f"every port of {REDIS_PORTS} is taken")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def redis_url(secret: Secrets, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis of its own that wants a password; yields its URL with the password."""
    port = _free_redis_port()
    manager = RedisManager(
        f"redis://127.0.0.1:{port}/0", data_dir=tmp_path_factory.mktemp("redis-auth"), reuse=False
    )
    try:
        manager.start()
    except RedisUnavailableError as exc:
        unavailable(f"Redis with a password: {exc}")
    try:
        client = redis.Redis(port=port)
        client.config_set("requirepass", secret.redis_password)
        client.close()
        yield f"redis://:{secret.redis_password}@127.0.0.1:{port}/0"
    finally:
        manager.stop()


@pytest.fixture(scope="module")
def database_url(secret: Secrets, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL role with a password and a database it owns; both dropped afterwards."""
    name = f"quickdapp_secret_{secrets.token_hex(6)}"

    async def admin(server_url: str, *statements: str) -> None:
        connection = await asyncpg.connect(server_url)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    with postgres_server(tmp_path_factory.mktemp("postgres")) as server_url:
        asyncio.run(
            admin(
                server_url,
                f"CREATE ROLE {name} LOGIN PASSWORD '{secret.database_password}'",
                f"CREATE DATABASE {name} OWNER {name}",
            )
        )
        url = make_url(server_url).set(
            drivername="postgresql+asyncpg",
            username=name,
            password=secret.database_password,
            database=name,
        )
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            asyncio.run(
                admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f"DROP ROLE {name}")
            )


class Evidence:
    """Everything the system printed, logged, stored or served, by where it was found."""

    def __init__(self) -> None:
        self.places: dict[str, str] = {}

    def add(self, where: str, text: str) -> None:
        self.places[where] = self.places.get(where, "") + text

    def leaks(self, secret: Secrets) -> list[str]:
        return [
            f"{name} in {where}"
            for where, text in self.places.items()
            for name, value in secret.all().items()
            if value in text
        ]


def _env(secret: Secrets, redis_url: str, database_url: str, rpc_port: int, tmp: Path) -> dict[str, str]:
    rpc_url = f"http://rpcuser:{secret.rpc_password}@127.0.0.1:{rpc_port}/v3/{secret.rpc_key}"
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "CHAIN_RPC_URL": rpc_url,
        "SERVER_WALLET_PRIVATE_KEY": secret.wallet_key,
        "ADMIN_PASSWORD": secret.admin_password,
        "ADMIN_TOKEN": secret.admin_token,
        "APP_ENV": "test",
        "LOG_LEVEL": "DEBUG",  # the most a log can say
        "WORKER_COUNT": "1",
        "WORKER_QUEUE_JOB_ATTEMPTS": "1",
        "METRICS_DIR": str(tmp / "metrics"),
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
    }


def _quickdapp(*args: str) -> list[str]:
    return [sys.executable, "-m", "quickdapp.cli", "--env-file", os.devnull, *args]


async def _run(evidence: Evidence, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = await asyncio.to_thread(
        subprocess.run,
        _quickdapp(*args),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    evidence.add(f"`quickdapp {' '.join(args)}` output", done.stdout + done.stderr)
    return done


class Background:
    """A `quickdapp` command running in the background, its output in a file."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.args = args
        self.log = log
        self._file = log.open("w")
        self.process = subprocess.Popen(
            _quickdapp(*args), env=env, cwd=log.parent, stdout=self._file, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def stop(self, evidence: Evidence) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._file.close()
        evidence.add(f"`quickdapp {' '.join(self.args)}` log", self.output())


async def _dashboard(process: Background) -> str:
    async def url() -> str | None:
        found = DASHBOARD_LINE.search(process.output())
        assert process.process.poll() is None, process.output()
        return found.group(1) if found else None

    return await eventually(url, TIMEOUT, "the dashboard URL")


async def _audit_rows(database_url: str) -> list[dict[str, object]]:
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return [dict(row) for row in await connection.fetch("SELECT * FROM worker_jobs ORDER BY id")]
    finally:
        await connection.close()


async def _tables(database_url: str) -> str:
    """Every row of every table, as text."""
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        names = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        dump = []
        for (name,) in names:
            rows = await connection.fetch(f'SELECT * FROM "{name}"')
            dump += [f"{name}: {dict(row)!r}" for row in rows]
        return "\n".join(dump)
    finally:
        await connection.close()


def _redis_dump(url: str) -> str:
    """Every key of the Redis and its whole value, as text."""
    client = redis.Redis.from_url(url, decode_responses=True)
    dump = []
    try:
        for key in client.scan_iter(count=1000):
            kind = client.type(key)
            if kind == "string":
                value: object = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "set":
                value = client.smembers(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            elif kind == "stream":
                value = client.xrange(key)
            else:
                value = f"({kind!s})"
            dump.append(f"{key!s} {kind!s} {value!r}")
        return "\n".join(dump)
    finally:
        client.close()


async def _api(evidence: Evidence, base: str, secret: Secrets) -> dict[str, httpx.Response]:
    """Call the dashboard API and the public endpoints as the admin and anonymously."""
    root = base.replace("/admin/queues/", "/")
    responses: dict[str, httpx.Response] = {}
    async with httpx.AsyncClient(auth=("admin", secret.admin_password), timeout=30) as admin:
        async with httpx.AsyncClient(timeout=30) as anonymous:
            responses["ready (anonymous)"] = await anonymous.get(root + "ready")
            responses["ready"] = await admin.get(root + "ready")
            responses["metrics"] = await anonymous.get(root + "metrics")
        for path in [
            "overview",
            "jobs?state=failed",
            "jobs?state=completed",
            "audit/history?limit=1000",
        ]:
            responses[path] = await admin.get(base + "api/" + path)
        for job in responses["jobs?state=failed"].json()["jobs"]:
            responses[f"jobs/{job['id']}"] = await admin.get(base + f"api/jobs/{job['id']}")
        responses["openapi"] = await admin.get(base + "api/openapi.json")
    for what, response in responses.items():
        evidence.add(f"HTTP {what}", f"{response.status_code} {response.headers} {response.text}")
    return responses


@pytest.mark.timeout(300)  # migrate, health, dev with its workers and chain jobs, the API
async def test_no_secret_in_any_output_log_key_row_or_response(
    secret: Secrets, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    evidence = Evidence()
    with failing_node() as rpc_port:
        env = _env(secret, redis_url, database_url, rpc_port, tmp_path)
        migrated = await _run(evidence, env, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        # A settings error while every secret is set: it names the bad variable, no value.
        refused = await _run(
            evidence,
            {**env, "PORT": "not-a-port", "REDIS_URL": "http://x:" + secret.redis_password + "@h"},
            "health",
        )
        assert refused.returncode == 2 and "PORT" in refused.stderr and "REDIS_URL" in refused.stderr

        # The server with its worker: deployMulticall3 at start (eth_getCode: HTTP 500) and
        # watchChain every 3 s (eth_blockNumber: an error that echoes the path) both fail.
        dev = Background(env, tmp_path / "dev.log", "dev")
        try:
            base = await _dashboard(dev)

            async def failed_chain_jobs() -> list[dict[str, object]] | None:
                rows = await _audit_rows(database_url)
                failed = {row["type"] for row in rows if row["status"] == "failed"}
                return rows if {"deployMulticall3", "watchChain"} <= failed else None

            rows = await eventually(failed_chain_jobs, TIMEOUT, "failed chain jobs in the audit trail")
            responses = await _api(evidence, base, secret)
        finally:
            await dev.stop(evidence)

        errors = {str(row["type"]): str(row["error"]) for row in rows if row["status"] == "failed"}
        assert "eth_getCode to http://127.0.0.1" in errors["deployMulticall3"]
        assert "eth_blockNumber" in errors["watchChain"]
        assert responses["ready (anonymous)"].json() == {"status": "ready"}
        assert responses["jobs?state=failed"].json()["total"] >= 2

        health = await _run(evidence, env, "health")
        assert json.loads(health.stdout)["chain"]["node"] == f"127.0.0.1:{rpc_port}"
        for args in (["schedules", "--json"], ["history", "--limit", "100"], ["migrate"]):
            await _run(evidence, env, *args)
        waited = await _run(evidence, env, "submit", "watchChain", "{}", "--wait", "1")
        assert waited.returncode != 0  # no worker now: the wait times out

    # The node is gone: nothing answers at its port.
    dead = {**env, "CHAIN_RPC_URL": env["CHAIN_RPC_URL"].replace(f":{rpc_port}/", f":{free_port()}/")}
    worker = Background(dead, tmp_path / "worker.log", "worker")
    try:
        outcome = await _run(evidence, dead, "submit", "deployMulticall3", "{}", "--wait", "30")
        assert '"state": "failed"' in outcome.stdout, outcome.stdout + outcome.stderr
    finally:
        await worker.stop(evidence)
    down = await _run(evidence, dead, "health")
    assert json.loads(down.stdout)["chain"]["ok"] is False

    evidence.add("Redis", _redis_dump(redis_url))
    evidence.add("database", await _tables(database_url))
    for path in sorted((tmp_path / "metrics").rglob("*")):
        if path.is_file():
            evidence.add("metrics files", path.read_bytes().decode(errors="replace"))
    assert len(evidence.places) >= 20, sorted(evidence.places)
    assert evidence.leaks(secret) == []
