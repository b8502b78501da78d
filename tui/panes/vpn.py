"""Pane 4: WireGuard — a row per interface, then a row per peer: handshake age, transfer and
rates, online / stale / disabled. `a` opens the peer-add wizard; `x` removes, `d` disables and
`e` enables the selected peer (through the runner, confirmed)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from actions.base import Action, Target
from actions.vpn import PeerDisable, PeerEnable, PeerRemove
from lab.config import Config
from lab.model import WgInterface, WgPeer
from tui.format import bytes_h
from tui.panes.base import Row, TablePane, ago


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{bytes_h(value)}/s"


def peer_state(peer: WgPeer) -> Text:
    if peer.disabled:
        return Text("disabled", "dim")
    if peer.online:
        return Text("online", "green")
    return Text("stale" if peer.latest_handshake else "never", "yellow")


class VpnPane(TablePane):
    NUMBER = 4
    PANE_ID = "vpn"
    TITLE = "VPN"
    DOMAINS = ("vpn",)
    CONFIG_SECTION = "[[vpn]]"
    COLUMNS = (
        ("Interface / peer", 22),
        ("Handshake", 9),
        ("Rx", 9),
        ("Tx", 9),
        ("Rate ↓/↑", 18),
        ("State", 8),
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("a", "add_peer", "Add peer")]
    ACTION_KEYS = {"x": "remove peer", "d": "disable peer", "e": "enable peer"}

    @classmethod
    def configured(cls, config: Config) -> bool:
        return bool(config.vpn) or config.local.wireguard

    def empty_message(self) -> str:
        return "no WireGuard interfaces (add a [[vpn]] section, or bring one up here)"

    def rows(self) -> Iterable[Row]:
        now = self.now()
        for entry in sorted(self.entries(), key=lambda e: e.key):
            wg = entry.reading
            if not isinstance(wg, WgInterface):
                continue
            state = (
                Text(f"up {wg.online_count}/{len(wg.peers)}", "green")
                if wg.up
                else Text("DOWN", "bold red")
            )
            addr = ", ".join(wg.addresses) or "-"
            yield Row(
                id=f"{wg.name}@{wg.host}",
                cells=(
                    Text(f"{wg.name}@{wg.host}", "bold"),
                    f":{wg.listen_port}" if wg.listen_port else "",
                    f"mtu {wg.mtu}" if wg.mtu else "",
                    wg.public_key[:8] + "…" if wg.public_key else "",
                    addr,
                    state,
                ),
                data=(wg, None),
            )
            for peer in wg.peers:
                yield Row(
                    # the id health findings name (Finding.row), for Enter-to-jump
                    id=f"{wg.name}/{peer.public_key}",
                    cells=(
                        f"  {peer.name}",
                        ago(now, peer.latest_handshake) if peer.latest_handshake else "never",
                        bytes_h(peer.rx_bytes),
                        bytes_h(peer.tx_bytes),
                        f"{_rate(peer.rx_rate)} {_rate(peer.tx_rate)}",
                        peer_state(peer),
                    ),
                    data=(wg, peer),
                )

    def _target(self, wg: WgInterface) -> Target:
        return Target("vpn", wg.name, wg.host)

    def make_action(self, verb: str, row: Row) -> Action | None:
        wg, peer = row.data
        lab = self.ctx.lab
        if peer is None or lab is None:
            return None
        families: dict[str, type[PeerRemove | PeerDisable | PeerEnable]] = {
            "remove peer": PeerRemove,
            "disable peer": PeerDisable,
            "enable peer": PeerEnable,
        }
        family = families.get(verb)
        if family is None:
            return None
        # by public key: names are for humans and need not be unique outside the conf
        return family.create(self._target(wg), lab, {"peer": peer.public_key})

    def action_add_peer(self) -> None:
        from tui.screens.peer_add import PeerAddScreen

        row = self.selected_row()
        interfaces = [
            e.reading for e in sorted(self.entries(), key=lambda e: e.key)
            if isinstance(e.reading, WgInterface)
        ]  # fmt: skip
        wg = row.data[0] if row is not None else (interfaces[0] if interfaces else None)
        if wg is None or self.ctx.lab is None:
            self.notify("no WireGuard interface to add a peer to", severity="warning")
            return
        self.app.push_screen(PeerAddScreen(self._target(wg)))
