"""watchChain against a real anvil chain: notifications once, block ranges, outages, two processes."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from web3.contract import AsyncContract

from bench.chain import ETHER, Chain
from quickdapp.app.server_app import ServerApp
from quickdapp.audit.history import get_job_history
from quickdapp.config import Settings
from quickdapp.db.key_values import get_value, set_value
from quickdapp.db.migrate import upgrade_async
from quickdapp.db.notifications import get_or_create_user
from quickdapp.db.schema import Notification
from quickdapp.devtools.anvil import ANVIL_CHAIN_ID, AnvilManager, free_port
from quickdapp.jobs.registry import JobRegistry
from quickdapp.jobs.types import JobContext
from quickdapp.jobs.watch_chain import WATCH_CHAIN, WatchChainData, cursor_key
from quickdapp.keys import NOTIFICATIONS_CHANNEL
from tests.helpers.chain import chain_overrides, chain_settings
from tests.helpers.processes import StartQuickdapp
from tests.helpers.waiting import audit_stored, eventually
from tests.helpers.workers import StartWorker

CURSOR = cursor_key(ANVIL_CHAIN_ID)


@pytest.fixture
def watch_settings(settings: Settings, anvil: AnvilManager, factory: AsyncContract) -> Settings:
    return chain_settings(settings, anvil.url, factory.address)


@pytest.fixture
async def chain_app(watch_settings: Settings, registry: JobRegistry) -> Any:
    app = await ServerApp.create(watch_settings, registry)
    try:
        yield app
    finally:
        await app.close()


async def add_user(app: ServerApp, wallet: str) -> int:
    async with app.sessions.begin() as session:
        return await get_or_create_user(session, wallet)


async def run_watch(app: ServerApp, data: dict[str, Any] | None = None) -> dict[str, Any]:
    job_id = await app.queue_manager.submit_job("watchChain", data or {})
    return await app.queue_manager.wait_until_finished(job_id, timeout=30)


async def watch_until_head(app: ServerApp, chain: Chain, from_block: int) -> list[dict[str, Any]]:
    """Run watchChain until its cursor reaches the head; returns each run's result."""
    results = []
    head = await chain.head()
    for _ in range(50):
        outcome = await run_watch(app, {"fromBlock": from_block})
        assert outcome["state"] == "completed", outcome
        results.append(outcome["returnvalue"])
        if int(await get_value(app.sessions, CURSOR) or -1) >= head:
            return results
    raise AssertionError(f"the cursor did not reach block {head}: {results}")


async def read_messages(pubsub: Any, count: int, timeout: float = 15) -> list[dict[str, Any]]:
    """The next `count` messages published on the subscribed channel."""
    messages: list[dict[str, Any]] = []

    async def all_read() -> list[dict[str, Any]] | None:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is not None:
            messages.append(json.loads(message["data"]))
        return messages if len(messages) >= count else None

    return await eventually(all_read, timeout, lambda: f"{count} messages, got {messages}")


def kinds(rows: list[Notification]) -> list[str]:
    """The kinds of `rows`, sorted."""
    return sorted(row.kind or "" for row in rows)


async def notifications(app: ServerApp) -> list[Notification]:
    async with app.sessions() as session:
        rows = await session.scalars(select(Notification).order_by(Notification.id))
        return list(rows)


async def test_a_transfer_by_a_known_user_notifies_once_with_its_fields(
    chain_app: ServerApp, chain: Chain, factory: AsyncContract, start_worker: StartWorker
) -> None:
    await start_worker(**chain_overrides(chain_app.settings))
    start = await chain.head() + 1
    alice, bob = await chain.new_account(), await chain.new_account()
    alice_id = await add_user(chain_app, alice.lower())
    token, create_tx = await chain.create_token(factory, alice, "Token", "TKN", 1000 * ETHER)
    send_tx = await chain.transfer(token, alice, bob, 15 * ETHER // 10)
    await chain.transfer(token, bob, alice, ETHER)  # bob is no user: no notification

    async with chain_app.redis.pubsub() as pubsub:
        await pubsub.subscribe(NOTIFICATIONS_CHANNEL)
        await watch_until_head(chain_app, chain, start)
        published = await read_messages(pubsub, 2)

    rows = await notifications(chain_app)
    assert [(row.user_id, row.kind) for row in rows] == [
        (alice_id, "token_created"),
        (alice_id, "token_transfer"),
    ]
    created, sent = rows[0].data, rows[1].data
    assert created["token"] == token.address
    assert (created["name"], created["symbol"]) == ("Token", "TKN")
    assert created["initialSupply"] == str(1000 * ETHER)
    assert created["txHash"] == create_tx == rows[0].tx_hash
    assert sent["message"] == f"Sent 1.50 TKN (Token) to {bob}"
    assert sent["amount"] == str(15 * ETHER // 10)
    assert sent["txHash"] == send_tx == rows[1].tx_hash
    assert sent["chainId"] == ANVIL_CHAIN_ID
    assert not rows[1].read
    assert [m["id"] for m in published] == [row.id for row in rows]
    assert published[1]["data"]["message"] == sent["message"]


async def test_several_tokens_and_transfers_in_one_range_are_all_processed(
    chain_app: ServerApp, chain: Chain, factory: AsyncContract, start_worker: StartWorker
) -> None:
    await start_worker(**chain_overrides(chain_app.settings))
    start = await chain.head() + 1
    users = [await chain.new_account() for _ in range(2)]
    stranger = await chain.new_account()
    for user in users:
        await add_user(chain_app, user)
    sent = []
    for i in range(3):
        token, _ = await chain.create_token(factory, users[i % 2], f"Token {i}", f"T{i}", 10 * ETHER)
        for j in range(4):
            sent.append(await chain.transfer(token, users[i % 2], stranger, (j + 1) * ETHER))
    head = await chain.head()

    outcome = await run_watch(chain_app, {"fromBlock": start})

    assert outcome["state"] == "completed", outcome
    result = outcome["returnvalue"]
    assert (result["fromBlock"], result["toBlock"]) == (start, head), "one run covers the range"
    rows = await notifications(chain_app)
    assert kinds(rows) == ["token_created"] * 3 + ["token_transfer"] * 12
    assert sorted(row.tx_hash or "" for row in rows if row.kind == "token_transfer") == sorted(sent)
    assert await get_value(chain_app.sessions, CURSOR) == str(head)


async def test_a_run_reads_at_most_the_max_block_range_and_respects_confirmations(
    settings: Settings,
    anvil: AnvilManager,
    chain: Chain,
    factory: AsyncContract,
    registry: JobRegistry,
    start_worker: StartWorker,
) -> None:
    narrow = chain_settings(settings, anvil.url, factory.address).model_copy(
        update={"chain_max_block_range": 2, "chain_confirmations": 1}
    )
    app = await ServerApp.create(narrow, registry)
    try:
        await start_worker(**chain_overrides(narrow), chain_max_block_range=2, chain_confirmations=1)
        alice = await chain.new_account()
        await add_user(app, alice)
        start = await chain.head() + 1
        token, _ = await chain.create_token(factory, alice, "Token", "TKN", 10 * ETHER)
        for _ in range(4):
            await chain.transfer(token, alice, factory.address, ETHER)
        head = await chain.head()  # start .. head holds 5 blocks, one event each

        first = (await run_watch(app, {"fromBlock": start}))["returnvalue"]
        assert (first["fromBlock"], first["toBlock"]) == (start, start + 1)
        second = (await run_watch(app))["returnvalue"]
        assert (second["fromBlock"], second["toBlock"]) == (start + 2, start + 3)
        # The head's block waits for one confirmation.
        third = (await run_watch(app))["returnvalue"]
        assert (third["fromBlock"], third["toBlock"]) == (head, None)
        assert len(await notifications(app)) == 4
        await chain.w3.provider.make_request("evm_mine", [])
        fourth = (await run_watch(app))["returnvalue"]
        assert (fourth["fromBlock"], fourth["toBlock"]) == (head, head)
        assert len(await notifications(app)) == 5
    finally:
        await app.close()


async def test_rereading_blocks_never_notifies_twice(
    chain_app: ServerApp, chain: Chain, factory: AsyncContract, start_worker: StartWorker
) -> None:
    await start_worker(**chain_overrides(chain_app.settings))
    alice = await chain.new_account()
    await add_user(chain_app, alice)
    start = await chain.head() + 1
    token, _ = await chain.create_token(factory, alice, "Token", "TKN", 10 * ETHER)
    await chain.transfer(token, alice, factory.address, ETHER)
    await watch_until_head(chain_app, chain, start)
    assert len(await notifications(chain_app)) == 2

    # As if a run had stored its notifications but its cursor were lost: the blocks come again.
    async with chain_app.sessions.begin() as session:
        await set_value(session, CURSOR, str(start - 1))
    outcome = await run_watch(chain_app)

    assert outcome["returnvalue"]["alreadyNotified"] == 2
    assert outcome["returnvalue"]["notified"] == 0
    assert len(await notifications(chain_app)) == 2


async def test_malformed_logs_are_skipped_and_the_rest_of_the_range_processed(
    chain_app: ServerApp,
    chain: Chain,
    factory: AsyncContract,
    start_worker: StartWorker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await start_worker(**chain_overrides(chain_app.settings))
    alice = await chain.new_account()
    await add_user(chain_app, alice)
    start = await chain.head() + 1
    emitter = await chain.deploy("MalformedEmitter", alice)
    tx_hash = await emitter.functions.emitMalformed(factory.address).transact({"from": alice})
    await chain.w3.eth.wait_for_transaction_receipt(tx_hash)
    token, _ = await chain.create_token(factory, alice, "Token", "TKN", 10 * ETHER)
    await chain.transfer(token, alice, factory.address, ETHER)

    results = await watch_until_head(chain_app, chain, start)

    assert sum(result["malformed"] for result in results) == 1
    assert kinds(await notifications(chain_app)) == [
        "token_created",
        "token_transfer",
    ]
    assert "skipping a malformed sendToken log" in caplog.text


async def test_an_rpc_outage_fails_the_run_and_loses_or_doubles_nothing(
    chain_app: ServerApp,
    chain: Chain,
    factory: AsyncContract,
    start_worker: StartWorker,
    registry: JobRegistry,
) -> None:
    await start_worker(**chain_overrides(chain_app.settings))
    alice = await chain.new_account()
    await add_user(chain_app, alice)
    start = await chain.head() + 1
    token, _ = await chain.create_token(factory, alice, "Token", "TKN", 10 * ETHER)
    await watch_until_head(chain_app, chain, start)
    cursor = await get_value(chain_app.sessions, CURSOR)
    for _ in range(3):
        await chain.transfer(token, alice, factory.address, ETHER)

    # The node goes away: a run whose RPC URL points at a closed port.
    down = {**chain_overrides(chain_app.settings), "chain_rpc_url": f"http://127.0.0.1:{free_port()}"}
    down_app = await ServerApp.create(chain_app.settings.model_copy(update=down), registry)
    try:
        context = JobContext(
            app=down_app,
            logger=logging.LoggerAdapter(logging.getLogger("test")),
            job_id="outage",
            type="watchChain",
            user_id=None,
            data=WatchChainData(),
            attempt=1,
        )
        with pytest.raises(Exception, match=r"(?i)connect|refused"):
            await WATCH_CHAIN.run(context)
    finally:
        await down_app.close()
    assert await get_value(chain_app.sessions, CURSOR) == cursor, "the cursor did not move"
    assert len(await notifications(chain_app)) == 1

    # The node is back: the next runs read from the cursor, once.
    await watch_until_head(chain_app, chain, start)
    rows = await notifications(chain_app)
    assert kinds(rows) == ["token_created"] + ["token_transfer"] * 3
    assert int(await get_value(chain_app.sessions, CURSOR) or 0) == await chain.head()


async def test_watch_chain_outranks_cleanup_audit_log_when_both_wait(
    chain_app: ServerApp, chain: Chain, start_worker: StartWorker
) -> None:
    manager = chain_app.queue_manager
    ids = []
    for _ in range(3):
        ids.append(await manager.submit_job("cleanupAuditLog", {"retentionDays": 30}))
        ids.append(await manager.submit_job("watchChain", {}))
    await start_worker(**chain_overrides(chain_app.settings), worker_queue_concurrency=1)
    for job_id in ids:
        outcome = await manager.wait_until_finished(job_id, timeout=30)
        assert outcome["state"] == "completed", outcome
    await audit_stored(chain_app.redis)

    rows = (await get_job_history(chain_app.sessions, limit=10)).items
    order = [row.type for row in sorted(rows, key=lambda row: row.started_at)]
    assert order == ["watchChain"] * 3 + ["cleanupAuditLog"] * 3


async def test_two_worker_processes_with_the_schedule_notify_each_event_once(
    chain_app: ServerApp, chain: Chain, factory: AsyncContract, start_quickdapp: StartQuickdapp
) -> None:
    manager = chain_app.queue_manager
    settings = chain_app.settings.model_copy(update={"worker_queue_concurrency": 2})
    alice, bob = await chain.new_account(), await chain.new_account()
    await add_user(chain_app, alice)
    await add_user(chain_app, bob)
    start = await chain.head() + 1
    processes = [start_quickdapp("worker", base=settings) for _ in range(2)]

    async def both_connected() -> bool:
        return len(await manager.inspect.live_workers()) >= 2

    await eventually(both_connected, 60, "two worker processes to connect")
    await manager.schedule_cron_job("watchChain", "* * * * * *", {"fromBlock": start}, key="watch-chain")
    expected = 0
    for i in range(4):
        user = (alice, bob)[i % 2]
        token, _ = await chain.create_token(factory, user, f"Token {i}", f"T{i}", 100 * ETHER)
        expected += 1
        for _ in range(3):
            await chain.transfer(token, user, factory.address, ETHER)
            expected += 1
        # Extra runs beside the schedule's, so runs meet on the cursor.
        for _ in range(4):
            await manager.submit_job("watchChain", {"fromBlock": start})
        await asyncio.sleep(0.4)  # time passing is the point: new blocks while runs go on
    head = await chain.head()

    async def cursor_at_head() -> bool:
        return int(await get_value(chain_app.sessions, CURSOR) or -1) >= head

    await eventually(cursor_at_head, 60, f"the cursor to reach block {head}")
    await manager.remove_cron_job("watch-chain")
    assert all(process.returncode is None for process in processes), "a worker died"
    # Stopped (their active runs finish first), so every run's audit row is written.
    for process in processes:
        process.terminate()
    for process in processes:
        await process.exited(30)

    rows = await notifications(chain_app)
    assert len(rows) == expected
    assert len({(row.tx_hash, row.log_index, row.kind) for row in rows}) == expected
    await audit_stored(chain_app.redis)
    history = (await get_job_history(chain_app.sessions, type="watchChain", limit=1000)).items
    assert history, "the workers ran watchChain"
    assert [row.error for row in history if row.status == "failed"] == []
    # Runs that read blocks read disjoint ranges, together exactly start..head.
    results = [row.result for row in history]
    assert all(isinstance(result, dict) for result in results), results
    ranges = sorted(
        (result["fromBlock"], result["toBlock"])
        for result in results
        if isinstance(result, dict) and result.get("toBlock") is not None
    )
    assert ranges[0][0] == start and ranges[-1][1] == head
    for (_, end), (next_start, _) in itertools.pairwise(ranges):
        assert next_start == end + 1, f"overlapping or missing blocks: {ranges}"


async def test_anvil_stopped_mid_stream_and_restarted_resumes_from_the_cursor(
    settings: Settings, registry: JobRegistry, start_worker: StartWorker, tmp_path: Path
) -> None:
    # A node of this test alone, its state kept in a file across the stop.
    url = f"http://127.0.0.1:{free_port()}"
    node = AnvilManager(url, reuse=False, state_file=tmp_path / "state.json")
    node.start()
    chain = Chain.connect(url)
    app = None
    try:
        factory = await chain.deploy("TestTokenFactory", await chain.new_account())
        configured = chain_settings(settings, url, factory.address)
        app = await ServerApp.create(configured, registry)
        await start_worker(**chain_overrides(configured))
        alice = await chain.new_account()
        await add_user(app, alice)
        start = await chain.head() + 1
        token, _ = await chain.create_token(factory, alice, "Token", "TKN", 10 * ETHER)
        await chain.transfer(token, alice, factory.address, ETHER)
        await watch_until_head(app, chain, start)
        await chain.transfer(token, alice, factory.address, ETHER)  # not read yet
        cursor = await get_value(app.sessions, CURSOR)

        node.stop()
        outcome = await run_watch(app)
        assert outcome["state"] == "failed", outcome
        assert await get_value(app.sessions, CURSOR) == cursor, "the cursor did not move"
        assert len(await notifications(app)) == 2

        node.start()
        # The chain's state came back from the file; impersonation is not part of it.
        await chain.w3.provider.make_request("anvil_impersonateAccount", [alice])
        await chain.transfer(token, alice, factory.address, ETHER)
        await watch_until_head(app, chain, start)
        rows = await notifications(app)
        assert kinds(rows) == ["token_created"] + ["token_transfer"] * 3
        assert len({row.tx_hash for row in rows}) == 4
    finally:
        if app is not None:
            await app.close()
        await chain.close()
        node.stop()


async def test_watch_chain_runs_on_sqlite_as_in_development(
    settings: Settings,
    anvil: AnvilManager,
    chain: Chain,
    factory: AsyncContract,
    registry: JobRegistry,
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dev.sqlite3'}"
    await upgrade_async(url)
    app = await ServerApp.create(
        chain_settings(settings, anvil.url, factory.address).model_copy(update={"database_url": url}),
        registry,
    )
    try:
        alice = await chain.new_account()
        await add_user(app, alice)
        start = await chain.head() + 1
        token, _ = await chain.create_token(factory, alice, "Token", "TKN", 10 * ETHER)
        await chain.transfer(token, alice, factory.address, ETHER)
        context = JobContext(
            app=app,
            logger=logging.LoggerAdapter(logging.getLogger("test")),
            job_id="sqlite",
            type="watchChain",
            user_id=None,
            data=WatchChainData(fromBlock=start),
            attempt=1,
        )
        first = await WATCH_CHAIN.run(context)
        again = await WATCH_CHAIN.run(context)

        assert first["notified"] == 2
        assert again["toBlock"] is None, "nothing new: the cursor holds"
        assert kinds(await notifications(app)) == [
            "token_created",
            "token_transfer",
        ]
    finally:
        await app.close()
