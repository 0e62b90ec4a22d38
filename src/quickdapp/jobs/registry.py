"""The job registry: job type name -> definition (data model, priority, handler)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import Any

from quickdapp.errors import UnknownJobTypeError
from quickdapp.jobs.types import JobDefinition

MAX_PRIORITY = 2_097_152
"""BullMQ's largest priority (2^21); 1 is the most urgent."""


class JobRegistry:
    """Job definitions by name. Lookups of unknown names raise UnknownJobTypeError."""

    def __init__(self, definitions: Iterable[JobDefinition[Any]] = ()) -> None:
        self._definitions: dict[str, JobDefinition[Any]] = {}
        for definition in definitions:
            self.register(definition)

    def register(self, definition: JobDefinition[Any]) -> None:
        if definition.name in self._definitions:
            raise ValueError(f"job type {definition.name!r} is registered twice")
        if not 1 <= definition.priority <= MAX_PRIORITY:
            raise ValueError(f"job type {definition.name!r}: priority must be 1..{MAX_PRIORITY}")
        if isinstance(definition.handler, str) and ":" not in definition.handler:
            raise ValueError(f"job type {definition.name!r}: handler must be 'module:function'")
        self._definitions[definition.name] = definition

    def get(self, name: str) -> JobDefinition[Any]:
        try:
            return self._definitions[name]
        except KeyError:
            raise UnknownJobTypeError(name, self._definitions) from None

    def __contains__(self, name: object) -> bool:
        return name in self._definitions

    def __iter__(self) -> Iterator[JobDefinition[Any]]:
        return iter(self._definitions.values())

    def names(self) -> list[str]:
        return list(self._definitions)


def default_registry(extra_modules: Iterable[str] = ()) -> JobRegistry:
    """The system's job types, plus those of each module in `extra_modules` (its `JOBS` list)."""
    from quickdapp.jobs.cleanup_audit_log import CLEANUP_AUDIT_LOG
    from quickdapp.jobs.deploy_multicall3 import DEPLOY_MULTICALL3
    from quickdapp.jobs.watch_chain import WATCH_CHAIN

    registry = JobRegistry([WATCH_CHAIN, DEPLOY_MULTICALL3, CLEANUP_AUDIT_LOG])
    for module_name in extra_modules:
        module = importlib.import_module(module_name)
        for definition in module.JOBS:
            registry.register(definition)
    return registry
