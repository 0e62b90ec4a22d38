"""What an event module is: the event it reads, and how one log becomes a notification."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from quickdapp.config import Settings


class MalformedLogError(ValueError):
    """A log carries an event's topic but cannot be decoded as that event."""


@dataclass(frozen=True)
class ChainLog:
    """One log as eth_getLogs returns it, parsed from its JSON (web3's own formatting of
    every field costs more than the whole decoding of the events here)."""

    address: str  # lower-case
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    tx_hash: str  # lower-case 0x hex
    log_index: int
    removed: bool = False

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ChainLog:
        """Parse one JSON-RPC log object; raises MalformedLogError when a field is unusable."""
        try:
            return cls(
                address=str(raw["address"]).lower(),
                topics=tuple(bytes.fromhex(topic[2:]) for topic in raw["topics"]),
                data=bytes.fromhex(str(raw["data"])[2:]),
                block_number=int(raw["blockNumber"], 16),
                tx_hash=str(raw["transactionHash"]).lower(),
                log_index=int(raw["logIndex"], 16),
                removed=bool(raw.get("removed", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedLogError(f"unreadable log {raw!r}: {exc}") from exc


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
    decode: Callable[[ChainLog], EventNotice]
    emitter: Callable[[Settings], str | None] | None = None

    @property
    def topic(self) -> str:
        return "0x" + keccak(text=self.signature).hex()

    def enabled(self, settings: Settings) -> bool:
        return self.emitter is None or self.emitter(settings) is not None

    def accepts(self, log: ChainLog, settings: Settings) -> bool:
        """True when `log` comes from the contract this event must come from."""
        if self.emitter is None:
            return True
        expected = self.emitter(settings)
        return expected is not None and log.address == expected.lower()


def topic_address(log: ChainLog, index: int) -> str:
    """The address in indexed topic `index`, checksummed."""
    if len(log.topics) <= index:
        raise MalformedLogError(f"expected at least {index + 1} topics, got {len(log.topics)}")
    word = log.topics[index]
    if len(word) != 32 or any(word[:12]):
        raise MalformedLogError(f"topic {index} is not an address")
    return checksum(word[12:])


@lru_cache(maxsize=65_536)
def checksum(address: bytes) -> str:
    """EIP-55 form of a 20-byte address; cached, since the same few addresses recur and each
    costs a keccak."""
    return str(to_checksum_address(address))


def data_values(log: ChainLog, types: list[str]) -> tuple[Any, ...]:
    """The non-indexed values of `log`, ABI-decoded as `types`."""
    try:
        return tuple(abi_decode(types, log.data, strict=False))
    except Exception as exc:  # eth_abi raises several error types for bad data
        raise MalformedLogError(f"data does not decode as ({', '.join(types)}): {exc}") from exc
