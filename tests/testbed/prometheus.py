"""Testbed component: a real Prometheus (Debian prometheus 2.42) on loopback, scraping given
targets every second (LAB-NOTES.md, "Prometheus family").

`prometheus_server(targets)` is a context manager (each test scrapes its own `hlcon watch`);
the `prometheus_tool` fixture only checks that the binary exists. `Prometheus.query(promql)`
runs an instant query (GET /api/v1/query) and returns its result vector.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.testbed import end_process, require_tools
from tests.testbed.alertmanager import free_port, wait_http

BINARY = "prometheus"


class Prometheus:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def query(self, promql: str) -> list[dict[str, Any]]:
        q = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{q}", timeout=5) as r:
            doc = json.loads(r.read())
        assert doc["status"] == "success", doc
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result

    def wait_query(self, promql: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The query's result once it is not empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(promql)
            if result:
                return result
            time.sleep(0.5)
        targets = urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=5).read()
        raise AssertionError(f"prometheus: {promql} stayed empty for {timeout:g}s; {targets!r}")


@contextlib.contextmanager
def prometheus_server(targets: Sequence[str]) -> Iterator[Prometheus]:
    directory = Path(tempfile.mkdtemp(prefix="hlcon-prom-"))
    config = directory / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: hlcon\n    static_configs:\n"
        f"      - targets: {json.dumps(list(targets))}\n"
    )
    port = free_port()
    log = directory / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                BINARY,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/-/ready", proc, log)
        yield Prometheus(port)
    finally:
        end_process(proc, grace=15)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def prometheus_tool() -> None:
    require_tools(BINARY)
