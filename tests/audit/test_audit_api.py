"""The audit API and `quickdapp history` / `quickdapp rollups`: cursors, bounds, clear errors."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.store import record_job_executions
from quickdapp.config import Settings
from quickdapp.web.app import create_app
from tests.audit.attempts import attempt
from tests.helpers.processes import run_quickdapp

API = "/admin/queues/api/audit"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def admin(settings: Settings, app: ServerApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings, app))
    auth = (settings.admin_username, settings.admin_password)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", auth=auth) as client:
        yield client


@pytest.fixture
async def rows(app: ServerApp) -> None:
    await record_job_executions(
        app.sessions,
        [
            attempt(f"j{i:02}", NOW - timedelta(minutes=i), status="failed" if i % 4 else "completed")
            for i in range(25)
        ],
    )


@pytest.mark.usefixtures("rows")
async def test_pages_by_cursor_through_the_api(admin: httpx.AsyncClient) -> None:
    first = (await admin.get(f"{API}/history", params={"limit": 10})).json()
    assert (first["total"], first["total_exact"], first["newer"]) == (25, True, None)
    second = (await admin.get(f"{API}/history", params={"limit": 10, "before": first["older"]})).json()
    third = (await admin.get(f"{API}/history", params={"limit": 10, "before": second["older"]})).json()
    ids = [row["job_id"] for page in (first, second, third) for row in page["items"]]
    assert ids == [f"j{i:02}" for i in range(25)] and third["older"] is None
    back = (await admin.get(f"{API}/history", params={"limit": 10, "after": second["newer"]})).json()
    assert [row["job_id"] for row in back["items"]] == ids[:10]


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("history", {"offset": 10_001}, "less than or equal to 10000"),
        ("history", {"limit": 0}, "greater than or equal to 1"),
        ("history", {"limit": 1001}, "less than or equal to 1000"),
        ("history", {"before": "yesterday"}, "not a history cursor"),
        ("history", {"after": "1_" + "9" * 45}, "at most 40 characters"),
        ("history", {"before": "1_1", "after": "1_2"}, "before or after, not both"),
        ("history", {"before": "1_1", "offset": 5}, "an offset or a cursor, not both"),
        ("history", {"user_id": -1}, "greater than or equal to 0"),
        ("history", {"user_id": 2**63}, "less than or equal to"),
        ("history", {"since": "1960-01-01T00:00:00"}, "since must be between 1970 and 9000"),
        ("history", {"until": "9999-12-31T23:59:59+00:00"}, "until must be between 1970 and 9000"),
        ("history", {"since": "not a date"}, "valid datetime"),
        ("metrics", {"since": "2026-01-02T00:00:00", "until": "2026-01-01T00:00:00"}, "before until"),
        ("metrics", {"since": "1960-01-01T00:00:00"}, "since must be between 1970 and 9000"),
        ("metrics", {"until": "9999-12-31T23:59:59+00:00"}, "until must be between 1970 and 9000"),
        ("metrics", {"until": "1970-01-01T00:10:00"}, "until must be between 1970 and 9000"),
        ("metrics", {"buckets": 0}, "greater than or equal to 1"),
        ("metrics", {"type": "x" * 101}, "at most 100 characters"),
    ],
)
async def test_out_of_range_queries_get_422_with_a_reason(
    admin: httpx.AsyncClient, path: str, params: dict[str, Any], says: str
) -> None:
    response = await admin.get(f"{API}/{path}", params=params)
    assert response.status_code == 422, response.text
    assert says in response.text


@pytest.mark.usefixtures("rows")
async def test_metrics_say_how_percentiles_were_made_and_use_round_bars(
    admin: httpx.AsyncClient,
) -> None:
    month = (
        await admin.get(f"{API}/metrics", params={"since": (NOW - timedelta(days=30)).isoformat()})
    ).json()
    assert month["bucket_seconds"] == 43200  # 30 days / 60 bars = 12 h
    [echo] = month["types"]
    assert (echo["count"], echo["failed"], echo["exact_percentiles"]) == (25, 18, True)
    assert sum(p["completed"] + p["failed"] for p in month["series"]) == 25
    odd = (
        await admin.get(
            f"{API}/metrics", params={"since": (NOW - timedelta(hours=7)).isoformat(), "buckets": 100}
        )
    ).json()
    assert odd["bucket_seconds"] == 300  # 7 h / 100 = 252 s, rounded up to 5 min


def _quickdapp(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_quickdapp(settings.model_copy(update={"metrics_dir": str(tmp_path / "metrics")}), *args)


@pytest.mark.usefixtures("rows")
def test_history_command_pages_with_before(settings: Settings, tmp_path: Path) -> None:
    first = _quickdapp(settings, tmp_path, "history", "--limit", "20", "--status", "failed")
    page = json.loads(first.stdout)
    assert (page["total"], page["total_exact"], len(page["items"])) == (18, True, 18)
    top = json.loads(_quickdapp(settings, tmp_path, "history", "--limit", "5").stdout)
    rest = json.loads(
        _quickdapp(settings, tmp_path, "history", "--limit", "30", "--before", top["older"]).stdout
    )
    ids = [row["job_id"] for row in top["items"] + rest["items"]]
    assert ids == [f"j{i:02}" for i in range(25)]
    assert rest["older"] is None and rest["newer"] is not None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["history", "--before", "last-tuesday"], "not a history cursor"),
        (["history", "--limit", "0"], "limit must be between 1 and 1000"),
        (["history", "--user-id", "99999999999999999999"], "user_id must be between 0 and"),
        (["history", "--since", "1960-01-01"], "since must be between 1970 and 9000"),
        (["rollups", "rebuild", "--until", "9999-01-01"], "until must be between 1970 and 9000"),
    ],
)
def test_bad_command_arguments_are_one_clear_line(
    settings: Settings, tmp_path: Path, args: list[str], says: str
) -> None:
    result = _quickdapp(settings, tmp_path, *args)
    assert result.returncode == 2
    assert result.stderr.strip() == f"quickdapp: {result.stderr.strip().removeprefix('quickdapp: ')}"
    assert says in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.usefixtures("rows")
def test_rollups_rebuild_command(settings: Settings, tmp_path: Path) -> None:
    result = _quickdapp(settings, tmp_path, "rollups", "rebuild")
    assert result.returncode == 0, result.stderr
    assert "rebuilt the rollups of" in result.stdout and "from 25 audit row(s)" in result.stdout
