"""Testbed component: a real Prometheus Alertmanager (Debian prometheus-alertmanager 0.25) on
loopback, single node (empty cluster address), with one receiver that has no integrations
(LAB-NOTES.md, "Prometheus family").

Fixture: `alertmanager` (session) → Alertmanager with `.url` and `.alerts(**labels)`: GET
/api/v2/alerts filtered by label equality. A resolved alert (endsAt in the past) leaves that
list, which is how a test sees a resolve.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.testbed import end_process, require_tools

BINARY = "prometheus-alertmanager"
CONFIG = """\
route:
  receiver: "null"
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: "null"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: exited {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready within {timeout}s: {log.read_text()[-2000:]}")


class Alertmanager:
    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.directory = directory
        self.url = f"http://127.0.0.1:{port}"

    def alerts(self, **labels: str) -> list[dict[str, Any]]:
        """Active alerts (GET /api/v2/alerts) whose labels equal `labels`."""
        query = urllib.parse.urlencode(
            [("filter", f'{k}="{v}"') for k, v in labels.items()] + [("silenced", "false")]
        )
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts?{query}", timeout=5) as r:
            data: list[dict[str, Any]] = json.loads(r.read())
        return data

    def wait_alerts(self, count: int, timeout: float = 30.0, **labels: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            seen = self.alerts(**labels)
            if len(seen) == count:
                return seen
            time.sleep(0.3)
        raise AssertionError(f"alertmanager: {len(seen)} alerts {labels}, wanted {count}: {seen}")


@contextlib.contextmanager
def alertmanager_server() -> Iterator[Alertmanager]:
    directory = Path(tempfile.mkdtemp(prefix="hlcon-am-"))
    (directory / "am.yml").write_text(CONFIG)
    port = free_port()
    log = directory / "am.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                BINARY,
                f"--config.file={directory / 'am.yml'}",
                f"--storage.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/-/ready", proc, log)
        yield Alertmanager(port, directory)
    finally:
        end_process(proc)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def alertmanager() -> Iterator[Alertmanager]:
    require_tools(BINARY)
    with alertmanager_server() as am:
        yield am
