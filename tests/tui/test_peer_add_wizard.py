"""Pilot tests of the peer-add wizard against real wireguard-go (tests/testbed/wireguard.py):
the wizard adds a peer on the server namespace, the saved client file (0600) brings a device up
in a third namespace that pings the server across the tunnel, and the VPN pane then shows the
peer online. Cancel at every step changes nothing, and a cancelled plan is audited."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

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
from tui.screens.help import HelpScreen
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
        await wait_for(pilot, lambda: wizard.step == "address", "the address step")
        suggested = wizard.query_one("#address", Input).value
        assert suggested.startswith("10.77.0.") and suggested != "10.77.0.1"
        await pilot.press("enter")
        await wait_for(pilot, lambda: wizard.step == "plan", "the plan is shown")
        shown = str(wizard.query_one("#plan", Static).render())
        assert f"{suggested}/32" in shown
        assert wizard.prepared is not None
        private = str(wizard.prepared.plan.data.client_private_key)
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
        assert "saved" in str(wizard.query_one("#done-hint", Static).render())
        assert not app._notifications  # no toast over the code
        assert stat.S_IMODE(client_file.stat().st_mode) == 0o600
        assert f"PrivateKey = {private}" in client_file.read_text()
        # a device in the third namespace comes up from the saved file and pings the server
        wg_testbed.bring_up_client(f"{wg_testbed.prefix}w", client_file.read_text())
        assert ping(wg_testbed.ns_new, "10.77.0.1")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, type(app.screen_stack[0])), "closed")

        def online() -> bool:
            assert app.ctx.poller is not None
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
        # steps 2 and 3, the address and the plan: Esc on the plan goes back to the address,
        # Esc there cancels the plan (audited) and returns to the name
        wizard.query_one("#name", Input).value = ""
        await pilot.press(*"tablet", "enter")
        await wait_for(pilot, lambda: wizard.step == "address", "the address step")
        await pilot.press("enter")
        await wait_for(pilot, lambda: wizard.step == "plan", "the plan is shown")
        await pilot.press("escape")
        await wait_for(pilot, lambda: wizard.step == "address", "back at the address")
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
            assert app.ctx.poller is not None
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


async def open_wizard(app: HlconApp, pilot: Any, name: str) -> PeerAddScreen:
    await wait_for(pilot, lambda: "laptop" in pane_rows(app), "the pane shows the laptop")
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, PeerAddScreen), "wizard open")
    wizard = app.screen
    assert isinstance(wizard, PeerAddScreen)
    await pilot.press(*name, "enter")
    await wait_for(pilot, lambda: wizard.step == "address", "the address step")
    return wizard


async def test_wizard_address_step_refuses_what_is_not_free(
    wg_testbed: WgTestbed, tmp_path: Path
) -> None:
    """A taken address, the interface's own, one outside the subnet: refused on the address
    step (which stays); a free one is planned with that address."""
    app, runner, _ = console(wg_testbed, tmp_path)
    before = snapshot(wg_testbed)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(app, pilot, "addr-test")
        box = wizard.query_one("#address", Input)
        error = wizard.query_one("#error", Static)
        for wanted, why in (
            ("10.77.0.2", "taken by peer laptop"),
            ("10.77.0.1", "the interface's own address"),
            ("10.99.0.5", "outside the subnet 10.77.0.0/24"),
        ):
            box.value = wanted
            await pilot.press("enter")

            def refused(w: str = why) -> bool:
                return w in str(error.render())

            await wait_for(pilot, refused, f"{wanted} refused")
            assert wizard.step == "address"
        box.value = "10.77.0.150"
        await pilot.press("enter")
        await wait_for(pilot, lambda: wizard.step == "plan", "the plan is shown")
        assert "10.77.0.150/32" in str(wizard.query_one("#plan", Static).render())
        assert wizard.prepared is not None
        assert wizard.prepared.plan.data.address == "10.77.0.150/32"
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: wizard.step == "name", "back at the name")
    phases = [r.phase for r in runner.audit.records()]
    assert phases == [
        "planned",
        "cancelled",
        "refused",
        "refused",
        "refused",
        "planned",
        "cancelled",
    ]
    assert snapshot(wg_testbed) == before


async def test_qr_code_whole_or_the_size_it_needs(wg_testbed: WgTestbed, tmp_path: Path) -> None:
    """At 80×24 a client QR code cannot fit (it takes 35 rows): the screen says how large the
    terminal must be and offers to save; once the terminal is large enough the whole code is
    shown. The "saved" message is on the hint line, not a toast over the code."""
    app, _, _ = console(wg_testbed, tmp_path)
    client_file = tmp_path / "qr-size.conf"
    async with app.run_test(size=(80, 24)) as pilot:
        wizard = await open_wizard(app, pilot, "qr-size")
        await pilot.press("enter")
        await wait_for(pilot, lambda: wizard.step == "plan", "the plan is shown")
        await pilot.press("enter")
        await wait_for(pilot, lambda: wizard.step in ("done", "failed"), "the peer is applied")
        assert wizard.step == "done", str(wizard.query_one("#error", Static).render())
        qr = wizard.query_one("#qr", Static)
        shown = str(qr.render())
        assert "█" not in shown and "needs a terminal of at least" in shown
        assert "press s to save" in shown
        await pilot.press("s")
        wizard.query_one("#save-path", Input).value = str(client_file)
        await pilot.press("enter")
        await wait_for(pilot, lambda: wizard.saved is not None, "the client file is saved")
        assert "saved" in str(wizard.query_one("#done-hint", Static).render())
        assert not app._notifications
        await pilot.resize_terminal(100, 40)
        await wait_for(pilot, lambda: "█" in str(qr.render()), "the whole code once it fits")
        width, height = qr.region.width, qr.region.height
        assert qr.region.right <= 100 and qr.region.bottom <= 40 - 1, (width, height)
        lines = wizard.qr.splitlines()
        assert height >= len(lines) and width >= max(len(ln) for ln in lines)


async def test_one_interface_on_two_hosts_sharing_peers(
    wg_testbed: WgTestbed, sshd_hosts: Any, tmp_path: Path
) -> None:
    """Two [[vpn]] entries with one interface name on two hosts — here the same wireguard-go
    interface read locally and over SSH, so every peer key is shared: two sets of rows (row ids
    carry the host), not a DuplicateKey crash of the console."""
    import dataclasses

    from lab.config import HostConfig

    sshd = sshd_hosts.hosts[0]
    host = HostConfig(
        name="wgremote",
        address=sshd.address,
        port=sshd.port,
        user="root",
        identity=sshd_hosts.identity,
        known_hosts=sshd_hosts.known_hosts,
    )
    base = wg_testbed.config(tmp_path / "state")
    remote = wg_testbed.vpn_config(host="wgremote", netns=None)
    lab = Lab(dataclasses.replace(base, hosts=(host,), vpn=(*base.vpn, remote)))
    store = Store()
    ctx = ConsoleContext(
        config=lab.config,
        lab=lab,
        store=store,
        poller=Poller(store, vpn.readers(lab)),
        runner=Runner(lab),
        clock=lab.clock,
    )
    app = HlconApp(ctx, initial_pane=4)
    laptop = wg_testbed.keys["laptop"][1]
    want = {f"{wg_testbed.iface}@local/{laptop}", f"{wg_testbed.iface}@wgremote/{laptop}"}
    try:
        async with app.run_test(size=SIZE) as pilot:
            pane = app.query_one(VpnPane)

            def ids() -> set[str]:
                return {r.id for r in pane.filtered_rows()}

            await wait_for(pilot, lambda: want <= ids(), "both hosts' rows", seen=ids)
            assert app.is_running
    finally:
        await lab.close()


async def test_help_in_the_wizard_lists_its_keys_first(
    wg_testbed: WgTestbed, tmp_path: Path
) -> None:
    app, runner, _ = console(wg_testbed, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "laptop" in pane_rows(app), "the pane shows the laptop")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, PeerAddScreen), "wizard open")
        wizard = app.screen
        assert isinstance(wizard, PeerAddScreen)
        await pilot.press(*"tablet", "enter")
        await wait_for(pilot, lambda: wizard.step == "address", "the address step")
        await pilot.press("enter")
        await wait_for(pilot, lambda: wizard.step == "plan", "the plan is shown")
        await pilot.press("question_mark")  # no field has focus on the plan: the key is ours
        assert isinstance(app.screen, HelpScreen)
        assert app.screen.title_text == "Peer-add wizard"
        assert app.screen.entries[0][0] == "peer-add wizard", app.screen.entries
        assert ("peer-add wizard", "Back / cancel") in [(e[0], e[2]) for e in app.screen.entries]
        await pilot.press("escape", "escape", "escape")  # help, the plan (cancelled), the address
    assert [r.phase for r in runner.audit.records()] == ["planned", "cancelled"]
