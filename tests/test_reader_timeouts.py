"""The configured console.timeout holds for every reader (issue 11 §8): a restic that answers
`version` and then hangs (a rest: repository whose server accepts and never answers, a real
restic talking to a real socket) is cut at console.timeout, not at a 60 s floor."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.config import BackupConfig, Config, ConsoleConfig
from lab.poller import Poller
from lab.secrets import SecretRef
from lab.store import Store
from lab.wiring import Lab
from tests.testbed import require_tools

pytestmark = pytest.mark.testbed


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port whose listener completes TCP handshakes (the backlog) and never answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def hung_lab(port: int, state_dir: Path) -> Lab:
    return Lab(
        Config(
            source="<test>",
            console=ConsoleConfig(timeout=1.5, state_dir=state_dir),
            backups=(
                BackupConfig(
                    name="hung",
                    repository=f"rest:http://127.0.0.1:{port}/",
                    password=SecretRef("env", "HLCON_TEST_HUNG_PW"),
                ),
            ),
        )
    )


async def test_a_hanging_restic_is_cut_at_console_timeout(
    silent_server: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tools("restic")
    monkeypatch.setenv("HLCON_TEST_HUNG_PW", "hung-pw-1e2d")
    lab = hung_lab(silent_server, tmp_path)
    (reader,) = [r for r in lab.readers() if r.key == ("backup", "hung")]
    assert reader.timeout == 1.5  # was max(console.timeout, 60 s)
    store = Store()
    poller = Poller(store, [reader])
    # The guard only keeps a regression from hanging the suite; the fault is what is checked.
    async with asyncio.timeout(45):
        assert await poller.poll(reader) is False
    entry = store.get(("backup", "hung"))
    assert entry is not None and entry.fault is not None
    assert entry.fault.what == "timed out"
    await reader.close()


def test_every_reader_uses_console_timeout(silent_server: int, tmp_path: Path) -> None:
    lab = hung_lab(silent_server, tmp_path)
    timeouts = {r.key: r.timeout for r in lab.readers()}
    assert timeouts and set(timeouts.values()) == {1.5}, timeouts
