"""Every input bounded, through the API: out-of-range numbers, pages, ids and sizes are a 4xx and
nothing is enqueued; a body past the limit gets 413 without being read whole."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.devtools.anvil import free_port
from quickdapp.limits import MAX_DELAY_MS
from quickdapp.web.app import create_app
from quickdapp.web.server import run_web_server
from tests.web.conftest import API

BIG = 10**20


async def _nothing_enqueued(app: ServerApp) -> None:
    counts = await app.queue_manager.inspect.counts()
    assert sum(counts.values()) == 0, counts


@pytest.mark.parametrize(
    "body",
    [
        {"type": "echo", "delay_ms": 1e20},
        {"type": "echo", "delay_ms": BIG},
        {"type": "echo", "delay_ms": -1},
        {"type": "echo", "delay_ms": MAX_DELAY_MS + 1},
        {"type": "echo", "delay_ms": "5"},
        {"type": "echo", "user_id": 18446744073709551616},
        {"type": "echo", "user_id": -5},
        {"type": "echo", "user_id": True},
        {"type": "echo", "user_id": "7"},
        {"type": "echo", "user_id": 7.5},
        {"type": "cleanupAuditLog", "data": {"retentionDays": 1e30}},
        {"type": "cleanupAuditLog", "data": {"retentionDays": 10**30}},
        {"type": "deployMulticall3", "data": {"forceRedeploy": True}},
        {"type": "watchChain", "data": {"fromBlock": -1}},
        {"type": ""},
        {"type": "x" * 1_000},
        {"type": 7},
        {},
        [],
        "a string",
    ],
)
async def test_add_job_refuses_out_of_range_input_with_422(
    admin: httpx.AsyncClient, app: ServerApp, body: Any
) -> None:
    response = await admin.post(f"{API}/jobs", json=body)
    assert response.status_code == 422, response.text
    await _nothing_enqueued(app)


@pytest.mark.parametrize(
    "query",
    [
        {"state": "waiting", "page": 10**17},
        {"state": "waiting", "page": 0},
        {"state": "waiting", "page": "1e3"},
        {"state": "waiting", "page_size": 201},
        {"state": "waiting", "page_size": 0},
        {"state": "nonsense"},
        {},
    ],
)
async def test_job_lists_refuse_out_of_range_pages_with_422(
    admin: httpx.AsyncClient, query: dict[str, Any]
) -> None:
    assert (await admin.get(f"{API}/jobs", params=query)).status_code == 422


async def test_the_last_page_in_range_answers(admin: httpx.AsyncClient) -> None:
    page = await admin.get(f"{API}/jobs", params={"state": "waiting", "page": 100_000, "page_size": 200})
    assert page.status_code == 200 and page.json()["jobs"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"state": "completed", "limit": 1e20},
        {"state": "completed", "limit": BIG},
        {"state": "completed", "limit": -1},
        {"state": "completed", "grace_ms": BIG},
        {"state": "completed", "grace_ms": 1.5},
        {"state": "active"},
    ],
)
async def test_clean_refuses_out_of_range_input_with_422(
    admin: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    assert (await admin.post(f"{API}/clean", json=body)).status_code == 422


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_a_job_id_longer_than_any_job_id_is_refused(admin: httpx.AsyncClient, method: str) -> None:
    assert (await admin.request(method, f"{API}/jobs/{'x' * 129}")).status_code == 422
    for action in ("retry", "promote"):
        assert (await admin.post(f"{API}/jobs/{'x' * 129}/{action}")).status_code == 422


async def test_add_job_refuses_a_payload_past_the_limit_with_413(settings: Settings) -> None:
    small = settings.model_copy(update={"max_job_payload_bytes": 4_096})
    app = await ServerApp.create(small)
    auth = (small.admin_username, small.admin_password)
    transport = httpx.ASGITransport(app=create_app(small, app))

    def echo(size: int) -> dict[str, Any]:
        return {"type": "echo", "data": {"value": "x" * size}}

    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t", auth=auth) as client:
            # Over the job's limit, under the request's (the limit plus room for the envelope).
            too_big = await client.post(f"{API}/jobs", json=echo(5_000))
            # Over both: refused as the body arrives.
            huge = await client.post(f"{API}/jobs", json=echo(50_000))
            fits = await client.post(f"{API}/jobs", json=echo(3_000))
        assert too_big.status_code == 413 and "MAX_JOB_PAYLOAD_BYTES=4096" in too_big.text
        assert huge.status_code == 413
        assert fits.status_code == 201
        assert sum((await app.queue_manager.inspect.counts()).values()) == 1
    finally:
        await app.close()


@pytest.fixture
async def server(settings: Settings, app: ServerApp) -> AsyncIterator[tuple[int, Settings]]:
    """The web app on a real port (uvicorn), for requests httpx cannot make."""
    served = settings.model_copy(update={"host": "127.0.0.1", "port": free_port()})
    stop = asyncio.Event()
    task = asyncio.create_task(run_web_server(create_app(served, app), served, stop))
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", served.port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        break
    try:
        yield served.port, served
    finally:
        stop.set()
        await task


async def test_a_50_mb_body_is_refused_before_it_is_read(
    server: tuple[int, Settings], app: ServerApp
) -> None:
    port, settings = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    credentials = httpx.BasicAuth(settings.admin_username, settings.admin_password)
    authorization = next(credentials.auth_flow(httpx.Request("GET", "http://x"))).headers[
        "Authorization"
    ]
    head = (
        f"POST {API}/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: {authorization}\r\nContent-Length: {50 * 1024 * 1024}\r\n\r\n"
    )
    writer.write(head.encode() + b'{"type": "echo", "data": {"value": "')
    await writer.drain()
    # The answer comes while the client has sent 36 bytes of the 50 MB it announced.
    status = await asyncio.wait_for(reader.readline(), 10)
    assert status.startswith(b"HTTP/1.1 413"), status
    writer.close()
    await _nothing_enqueued(app)


async def test_a_chunked_body_is_refused_once_it_passes_the_limit(
    admin: httpx.AsyncClient, app: ServerApp
) -> None:
    """A body without Content-Length: the app reads it chunk by chunk (ASGI receive) and stops
    near the 1 MiB limit; the chunks it never asked for are never produced."""
    produced = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal produced
        yield b'{"type": "echo", "data": {"value": "'
        for _ in range(50 * 16):  # 50 MB in 64 KiB chunks, if it were all read
            produced += 65_536
            yield b"x" * 65_536
        yield b'"}}'

    response = await admin.post(f"{API}/jobs", content=chunks())
    assert response.status_code == 413
    assert produced < 2 * 1024 * 1024, produced
    await _nothing_enqueued(app)
