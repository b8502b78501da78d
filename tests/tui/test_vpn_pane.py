"""The VPN pane on frozen readings (tests/tui/vpn_demo.py): the state column is whole at 80
columns, one interface name on two hosts sharing a peer key is two sets of rows (not a
DuplicateKey crash), Enter opens a peer's detail, and a never-seen or stale peer reads as a
finding unless it is expected to be offline."""

from __future__ import annotations

import dataclasses

from textual.widgets import DataTable, Static

from lab.config import Config, VpnConfig
from tests.tui.fixtures import make_context
from tests.tui.vpn_demo import KEYS, demo_interfaces, vpn_app
from tui.app import HlconApp
from tui.panes.base import cell_text
from tui.panes.vpn import PeerDetail, VpnPane


def _rows(app: HlconApp) -> dict[str, list[str]]:
    pane = app.query_one(VpnPane)
    return {r.id: [cell_text(c) for c in r.cells] for r in pane.filtered_rows()}


async def test_state_column_is_whole_at_80_columns() -> None:
    app = vpn_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(VpnPane).query_one("#table", DataTable)
        labels = [str(c.label) for c in table.ordered_columns]
        state = labels.index("State")
        pad = 2 * table.cell_padding
        right = sum(c.get_render_width(table) for c in table.ordered_columns[: state + 1])
        assert right <= table.scrollable_content_region.width, labels
        width = table.ordered_columns[state].get_render_width(table) - pad
        states = [cells[state] for cells in _rows(app).values()]
        assert "no handshake" in states or "stale" in states
        assert all(len(s) <= width for s in states), (states, width)


async def test_one_interface_name_on_two_hosts_sharing_a_peer() -> None:
    wg0, _ = demo_interfaces()
    twin = dataclasses.replace(wg0, host="skylab")
    config = Config(
        vpn=(VpnConfig(interface="wg0", host="fufuwuqi"), VpnConfig(interface="wg0", host="skylab"))
    )
    readings = [(("vpn", "wg0@fufuwuqi"), wg0), (("vpn", "wg0@skylab"), twin)]
    app = HlconApp(make_context(config=config, readings=readings), initial_pane=4)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        ids = set(_rows(app))
        assert {f"wg0@fufuwuqi/{KEYS['laptop']}", f"wg0@skylab/{KEYS['laptop']}"} <= ids


async def test_enter_on_a_peer_opens_its_detail() -> None:
    app = vpn_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = app.query_one(VpnPane)
        assert pane.select_row(f"wg0@fufuwuqi/{KEYS['phone']}")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PeerDetail)
        shown = str(app.screen.query_one(Static).render())
        assert KEYS["phone"] in shown and "phone" in shown and "stale" in shown
        assert "expected_offline" in shown  # how to silence a roaming peer
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, PeerDetail)


async def test_never_seen_peer_reads_no_handshake_unless_expected_offline() -> None:
    app = vpn_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        rows = _rows(app)
        state = 1
        assert rows[f"wg0@fufuwuqi/{KEYS['tablet']}"][state] == "away"  # expected_offline
        assert rows[f"wg0@fufuwuqi/{KEYS['printer']}"][state] == "no handshake"
        assert rows[f"wg0@fufuwuqi/{KEYS['phone']}"][state] == "stale"
