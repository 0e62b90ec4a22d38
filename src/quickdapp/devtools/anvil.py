"""AnvilManager: reuse the chain node at an RPC URL, or start a local anvil there (dev and tests).

anvil comes from the npm package `@foundry-rs/anvil-linux-amd64` (pinned in package.json,
installed by `npm ci` into node_modules/). It stops only a node it started itself.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from quickdapp.config import Settings
from quickdapp.devtools.process import die_with_parent, stop_child, wait_until_answering

logger = logging.getLogger(__name__)

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
REPO_ROOT = Path(__file__).resolve().parents[3]
NPM_ANVIL = Path("node_modules/.bin/anvil")
INSTALL_HINT = "run 'npm ci' in the repository (package.json pins @foundry-rs/anvil-linux-amd64)"

# anvil's well-known development account #0 (from its default mnemonic): public knowledge, for
# the local dev chain only. Never use it on a real network.
ANVIL_DEV_ACCOUNT_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ANVIL_DEV_ACCOUNT_0_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_CHAIN_ID = 31337


class AnvilUnavailableError(RuntimeError):
    """No chain node answers at the URL and no anvil could be started there."""


def find_anvil(root: Path = REPO_ROOT) -> str | None:
    """anvil from the repository's node_modules, else on PATH, else None."""
    local = root / NPM_ANVIL
    if local.exists():
        return str(local)
    return shutil.which("anvil")


def rpc_chain_id(url: str, timeout: float = 1.0) -> int | None:
    """The chain id the node at `url` reports (eth_chainId), or None when nothing answers."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(json.loads(response.read())["result"], 16)
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError):
        return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AnvilManager:
    """Makes sure a chain node answers at `url`; `stop()` ends only what `start()` began."""

    def __init__(
        self,
        url: str,
        *,
        chain_id: int = ANVIL_CHAIN_ID,
        reuse: bool = True,
        block_time: float | None = None,
        log_file: Path | None = None,
        state_file: Path | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise AnvilUnavailableError(f"AnvilManager needs an http:// URL, got {url!r}")
        self.url = url
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 8545
        self.chain_id = chain_id
        self.reuse = reuse
        self.block_time = block_time
        self.log_file = log_file
        self.state_file = state_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def started_here(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def answers(self) -> bool:
        return rpc_chain_id(self.url) is not None

    def start(self, timeout: float = 20.0) -> None:
        """Reuse an answering node (if `reuse`), else start anvil on the URL's port."""
        if self.started_here:
            return
        if self.answers():
            if self.reuse:
                logger.info("using the chain node already answering at %s", self.url)
                return
            raise AnvilUnavailableError(
                f"port {self.port} on {self.host} is already taken by another node; stop it first"
            )
        if self.host not in LOCAL_HOSTS:
            raise AnvilUnavailableError(
                f"no chain node answers at {self.url} and it is not a local address, so no "
                "anvil can be started for it: check CHAIN_RPC_URL"
            )
        binary = find_anvil()
        if binary is None:
            raise AnvilUnavailableError(
                f"no chain node answers at {self.url} and no anvil found: {INSTALL_HINT}"
            )
        command = [
            binary,
            "--host",
            "127.0.0.1" if self.host == "localhost" else self.host,
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
        ]
        if self.block_time is not None:
            command += ["--block-time", str(self.block_time)]
        if self.state_file is not None:
            # Kept across restarts (dumped on exit and every 30 s), so the chain and the
            # stored watchChain cursor stay in step.
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            command += ["--state", str(self.state_file), "--state-interval", "30"]
        logger.info("starting %s on port %d (chain id %d)", binary, self.port, self.chain_id)
        if self.log_file:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
        output = self.log_file.open("ab") if self.log_file else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        finally:
            if self.log_file:
                output.close()  # type: ignore[union-attr]
        try:
            if wait_until_answering(self.process, self.answers, timeout):
                return
        except TimeoutError:
            self.stop()
            raise AnvilUnavailableError(
                f"anvil did not answer on port {self.port} in {timeout}s"
            ) from None
        code, self.process = self.process.returncode, None
        raise AnvilUnavailableError(f"anvil exited with code {code} at start-up")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the node this manager started (SIGTERM, then SIGKILL); never any other."""
        process, self.process = self.process, None
        stop_child(process, timeout)

    def __enter__(self) -> AnvilManager:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def dev_anvil(settings: Settings, data_dir: Path) -> Iterator[AnvilManager | None]:
    """For `quickdapp dev`: a local anvil at CHAIN_RPC_URL when it is a local http:// URL where
    nothing answers (stopped on exit); otherwise nothing is started."""
    url = settings.chain_rpc_url
    parts = urlsplit(url) if url else None
    if parts is None or parts.scheme != "http" or parts.hostname not in LOCAL_HOSTS:
        yield None
        return
    manager = AnvilManager(
        url,  # type: ignore[arg-type]
        chain_id=settings.chain_id or ANVIL_CHAIN_ID,
        reuse=True,
        log_file=data_dir / "anvil.log",
        state_file=data_dir / "state.json",
    )
    with manager:
        yield manager
