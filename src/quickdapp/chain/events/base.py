"""What an event module is: the event it reads, and how one log becomes a notification."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.types import LogReceipt

from quickdapp.config import Settings


class MalformedLogError(ValueError):
    """A log carries an event's topic but cannot be decoded as that event."""


@dataclass(frozen=True)
class EventNotice:
    """What one log means: which wallet's user to notify, with what kind and data."""

    kind: str
    wallet: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ChainEvent:
    """One event module: the event signature it reads and the decoder of its logs.

    `emitter` picks the contract address the event must come from (None: any address);
    a module whose emitter is required but not configured is left out of the watch.
    """

    name: str
    kind: str
    signature: str
    decode: Callable[[LogReceipt], EventNotice]
    emitter: Callable[[Settings], str | None] | None = None

    @property
    def topic(self) -> str:
        return "0x" + keccak(text=self.signature).hex()

    def enabled(self, settings: Settings) -> bool:
        return self.emitter is None or self.emitter(settings) is not None

    def accepts(self, log: LogReceipt, settings: Settings) -> bool:
        """True when `log` comes from the contract this event must come from."""
        if self.emitter is None:
            return True
        expected = self.emitter(settings)
        return expected is not None and str(log["address"]).lower() == expected.lower()


def topic_address(log: LogReceipt, index: int) -> str:
    """The address in indexed topic `index`, checksummed."""
    topics = log["topics"]
    if len(topics) <= index:
        raise MalformedLogError(f"expected at least {index + 1} topics, got {len(topics)}")
    word = bytes(topics[index])
    if len(word) != 32 or any(word[:12]):
        raise MalformedLogError(f"topic {index} is not an address")
    return str(to_checksum_address(word[12:]))


def data_values(log: LogReceipt, types: list[str]) -> tuple[Any, ...]:
    """The non-indexed values of `log`, ABI-decoded as `types`."""
    try:
        return tuple(abi_decode(types, bytes(log["data"]), strict=False))
    except Exception as exc:  # eth_abi raises several error types for bad data
        raise MalformedLogError(f"data does not decode as ({', '.join(types)}): {exc}") from exc


def tx_hash(log: LogReceipt) -> str:
    return "0x" + bytes(log["transactionHash"]).hex()
