"""sendToken: any token's TokenTransferred tells the sender's user what they sent."""

from __future__ import annotations

from decimal import Decimal

from quickdapp.chain.events.base import (
    ChainEvent,
    ChainLog,
    EventNotice,
    MalformedLogError,
    checksum,
    data_values,
    topic_address,
)

KIND = "token_transfer"


def format_amount(value: int, decimals: int) -> str:
    """`value` in whole tokens, with at least two decimals and no needless trailing zeros."""
    amount = Decimal(value).scaleb(-decimals)
    text = format(amount, "f")
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{whole}.{fraction}"


def decode(log: ChainLog) -> EventNotice:
    sender = topic_address(log, 1)
    recipient = topic_address(log, 2)
    if len(log.topics) != 3:
        raise MalformedLogError(f"TokenTransferred has 3 topics, this log {len(log.topics)}")
    value, name, symbol, decimals = data_values(log, ["uint256", "string", "string", "uint8"])
    amount = format_amount(value, decimals)
    return EventNotice(
        kind=KIND,
        wallet=sender.lower(),
        data={
            "kind": KIND,
            "message": f"Sent {amount} {symbol} ({name}) to {recipient}",
            "token": checksum(bytes.fromhex(log.address[2:])),
            "from": sender,
            "to": recipient,
            "amount": str(value),
            "formattedAmount": amount,
            "decimals": decimals,
            "name": name,
            "symbol": symbol,
            "txHash": log.tx_hash,
        },
    )


SEND_TOKEN = ChainEvent(
    name="sendToken",
    kind=KIND,
    signature="TokenTransferred(address,address,uint256,string,string,uint8)",
    decode=decode,
)
