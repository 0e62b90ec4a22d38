"""deployMulticall3 on a fresh anvil chain per test: deploy, no-op, refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address

from bench.chain import Chain
from quickdapp.app.server_app import ServerApp
from quickdapp.chain.multicall3 import AGGREGATE3_ABI, code_hash, multicall3
from quickdapp.config import Settings
from quickdapp.devtools.anvil import ANVIL_CHAIN_ID, ANVIL_DEV_ACCOUNT_0, AnvilManager
from quickdapp.errors import JobValidationError
from quickdapp.jobs.registry import JobRegistry
from tests.helpers.chain import chain_overrides, chain_settings, start_anvil
from tests.helpers.workers import StartWorker

WALLET = to_checksum_address(ANVIL_DEV_ACCOUNT_0)  # the server wallet
MULTICALL3 = to_checksum_address(multicall3().address)


@pytest.fixture
def fresh_anvil(tmp_path: Path) -> Iterator[AnvilManager]:
    """An anvil of this test alone: Multicall3 is not deployed there yet."""
    manager = start_anvil(tmp_path)
    try:
        yield manager
    finally:
        manager.stop()


@pytest.fixture
async def fresh_chain(fresh_anvil: AnvilManager) -> AsyncIterator[Chain]:
    connected = Chain.connect(fresh_anvil.url)
    try:
        yield connected
    finally:
        await connected.close()


@pytest.fixture
async def deploy_app(
    settings: Settings, fresh_anvil: AnvilManager, registry: JobRegistry, start_worker: StartWorker
) -> AsyncIterator[ServerApp]:
    configured = chain_settings(settings, fresh_anvil.url)
    await start_worker(**chain_overrides(configured))
    app = await ServerApp.create(configured, registry)
    try:
        yield app
    finally:
        await app.close()


async def deploy(app: ServerApp, data: dict[str, Any] | None = None) -> dict[str, Any]:
    # Three tries allowed, so a refusal that is retried would show in attemptsMade.
    job_id = await app.queue_manager.submit_job("deployMulticall3", data or {}, attempts=3)
    return await app.queue_manager.wait_until_finished(job_id, timeout=60)


async def test_deploys_on_a_fresh_chain_and_aggregate3_works_through_it(
    deploy_app: ServerApp, fresh_chain: Chain
) -> None:
    facts = multicall3()
    w3 = fresh_chain.w3
    assert await w3.eth.get_code(MULTICALL3) == b""
    wallet_before = await w3.eth.get_balance(WALLET)

    outcome = await deploy(deploy_app)

    assert outcome["state"] == "completed", outcome
    result = outcome["returnvalue"]
    assert result["status"] == "deployed"
    assert result["txHash"] == facts.deployment_tx_hash
    assert code_hash(bytes(await w3.eth.get_code(MULTICALL3))) == facts.runtime_code_hash
    assert await w3.eth.get_transaction_count(to_checksum_address(facts.deployer)) == 1
    assert wallet_before - await w3.eth.get_balance(WALLET) >= facts.deployer_funding_wei

    # A real aggregate3 call: two of Multicall3's own views, batched through it.
    contract = w3.eth.contract(address=MULTICALL3, abi=AGGREGATE3_ABI)
    calls = [
        (facts.address, False, contract.encode_abi("getChainId")),
        (facts.address, False, contract.encode_abi("getBlockNumber")),
    ]
    results = await contract.functions.aggregate3(calls).call()
    head = await w3.eth.block_number
    assert [success for success, _ in results] == [True, True]
    assert abi_decode(["uint256"], results[0][1]) == (ANVIL_CHAIN_ID,)
    assert abi_decode(["uint256"], results[1][1]) == (head,)


async def test_a_second_run_reports_already_deployed_and_changes_nothing(
    deploy_app: ServerApp, fresh_chain: Chain
) -> None:
    assert (await deploy(deploy_app))["state"] == "completed"
    w3 = fresh_chain.w3
    head = await w3.eth.block_number
    balance = await w3.eth.get_balance(WALLET)

    outcome = await deploy(deploy_app)

    assert outcome["state"] == "completed", outcome
    assert outcome["returnvalue"]["status"] == "already deployed"
    assert await w3.eth.block_number == head, "no transaction was sent"
    assert await w3.eth.get_balance(WALLET) == balance


async def test_refuses_a_wrong_contract_at_the_address(
    deploy_app: ServerApp, fresh_chain: Chain
) -> None:
    facts = multicall3()
    await fresh_chain.w3.provider.make_request("anvil_setCode", [facts.address, "0x6001600101"])

    outcome = await deploy(deploy_app)

    assert outcome["state"] == "failed"
    assert "is not Multicall3" in outcome["failedReason"]
    job = await deploy_app.queue_manager.queue.getJob(outcome["jobId"])
    assert job.attemptsMade == 1, "a wrong contract is not retried"


async def test_refuses_when_the_deployer_nonce_is_spent_without_code(
    deploy_app: ServerApp, fresh_chain: Chain
) -> None:
    facts = multicall3()
    await fresh_chain.w3.provider.make_request("anvil_setNonce", [facts.deployer, "0x1"])

    outcome = await deploy(deploy_app)

    assert outcome["state"] == "failed"
    assert "can no longer happen" in outcome["failedReason"]
    assert await fresh_chain.w3.eth.get_code(MULTICALL3) == b""


async def test_force_redeploy_is_refused_at_submit_and_at_run_time_without_retry(
    settings: Settings, deploy_app: ServerApp, fresh_chain: Chain
) -> None:
    manager = deploy_app.queue_manager
    with pytest.raises(JobValidationError, match="forceRedeploy cannot be honoured"):
        await deploy(deploy_app, {"forceRedeploy": True})
    assert sum((await manager.inspect.counts()).values()) == 0

    # Another producer bypasses submit: the run refuses it the same way, once.
    stray = await manager.queue.add(
        "deployMulticall3", {"userId": None, "data": {"forceRedeploy": True}}, {"attempts": 3}
    )
    outcome = await manager.wait_until_finished(str(stray.id), timeout=60)
    assert outcome["state"] == "failed"
    assert "forceRedeploy cannot be honoured" in outcome["failedReason"]
    job = await manager.queue.getJob(outcome["jobId"])
    assert job.attemptsMade == 1
    assert await fresh_chain.w3.eth.get_code(MULTICALL3) == b""
