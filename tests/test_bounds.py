"""Every input bounded: each out-of-range number, date, size and id of issue 11 is a 4xx (API),
one clear line (CLI) or a ValueError naming it (QueueManager), and nothing is enqueued."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.history import get_job_history
from quickdapp.cli import main
from quickdapp.config import Settings
from quickdapp.errors import JobValidationError, PayloadTooLargeError, PermanentJobError
from quickdapp.limits import AUDIT_DATA_MAX_BYTES, MAX_BIGINT, MAX_DELAY_MS
from tests.helpers.processes import settings_variables
from tests.helpers.waiting import audit_stored
from tests.helpers.workers import StartWorker

BIG = 10**20


async def _nothing_enqueued(app: ServerApp) -> None:
    counts = await app.queue_manager.inspect.counts()
    assert sum(counts.values()) == 0, counts


# ---- QueueManager.submit_job ----


@pytest.mark.parametrize(
    ("job_type", "data", "kwargs", "mentioned"),
    [
        ("echo", {}, {"user_id": 18446744073709551616}, "user_id"),
        ("echo", {}, {"user_id": MAX_BIGINT + 1}, "user_id"),
        ("echo", {}, {"user_id": -1}, "user_id"),
        ("echo", {}, {"user_id": True}, "user_id"),
        ("echo", {}, {"user_id": "7"}, "user_id"),
        ("echo", {}, {"user_id": 7.0}, "user_id"),
        ("echo", {}, {"delay": BIG}, "delay"),
        ("echo", {}, {"delay": MAX_DELAY_MS + 1}, "delay"),
        ("echo", {}, {"delay": -1}, "delay"),
        ("echo", {}, {"delay": 1e20}, "delay"),
        ("echo", {}, {"attempts": 10**6}, "attempts"),
        ("echo", {}, {"priority": 2**21 + 1}, "priority"),
        ("echo", {}, {"job_id": "meta"}, "job id"),
        ("echo", {}, {"job_id": "events"}, "job id"),
        ("echo", {}, {"job_id": "x" * 129}, "job id"),
        ("echo", {}, {"job_id": "a\nb"}, "job id"),
        ("cleanupAuditLog", {"retentionDays": 10**30}, {}, "retentionDays"),
        ("cleanupAuditLog", {"retentionDays": 1e30}, {}, "retentionDays"),
        ("cleanupAuditLog", {"retentionDays": 36_501}, {}, "retentionDays"),
        ("watchChain", {"fromBlock": 2**64}, {}, "fromBlock"),
        ("deployMulticall3", {"forceRedeploy": True}, {}, "forceRedeploy cannot be honoured"),
        ("echo", {"value": float("nan")}, {}, "JSON"),
        ("x" * 10_000, {}, {}, "unknown job type"),
    ],
)
async def test_submit_refuses_out_of_range_input(
    app: ServerApp, job_type: str, data: Any, kwargs: dict[str, Any], mentioned: str
) -> None:
    with pytest.raises((ValueError, PermanentJobError)) as refused:
        await app.queue_manager.submit_job(job_type, data, **kwargs)
    assert mentioned in str(refused.value)
    assert len(str(refused.value)) < 1_000  # never the whole input echoed back
    await _nothing_enqueued(app)


async def test_the_largest_values_in_range_are_accepted(app: ServerApp) -> None:
    manager = app.queue_manager
    await manager.submit_job("echo", {}, MAX_BIGINT, delay=MAX_DELAY_MS)
    await manager.submit_job("cleanupAuditLog", {"retentionDays": 36_500})
    await manager.submit_job("watchChain", {"fromBlock": MAX_BIGINT})
    assert sum((await manager.inspect.counts()).values()) == 3


async def test_job_data_past_max_job_payload_bytes_is_refused(settings: Settings) -> None:
    small = settings.model_copy(update={"max_job_payload_bytes": 2_048})
    app = await ServerApp.create(small)
    try:
        await app.queue_manager.submit_job("echo", {"value": "x" * 1_900})
        with pytest.raises(PayloadTooLargeError, match="MAX_JOB_PAYLOAD_BYTES=2048"):
            await app.queue_manager.submit_job("echo", {"value": "x" * 2_100})
        with pytest.raises(PayloadTooLargeError):
            await app.queue_manager.schedule_cron_job("echo", "0 3 * * *", {"value": "x" * 2_100})
        assert sum((await app.queue_manager.inspect.counts()).values()) == 1
    finally:
        await app.close()


async def test_a_deeply_nested_payload_is_refused_not_a_crash(app: ServerApp) -> None:
    nested: Any = []
    for _ in range(5_000):
        nested = [nested]
    with pytest.raises(ValueError):
        await app.queue_manager.submit_job("echo", {"value": nested})
    await _nothing_enqueued(app)


# ---- the audit trail keeps a marker, not a huge payload ----


async def test_audit_data_past_the_limit_is_truncated_with_a_marker(
    app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    value = "x" * (AUDIT_DATA_MAX_BYTES + 10)
    job_id = await app.queue_manager.submit_job("echo", {"value": value})
    outcome = await app.queue_manager.wait_until_finished(job_id, 10)
    assert outcome["returnvalue"] == value  # the job itself had all of it
    await audit_stored(app.redis)
    [row] = (await get_job_history(app.sessions, limit=10)).items
    for kept in (row.data, row.result):
        assert isinstance(kept, dict) and kept["truncated"] is True
        assert kept["bytes"] > AUDIT_DATA_MAX_BYTES
        assert kept["preview"].startswith('{"value":"xxx') or kept["preview"].startswith('"xxx')
        assert len(json.dumps(kept)) < 2_000

    small = await app.queue_manager.submit_job("echo", {"value": 1})
    await app.queue_manager.wait_until_finished(small, 10)
    await audit_stored(app.redis)
    rows = (await get_job_history(app.sessions, limit=10)).items
    assert [row.data for row in rows if row.job_id == small] == [{"value": 1}]


# ---- the CLI: one clear line each ----


@pytest.fixture
def env_file(settings: Settings, tmp_path: Path) -> Path:
    path = tmp_path / "cli.env"
    values = {**settings_variables(settings), "LOG_LEVEL": "WARNING"}
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


@pytest.mark.parametrize(
    ("args", "mentioned"),
    [
        (["--delay", "1e20"], "--delay"),
        (["--delay", str(BIG)], "--delay"),
        (["--delay", "-1"], "--delay"),
        (["--wait", "-1"], "--wait"),
        (["--wait", "nan"], "--wait"),
        (["--wait", "inf"], "--wait"),
        (["--wait", "0"], "--wait"),
        (["--wait", "1e9"], "--wait"),
        (["--user-id", "18446744073709551616"], "--user-id"),
        (["--user-id", str(10**19)], "--user-id"),
        (["--user-id", "-3"], "--user-id"),
        (["--user-id", "true"], "--user-id"),
        (["--user-id", "9" * 5_000], "--user-id"),
    ],
)
def test_cli_submit_refuses_out_of_range_options_in_one_line(
    env_file: Path, capsys: pytest.CaptureFixture[str], args: list[str], mentioned: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--env-file", str(env_file), "submit", "echo", "{}", *args])
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and mentioned in err and len(err) < 300


@pytest.mark.parametrize(
    ("job_type", "data", "mentioned"),
    [
        ("cleanupAuditLog", '{"retentionDays": 1e30}', "retentionDays"),
        ("cleanupAuditLog", '{"retentionDays": 1000000000000000000000000000000}', "retentionDays"),
        ("deployMulticall3", '{"forceRedeploy": true}', "forceRedeploy"),
        ("echo", "[" * 100_000, "nested too deeply"),
        ("echo", '{"value": NaN}', "JSON"),
        ("echo", '{"value": ' + "1" * 5_000 + "}", "digits"),
    ],
)
def test_cli_submit_refuses_bad_data_in_one_line(
    env_file: Path, capsys: pytest.CaptureFixture[str], job_type: str, data: str, mentioned: str
) -> None:
    assert main(["--env-file", str(env_file), "submit", job_type, data]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and mentioned in err


def test_cli_submit_wait_timing_out_is_one_line_and_exit_1(
    env_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--env-file", str(env_file), "submit", "echo", "{}", "--wait", "0.2"]) == 1
    out, err = capsys.readouterr()
    job_id = out.strip()
    assert err == f"quickdapp: job {job_id} did not finish within 0.2s; it is prioritized\n"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite://host:9/x.db",
        "sqlite+aiosqlite://user@/x.db",
        "postgresql+asyncpg://h:99999999/d",
    ],
)
def test_cli_refuses_a_malformed_database_url_in_one_setting_line(
    env_file: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    env_file.write_text(env_file.read_text() + f"DATABASE_URL={url}\n")
    assert main(["--env-file", str(env_file), "health"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("quickdapp: invalid configuration:\n  DATABASE_URL=") and "Traceback" not in err
    )


def test_job_validation_errors_do_not_echo_huge_field_names() -> None:
    error = JobValidationError(
        "echo", [{"loc": ("x" * 10_000,), "msg": "Extra inputs are not permitted"}]
    )
    assert len(str(error)) < 300
