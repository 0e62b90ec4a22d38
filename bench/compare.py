"""`make bench`: this system beside its peers, every workload, medians of several runs.

Systems: this system with its audit trail on PostgreSQL, on SQLite and off; the stock Python
bullmq Worker; Node BullMQ; dramatiq; a minimal database-polling queue. Workloads: enqueue one by
one and in bulk; drain at 1x1, 1x50, 2x50 (processes x concurrency); 2,000 x 50 ms jobs at 2x50;
add -> start latency at a steady 100 jobs/s and at sparse arrivals; delayed-job lateness; idle
RSS per worker process; audit lag. Rounds run every system in turn (the order rotating), so
machine noise spreads over all alike. Writes bench/results/bench.json, docs/benchmark.md and
docs/benchmark.png.

    .venv/bin/python -m bench.compare [--runs 3] [--jobs 10000] [--quick] [--systems a,b] [--commands]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from bench import report
from bench.peers.base import Peer
from bench.peers.dramatiq_peer import DramatiqPeer
from bench.peers.node import NodePeer
from bench.peers.polling import PollingPeer
from bench.peers.quickdapp import QuickdappPeer
from bench.peers.stock import StockPeer
from bench.redis_server import redis_server
from bench.services import throwaway_postgres
from bench.wake import wake_line
from bench.workers import ROOT, Workers
from bench.workloads import Result, Session, Sizes
from quickdapp.config import Settings, load_settings
from quickdapp.db.migrate import upgrade

SYSTEMS = ("qd-pg", "qd-sqlite", "qd-off", "stock", "node", "dramatiq", "polling")
QUICK = Sizes(
    drain=2_000, drain_slow=1_000, drain_1x1=500, sleep=1_000, steady=100, sparse_gaps=(0.3, 1.0),
    delayed=10, enqueue_one=500, enqueue_bulk=2_000,
)  # fmt: skip
HOW_MEASURED = Path(__file__).with_name("how_measured.md")
TINY = Sizes(
    drain=200, drain_slow=200, drain_1x1=100, sleep=200, steady=20, sparse_gaps=(0.2,), delayed=3,
    enqueue_one=50, enqueue_bulk=200, timeout=30,
)  # fmt: skip
RUN_TIMEOUT = 1_200.0  # seconds: the whole run stops by itself past this

Body = Callable[[Session], Awaitable[dict[str, Result]]]


async def _shape_1x1(s: Session) -> dict[str, Result]:
    return {"drain 1x1": await s.drain_noop(s.sizes.drain_1x1)}


async def _shape_1x50(s: Session) -> dict[str, Result]:
    results = {"idle RSS per worker process": await s.idle_rss()}
    results["latency at 100 jobs/s"] = await s.steady()
    results["sparse arrivals"] = await s.sparse()
    results["delayed job lateness"] = await s.delayed()
    results["drain 1x50"] = await s.drain_noop(s.drain_size())
    return results


async def _shape_2x50(s: Session) -> dict[str, Result]:
    results = {"drain 2x50": await s.drain_noop(s.drain_size())}
    results["50 ms jobs at 2x50"] = await s.drain_sleep(2, 50)
    return results


SHAPES: list[tuple[int, int, Body]] = [(1, 1, _shape_1x1), (1, 50, _shape_1x50), (2, 50, _shape_2x50)]


async def _session(
    peer: Peer, processes: int, concurrency: int, sizes: Sizes, body: Body, commands: bool
) -> dict[str, Result]:
    await peer.reset()
    async with Workers() as workers:
        await peer.start(workers, processes, concurrency)
        try:
            return await body(Session(peer, workers, sizes, commands=commands))
        finally:
            await workers.stop()


async def _enqueue(peer: Peer, sizes: Sizes) -> dict[str, Result]:
    await peer.reset()
    one = await peer.enqueue("one", sizes.enqueue_one)
    await peer.reset()
    bulk = await peer.enqueue("bulk", sizes.enqueue_bulk)
    return {"enqueue one by one": {"jobs_per_s": one}, "enqueue bulk": {"jobs_per_s": bulk}}


async def _rounds(
    peers: list[Peer],
    sizes: Sizes,
    runs: int,
    samples: report.Samples,
    errors: list[str],
    commands: bool,
) -> None:

    def keep(system: str, results: dict[str, Result]) -> None:
        for workload, result in results.items():
            samples.setdefault(workload, {}).setdefault(system, []).append(result)
            shown = ", ".join(f"{k} {v:.2f}" for k, v in result.items())
            print(f"  {workload:28s} {system:26s} {shown}", flush=True)

    for run in range(runs):
        print(f"round {run + 1} of {runs}", flush=True)
        order = peers[run % len(peers) :] + peers[: run % len(peers)]
        steps: list[tuple[Peer, str, Callable[[], Awaitable[dict[str, Result]]]]] = [
            (
                peer,
                f"{processes}x{concurrency}",
                partial(_session, peer, processes, concurrency, sizes, body, commands),
            )
            for processes, concurrency, body in SHAPES
            for peer in order
        ]
        steps += [(peer, "enqueue", partial(_enqueue, peer, sizes)) for peer in order if peer.enqueues]
        for peer, what, call in steps:
            began = time.monotonic()
            try:
                keep(peer.name, await call())
                print(f"    ({peer.name} {what}: {time.monotonic() - began:.1f} s)", flush=True)
            except Exception as exc:
                errors.append(f"round {run + 1}, {peer.name}, {what}: {type(exc).__name__}: {exc}")
                print(f"  FAILED {errors[-1]}", flush=True)


def _peers(names: list[str], redis_url: str, pg_url: str, sqlite_url: str, folder: Path) -> list[Peer]:
    def settings(database_url: str) -> Settings:
        return load_settings(
            None,
            redis_url=redis_url,
            database_url=database_url,
            job_modules="bench.jobs",
            worker_queue_job_attempts=1,
            log_level="WARNING",
        )

    made: dict[str, Callable[[], Peer]] = {
        "qd-pg": lambda: QuickdappPeer(settings(pg_url), "postgres", folder / "metrics-pg"),
        "qd-sqlite": lambda: QuickdappPeer(settings(sqlite_url), "sqlite", folder / "metrics-sqlite"),
        "qd-off": lambda: QuickdappPeer(settings(sqlite_url), "off", folder / "metrics-off"),
        "stock": lambda: StockPeer(settings(sqlite_url)),
        "node": lambda: NodePeer(settings(sqlite_url)),
        "dramatiq": lambda: DramatiqPeer(redis_url),
        "polling": lambda: PollingPeer(pg_url.replace("postgresql+asyncpg://", "postgresql://")),
    }
    peers = [made[name]() for name in names]
    ours = [peer for peer in peers if isinstance(peer, QuickdappPeer)]
    if ours:
        ours[0].enqueues = True
    return peers


@contextmanager
def _services(folder: Path) -> Iterator[tuple[str, str, str]]:
    """Redis, a throwaway PostgreSQL database and a SQLite file, migrated; removed after."""
    with ExitStack() as stack:
        redis_url = stack.enter_context(redis_server(folder))
        pg_url = stack.enter_context(throwaway_postgres(folder / "postgres"))
        sqlite_url = f"sqlite+aiosqlite:///{folder / 'audit.sqlite3'}"
        upgrade(pg_url)
        upgrade(sqlite_url)
        yield redis_url, pg_url, sqlite_url


async def _run(
    peers: list[Peer], sizes: Sizes, runs: int, errors: list[str], commands: bool
) -> report.Samples:
    """The rounds; what was measured before RUN_TIMEOUT is kept if the run is stopped."""
    samples: report.Samples = {}
    try:
        async with asyncio.timeout(RUN_TIMEOUT):
            for peer in peers:
                await peer.open()
            await _rounds(peers, sizes, runs, samples, errors, commands)
    except TimeoutError:
        errors.append(f"the run was stopped after {RUN_TIMEOUT:.0f} s: later rounds are missing")
    finally:
        for peer in peers:
            await peer.close()
    return samples


def _machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
    return f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}"


def _load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{value:.2f}" for value in load)


def _versions() -> str:
    import bullmq
    import dramatiq

    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[
        2
    ]
    return (
        f"Redis {redis.removeprefix('v=')}; Python {platform.python_version()}, "
        f"bullmq {bullmq.__version__}, dramatiq {dramatiq.__version__}; Node {node}, npm bullmq 6.7.0"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, help="no-op jobs per 1x50 / 2x50 drain (default 10,000)")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run: a smoke test")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, one run: what the test runs")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"of {', '.join(SYSTEMS)}")
    parser.add_argument(
        "--commands", action="store_true",
        help="after each drain, print Redis's time per job by command (INFO commandstats)",
    )  # fmt: skip
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    names = [name for name in args.systems.split(",") if name]
    if unknown := set(names) - set(SYSTEMS):
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    sizes = TINY if args.tiny else QUICK if args.quick else Sizes()
    runs = 1 if args.quick or args.tiny else args.runs
    if args.jobs:
        sizes = replace(sizes, drain=args.jobs, drain_slow=min(sizes.drain_slow, args.jobs))
    began, load = time.monotonic(), os.getloadavg()
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{_machine()}; load average {_load(load)}", flush=True)
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, _services(Path(tmp)) as urls:
        wake = wake_line(urls[0])
        print(wake, flush=True)
        peers = _peers(names, *urls, Path(tmp))
        samples = asyncio.run(_run(peers, sizes, runs, errors, args.commands))
    minutes = (time.monotonic() - began) / 60
    end_load = os.getloadavg()
    header = [
        f"`make bench` of {started_at}: {runs} runs, {minutes:.1f} minutes. {_machine()}.",
        f"Load average (1 / 5 / 15 min) at the start {_load(load)}, at the end {_load(end_load)}.",
        f"{wake} Each job added to an idle queue waits for such wakes; see bench/wake.py.",
        f"{_versions()}.",
        f"Sizes: drain {sizes.drain:,} no-op jobs at 1x50 and 2x50 ({sizes.drain_slow:,} for the "
        f"slower peers: Python bullmq, dramatiq, polling), {sizes.drain_1x1:,} at 1x1; "
        f"{sizes.sleep:,} x 50 ms at 2x50; {sizes.steady} jobs at 100 jobs/s; "
        f"{len(sizes.sparse_gaps)} sparse arrivals; {sizes.delayed} delayed jobs; "
        f"enqueue {sizes.enqueue_one:,} one by one, {sizes.enqueue_bulk:,} in bulk.",
    ]
    notes = ["## How it is measured", "", HOW_MEASURED.read_text()]
    if errors:
        notes += ["## Failures", "", *(f"- {error}" for error in errors)]
    systems = [peer.name for peer in peers]
    meta = {"started": started_at, "minutes": minutes, "runs": runs, "sizes": asdict(sizes)}
    meta |= {"header": header, "errors": errors}
    report.write(samples, meta, systems, notes, results=args.results, docs=args.docs)
    print((args.docs / "benchmark.md").read_text())
    if errors:
        raise SystemExit(f"{len(errors)} measurements failed (listed above)")


if __name__ == "__main__":
    main()
