"""submit_job's idempotency key: a retried call (QueueManager, API header, CLI --key) never
enqueues twice, not even after the first job finished and left Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from quickdapp.app.server_app import ServerApp
from quickdapp.cli import main
from quickdapp.config import Settings
from quickdapp.keys import COMPLETED, job_key, queue_key
from quickdapp.web.app import create_app
from tests.helpers.processes import settings_variables
from tests.helpers.workers import StartWorker

API = "/admin/queues/api"


async def _jobs(app: ServerApp) -> int:
    return sum((await app.queue_manager.inspect.counts()).values())


async def test_the_same_key_enqueues_once(app: ServerApp) -> None:
    manager = app.queue_manager
    first = await manager.submit_job("echo", {"value": 1}, idempotency_key="order-42")
    again = await manager.submit_job("echo", {"value": 1}, idempotency_key="order-42")
    assert first == again == "order-42"
    assert await _jobs(app) == 1
    other = await manager.submit_job("echo", {"value": 1}, idempotency_key="order-43")
    assert other == "order-43" and await _jobs(app) == 2


async def test_concurrent_retries_enqueue_once(app: ServerApp) -> None:
    manager = app.queue_manager
    ids = await asyncio.gather(
        *(manager.submit_job("echo", {"value": i}, idempotency_key="burst") for i in range(20))
    )
    assert set(ids) == {"burst"}
    assert await _jobs(app) == 1
    job = await manager.queue.getJob("burst")
    assert job.data["data"]["value"] in range(20)


async def test_a_retry_after_the_job_ran_and_left_redis_enqueues_nothing(
    app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    manager = app.queue_manager
    job_id = await manager.submit_job("echo", {"value": 1}, idempotency_key="pay-7")
    assert (await manager.wait_until_finished(job_id, 10))["state"] == "completed"
    # Completed jobs are trimmed (the last 100, 1 h): done here as BullMQ's retention does it
    # (removeJobsByMaxAge: the hash and the set entry go, the deduplication key stays).
    await app.redis.delete(job_key(job_id))
    await app.redis.zrem(queue_key(COMPLETED), job_id)
    assert await manager.inspect.job(job_id) is None

    again = await manager.submit_job("echo", {"value": 1}, idempotency_key="pay-7")
    assert again == "pay-7"
    await asyncio.sleep(0.3)
    assert await _jobs(app) == 0
    # Removing it by hand (dashboard, remove_job) forgets the key: the next call enqueues.
    await manager.submit_job("echo", {"value": 1}, idempotency_key="pay-8")
    await manager.wait_until_finished("pay-8", 10)
    await manager.remove_job("pay-8")
    await manager.submit_job("echo", {"value": 1}, idempotency_key="pay-8")
    assert (await manager.wait_until_finished("pay-8", 10))["state"] == "completed"
    # A job id without the key is forgotten with the job: it would run again.
    plain = await manager.submit_job("echo", {"value": 1}, job_id="plain-1")
    await manager.wait_until_finished(plain, 10)
    await manager.remove_job(plain)
    await manager.submit_job("echo", {"value": 1}, job_id="plain-1")
    assert (await manager.wait_until_finished("plain-1", 10))["state"] == "completed"


@pytest.mark.parametrize("key", ["", "meta", "a:b", "42", "x" * 129, "line\nbreak"])
async def test_a_bad_key_is_refused(app: ServerApp, key: str) -> None:
    with pytest.raises(ValueError, match="job id"):
        await app.queue_manager.submit_job("echo", {}, idempotency_key=key)
    assert await _jobs(app) == 0


async def test_a_key_and_another_job_id_are_refused(app: ServerApp) -> None:
    with pytest.raises(ValueError, match="not two different ones"):
        await app.queue_manager.submit_job("echo", {}, job_id="a-1", idempotency_key="b-1")


async def test_the_api_takes_an_idempotency_key_header(settings: Settings, app: ServerApp) -> None:
    transport = httpx.ASGITransport(app=create_app(settings, app))
    auth = (settings.admin_username, settings.admin_password)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", auth=auth) as client:
        body = {"type": "echo", "data": {"value": 1}}
        made = [
            await client.post(f"{API}/jobs", json=body, headers={"Idempotency-Key": "web-1"})
            for _ in range(3)
        ]
        bad = await client.post(f"{API}/jobs", json=body, headers={"Idempotency-Key": "events"})
    assert [response.json()["id"] for response in made] == ["web-1"] * 3
    assert bad.status_code == 422
    assert await _jobs(app) == 1


def test_the_cli_takes_key(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / "cli.env"
    env_file.write_text(
        "".join(f"{k}={v}\n" for k, v in {**settings_variables(settings), "LOG_LEVEL": "ERROR"}.items())
    )
    for _ in range(2):
        assert (
            main(["--env-file", str(env_file), "submit", "echo", '{"value": 1}', "--key", "cli-1"]) == 0
        )
    assert capsys.readouterr().out.split() == ["cli-1", "cli-1"]
    assert main(["--env-file", str(env_file), "submit", "echo", "{}", "--key", "a:b"]) == 2

    async def count() -> int:
        app = await ServerApp.create(settings)
        try:
            return await _jobs(app)
        finally:
            await app.close()

    assert asyncio.run(count()) == 1
