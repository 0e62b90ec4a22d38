"""Settings: read once from the environment (and a `.env` file) in each entry point, then passed down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from quickdapp.errors import SettingsError
from quickdapp.limits import DEFAULT_MAX_JOB_PAYLOAD_BYTES
from quickdapp.redaction import redact, scrub

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///.data/quickdapp.sqlite3"

# Never echoed in an error message; URL settings are echoed redacted (quickdapp.redaction).
SECRET_SETTINGS = {"SERVER_WALLET_PRIVATE_KEY", "ADMIN_PASSWORD", "ADMIN_TOKEN"}


class Settings(BaseSettings):
    """Every setting of the system; field names are the environment variables, lower-cased."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    # Each description says what the variable accepts: the start-up error quotes it.
    redis_url: Annotated[
        str, Field(description="a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379/0")
    ] = "redis://127.0.0.1:6379/0"
    worker_count: Annotated[
        Annotated[int, Field(ge=1)] | Literal["cpus"],
        Field(description="a positive integer, or 'cpus' for one process per CPU"),
    ] = "cpus"
    worker_queue_concurrency: Annotated[
        int, Field(ge=1, description="a positive integer (jobs at once per worker process)")
    ] = 5
    worker_queue_job_attempts: Annotated[
        int, Field(ge=1, description="a positive integer (tries per job, first run included)")
    ] = 3
    worker_queue_stalled_interval: Annotated[
        int, Field(ge=1, description="a positive integer of milliseconds")
    ] = 30_000
    worker_queue_lock_duration: Annotated[
        int, Field(ge=1, description="a positive integer of milliseconds")
    ] = 30_000
    worker_queue_max_stalled_count: Annotated[int, Field(ge=0, description="a non-negative integer")] = 1
    database_url: Annotated[
        str,
        Field(
            description="an SQLAlchemy async URL: postgresql+asyncpg://... or sqlite+aiosqlite:///..."
        ),
    ] = DEFAULT_DATABASE_URL
    log_level: Annotated[LogLevel, Field(description="one of DEBUG, INFO, WARNING, ERROR, CRITICAL")] = (
        "INFO"
    )
    job_modules: Annotated[
        str, Field(description="comma-separated importable module names, each with a JOBS list")
    ] = ""
    audit_log_retention_days: Annotated[
        int,
        Field(ge=0, description="a non-negative integer of days (0 turns the cleanup schedule off)"),
    ] = 30
    chain_rpc_url: Annotated[
        str | None,
        Field(
            description="an http://, https://, ws:// or wss:// JSON-RPC URL, e.g. http://127.0.0.1:8545"
        ),
    ] = None
    chain_id: Annotated[
        Annotated[int, Field(ge=1)] | None,
        Field(description="a positive integer (the chain's id, checked against the node)"),
    ] = None
    server_wallet_private_key: Annotated[
        str | None,
        Field(repr=False, description="a 32-byte hex private key, 0x followed by 64 hex digits"),
    ] = None
    factory_contract_address: Annotated[
        str | None, Field(description="a 20-byte hex address, 0x followed by 40 hex digits")
    ] = None
    chain_confirmations: Annotated[int, Field(ge=0, description="a non-negative integer of blocks")] = 0
    chain_max_block_range: Annotated[
        int, Field(ge=1, description="a positive integer of blocks (most read by one watchChain run)")
    ] = 500
    worker_shutdown_timeout: Annotated[
        float, Field(gt=0, description="a positive number of seconds")
    ] = 30.0
    host: Annotated[str, Field(description="an address to bind the web server to, e.g. 127.0.0.1")] = (
        "127.0.0.1"
    )
    port: Annotated[int, Field(ge=1, le=65535, description="a TCP port, 1..65535")] = 8000
    admin_username: Annotated[
        str, Field(min_length=1, description="a non-empty user name for the dashboard")
    ] = "admin"
    admin_password: Annotated[
        str, Field(repr=False, description="the dashboard password (required outside development)")
    ] = ""
    admin_token: Annotated[
        str, Field(repr=False, description="a bearer token for the dashboard API (optional)")
    ] = ""
    app_env: Annotated[
        Literal["development", "test", "production"],
        Field(description="one of development, test, production"),
    ] = "development"
    max_job_payload_bytes: Annotated[
        int,
        Field(
            ge=1_024,
            le=512 * 1_048_576,
            description="bytes of JSON a job's data may take, 1024..536870912 (default 1 MiB)",
        ),
    ] = DEFAULT_MAX_JOB_PAYLOAD_BYTES
    metrics_dir: Annotated[
        str, Field(description="a directory for the Prometheus multiprocess files of the workers")
    ] = ".data/metrics"

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if value.startswith(("postgresql://", "postgres://")):
            # Accept the plain form people copy from their provider; we always use asyncpg.
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("must be postgresql+asyncpg://... or sqlite+aiosqlite:///...")
        # Parsed here, so a malformed URL is a settings error and not a traceback at first use
        # (with the standard library: a worker process loads no SQLAlchemy).
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError as exc:
            if "Port" in str(exc):
                raise ValueError("has a port outside 1..65535") from None
            raise ValueError("is not a URL that can be parsed") from None
        if value.startswith("sqlite") and parts.netloc:
            raise ValueError("a SQLite URL names a file, not a host: sqlite+aiosqlite:///path/to/file")
        if port is not None and not 1 <= port <= 65535:
            raise ValueError("has a port outside 1..65535")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("job_modules")
    @classmethod
    def _module_names(cls, value: str) -> str:
        for name in filter(None, (part.strip() for part in value.split(","))):
            if not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(f"{name!r} is not a module name")
        return value

    @field_validator("chain_rpc_url", "server_wallet_private_key", "factory_contract_address")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        # `CHAIN_RPC_URL=` in a .env file means "no chain", not an invalid URL.
        return value.strip() or None if value is not None else None

    @field_validator("chain_rpc_url")
    @classmethod
    def _rpc_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("must start with http://, https://, ws:// or wss://")
        return value

    @field_validator("server_wallet_private_key")
    @classmethod
    def _private_key(cls, value: str | None) -> str | None:
        if value is not None and not _is_hex(value, 32):
            # Never echo a key back: the message says only what was wrong with it.
            raise ValueError("must be 0x followed by 64 hex digits")
        return value

    @field_validator("factory_contract_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not _is_hex(value, 20):
            raise ValueError("must be 0x followed by 40 hex digits")
        return value

    @property
    def chain_configured(self) -> bool:
        """True when a chain node is set (CHAIN_RPC_URL): the chain jobs can run."""
        return self.chain_rpc_url is not None

    @property
    def secret_values(self) -> list[str]:
        """The settings that hold secrets (URLs with credentials, keys, passwords): what logs,
        errors and stored text must never show (see quickdapp.logs and quickdapp.redaction)."""
        values = [
            self.redis_url,
            self.database_url,
            self.chain_rpc_url,
            self.server_wallet_private_key,
            self.admin_password,
            self.admin_token,
        ]
        return [value for value in values if value]

    @property
    def extra_job_modules(self) -> list[str]:
        """Modules whose `JOBS` lists are added to the built-in job types."""
        return [part.strip() for part in self.job_modules.split(",") if part.strip()]

    @property
    def worker_processes(self) -> int:
        """The number of worker processes, with `cpus` resolved on this machine."""
        if self.worker_count == "cpus":
            return os.cpu_count() or 1
        return self.worker_count


def _is_hex(value: str, size: int) -> bool:
    digits = value[2:] if value.startswith("0x") else ""
    return len(digits) == 2 * size and all(c in "0123456789abcdefABCDEF" for c in digits)


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Build the settings, turning a validation failure into one message per bad variable."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for error in exc.errors():
        name = str(error["loc"][0]).upper() if error["loc"] else "?"
        got = "(hidden)" if name in SECRET_SETTINGS else _shown(name, error.get("input"))
        field = Settings.model_fields.get(name.lower())
        accepts = field.description if field is not None and field.description else error["msg"]
        if error["type"] == "value_error" and field is not None:
            # Our validators say what exactly is wrong (without echoing the value).
            accepts += f" ({error['msg'].removeprefix('Value error, ')})"
        lines.append(f"  {name}={got!r}: expected {accepts}")
    # A union type reports one error per branch; say each variable once.
    return "\n".join(dict.fromkeys(lines))


def _shown(name: str, value: Any) -> Any:
    """A bad value as the error may quote it: URLs without their secrets."""
    if not isinstance(value, str):
        return value
    if name.endswith("_URL"):
        return redact(value, rpc=name == "CHAIN_RPC_URL")
    return scrub(value)
