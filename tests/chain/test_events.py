"""Event modules on hand-made logs: amounts, malformed logs, the emitter filter."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode

from quickdapp.chain.events.base import ChainLog, MalformedLogError
from quickdapp.chain.events.create_token import CREATE_TOKEN
from quickdapp.chain.events.registry import EventRegistry
from quickdapp.chain.events.send_token import SEND_TOKEN, format_amount
from quickdapp.config import load_settings

SENDER = "0x" + "11" * 20
RECIPIENT = "0x" + "22" * 20
TOKEN = "0x" + "33" * 20


def word(address: str) -> str:
    return "0x" + "00" * 12 + address[2:]


def raw_log(topics: list[str], data: bytes, address: str = TOKEN) -> dict[str, object]:
    return {
        "address": address,
        "topics": topics,
        "data": "0x" + data.hex(),
        "blockNumber": "0x10",
        "transactionHash": "0x" + "ab" * 32,
        "logIndex": "0x2",
        "removed": False,
    }


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (15 * 10**17, 18, "1.50"),
        (10**21, 18, "1000.00"),
        (1, 6, "0.000001"),
        (0, 18, "0.00"),
        (123456789, 0, "123456789.00"),
        (10**18 + 1, 18, "1.000000000000000001"),
    ],
)
def test_amounts_keep_every_digit_and_at_least_two_decimals(
    value: int, decimals: int, text: str
) -> None:
    assert format_amount(value, decimals) == text


def test_a_transfer_log_decodes_into_its_notice() -> None:
    data = encode(["uint256", "string", "string", "uint8"], [25 * 10**17, "Token", "TKN", 18])
    log = ChainLog.from_json(raw_log([SEND_TOKEN.topic, word(SENDER), word(RECIPIENT)], data))

    notice = SEND_TOKEN.decode(log)

    assert notice.kind == "token_transfer"
    assert notice.wallet == SENDER
    assert notice.data["message"].startswith("Sent 2.50 TKN (Token) to 0x2222")
    assert notice.data["amount"] == str(25 * 10**17)
    assert notice.data["txHash"] == "0x" + "ab" * 32
    assert (log.block_number, log.log_index) == (16, 2)


@pytest.mark.parametrize(
    "topics_and_data",
    [
        ([SEND_TOKEN.topic, word(SENDER)], b""),  # a topic missing
        ([SEND_TOKEN.topic, word(SENDER), word(RECIPIENT)], b"\x00" * 31),  # data cut short
        ([SEND_TOKEN.topic, "0x" + "ff" * 32, word(RECIPIENT)], b""),  # not an address
    ],
)
def test_malformed_transfer_logs_raise_malformed_log_error(
    topics_and_data: tuple[list[str], bytes],
) -> None:
    topics, data = topics_and_data
    with pytest.raises(MalformedLogError):
        SEND_TOKEN.decode(ChainLog.from_json(raw_log(topics, data)))


def test_an_unreadable_log_object_is_malformed() -> None:
    with pytest.raises(MalformedLogError):
        ChainLog.from_json({"address": TOKEN, "topics": ["0xzz"], "data": "0x"})


def test_create_token_is_read_only_from_the_configured_factory() -> None:
    data = encode(["string", "string", "uint256"], ["Token", "TKN", 10**18])
    log = ChainLog.from_json(raw_log([CREATE_TOKEN.topic, word(TOKEN), word(SENDER)], data))
    without = load_settings(None)
    assert CREATE_TOKEN.topic not in EventRegistry(without).by_topic
    factory = load_settings(None, factory_contract_address=TOKEN.upper().replace("0X", "0x"))
    registry = EventRegistry(factory)
    assert registry.by_topic[CREATE_TOKEN.topic].accepts(log, factory)
    other = load_settings(None, factory_contract_address=RECIPIENT)
    assert not CREATE_TOKEN.accepts(log, other)
    assert CREATE_TOKEN.decode(log).data["initialSupply"] == str(10**18)
