"""Property-based tests (hypothesis): no input to the job models, QueueManager.submit_job or the
CLI gives anything but a value or the documented refusal: no other exception, no traceback."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from quickdapp.app.server_app import ServerApp
from quickdapp.cli import main
from quickdapp.cli.parser import build_parser
from quickdapp.config import Settings
from quickdapp.errors import JobValidationError, PermanentJobError
from quickdapp.jobs.registry import JobRegistry, default_registry
from tests.conftest import TEST_JOB_MODULE
from tests.helpers.loop_thread import LoopThread
from tests.helpers.processes import settings_variables

# Reproducible in `make test`: the same examples every run (a failure prints the one to replay).
PROPERTIES = hypothesis_settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
REGISTRY = default_registry([TEST_JOB_MODULE])
TYPES = REGISTRY.names()

# JSON values, with the numbers that break things past their range: huge ints, NaN, infinities.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**60, max_value=2**130)
    | st.floats()
    | st.text(max_size=20)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
# Dicts that use a model's own field names, so the values reach its validators.
FIELDS = sorted({field.alias or name for d in REGISTRY for name, field in d.model.model_fields.items()})
# The values just past every bound, and the ones that are not numbers at all.
EDGES = st.sampled_from(
    [
        *(0, 1, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**20, 10**30, 1e20, 1e30, -1e20),
        *(float("inf"), float("nan"), 0.5, True, False, "7", "", None, 36_500, 36_501, 31_536_000_001),
    ]
)
ANY_NUMBER = (
    EDGES
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8)
)
JOB_DATA = (
    st.dictionaries(st.sampled_from(FIELDS), ANY_NUMBER | JSON, max_size=3)
    | st.dictionaries(st.sampled_from([*FIELDS, "extra"]), JSON, max_size=3)
    | JSON
)


@PROPERTIES
@given(job_type=st.sampled_from(TYPES), data=JOB_DATA)
def test_job_models_accept_or_refuse_with_a_validation_error(job_type: str, data: Any) -> None:
    definition = REGISTRY.get(job_type)
    try:
        model = definition.parse(data)
    except JobValidationError as exc:
        assert job_type in str(exc)
        return
    # What validates can be dumped as the job will store it (NaN stays NaN: refused at submit).
    model.model_dump(mode="json", by_alias=True, exclude_none=True)


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    try:
        yield thread
    finally:
        thread.close()


@pytest.fixture
def threaded_app(settings: Settings, registry: JobRegistry, loop: LoopThread) -> Iterator[ServerApp]:
    app = loop.run(ServerApp.create(settings, registry))
    try:
        yield app
    finally:
        loop.run(app.queue_manager.queue.obliterate({"force": True}))
        loop.run(app.close())


@PROPERTIES
@given(
    job_type=st.sampled_from(TYPES) | st.sampled_from(TYPES) | st.text(max_size=30) | st.integers(),
    data=JOB_DATA,
    user_id=ANY_NUMBER,
    delay=ANY_NUMBER,
    job_id=st.none() | st.text(max_size=140) | st.sampled_from(["meta", "events", "id", "repeat", "1"]),
)
def test_submit_job_returns_an_id_or_refuses_with_a_value_error(
    loop: LoopThread,
    threaded_app: ServerApp,
    job_type: Any,
    data: Any,
    user_id: Any,
    delay: Any,
    job_id: Any,
) -> None:
    manager = threaded_app.queue_manager
    try:
        made = loop.run(manager.submit_job(job_type, data, user_id, delay=delay, job_id=job_id))
    except (ValueError, PermanentJobError) as exc:
        assert len(str(exc)) < 2_000
        return
    assert isinstance(made, str) and made


@PROPERTIES
@given(
    field=st.sampled_from(["user_id", "delay", "attempts", "priority"]),
    value=ANY_NUMBER,
    job=st.sampled_from([("echo", {}), ("cleanupAuditLog", {"retentionDays": 1})]),
)
def test_every_number_of_a_valid_job_is_accepted_in_range_or_refused(
    loop: LoopThread, threaded_app: ServerApp, field: str, value: Any, job: tuple[str, Any]
) -> None:
    try:
        loop.run(threaded_app.queue_manager.submit_job(*job, **{field: value}))
    except ValueError as exc:
        assert field.replace("_", " ").split()[0] in str(exc).replace("_", " ")


# ---- the CLI ----

OPTION_VALUES = (
    st.integers().map(str)
    | st.integers(min_value=2**60, max_value=2**200).map(str)
    | st.floats().map(repr)
    | st.text(max_size=10)
    | st.sampled_from(["1e20", "-1", "nan", "inf", "true", "0x10", "", " 7 "])
)
# --wait values that, when valid, are short: a valid wait blocks for that long.
WAITS = st.sampled_from(["-1", "nan", "inf", "-inf", "0", "1e9", "abc", "", "1e-9", "0.01"])


@st.composite
def submit_argv(draw: st.DrawFn) -> list[str]:
    argv = ["submit", draw(st.sampled_from(TYPES) | st.text(max_size=20))]
    if draw(st.booleans()):
        argv.append(draw(JOB_DATA.map(json.dumps) | st.text(max_size=40)))
    for flag in draw(
        st.lists(st.sampled_from(["--user-id", "--delay", "--wait", "--bogus"]), max_size=3)
    ):
        argv += [flag, draw(WAITS if flag == "--wait" else OPTION_VALUES)]
    return argv


@PROPERTIES
@given(
    argv=st.lists(
        st.text(max_size=12) | st.sampled_from(["submit", "--delay", "--wait", "-h"]), max_size=6
    )
)
def test_the_parser_parses_or_exits_with_usage(argv: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            build_parser().parse_args(argv)
    except SystemExit as exited:
        assert exited.code in (0, 2)
        assert "Traceback" not in err.getvalue()


@pytest.fixture
def env_file(settings: Settings, tmp_path: Path) -> Path:
    path = tmp_path / "cli.env"
    values = {**settings_variables(settings), "LOG_LEVEL": "CRITICAL"}
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


@PROPERTIES
@given(argv=submit_argv())
def test_cli_submit_prints_an_id_or_one_clear_line(env_file: Path, argv: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code: Any = main(["--env-file", str(env_file), *argv])
        except SystemExit as exited:
            code = exited.code
    message = err.getvalue()
    assert code in (0, 1, 2), (code, message)
    assert "Traceback" not in message
    if code == 2:
        assert message.startswith("quickdapp") and message.count("\n") == 1, message
    if code == 0:
        assert out.getvalue().strip()
