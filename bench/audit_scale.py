"""The audit trail at production size: every dashboard and CLI query, timed at 3M rows.

Fills a throwaway PostgreSQL database (on TEST_DATABASE_URL's server, dropped at the end) with
3M audit rows by COPY, and a SQLite file with 1M (bench/audit_fill.py: the mix and spread),
rebuilds the rollups with the project's own `rebuild_rollups`, runs VACUUM ANALYZE, then times
each operation through the project's functions and through the dashboard API (in-process
httpx, auth and JSON included): medians of 5 runs after one warm-up run. Then
cleanupAuditLog's handler deletes the rows past 30 days' retention while another process
inserts audit rows through record_job_executions and measures each insert.

Writes bench/results/audit_scale.json and audit_scale.md (the README's table).

    PYTHONPATH=. .venv/bin/python bench/audit_scale.py [--rows 3000000] [--sqlite-rows 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import audit_fill  # noqa: E402
from bench.audit_inserter import run_inserter  # noqa: E402
from quickdapp.app.server_app import ServerApp  # noqa: E402
from quickdapp.audit.history import Cursor, get_job_history  # noqa: E402
from quickdapp.audit.job_metrics import get_job_metrics  # noqa: E402
from quickdapp.audit.rollups import rebuild_rollups  # noqa: E402
from quickdapp.audit.series import get_job_series  # noqa: E402
from quickdapp.config import Settings, load_settings  # noqa: E402
from quickdapp.db.migrate import upgrade  # noqa: E402
from quickdapp.db.schema import WorkerJob  # noqa: E402
from quickdapp.devtools.redis_manager import RedisManager  # noqa: E402
from quickdapp.jobs.cleanup_audit_log import CLEANUP_AUDIT_LOG, CleanupAuditLogData  # noqa: E402
from quickdapp.jobs.types import JobContext  # noqa: E402
from quickdapp.web.app import create_app  # noqa: E402

RESULTS = ROOT / "bench" / "results"
API = "/admin/queues/api/audit"
RUNS = 5
TARGET_MS = {"postgresql": 200.0, "sqlite": 500.0}
logger = logging.getLogger("bench.audit_scale")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _median_ms(call: Callable[[], Awaitable[Any]], runs: int = RUNS) -> tuple[float, list[float]]:
    await call()  # warm-up: caches and the connection pool
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        await call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), times


class Timings:
    """Operation name -> (how it was called, median ms, all runs)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.rows: list[dict[str, Any]] = []

    async def time(self, name: str, via: str, call: Callable[[], Awaitable[Any]]) -> None:
        median, runs = await _median_ms(call)
        target = TARGET_MS[self.database]
        self.rows.append(
            {
                "operation": name,
                "via": via,
                "median_ms": round(median, 1),
                "runs_ms": [round(r, 1) for r in runs],
                "target_ms": target,
                "met": median <= target,
            }
        )
        each = ", ".join(f"{r:.0f}" for r in runs)
        print(f"  {self.database:10} {name:55} {via:9} {median:8.1f} ms  (runs {each})", flush=True)


async def _api_get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(f"{API}/{path}", params=params)
    if response.status_code != 200:
        raise RuntimeError(f"{path} {params}: {response.status_code} {response.text[:300]}")
    return response.json()


async def _time_reads(
    app: ServerApp, settings: Settings, timings: Timings, now: datetime, depth: int
) -> None:
    """Every read of the issue's table, through the functions and the API."""
    failed_depth = min(5000, depth // 70)  # ~1 % of rows are failed watchChain runs
    print(f"  deep page: {depth:,} rows back; failed page: {failed_depth:,} back", flush=True)
    sessions = app.sessions
    month = now - timedelta(days=30)
    async with sessions() as session:
        # Set-up only (not timed): the cursors of rows `depth` back, overall and among failures.
        newest_first = (WorkerJob.created_at.desc(), WorkerJob.id.desc())
        deep = (
            await session.execute(
                select(WorkerJob.created_at, WorkerJob.id).order_by(*newest_first).offset(depth).limit(1)
            )
        ).one()
        failed = (
            await session.execute(
                select(WorkerJob.created_at, WorkerJob.id)
                .where(WorkerJob.type == "watchChain", WorkerJob.status == "failed")
                .order_by(*newest_first)
                .offset(failed_depth)
                .limit(1)
            )
        ).one()
        user = await session.scalar(
            select(WorkerJob.user_id)
            .where(WorkerJob.user_id.is_not(None))
            .order_by(WorkerJob.id.desc())
            .limit(1)
        )
    deep_cursor, failed_cursor = Cursor(*deep), Cursor(*failed)
    web = create_app(settings, app)
    transport = httpx.ASGITransport(app=web)
    auth = (settings.admin_username, settings.admin_password)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", auth=auth) as client:
        reads: list[tuple[str, Callable[[], Awaitable[Any]], dict[str, Any]]] = [
            ("history, first page", lambda: get_job_history(sessions), {}),
            (
                "history, type=watchChain & status=failed",
                lambda: get_job_history(sessions, type="watchChain", status="failed"),
                {"type": "watchChain", "status": "failed"},
            ),
            (
                "history, status=failed",
                lambda: get_job_history(sessions, status="failed"),
                {"status": "failed"},
            ),
            (
                "history, type=deployMulticall3 (1 %)",
                lambda: get_job_history(sessions, type="deployMulticall3"),
                {"type": "deployMulticall3"},
            ),
            (
                "history, one user's rows (user_id)",
                lambda: get_job_history(sessions, user_id=user),
                {"user_id": user},
            ),
            (
                "history, deep page: a third of the table back (cursor)",
                lambda: get_job_history(sessions, before=deep_cursor),
                {"before": str(deep_cursor)},
            ),
            (
                "history, type+status=failed, deep page (cursor)",
                lambda: get_job_history(
                    sessions, type="watchChain", status="failed", before=failed_cursor
                ),
                {"type": "watchChain", "status": "failed", "before": str(failed_cursor)},
            ),
        ]
        for name, call, params in reads:
            await timings.time(name, "function", call)
            await timings.time(name, "API", partial(_api_get, client, "history", **params))
        windows = [
            ("1 hour", timedelta(hours=1)),
            ("5 hours", timedelta(hours=5)),
            ("1 day", timedelta(days=1)),
            ("30 days", timedelta(days=30)),
        ]
        for label, window in windows:
            await timings.time(
                f"metrics over {label}",
                "function",
                partial(get_job_metrics, sessions, since=now - window, until=now),
            )
        for label, window, bucket in [
            ("1 hour", timedelta(hours=1), 60),
            ("30 days", timedelta(days=30), 43200),
        ]:
            await timings.time(
                f"series over {label} ({bucket} s buckets)",
                "function",
                partial(get_job_series, sessions, since=now - window, until=now, bucket_seconds=bucket),
            )
        for label, window in windows:
            await timings.time(
                f"metrics + series over {label}",
                "API",
                partial(
                    _api_get, client, "metrics", since=(now - window).isoformat(), until=now.isoformat()
                ),
            )

        async def audit_view() -> None:
            # What app.js asks for when "from" is 30 days ago: history and metrics together,
            # then the header's overview.
            await asyncio.gather(
                _api_get(client, "history", since=month.isoformat(), limit=50),
                _api_get(client, "metrics", since=month.isoformat()),
            )
            response = await client.get("/admin/queues/api/overview")
            response.raise_for_status()

        await timings.time("audit view, from 30 days ago (all its calls)", "API", audit_view)


async def _cleanup(app: ServerApp, database_url: str) -> dict[str, Any]:
    """cleanupAuditLog's handler (30 days' retention) with a concurrent inserter."""
    cutoff = datetime.now(UTC) - timedelta(days=30)
    async with app.sessions() as session:
        due = await session.scalar(select(func.count()).where(WorkerJob.created_at < cutoff))
    context = multiprocessing.get_context("spawn")
    stop, ready = context.Event(), context.Event()
    results = context.Queue()
    inserter = context.Process(target=run_inserter, args=(database_url, stop, ready, results))
    inserter.start()
    ready.wait(60)
    await asyncio.sleep(2)  # inserts before the cleanup: the baseline
    data = CleanupAuditLogData.model_validate({"retentionDays": 30})
    ctx = JobContext(
        app=app,
        logger=logging.LoggerAdapter(logger),
        job_id="bench-cleanup",
        type=CLEANUP_AUDIT_LOG.name,
        user_id=None,
        data=data,
        attempt=1,
    )
    began_wall = time.time()
    began = time.perf_counter()
    outcome = await CLEANUP_AUDIT_LOG.run(ctx)
    seconds = time.perf_counter() - began
    ended_wall = time.time()
    await asyncio.sleep(1)
    stop.set()
    samples: list[tuple[float, float]] = results.get(timeout=60)
    inserter.join(30)
    during = sorted(ms for at, ms in samples if began_wall <= at <= ended_wall)
    before = sorted(ms for at, ms in samples if at < began_wall)

    def p99(values: list[float]) -> float | None:
        return round(values[min(len(values) - 1, int(len(values) * 0.99))], 2) if values else None

    report = {
        "rows_due": due,
        "deleted": outcome["deleted"],
        "seconds": round(seconds, 2),
        "rows_per_second": round(outcome["deleted"] / seconds),
        "inserts_during": len(during),
        "insert_p50_ms_during": round(statistics.median(during), 2) if during else None,
        "insert_p99_ms_during": p99(during),
        "insert_max_ms_during": round(during[-1], 2) if during else None,
        "insert_p99_ms_before": p99(before),
    }
    print(f"  cleanup: {report}", flush=True)
    return report


async def _postgres(settings: Settings, database_url: str, rows: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    began = time.perf_counter()
    await audit_fill.fill_postgres(database_url, rows, now)
    fill_s = time.perf_counter() - began
    print(f"  filled {rows:,} rows by COPY in {fill_s:.1f} s", flush=True)
    app = await ServerApp.create(settings)
    try:
        began = time.perf_counter()
        report = await rebuild_rollups(app.sessions)
        rebuild_s = time.perf_counter() - began
        print(
            f"  rebuilt rollups of {report.hours} hours from {report.rows:,} rows in {rebuild_s:.1f} s",
            flush=True,
        )
        connection = await asyncpg.connect(
            database_url.replace("postgresql+asyncpg://", "postgresql://")
        )
        try:
            await connection.execute("VACUUM ANALYZE")
            sizes = await connection.fetch(
                "SELECT relname, pg_total_relation_size(oid) AS bytes, reltuples::bigint AS rows "
                "FROM pg_class WHERE relname IN "
                "('worker_jobs', 'worker_job_minutes', 'worker_job_hours', 'worker_job_hour_bins')"
            )
        finally:
            await connection.close()
        timings = Timings("postgresql")
        await _time_reads(
            app, settings, timings, now, depth=1_000_000 if rows >= 2_000_000 else rows // 3
        )
        cleanup = await _cleanup(app, database_url)
    finally:
        await app.close()
    return {
        "rows": rows,
        "fill_seconds": round(fill_s, 1),
        "rebuild_seconds": round(rebuild_s, 1),
        "tables": {r["relname"]: {"bytes": r["bytes"], "rows": r["rows"]} for r in sizes},
        "timings": timings.rows,
        "cleanup": cleanup,
    }


async def _sqlite(settings: Settings, rows: int) -> dict[str, Any]:
    path = settings.database_url.removeprefix("sqlite+aiosqlite:///")
    now = datetime.now(UTC)
    began = time.perf_counter()
    await asyncio.to_thread(audit_fill.fill_sqlite, path, rows, now)
    fill_s = time.perf_counter() - began
    print(f"  filled {rows:,} rows in {fill_s:.1f} s", flush=True)
    app = await ServerApp.create(settings)
    try:
        began = time.perf_counter()
        await rebuild_rollups(app.sessions)
        rebuild_s = time.perf_counter() - began
        async with app.engine.connect() as connection:
            await connection.execute(text("ANALYZE"))
            await connection.commit()
        timings = Timings("sqlite")
        await _time_reads(app, settings, timings, now, depth=rows // 3)
    finally:
        await app.close()
    return {
        "rows": rows,
        "fill_seconds": round(fill_s, 1),
        "rebuild_seconds": round(rebuild_s, 1),
        "timings": timings.rows,
    }


def _markdown(results: dict[str, Any]) -> str:
    pg, lite = results.get("postgresql"), results.get("sqlite")
    head_pg = f"PostgreSQL {pg['rows'] / 1e6:g}M (function / API)" if pg else ""
    head_lite = f"SQLite {lite['rows'] / 1e6:g}M (function / API)" if lite else ""
    lines = [f"| operation | {head_pg} | {head_lite} |", "|---|---|---|"]
    names = list(dict.fromkeys(t["operation"] for r in (pg, lite) if r for t in r["timings"]))

    def cell(result: dict[str, Any] | None, name: str) -> str:
        if not result:
            return "-"
        parts = []
        for via in ("function", "API"):
            found = [t for t in result["timings"] if t["operation"] == name and t["via"] == via]
            if found:
                mark = "" if found[0]["met"] else " **(missed)**"
                parts.append(f"{found[0]['median_ms']:.1f} ms{mark}")
            else:
                parts.append("-")
        return " / ".join(parts)

    for name in names:
        lines.append(f"| {name} | {cell(pg, name)} | {cell(lite, name)} |")
    if pg:
        c = pg["cleanup"]
        lines.append(
            f"| cleanupAuditLog, {c['deleted']:,} rows past 30 days | {c['seconds']} s = "
            f"{c['rows_per_second']:,} rows/s; concurrent inserts p99 {c['insert_p99_ms_during']} ms "
            f"(p50 {c['insert_p50_ms_during']}, max {c['insert_max_ms_during']}; before: p99 "
            f"{c['insert_p99_ms_before']} ms) | - |"
        )
        rebuilt = f"{lite['rebuild_seconds']} s" if lite else "-"
        lines.append(f"| rollups rebuild (all rows) | {pg['rebuild_seconds']} s | {rebuilt} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=3_000_000, help="PostgreSQL rows (0: skip)")
    parser.add_argument("--sqlite-rows", type=int, default=1_000_000, help="SQLite rows (0: skip)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    load = os.getloadavg()
    results: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load],
        "runs": RUNS,
    }
    print(
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f}; medians of {RUNS} runs after a warm-up",
        flush=True,
    )
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        redis_url = f"redis://127.0.0.1:{_free_port()}/0"
        stack.enter_context(RedisManager(redis_url, data_dir=folder / "redis", reuse=False))
        base = dict(
            redis_url=redis_url,
            admin_username="bench",
            admin_password="bench-password-0123456789",
            log_level="WARNING",
        )
        if args.rows:
            from tests.helpers.services import postgres_server, throwaway_database

            server = stack.enter_context(postgres_server(folder / "postgres"))
            database_url = stack.enter_context(throwaway_database(server))
            upgrade(database_url)
            settings = load_settings(None, database_url=database_url, **base)
            print(f"PostgreSQL: {args.rows:,} rows", flush=True)
            results["postgresql"] = asyncio.run(_postgres(settings, database_url, args.rows))
        if args.sqlite_rows:
            database_url = f"sqlite+aiosqlite:///{folder / 'audit.sqlite3'}"
            upgrade(database_url)
            settings = load_settings(None, database_url=database_url, **base)
            print(f"SQLite: {args.sqlite_rows:,} rows", flush=True)
            results["sqlite"] = asyncio.run(_sqlite(settings, args.sqlite_rows))
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "audit_scale.json").write_text(json.dumps(results, indent=2) + "\n")
    table = _markdown(results)
    (args.out / "audit_scale.md").write_text(table)
    print("\n" + table)


if __name__ == "__main__":
    main()
