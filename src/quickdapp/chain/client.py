"""ChainClient: the async web3.py connection to CHAIN_RPC_URL and the server wallet.

Requests are not retried here: a failed call fails the job run that made it, and the job's
own retry (or the next scheduled run) reads the same blocks again.

Every error of a call is re-raised as a ChainError whose text has no trace of CHAIN_RPC_URL:
web3 and aiohttp quote the URL they called (with the provider's key in its path) in their
messages, and a job's error text goes to its failed reason, the audit trail, the worker's log
and the dashboard. The original exception is not chained, so no traceback prints it either.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import Web3RPCError
from web3.types import RPCEndpoint, TxParams, TxReceipt, Wei

from quickdapp.config import Settings
from quickdapp.errors import PermanentJobError
from quickdapp.redaction import redact, scrub

logger = logging.getLogger(__name__)

# py_ecc, imported by eth_account and web3, raises the recursion limit to 100,000 as it loads.
# At that depth the C stack runs out first: a deeply nested JSON document (a request body, job
# data) then crashes the whole process with a segfault instead of raising RecursionError.
# Nothing here recurses that deep; Python's own default is put back.
SAFE_RECURSION_LIMIT = 1_000
if sys.getrecursionlimit() > SAFE_RECURSION_LIMIT:
    sys.setrecursionlimit(SAFE_RECURSION_LIMIT)

REQUEST_TIMEOUT_S = 10.0
RECEIPT_TIMEOUT_S = 60.0
T = TypeVar("T")


class ChainError(RuntimeError):
    """The node answered, but not with what the system needs (wrong chain, failed transaction)."""


class ChainMismatchError(ChainError, PermanentJobError):
    """The node is on another chain than CHAIN_ID: a configuration error no retry can fix."""


class ChainRpcError(ChainError):
    """The node answered a request with an error."""


class ChainUnavailableError(ChainError):
    """The node could not be reached, timed out or answered something other than JSON-RPC."""


class ChainClient:
    """One chain: the node at `rpc_url`, its expected id, and the server wallet (if a key is set)."""

    def __init__(
        self,
        rpc_url: str,
        *,
        chain_id: int | None = None,
        private_key: str | None = None,
        timeout: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.rpc_url = rpc_url
        self.expected_chain_id = chain_id
        self.w3 = AsyncWeb3(
            AsyncHTTPProvider(
                rpc_url,
                request_kwargs={"timeout": timeout},
                exception_retry_configuration=None,
            )
        )
        self.wallet: LocalAccount | None = Account.from_key(private_key) if private_key else None
        self._chain_id: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ChainClient:
        if settings.chain_rpc_url is None:
            raise ValueError("no chain is configured (CHAIN_RPC_URL is not set)")
        return cls(
            settings.chain_rpc_url,
            chain_id=settings.chain_id,
            private_key=settings.server_wallet_private_key,
        )

    async def chain_id(self) -> int:
        """The node's chain id, read once; raises ChainError when it is not CHAIN_ID."""
        if self._chain_id is None:
            actual = int(await self._rpc("eth_chainId", self.w3.eth.chain_id))
            if self.expected_chain_id is not None and actual != self.expected_chain_id:
                raise ChainMismatchError(
                    f"the node at CHAIN_RPC_URL is chain {actual}, but CHAIN_ID is "
                    f"{self.expected_chain_id}"
                )
            self._chain_id = actual
        return self._chain_id

    async def block_number(self) -> int:
        return int(await self._rpc("eth_blockNumber", self.w3.eth.block_number))

    async def get_logs(self, from_block: int, to_block: int, topics: list[Any]) -> list[dict[str, Any]]:
        """eth_getLogs over [from_block, to_block], both included, as the node's JSON objects.

        Raw on purpose: web3's formatting of each log field costs more than all the rest of a
        watchChain run. An error answer (range too large, ...) raises ChainRpcError.
        """
        params = {"fromBlock": hex(from_block), "toBlock": hex(to_block), "topics": topics}
        response = await self._rpc(
            "eth_getLogs", self.w3.provider.make_request(RPCEndpoint("eth_getLogs"), [params])
        )
        if "error" in response:
            raise ChainRpcError(f"eth_getLogs {from_block}-{to_block}: {self._scrub(response['error'])}")
        result = response.get("result")
        if not isinstance(result, list):
            raise ChainRpcError(
                f"eth_getLogs {from_block}-{to_block}: no list of logs: {self._scrub(response)}"
            )
        return result

    async def get_code(self, address: str) -> bytes:
        call = self.w3.eth.get_code(self.w3.to_checksum_address(address))
        return bytes(await self._rpc("eth_getCode", call))

    async def get_nonce(self, address: str) -> int:
        call = self.w3.eth.get_transaction_count(self.w3.to_checksum_address(address))
        return int(await self._rpc("eth_getTransactionCount", call))

    async def get_balance(self, address: str) -> int:
        call = self.w3.eth.get_balance(self.w3.to_checksum_address(address))
        return int(await self._rpc("eth_getBalance", call))

    async def send_raw_transaction(self, raw: bytes | str) -> HexBytes:
        return await self._rpc("eth_sendRawTransaction", self.w3.eth.send_raw_transaction(HexBytes(raw)))

    async def wait_for_receipt(self, tx_hash: HexBytes, timeout: float = RECEIPT_TIMEOUT_S) -> TxReceipt:
        """The receipt of `tx_hash`; raises ChainError when the transaction reverted."""
        receipt = await self._rpc(
            "eth_getTransactionReceipt",
            self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.1),
        )
        if receipt["status"] != 1:
            raise ChainError(f"transaction {tx_hash.to_0x_hex()} reverted")
        return receipt

    async def send_value(self, to: str, wei: int) -> TxReceipt:
        """Send `wei` from the server wallet to `to` and wait for the receipt."""
        if self.wallet is None:
            raise ChainError("no server wallet: SERVER_WALLET_PRIVATE_KEY is not set")
        tx: TxParams = {
            "from": self.wallet.address,
            "to": self.w3.to_checksum_address(to),
            "value": Wei(wei),
            "gas": 21_000,
            "gasPrice": await self._rpc("eth_gasPrice", self.w3.eth.gas_price),
            "nonce": await self._rpc(
                "eth_getTransactionCount",
                self.w3.eth.get_transaction_count(self.wallet.address, "pending"),
            ),
            "chainId": await self.chain_id(),
        }
        signed = self.wallet.sign_transaction(tx)  # type: ignore[arg-type]
        tx_hash = await self.send_raw_transaction(signed.raw_transaction)
        logger.info("sent %d wei to %s in %s", wei, to, tx_hash.to_0x_hex())
        return await self.wait_for_receipt(tx_hash)

    @property
    def node(self) -> str:
        """The node as it may be shown: scheme://host:port, never its path, key or password."""
        return redact(self.rpc_url, rpc=True)

    async def _rpc(self, method: str, call: Awaitable[T]) -> T:
        """Await one call of `method`; any failure becomes a ChainError without the URL."""
        try:
            return await call
        except ChainError:
            raise
        except Web3RPCError as exc:
            raise ChainRpcError(f"{method}: {self._scrub(exc)}") from None
        except Exception as exc:
            reason = self._scrub(exc) or "(no message)"
            raise ChainUnavailableError(
                f"{method} to {self.node} failed: {type(exc).__name__}: {reason}"
            ) from None

    def _scrub(self, value: object) -> str:
        return scrub(str(value), self.rpc_url)

    async def close(self) -> None:
        await self.w3.provider.disconnect()
