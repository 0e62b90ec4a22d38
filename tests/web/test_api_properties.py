"""Property-based tests (hypothesis) over the dashboard API: no body, query or job id gives a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from json import dumps
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.jobs.registry import JobRegistry
from quickdapp.web.app import create_app
from tests.helpers.loop_thread import LoopThread
from tests.test_input_properties import ANY_NUMBER, JOB_DATA, JSON, PROPERTIES, TYPES
from tests.web.conftest import API

STATES = ["waiting", "prioritized", "active", "delayed", "completed", "failed", "paused"]
JOB_IDS = st.text(min_size=1, max_size=150) | st.sampled_from(
    ["meta", "events", "repeat", "id", "wait", "stalled-check", "de:x", "1", "x:logs"]
)


class Api:
    """The web app with admin credentials, on its own loop thread (hypothesis tests are sync)."""

    def __init__(self, loop: LoopThread, client: httpx.AsyncClient) -> None:
        self._loop = loop
        self._client = client

    def request(self, method: str, path: str, *, json: Any = None, **kwargs: Any) -> httpx.Response:
        if json is not None:
            # Python's encoder: NaN and Infinity go out as such (httpx's refuses to send them).
            kwargs["content"] = dumps(json)
            kwargs["headers"] = {"Content-Type": "application/json"}
        return self._loop.run(self._client.request(method, path, **kwargs))


@pytest.fixture
def api(settings: Settings, registry: JobRegistry) -> Iterator[Api]:
    loop = LoopThread()
    app = loop.run(ServerApp.create(settings, registry))
    transport = httpx.ASGITransport(app=create_app(settings, app))
    auth = (settings.admin_username, settings.admin_password)
    client = httpx.AsyncClient(transport=transport, base_url="http://testserver", auth=auth)
    try:
        yield Api(loop, client)
    finally:
        loop.run(client.aclose())
        loop.run(app.queue_manager.queue.obliterate({"force": True}))
        loop.run(app.close())
        loop.close()


NEW_JOBS = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES)},
    optional={"data": JOB_DATA, "user_id": ANY_NUMBER, "delay_ms": ANY_NUMBER},
) | st.fixed_dictionaries(
    {},
    optional={
        "type": st.text(max_size=20) | ANY_NUMBER,
        "data": JOB_DATA,
        "user_id": ANY_NUMBER,
        "delay_ms": ANY_NUMBER,
        "extra": JSON,
    },
)


@PROPERTIES
@given(body=NEW_JOBS | JSON)
def test_add_job_answers_201_413_or_422(api: Api, body: Any) -> None:
    response = api.request("POST", f"{API}/jobs", json=body)
    assert response.status_code in (201, 413, 422), response.text


@PROPERTIES
@given(field=st.sampled_from(["user_id", "delay_ms"]), value=ANY_NUMBER)
def test_every_number_of_a_valid_job_is_accepted_in_range_or_refused_with_422(
    api: Api, field: str, value: Any
) -> None:
    response = api.request("POST", f"{API}/jobs", json={"type": "echo", "data": {}, field: value})
    assert response.status_code in (201, 422), response.text


@PROPERTIES
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_add_job_with_any_bytes_as_body_is_a_4xx(api: Api, raw: bytes) -> None:
    response = api.request(
        "POST", f"{API}/jobs", content=raw, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500 or response.status_code == 201, response.text


@PROPERTIES
@given(
    state=st.sampled_from(STATES) | st.text(max_size=10),
    page=ANY_NUMBER,
    page_size=ANY_NUMBER,
)
def test_job_lists_answer_200_or_422(api: Api, state: str, page: Any, page_size: Any) -> None:
    params = {"state": state, "page": str(page), "page_size": str(page_size)}
    response = api.request("GET", f"{API}/jobs", params=params)
    assert response.status_code in (200, 422), response.text


@PROPERTIES
@given(job_id=JOB_IDS, method=st.sampled_from(["GET", "DELETE", "retry", "promote"]))
def test_any_job_id_answers_without_a_5xx(api: Api, job_id: str, method: str) -> None:
    path = f"{API}/jobs/{quote(job_id, safe='')}"
    if method in ("retry", "promote"):
        response = api.request("POST", f"{path}/{method}")
    else:
        response = api.request(method, path)
    assert response.status_code in (200, 404, 409, 422), (response.status_code, response.text)


@PROPERTIES
@given(
    body=st.fixed_dictionaries(
        {},
        optional={"state": st.sampled_from(STATES) | JSON, "grace_ms": ANY_NUMBER, "limit": ANY_NUMBER},
    )
)
def test_clean_answers_200_or_422(api: Api, body: dict[str, Any]) -> None:
    response = api.request("POST", f"{API}/clean", json=body)
    assert response.status_code in (200, 422), response.text
