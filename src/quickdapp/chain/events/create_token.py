"""createToken: the factory's ERC20NewToken tells the creator's user their token exists."""

from __future__ import annotations

from quickdapp.chain.events.base import (
    ChainEvent,
    ChainLog,
    EventNotice,
    MalformedLogError,
    data_values,
    topic_address,
)
from quickdapp.config import Settings

KIND = "token_created"


def decode(log: ChainLog) -> EventNotice:
    token = topic_address(log, 1)
    creator = topic_address(log, 2)
    if len(log.topics) != 3:
        raise MalformedLogError(f"ERC20NewToken has 3 topics, this log {len(log.topics)}")
    name, symbol, initial_supply = data_values(log, ["string", "string", "uint256"])
    return EventNotice(
        kind=KIND,
        wallet=creator.lower(),
        data={
            "kind": KIND,
            "message": f"Created token {name} ({symbol})",
            "token": token,
            "name": name,
            "symbol": symbol,
            "initialSupply": str(initial_supply),
            "creator": creator,
            "txHash": log.tx_hash,
        },
    )


def _factory(settings: Settings) -> str | None:
    return settings.factory_contract_address


CREATE_TOKEN = ChainEvent(
    name="createToken",
    kind=KIND,
    signature="ERC20NewToken(address,string,string,address,uint256)",
    decode=decode,
    emitter=_factory,
)
