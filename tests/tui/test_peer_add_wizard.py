"""Pilot tests of the peer-add wizard against real wireguard-go (tests/testbed/wireguard.py):
the wizard adds a peer on the server namespace, the saved client file (0600) brings a device up
in a third namespace that pings the server across the tunnel, and the VPN pane then shows the
peer online. Cancel at every step changes nothing, and a cancelled plan is audited."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from actions.runner import Runner
from lab import vpn
from lab.poller import Poller
from lab.store import Store
from lab.wiring import Lab
from tests.testbed.wireguard import WgTestbed, ping, sh
from tests.tui.fixtures import frozen_now
from tests.tui.waiting import wait_for
from tui.app import HlconApp
from tui.context import ConsoleContext
from tui.panes.base import cell_text
from tui.panes.vpn import VpnPane
from tui.screens.peer_add import PeerAddScreen

pytestmark = pytest.mark.testbed
SIZE = (100, 40)
STATE = 1  # the pane's state column


def console(bed: WgTestbed, tmp_path: Path) -> tuple[HlconApp, Runner, Lab]:
    lab = Lab(bed.config(tmp_path / "state"))
    runner = Runner(lab)
    store = Store()
    ctx = ConsoleContext(
        config=lab.config,
        lab=lab,
        store=store,
        poller=Poller(store, vpn.readers(lab)),
        runner=runner,
        clock=lab.clock,
    )
    return HlconApp(ctx, initial_pane=4), runner, lab


def snapshot(bed: WgTestbed) -> tuple[str, bytes]:
    peers = sorted(
        "\t".join((f[0], f[3]))
        for f in (ln.split("\t") for ln in sh("wg", "show", bed.iface, "dump").splitlines()[1:])
    )
    return "\n".join(peers), bed.conf.read_bytes()


def pane_rows(app: HlconApp) -> dict[str, list[str]]:
    pane = app.query_one(VpnPane)
    return {
        cell_text(r.cells[0]).strip(): [cell_text(c) for c in r.cells] for r in pane.filtered_rows()
    }


async def test_wizard_adds_a_peer_that_comes_online(wg_testbed: WgTestbed, tmp_path: Path) -> None:
    app, runner, _ = console(wg_testbed, tmp_path)
    client_file = tmp_path / "wizard-phone.conf"
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "laptop" in pane_rows(app), "the pane shows the laptop")
        assert pane_rows(app)["phone"][STATE] == "no handshake"  # always_on, never seen
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, PeerAddScreen), "wizard open")
        wizard = app.screen
        assert isinstance(wizard, PeerAddScreen)
        await pilot.press(*"wizard-phone", "enter")
        await wait_for(pilot, lambda: wizard.step == "plan", "the plan is shown")
        shown = str(wizard.query_one("#plan", Static).render())
        private = str(wizard.prepared.plan.data["client_private_key"])
        assert "wg set" in shown and "+# wizard-phone" in shown
        assert private not in shown  # held back until the peer exists
        await pilot.press("enter")
        await wait_for(pilot, lambda: wizard.step in ("done", "failed"), "the peer is applied")
        assert wizard.step == "done", str(wizard.query_one("#error", Static).render())
        assert "█" in str(wizard.query_one("#qr", Static).render())
        await pilot.press("s")
        box = wizard.query_one("#save-path", Input)
        box.value = str(client_file)
        await pilot.press("enter")
        await wait_for(pilot, lambda: wizard.saved is not None, "the client file is saved")
        assert stat.S_IMODE(client_file.stat().st_mode) == 0o600
        assert f"PrivateKey = {private}" in client_file.read_text()
        # a device in the third namespace comes up from the saved file and pings the server
        wg_testbed.bring_up_client(f"{wg_testbed.prefix}w", client_file.read_text())
        assert ping(wg_testbed.ns_new, "10.77.0.1")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, type(app.screen_stack[0])), "closed")

        def online() -> bool:
            app.ctx.poller.refresh()
            row = pane_rows(app).get("wizard-phone")
            return row is not None and row[STATE] == "online"

        await wait_for(pilot, online, "the pane shows wizard-phone online")
    assert private not in runner.audit.path.read_text()
    assert [r.phase for r in runner.audit.records()] == ["planned", "intent", "outcome"]


async def test_wizard_cancel_at_every_step_changes_nothing(
    wg_testbed: WgTestbed, tmp_path: Path
) -> None:
    app, runner, _ = console(wg_testbed, tmp_path)
    app.ctx.clock = frozen_now()  # the handshakes are real: stop the clock at the real time
    before = snapshot(wg_testbed)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "laptop" in pane_rows(app), "the pane shows the laptop")
        # step 1, the name: Esc leaves; nothing was planned, so nothing is audited
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, PeerAddScreen), "wizard open")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PeerAddScreen), "wizard left")
        assert list(runner.audit.records()) == []
        # a bad name is refused on the spot, and a duplicate by the plan (audited: refused)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, PeerAddScreen), "wizard open")
        wizard = app.screen
        assert isinstance(wizard, PeerAddScreen)
        await pilot.press(*"laptop", "enter")
        error = wizard.query_one("#error", Static)
        await wait_for(pilot, lambda: "already exists" in str(error.render()), "duplicate refused")
        assert wizard.step == "name"
        # step 2, the plan: Esc cancels it (audited) and returns to the name
        wizard.query_one("#name", Input).value = ""
        await pilot.press(*"tablet", "enter")
        await wait_for(pilot, lambda: wizard.step == "plan", "the plan is shown")
        await pilot.press("escape")
        await wait_for(pilot, lambda: wizard.step == "name", "back at the name")
        assert [r.phase for r in runner.audit.records()] == ["refused", "planned", "cancelled"]
        assert snapshot(wg_testbed) == before
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PeerAddScreen), "wizard left")
    assert snapshot(wg_testbed) == before


async def test_pane_disables_enables_and_removes_a_peer_by_its_key(
    wg_testbed: WgTestbed, tmp_path: Path
) -> None:
    """`d`, `e` and `x` on a peer row name the peer by its 44-character public key: each is
    planned, confirmed and done against the real interface (it crashed the console before)."""
    from actions.vpn import PeerAdd
    from tests.test_vpn import live_peers, target
    from tui.screens.confirm import ConfirmModal

    app, runner, lab = console(wg_testbed, tmp_path)
    added = await runner.run(
        await runner.prepare(PeerAdd.create(target(wg_testbed), lab, {"name": "pane-key"})), ""
    )
    assert added.ok, added.outcome.message
    key = str(added.outcome.details["peer"])
    row_id = f"{wg_testbed.iface}@local/{key}"
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(VpnPane)

        def state() -> str | None:
            app.ctx.poller.refresh()
            row = pane_rows(app).get("pane-key")
            return row[STATE] if row is not None else None

        async def press_on_row(keys: str, answer: str) -> None:
            await wait_for(pilot, lambda: pane.select_row(row_id), "the peer's row", seen=state)
            await pilot.press(keys)
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirm")
            await pilot.press(*answer, "enter")

        await wait_for(pilot, lambda: state() == "no handshake", "the new peer", seen=state)
        await press_on_row("d", "pane-key")
        await wait_for(pilot, lambda: state() == "disabled", "disabled", seen=state)
        assert key not in {k for k, _ in live_peers(wg_testbed)}
        await press_on_row("e", "")
        await wait_for(pilot, lambda: state() == "no handshake", "enabled again", seen=state)
        assert key in {k for k, _ in live_peers(wg_testbed)}
        await press_on_row("x", "pane-key")
        await wait_for(pilot, lambda: state() is None, "removed", seen=state)
        assert key not in {k for k, _ in live_peers(wg_testbed)}
    outcomes = [r for r in runner.audit.records() if r.phase == "outcome"]
    assert len(outcomes) == 4 and all((r.result or {}).get("ok") for r in outcomes), outcomes
