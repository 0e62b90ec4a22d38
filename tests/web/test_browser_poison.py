"""A poison job in the dashboard page (Chromium): shown with a warning, removed with its button."""

from __future__ import annotations

from playwright.async_api import Page, expect

from quickdapp.app.server_app import ServerApp
from quickdapp.keys import job_key
from tests.web.test_browser import base_url, browser, page

__all__ = ["base_url", "browser", "page"]  # the fixtures, shared with test_browser.py


async def test_a_job_whose_data_is_not_json_is_shown_and_removed(
    page: Page, base_url: str, app: ServerApp
) -> None:
    job_id = await app.queue_manager.submit_job("echo", {"value": 1})
    await app.redis.hset(job_key(job_id), mapping={"data": "{not json", "stacktrace": "[oops"})
    await app.redis.hdel(job_key(job_id), "name")

    await page.goto(f"{base_url}#/job/{job_id}")
    await expect(page.get_by_test_id("job-state")).to_have_text("prioritized")
    await expect(page.get_by_test_id("job-unreadable")).to_contain_text("data, stacktrace")
    await expect(page.get_by_test_id("job-data")).to_contain_text("{not json")

    page.on("dialog", lambda dialog: dialog.accept())
    await page.get_by_test_id("remove").click()
    await expect(page.get_by_test_id("flash")).to_have_text("Job removed")
    assert not await app.redis.exists(job_key(job_id))
