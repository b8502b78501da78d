"""Testbed component: a real HTTP receiver for notifications (Apprise's JSON webhook, the ntfy
protocol, anything that POSTs). A small http.server on loopback in a thread: it records every
request (method, path, headers, body) and answers 200, or the status `fail_with` says — a real
server hlcon's deliveries cross the network to, not a mock of hlcon.

Fixture: `notify_receiver` (session) → Receiver; call `.reset()` at the start of a test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.fail_with: int | None = None  # answer this status (e.g. 503) instead of 200
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._lock:
                    receiver.requests.append(
                        Request(self.command, self.path, dict(self.headers.items()), body)
                    )
                    receiver._lock.notify_all()
                status = receiver.fail_with or 200
                payload = b'{"id":"x","event":"message"}' if status == 200 else b"unavailable"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_PUT = do_GET = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.fail_with = None

    def wait_for(
        self, predicate: Callable[[list[Request]], bool], timeout: float = 20.0
    ) -> list[Request]:
        """Wait until predicate(requests) holds; the requests so far (or fail, showing them)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"receiver: condition not met in {timeout:g}s; got "
                        f"{[(r.method, r.path, r.text[:200]) for r in self.requests]}"
                    )
                self._lock.wait(left)
            return list(self.requests)


@pytest.fixture(scope="session")
def notify_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
