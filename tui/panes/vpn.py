"""Pane 4: WireGuard — a row per interface, then a row per peer: state (online / stale / no
handshake / away / disabled), handshake age, transfer and rates. Enter opens the selected row's
detail; `a` opens the peer-add wizard; `x` removes, `d` disables and `e` enables the selected
peer (through the runner, confirmed), naming it by its public key.

Row ids carry the host (`IFACE@HOST/KEY`): one interface name on two hosts may share a peer key.
The state column comes second so that it is never the one cut at 80 columns."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from actions.base import Action, Target
from actions.vpn import PeerDisable, PeerEnable, PeerRemove
from lab.config import Config, VpnConfig
from lab.model import WgInterface, WgPeer
from tui.format import bytes_h
from tui.panes.base import Row, TablePane, ago
from tui.screens.detail import TextDetail, fields_text


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{bytes_h(value)}/s"


def vpn_config(config: Config, wg: WgInterface) -> VpnConfig | None:
    return next(
        (v for v in config.vpn if v.interface == wg.name and v.host == wg.host),
        None,
    )


def expected_offline(cfg: VpnConfig | None, peer: WgPeer) -> bool:
    return cfg is not None and bool({peer.name, peer.public_key} & set(cfg.expected_offline))


def peer_state(peer: WgPeer, cfg: VpnConfig | None = None) -> Text:
    """What the overview's finding says, in a word: stale and never-seen peers are findings
    unless the peer is expected to be offline ("away")."""
    if peer.disabled:
        return Text("disabled", "dim")
    if peer.online:
        return Text("online", "green")
    if expected_offline(cfg, peer):
        return Text("away", "dim")
    return Text("stale" if peer.latest_handshake else "no handshake", "yellow")


def peer_detail_text(wg: WgInterface, peer: WgPeer, cfg: VpnConfig | None, now: datetime) -> Text:
    text = Text()
    text.append(f"Peer {peer.name} on {wg.name}@{wg.host}\n\n", "bold")
    state = peer_state(peer, cfg)
    if state.plain == "away":
        why = "expected to be offline (expected_offline): no finding"
    elif state.plain in ("stale", "no handshake"):
        why = f"a finding (stale after {ago(now, now - _seconds(wg.stale_after))}); "
        why += "list it in expected_offline if it roams"
    else:
        why = ""
    handshake = (
        f"{ago(now, peer.latest_handshake)} ago ({peer.latest_handshake:%Y-%m-%d %H:%M:%S} UTC)"
        if peer.latest_handshake
        else "never completed"
    )
    fields = [
        ("State", state.plain + (f" — {why}" if why else "")),
        ("Public key", peer.public_key),
        ("Endpoint", peer.endpoint or "-"),
        ("Allowed IPs", ", ".join(peer.allowed_ips) or "-"),
        ("Handshake", handshake),
        ("Received", f"{bytes_h(peer.rx_bytes)} ({_rate(peer.rx_rate)})"),
        ("Sent", f"{bytes_h(peer.tx_bytes)} ({_rate(peer.tx_rate)})"),
        ("Keepalive", f"{peer.keepalive}s" if peer.keepalive else "off"),
        ("Preshared key", "yes" if peer.has_psk else "no"),
        ("Read", f"{ago(now, wg.at)} ago"),
    ]
    return fields_text(fields, text)


def interface_detail_text(wg: WgInterface, now: datetime) -> Text:
    text = Text()
    text.append(f"Interface {wg.name}@{wg.host}\n\n", "bold")
    fields = [
        ("State", f"up, {wg.online_count} of {len(wg.peers)} peers online" if wg.up else "DOWN"),
        ("Public key", wg.public_key or "-"),
        ("Listen port", str(wg.listen_port) if wg.listen_port else "-"),
        ("Addresses", ", ".join(wg.addresses) or "-"),
        ("MTU", str(wg.mtu) if wg.mtu else "-"),
        ("Stale after", ago(now, now - _seconds(wg.stale_after))),
        ("Source", wg.source),
        ("Read", f"{ago(now, wg.at)} ago"),
    ]
    return fields_text(fields, text)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


class PeerDetail(TextDetail):
    pass


class VpnPane(TablePane):
    NUMBER = 4
    PANE_ID = "vpn"
    TITLE = "VPN"
    DOMAINS = ("vpn",)
    CONFIG_SECTION = "[[vpn]]"
    # The name and the state tell rows apart: first, and whole at 80 columns; the rates may be
    # cut ((label, minimum width); the widths are shared by what the cells carry).
    COLUMNS = (
        ("Interface / peer", 12),
        ("State", 12),
        ("Handshake", 9),
        ("Rx", 8),
        ("Tx", 8),
        ("Rate ↓/↑", 10),
    )
    KEY_COLUMNS = ("Interface / peer", "State")
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
            cfg = vpn_config(self.ctx.config, wg)
            state = (
                Text(f"up {wg.online_count}/{len(wg.peers)}", "green")
                if wg.up
                else Text("DOWN", "bold red")
            )
            addr = ", ".join(wg.addresses) or "-"
            where = f"{wg.name}@{wg.host}"
            yield Row(
                id=where,
                cells=(
                    Text(where, "bold"),
                    state,
                    f":{wg.listen_port}" if wg.listen_port else "",
                    f"mtu {wg.mtu}" if wg.mtu else "",
                    wg.public_key[:8] + "…" if wg.public_key else "",
                    addr,
                ),
                data=(wg, None),
            )
            for peer in wg.peers:
                yield Row(
                    # the id health findings name (Finding.row), for Enter-to-jump
                    id=f"{where}/{peer.public_key}",
                    cells=(
                        f"  {peer.name}",
                        peer_state(peer, cfg),
                        ago(now, peer.latest_handshake) if peer.latest_handshake else "-",
                        bytes_h(peer.rx_bytes),
                        bytes_h(peer.tx_bytes),
                        f"{_rate(peer.rx_rate)} {_rate(peer.tx_rate)}",
                    ),
                    data=(wg, peer),
                )

    def open_detail(self, row: Row) -> None:
        wg, peer = row.data
        now = self.now()
        if peer is None:
            self.app.push_screen(PeerDetail(interface_detail_text(wg, now)))
        else:
            cfg = vpn_config(self.ctx.config, wg)
            self.app.push_screen(PeerDetail(peer_detail_text(wg, peer, cfg, now)))

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
        try:
            return family.create(self._target(wg), lab, {"peer": peer.public_key})
        except ValueError as exc:  # bad input is a message, never a crash of the console
            self.notify(str(exc), severity="warning", markup=False)
            return None

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
