"""AnvilManager: reuse the chain node at an RPC URL, or start a local anvil there (dev and tests).

anvil comes from the npm package `@foundry-rs/anvil-linux-amd64` (pinned in package.json,
installed by `npm ci` into node_modules/). It stops only a node it started itself.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit, urlunsplit

from quickdapp.config import Settings
from quickdapp.devtools.service import LOCAL_HOSTS, LocalService, log_output
from quickdapp.errors import ServiceUnavailableError
from quickdapp.redaction import redact

REPO_ROOT = Path(__file__).resolve().parents[3]
NPM_ANVIL = Path("node_modules/.bin/anvil")
INSTALL_HINT = "run 'npm ci' in the repository (package.json pins @foundry-rs/anvil-linux-amd64)"

# anvil's well-known development account #0 (from its default mnemonic): public knowledge, for
# the local dev chain only. Never use it on a real network.
ANVIL_DEV_ACCOUNT_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ANVIL_DEV_ACCOUNT_0_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_CHAIN_ID = 31337


class AnvilUnavailableError(ServiceUnavailableError):
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
    headers = {"Content-Type": "application/json"}
    parts = urlsplit(url)
    if parts.username is not None:
        # urllib reads user:pass@ as part of the host name: send it as Basic auth instead.
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    request = urllib.request.Request(url, body, headers)
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


class AnvilManager(LocalService):
    """Makes sure a chain node answers at `url` (anvil, when one must be started)."""

    kind = "chain node"
    setting = "CHAIN_RPC_URL"
    default_port = 8545
    error = AnvilUnavailableError

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
        if urlsplit(url).scheme not in ("http", "https"):
            raise AnvilUnavailableError(f"AnvilManager needs an http:// URL, got {redact(url)!r}")
        super().__init__(url, reuse=reuse)
        self.chain_id = chain_id
        self.block_time = block_time
        self.log_file = log_file
        self.state_file = state_file

    def answers(self) -> bool:
        return rpc_chain_id(self.url) is not None

    def find_binary(self) -> str | None:
        return find_anvil()

    def install_hint(self) -> str:
        return INSTALL_HINT

    def command(self, binary: str) -> list[str]:
        command = [binary, "--host", self.bind_host, "--port", str(self.port)]
        command += ["--chain-id", str(self.chain_id)]
        if self.block_time is not None:
            command += ["--block-time", str(self.block_time)]
        if self.state_file is not None:
            # Kept across restarts (dumped on exit and every 30 s), so the chain and the
            # stored watchChain cursor stay in step.
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            command += ["--state", str(self.state_file), "--state-interval", "30"]
        return command

    def output(self) -> IO[bytes] | int:
        return log_output(self.log_file) if self.log_file else subprocess.DEVNULL

    def start(self, timeout: float = 20.0) -> None:
        """Reuse an answering node (if `reuse`), else start anvil on the URL's port."""
        super().start(timeout)


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
