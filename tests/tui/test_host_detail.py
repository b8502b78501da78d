"""Pilot: the host detail screen against the real systemd host over SSH — units and fail2ban
shown, the journal (j) and follow (f), a restart (r → confirm → runner) whose new MainPID the
followed journal shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, RichLog

from actions.runner import Runner
from lab.config import Config, ConsoleConfig, HostConfig, LocalConfig
from lab.hosts import HostReader
from lab.store import Store
from lab.wiring import Lab
from tests.testbed.systemd import SystemdHost
from tests.tui.waiting import wait_for
from tui.app import HlconApp
from tui.context import ConsoleContext
from tui.screens.confirm import ConfirmModal
from tui.screens.host_detail import HostDetailScreen

pytestmark = pytest.mark.testbed


def journal_text(app: HlconApp) -> str:
    log = app.screen.query_one("#journal", RichLog)
    return "\n".join("".join(seg.text for seg in strip) for strip in log.lines)


async def test_units_journal_follow_and_restart(systemd_host: SystemdHost, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(systemd_host.known_hosts_line + "\n")
    host = HostConfig(
        name="sysd",
        address=systemd_host.address,
        port=systemd_host.port,
        user=systemd_host.user,
        identity=systemd_host.identity,
        known_hosts=known,
        services=("demo", "broken"),
    )
    config = Config(
        console=ConsoleConfig(state_dir=tmp_path),
        local=LocalConfig(enabled=False),
        hosts=(host,),
    )
    lab = Lab(config)
    store = Store()
    reader = HostReader(
        "sysd", lab.executor("sysd"), interval=5, timeout=10, services=host.services
    )
    store.publish(reader.key, await reader.read())
    ctx = ConsoleContext(config=config, lab=lab, store=store, runner=Runner(lab))
    app = HlconApp(ctx, initial_pane=2)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("enter")
            assert isinstance(app.screen, HostDetailScreen)
            units = app.screen.query_one("#units", DataTable)
            names = [str(k.value) for k in units.rows]
            assert names[:2] == ["demo.service", "broken.service"]
            jails = app.screen.query_one("#jails", DataTable)
            assert "sshd" in [str(k.value) for k in jails.rows]
            units.focus()
            await pilot.press("j")
            await wait_for(pilot, lambda: "Started demo.service" in journal_text(app), "journal")
            await pilot.press("f")
            await pilot.pause(0.5)
            old_pid = systemd_host.exec("systemctl", "show", "-p", "MainPID", "--value", "demo")
            await pilot.press("R")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, HostDetailScreen), "back")

            def new_pid() -> str:
                pid = systemd_host.exec("systemctl", "show", "-p", "MainPID", "--value", "demo")
                return pid.strip() if pid.strip() not in ("0", old_pid.strip()) else ""

            await wait_for(pilot, lambda: bool(new_pid()), "a new MainPID")
            pid = new_pid()
            await wait_for(pilot, lambda: f"[{pid}]" in journal_text(app), f"sh[{pid}] followed")
            await pilot.press("escape")
    finally:
        await lab.close()
