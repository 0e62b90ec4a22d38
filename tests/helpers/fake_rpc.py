"""A JSON-RPC node that answers badly, on a local port: for the paths where chain calls fail.

It answers eth_chainId properly (31337), every method in `http_500` with an HTTP 500 (aiohttp
then quotes the URL it called in its error), and everything else with a JSON-RPC error whose
message echoes the request's path and Authorization header, as a careless provider might.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAIN_ID = 31337


def _handler(http_500: frozenset[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                request: Any = json.loads(body)
            except ValueError:
                request = {}
            calls = request if isinstance(request, list) else [request]
            answers = [self._answer(call) for call in calls]
            if any(answer is None for answer in answers):
                self._send(500, f"internal error serving {self.path}".encode(), "text/plain")
                return
            payload = answers if isinstance(request, list) else answers[0]
            self._send(200, json.dumps(payload).encode(), "application/json")

        def _answer(self, call: dict[str, Any]) -> dict[str, Any] | None:
            method = call.get("method")
            if method == "eth_chainId":
                return {"jsonrpc": "2.0", "id": call.get("id"), "result": hex(CHAIN_ID)}
            if method in http_500:
                return None
            echoed = f"{method} refused for {self.path} ({self.headers.get('Authorization')})"
            return {"jsonrpc": "2.0", "id": call.get("id"), "error": {"code": -32000, "message": echoed}}

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def failing_node(http_500: frozenset[str] = frozenset({"eth_getCode"})) -> Iterator[int]:
    """Serve the failing node on 127.0.0.1; yields its port, stops it afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(http_500))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
