"""Events per second that watchChain turns into notifications, end to end, on a local anvil.

Starts its own anvil, redis-server and PostgreSQL (pgserver), makes N token transfers by
known users, then runs watchChain through the queue with one in-process worker until the
cursor reaches the head, ROUNDS times (cursor and notifications reset between rounds).
Prints each round and the median.

    .venv/bin/python -m bench.watch_chain_throughput --transfers 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import delete, func, select

from bench.chain import ETHER, Chain
from bench.services import throwaway_postgres
from quickdapp.app.server_app import ServerApp
from quickdapp.config import load_settings
from quickdapp.db.migrate import upgrade
from quickdapp.db.notifications import get_or_create_user
from quickdapp.db.schema import KeyValue, Notification
from quickdapp.devtools.anvil import ANVIL_CHAIN_ID, ANVIL_DEV_ACCOUNT_0_KEY, AnvilManager, free_port
from quickdapp.devtools.redis_manager import RedisManager
from quickdapp.workers.process import run_worker


async def make_events(chain: Chain, transfers: int, users: int) -> tuple[list[str], int, str, int]:
    """`users` accounts, each with a token from one factory, sending `transfers` in all; returns
    the senders, the first block, the factory's address and the head."""
    deployer = await chain.new_account()
    factory = await chain.deploy("TestTokenFactory", deployer)
    start = await chain.head() + 1
    senders = [await chain.new_account() for _ in range(users)]
    tokens = [
        (await chain.create_token(factory, sender, f"Token {i}", f"T{i}", 10**9 * ETHER))[0]
        for i, sender in enumerate(senders)
    ]
    sink = await chain.new_account()
    last = None
    for i in range(transfers):
        token, sender = tokens[i % users], senders[i % users]
        last = await token.functions.transfer(sink, ETHER + i).transact({"from": sender})
    if last is not None:
        await chain.w3.eth.wait_for_transaction_receipt(last)
    return senders, start, str(factory.address), await chain.head()


async def one_round(app: ServerApp, start: int, head: int) -> tuple[float, int, int]:
    async with app.sessions.begin() as session:
        await session.execute(delete(Notification))
        await session.execute(delete(KeyValue))
    began = time.perf_counter()
    runs = 0
    while True:
        job_id = await app.queue_manager.submit_job("watchChain", {"fromBlock": start})
        outcome = await app.queue_manager.wait_until_finished(job_id, timeout=120)
        assert outcome["state"] == "completed", outcome
        runs += 1
        if (outcome["returnvalue"].get("toBlock") or -1) >= head:
            break
    elapsed = time.perf_counter() - began
    async with app.sessions() as session:
        count = int(await session.scalar(select(func.count()).select_from(Notification)) or 0)
    return elapsed, count, runs


async def bench(args: argparse.Namespace, database_url: str, redis_url: str, rpc_url: str) -> None:
    chain = Chain.connect(rpc_url)
    try:
        made = time.perf_counter()
        senders, start, factory, head = await make_events(chain, args.transfers, args.users)
        print(
            f"made {args.transfers} transfers + {args.users} tokens in "
            f"{time.perf_counter() - made:.1f}s: blocks {start}-{head}"
        )
    finally:
        await chain.close()
    settings = load_settings(
        None,
        redis_url=redis_url,
        database_url=database_url,
        chain_rpc_url=rpc_url,
        chain_id=ANVIL_CHAIN_ID,
        server_wallet_private_key=ANVIL_DEV_ACCOUNT_0_KEY,
        factory_contract_address=factory,
        chain_max_block_range=args.max_block_range,
        log_level="WARNING",
    )
    app = await ServerApp.create(settings)
    worker_app = await ServerApp.create(settings)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(worker_app, stop))
    try:
        async with app.sessions.begin() as session:
            for sender in senders:
                await get_or_create_user(session, sender)
        rates = []
        for i in range(args.rounds):
            elapsed, count, runs = await one_round(app, start, head)
            rates.append(count / elapsed)
            print(
                f"round {i + 1}: {count} notifications in {elapsed:.3f}s over {runs} runs "
                f"= {count / elapsed:.0f} events/s"
            )
        print(
            f"median: {statistics.median(rates):.0f} events/s "
            f"({args.transfers} transfers + {args.users} token creations, "
            f"CHAIN_MAX_BLOCK_RANGE={args.max_block_range})"
        )
    finally:
        stop.set()
        await worker
        await worker_app.close()
        await app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transfers", type=int, default=1000)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-block-range", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with throwaway_postgres(work / "pg") as db_url:
            upgrade(db_url)
            redis_url = f"redis://127.0.0.1:{free_port()}/0"
            rpc_url = f"http://127.0.0.1:{free_port()}"
            with (
                RedisManager(redis_url, data_dir=work / "redis", reuse=False, appendonly=False),
                AnvilManager(rpc_url, reuse=False),
            ):
                asyncio.run(bench(args, db_url, redis_url, rpc_url))


if __name__ == "__main__":
    main()
