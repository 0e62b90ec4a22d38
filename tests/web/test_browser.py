"""The dashboard in headless Chromium (Debian's, driven by Playwright), against a real server.

Set UPDATE_SCREENSHOT=1 to write the overview's screenshot to docs/dashboard.png.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from playwright.async_api import Error as PlaywrightError

from quickdapp.app.server_app import ServerApp
from quickdapp.attempts import JobExecution
from quickdapp.audit.store import record_job_executions
from quickdapp.config import Settings
from quickdapp.devtools.anvil import free_port
from quickdapp.web.app import create_app
from quickdapp.web.server import run_web_server
from tests.helpers.paths import ROOT
from tests.helpers.services import unavailable
from tests.helpers.waiting import eventually, listening
from tests.helpers.workers import StartWorker

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000


@pytest.fixture
async def base_url(settings: Settings, app: ServerApp) -> AsyncIterator[str]:
    """The web app served by uvicorn on a free local port for the test's duration."""
    served = settings.model_copy(update={"host": "127.0.0.1", "port": free_port()})
    stop = asyncio.Event()
    task = asyncio.create_task(run_web_server(create_app(served, app), served, stop))
    try:
        await eventually(lambda: listening(served.port), 30, f"the web server on {served.port}")
        yield f"http://127.0.0.1:{served.port}/admin/queues/"
    finally:
        stop.set()
        await task


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        unavailable(f"no Chromium at {CHROMIUM}: `make test` installs it (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser, settings: Settings) -> AsyncIterator[Page]:
    """A page logged in as the admin (HTTP Basic)."""
    context: BrowserContext = await browser.new_context(
        http_credentials={"username": settings.admin_username, "password": settings.admin_password},
        viewport={"width": 1280, "height": 860},
    )
    context.set_default_timeout(TIMEOUT_MS)
    opened = await context.new_page()
    # The dashboard sends `Content-Security-Policy: default-src 'self'`: anything the page does
    # that the policy refuses (an inline style or script) shows as a console message.
    refused: list[str] = []
    opened.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    try:
        yield opened
    finally:
        await context.close()
    assert refused == [], refused


async def test_log_in_see_counts_open_a_failed_job_retry_it_and_watch_it_complete(
    browser: Browser,
    page: Page,
    base_url: str,
    app: ServerApp,
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    anonymous = await browser.new_context()
    # Chromium turns a refused Basic challenge into a navigation error: the page never loads.
    with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
        await (await anonymous.new_page()).goto(base_url)
    refused = await anonymous.request.get(base_url)
    assert refused.status == 401 and "QuickDapp" not in await refused.text()
    await anonymous.close()

    await start_worker(worker_queue_concurrency=4)
    manager = app.queue_manager
    for value in range(3):
        await manager.wait_until_finished(await manager.submit_job("echo", {"value": value}), 10)
    failed_id = await manager.submit_job("flaky", {"failures": 1, "message": "RPC timeout"}, attempts=1)
    await manager.wait_until_finished(failed_id, 10)
    await manager.submit_job("echo", {}, delay=3_600_000)
    await manager.schedule_cron_job("cleanupAuditLog", "0 3 * * *", {"retentionDays": 30})

    response = await page.goto(base_url)
    assert response is not None and response.status == 200
    await expect(page.get_by_test_id("count-completed").locator(".n")).to_have_text("3")
    await expect(page.get_by_test_id("count-failed").locator(".n")).to_have_text("1")
    await expect(page.get_by_test_id("count-delayed").locator(".n")).to_have_text("2")
    await expect(page.get_by_text("0 3 * * *")).to_be_visible()
    shot = ROOT / "docs" / "dashboard.png" if os.environ.get("UPDATE_SCREENSHOT") else tmp_path / "o.png"
    shot.parent.mkdir(exist_ok=True)
    await page.screenshot(path=str(shot), full_page=True)

    await page.get_by_placeholder("find job by id").fill(failed_id)
    await page.get_by_role("button", name="Find").click()
    await expect(page.get_by_test_id("job-state")).to_have_text("failed")
    await page.goto(base_url)
    await page.get_by_test_id("count-failed").click()
    await expect(page.get_by_test_id("list-total")).to_have_text("1")
    await page.get_by_role("link", name=failed_id).click()
    await expect(page.get_by_test_id("job-state")).to_have_text("failed")
    await expect(page.get_by_test_id("failed-reason")).to_have_text("RPC timeout (attempt 1)")

    await page.get_by_test_id("retry").click()

    await expect(page.get_by_test_id("job-state")).to_have_text("completed")
    await expect(page.get_by_test_id("return-value")).to_contain_text('"succeeded_on_attempt": 2')
    await page.goto(base_url)
    await expect(page.get_by_test_id("count-failed").locator(".n")).to_have_text("0")
    await expect(page.get_by_test_id("count-completed").locator(".n")).to_have_text("4")


async def test_pause_and_resume_the_queue(page: Page, base_url: str, app: ServerApp) -> None:
    await page.goto(base_url)
    await expect(page.get_by_test_id("queue-state")).to_have_text("running")

    await page.get_by_test_id("toggle-pause").click()
    await expect(page.get_by_test_id("queue-state")).to_have_text("paused")
    assert await app.queue_manager.queue.isPaused()

    await page.get_by_test_id("toggle-pause").click()
    await expect(page.get_by_test_id("queue-state")).to_have_text("running")
    assert not await app.queue_manager.queue.isPaused()


async def test_add_a_job_through_the_form(
    page: Page, base_url: str, app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    await page.goto(base_url + "#/add")
    await page.get_by_test_id("add-type").select_option("cleanupAuditLog")

    await page.get_by_test_id("add-data").fill('{"retentionDays": "thirty"}')
    await page.get_by_test_id("add-submit").click()
    await expect(page.get_by_test_id("add-error")).to_contain_text("retentionDays")
    await page.get_by_test_id("add-data").fill("{not json")
    await page.get_by_test_id("add-submit").click()
    await expect(page.get_by_test_id("add-error")).to_contain_text("not valid JSON")
    health = await app.queue_manager.get_health()
    assert sum(health.counts.values()) == 0

    await page.get_by_test_id("add-data").fill('{"retentionDays": 30}')
    await page.get_by_test_id("add-submit").click()

    await expect(page.get_by_test_id("job-state")).to_have_text("completed")
    await expect(page.get_by_test_id("job-data")).to_contain_text('"retentionDays": 30')
    page_jobs = await app.queue_manager.queue.getJobs(["completed"])
    assert [job.name for job in page_jobs] == ["cleanupAuditLog"]

    await page.get_by_role("link", name="Audit").click()
    await expect(page.get_by_test_id("metric-row")).to_contain_text("cleanupAuditLog")
    await expect(page.get_by_test_id("audit-row")).to_have_count(1)
    # One bar in the chart: the completed attempt (green), none failed (red).
    chart = page.get_by_test_id("audit-chart")
    await expect(chart.locator("rect[fill='#1f8a4c']:not([height='0'])")).to_have_count(1)
    await expect(chart.locator("rect[fill='#c23a3a']:not([height='0'])")).to_have_count(0)


async def test_the_audit_view_pages_older_and_newer_by_cursor(
    page: Page, base_url: str, app: ServerApp
) -> None:
    now = datetime.now(UTC)
    ends = [now - timedelta(seconds=i) for i in range(120)]
    await record_job_executions(
        app.sessions,
        [
            JobExecution(f"job-{i:03}", 1, "echo", None, {}, "completed", at - timedelta(seconds=1), at)
            for i, at in enumerate(ends)
        ],
    )
    rows = page.get_by_test_id("audit-row")
    await page.goto(base_url + "#/audit")
    await expect(page.get_by_test_id("audit-total")).to_have_text("120")
    await expect(rows).to_have_count(50)
    await expect(rows.first).to_contain_text("job-000")
    await expect(page.get_by_test_id("audit-newer")).to_have_count(0)
    await page.get_by_test_id("audit-older").click()
    await expect(rows.first).to_contain_text("job-050")
    await page.get_by_test_id("audit-older").click()
    await expect(rows).to_have_count(20)
    await expect(rows.last).to_contain_text("job-119")
    await expect(page.get_by_test_id("audit-older")).to_have_count(0)
    await page.get_by_test_id("audit-newer").click()
    await expect(rows).to_have_count(50)
    await expect(rows.first).to_contain_text("job-050")
