"""`every` job schedulers beside cron ones: Node's are shown by `quickdapp schedules` and the
dashboard, and ours are made by `quickdapp schedule TYPE --every 30s` or
QueueManager.schedule_every_job, which take milliseconds or 30s/5m/1h and refuse the rest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from quickdapp.app.server_app import ServerApp
from quickdapp.cli import main
from quickdapp.config import Settings
from tests.helpers.processes import settings_variables
from tests.interop.dashboard import overview
from tests.interop.node_side import NodeOps


@pytest.fixture
def cli(settings: Settings, tmp_path: Path) -> list[str]:
    """`quickdapp` arguments that point it at the test's services."""
    env_file = tmp_path / "cli.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings_variables(settings).items()))
    return ["--env-file", str(env_file)]


def upsert(key: str, repeat: dict[str, Any], name: str, data: Any) -> dict[str, Any]:
    template = {"name": name, "data": data}
    return {"op": "upsertJobScheduler", "key": key, "repeat": repeat, "template": template}


def test_quickdapp_schedules_shows_node_every_schedulers_beside_cron_ones(
    cli: list[str], node_ops: NodeOps, capsys: pytest.CaptureFixture[str]
) -> None:
    node_ops.sync(
        upsert("node-every", {"every": 30_000}, "echo", {"userId": None, "data": {"value": 1}}),
        upsert("node-cron", {"pattern": "0 */5 * * * *"}, "echo", {"userId": 2, "data": {"value": 2}}),
        # A Node service's own payload form: shown as it is stored.
        upsert("node-raw", {"every": 90_000}, "echo", {"value": 3}),
    )

    assert main([*cli, "schedules"]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines}
    assert header.split()[:3] == ["KEY", "TYPE", "PATTERN"]
    assert rows["node-every"].split()[1:4] == ["echo", "every", "30s"]
    assert rows["node-every"].endswith('{"value":1}')
    assert rows["node-cron"].split()[1:8] == ["echo", "0", "*/5", "*", "*", "*", "*"]
    assert rows["node-raw"].split()[1:4] == ["echo", "every", "90s"]
    assert rows["node-raw"].endswith('{"value":3}')

    assert main([*cli, "schedules", "--json"]) == 0
    listed = {s["key"]: s for s in json.loads(capsys.readouterr().out)}
    assert (listed["node-every"]["every"], listed["node-every"]["pattern"]) == (30_000, None)
    assert (listed["node-cron"]["every"], listed["node-cron"]["pattern"]) == (None, "0 */5 * * * *")


def test_quickdapp_schedule_every_makes_a_scheduler_node_reads(
    cli: list[str], node_ops: NodeOps, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*cli, "schedule", "echo", '{"value": "x"}', "--every", "30s", "--key", "ticker"]) == 0
    assert capsys.readouterr().out.startswith("scheduled echo as 'ticker' every 30s; next run ")

    [scheduler] = node_ops.sync({"op": "getJobSchedulers"})[0]
    assert (scheduler["key"], scheduler["name"], scheduler["every"]) == ("ticker", "echo", 30_000)
    assert "pattern" not in scheduler
    assert scheduler["template"]["data"] == {"userId": None, "data": {"value": "x"}}

    # Upserting the same key replaces the interval.
    assert main([*cli, "schedule", "echo", "--every", "5m", "--key", "ticker"]) == 0
    assert "every 5m" in capsys.readouterr().out
    [scheduler] = node_ops.sync({"op": "getJobSchedulers"})[0]
    assert scheduler["every"] == 300_000

    refused = {
        ("--every", "0"): "interval '0' is not a positive interval",
        ("--every=-5s",): "interval '-5s' is not a positive interval",
        ("--every", "soon"): "interval 'soon' is not a positive interval",
        ("0 3 * * *", "--every", "5m"): "give a cron pattern or --every INTERVAL, not both",
        ("--every", "5m", "--tz", "UTC"): "--tz applies to cron patterns, not to --every",
        (): "give a cron pattern or --every INTERVAL",
    }
    for args, message in refused.items():
        assert main([*cli, "schedule", "echo", *args, "--key", "other"]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("quickdapp: ") and message in err and err.count("\n") == 1, err
    assert [s["key"] for s in node_ops.sync({"op": "getJobSchedulers"})[0]] == ["ticker"]


async def test_schedule_every_job_takes_milliseconds_or_a_unit_and_refuses_the_rest(
    app: ServerApp,
) -> None:
    manager = app.queue_manager
    accepted: dict[int | str, int] = {1500: 1500, "1500": 1500, "30s": 30_000, "5m": 300_000}
    accepted |= {" 1h ": 3_600_000, "2d": 172_800_000, "250ms": 250}
    for every, ms in accepted.items():
        job = await manager.schedule_every_job("echo", every, {"value": 1}, key="k")
        assert (job.key, job.every, job.pattern) == ("k", ms, None), every

    for every in (0, -1, "0s", "", "abc", "1.5s", "5 minutes", "-5s", True):
        with pytest.raises(ValueError, match=r"is not a positive interval; give milliseconds"):
            await manager.schedule_every_job("echo", every, {"value": 1}, key="refused")
    assert [(s.key, s.every) for s in await manager.list_cron_jobs()] == [("k", 250)]


async def test_the_dashboard_shows_every_schedulers(app: ServerApp, settings: Settings) -> None:
    await app.queue_manager.schedule_every_job("echo", "30s", {"value": 1}, key="ticker")
    await app.queue_manager.schedule_cron_job("echo", "0 3 * * *", {"value": 2}, key="nightly")

    schedulers = {s["key"]: s for s in (await overview(settings, app))["schedulers"]}

    assert (schedulers["ticker"]["every"], schedulers["ticker"]["pattern"]) == (30_000, None)
    assert (schedulers["nightly"]["every"], schedulers["nightly"]["pattern"]) == (None, "0 3 * * *")
