"""The console shows a failing channel of a running `hlcon watch` as a fault on its overview:
a real watch whose webhook answers 503 writes its status; the console's poller (the readers of
tui/commands/console.py: the lab's plus watch.status's) reads it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lab.poller import Poller
from lab.store import Store
from tests.test_watch import Shifted, apprise_channels, make_config, receiver, write_cert
from tests.testbed.receiver import Receiver
from tui.app import HlconApp
from tui.context import ConsoleContext
from tui.panes import TablePane
from watch.service import Watch
from watch.status import readers as watch_readers

pytestmark = pytest.mark.testbed
__all__ = ["receiver"]  # the fixture, shared with tests/test_watch.py


async def test_the_overview_shows_a_failing_channel(tmp_path: Path, receiver: Receiver) -> None:
    write_cert(tmp_path / "soon.pem", days=3)
    receiver.fail_with = 503
    config = make_config(tmp_path, apprise_channels(receiver, hold="1s"))
    clock = Shifted()
    watch = Watch(config, clock=clock)
    await watch.start()
    store = Store()
    try:
        for _ in range(100):
            await watch.poller.poll_all()
            await watch.run_pass()
            clock.advance(2)  # past the hold
            if all(ch.status.failing for ch in watch.channels.values()):
                break
            await asyncio.sleep(0.1)
        poller = Poller(store, watch_readers(config))
        await poller.poll_all()  # while the watch runs: its pid is alive
        await poller.stop()
    finally:
        await watch.stop()
    app = HlconApp(ConsoleContext(config, None, store))
    async with app.run_test(size=(100, 30)):
        overview = app.pane(1)
        assert isinstance(overview, TablePane)
        messages = [r.data.message for r in overview.filtered_rows()]
    failing = [m for m in messages if m.startswith("notify channel failing")]
    assert len(failing) == 2 and any("hook (apprise)" in m and "503" in m for m in failing)
