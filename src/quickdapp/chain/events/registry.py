"""The event modules watchChain reads, looked up by their topic."""

from __future__ import annotations

from collections.abc import Iterable

from quickdapp.chain.events.base import ChainEvent
from quickdapp.chain.events.create_token import CREATE_TOKEN
from quickdapp.chain.events.send_token import SEND_TOKEN
from quickdapp.config import Settings

EVENTS: tuple[ChainEvent, ...] = (CREATE_TOKEN, SEND_TOKEN)


class EventRegistry:
    """The enabled event modules (createToken needs FACTORY_CONTRACT_ADDRESS) by topic."""

    def __init__(self, settings: Settings, events: Iterable[ChainEvent] = EVENTS) -> None:
        self.settings = settings
        self.by_topic = {event.topic: event for event in events if event.enabled(settings)}

    @property
    def topics(self) -> list[str]:
        return sorted(self.by_topic)
