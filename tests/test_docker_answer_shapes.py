"""A Docker API that answers the wrong JSON shape gets a Fault that says what was wrong with the
answer, never "AttributeError: 'str' object has no attribute 'get'" (issue 11 §8).

The engine here is a real HTTP server on a unix socket, spoken to by the real Docker SDK. It
answers with podman 4.3.1's captured answers (tests/data/containers), one of them altered; the
unaltered set is read cleanly first, so each fault comes from its alteration."""

from __future__ import annotations

import copy
import json
import re
import socketserver
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from lab.containers import ContainersReader, DockerEndpoint
from lab.poller import Poller, ReadError
from lab.store import Store

DATA = Path(__file__).resolve().parent / "data" / "containers"
Answers = dict[str, Any]


def captured(podman: bool) -> Answers:
    """path → JSON answer, as podman 4.3.1 gave them; without podman's Components in /version
    the reader takes it for Docker (compat list, per-container stats)."""

    def load(name: str) -> Any:
        return json.loads((DATA / f"podman-4.3.1-{name}.json").read_text())

    version = load("version")
    if not podman:
        version = {k: v for k, v in version.items() if k != "Components"}
    answers: Answers = {
        "/version": version,
        "/containers/json": load("list"),
        "/libpod/containers/json": load("libpod-list"),
        "/libpod/containers/stats": load("libpod-stats-1"),
    }
    for path in sorted(DATA.glob("podman-4.3.1-inspect-*.json")):
        inspect = json.loads(path.read_text())
        answers[f"/containers/{inspect['Id']}/json"] = inspect
        answers[f"/containers/{inspect['Id']}/stats"] = load("stats-busy-1")
    return answers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    answers: Answers = {}

    def do_GET(self) -> None:
        path = re.sub(r"^/v[0-9.]+", "", self.path.split("?", 1)[0])
        if path in self.answers:
            status, body = 200, json.dumps(self.answers[path]).encode()
        else:
            status, body = 404, json.dumps({"message": f"no such path {path}"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Callable[[Answers], str]]:
    """Start a fake-shaped engine (a real HTTP server) answering `answers`; returns its URL."""
    servers: list[_Server] = []

    def start(answers: Answers) -> str:
        handler = type("Handler", (_Handler,), {"answers": answers})
        sock = tmp_path / f"engine{len(servers)}.sock"
        server = _Server(str(sock), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"unix://{sock}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


async def read(url: str) -> ReadError:
    endpoint = DockerEndpoint("shapes", url, timeout=10)
    reader = ContainersReader(endpoint, use_events=False)
    store = Store()
    try:
        await Poller(store, [reader]).poll(reader)
    finally:
        await reader.close()
    entry = store.get(reader.key)
    assert entry is not None
    if entry.fault is None:
        raise AssertionError("read without a fault")
    return ReadError(entry.fault.what, entry.fault.why)


@pytest.mark.parametrize("podman", [True, False])
async def test_the_captured_answers_read_cleanly(
    engine: Callable[[Answers], str], podman: bool
) -> None:
    endpoint = DockerEndpoint("shapes", engine(captured(podman)), timeout=10)
    reader = ContainersReader(endpoint, use_events=False)
    try:
        state = await reader.read()
    finally:
        await reader.close()
    assert len(state.containers) == 7 and endpoint.is_podman is podman


WEB = "f69c75b4407b"


def _inspect_key(answers: Answers) -> str:
    return next(k for k in answers if k.startswith(f"/containers/{WEB}") and k.endswith("/json"))


def state_a_string(answers: Answers) -> None:
    answers[_inspect_key(answers)]["State"] = "running"


def inspect_a_string(answers: Answers) -> None:
    answers[_inspect_key(answers)] = "running"


def list_of_strings(answers: Answers) -> None:
    answers["/containers/json"] = [s["Id"] for s in answers["/containers/json"]]
    answers["/libpod/containers/json"] = [s["Id"] for s in answers["/libpod/containers/json"]]


def stats_entries_strings(answers: Answers) -> None:
    answers["/libpod/containers/stats"]["Stats"] = ["busy"]


def stats_an_object(answers: Answers) -> None:
    answers["/libpod/containers/stats"]["Stats"] = {"busy": 1}


def version_components_a_number(answers: Answers) -> None:
    answers["/version"]["Components"] = 4


@pytest.mark.parametrize(
    ("podman", "alter", "says"),
    [
        (False, state_a_string, f"container {WEB}: State: expected an object, got a string"),
        (True, state_a_string, f"container {WEB}: State: expected an object, got a string"),
        (False, inspect_a_string, f"inspect of {WEB}: expected an object, got a string"),
        (False, list_of_strings, "container list: entry 0 is a string, not an object"),
        (True, list_of_strings, "container list: entry 0 is a string, not an object"),
        (True, inspect_a_string, f"inspect of {WEB}: expected an object, got a string"),
        (True, stats_entries_strings, "libpod stats: Stats: entry 0 is a string, not an object"),
        (True, stats_an_object, "libpod stats: Stats is an object, not a list"),
        (True, version_components_a_number, "/version: Components is a number, not a list"),
    ],
)
async def test_a_wrong_shape_says_what_was_wrong(
    engine: Callable[[Answers], str],
    podman: bool,
    alter: Callable[[Answers], None],
    says: str,
) -> None:
    answers = copy.deepcopy(captured(podman))
    alter(answers)
    fault = await read(engine(answers))
    assert fault.what == "not a Docker API"
    assert says in str(fault), str(fault)
    assert "AttributeError" not in str(fault) and "TypeError" not in str(fault)


async def test_a_sub_second_console_timeout_still_reads(engine: Callable[[Answers], str]) -> None:
    """console.timeout = "500ms" is the SDK's timeout too (int() made it 0: every call failed)."""
    endpoint = DockerEndpoint("shapes", engine(captured(True)), timeout=0.5)
    reader = ContainersReader(endpoint, timeout=0.5, use_events=False)
    try:
        state = await reader.read()
    finally:
        await reader.close()
    assert len(state.containers) == 7
