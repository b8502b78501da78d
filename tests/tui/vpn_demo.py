"""Frozen WireGuard readings for the VPN pane's snapshot and screenshot (catalog.py).

One hub with five peers — a laptop online and moving data, a phone gone stale, a NAS whose
peer block is disabled, a tablet that roams (expected_offline: "away", no finding) and a printer
that never completed a handshake — and a second interface that is down.
"""

from __future__ import annotations

from datetime import timedelta

from lab.config import Config, VpnConfig
from lab.model import WgInterface, WgPeer
from tests.tui.fixtures import NOW, make_context
from tui.app import HlconApp

KEYS = {
    "hub": "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=",
    "laptop": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
    "phone": "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=",
    "nas": "gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA=",
    "tablet": "hB1gq1+Vb8z7WfQm2hRvOQ0zP0yfR2u1hZ9T7Yd3m3o=",
    "printer": "AJ3p2y4C0Vwq8w6kPZc4z2mQy8bqI2H1pYd2k2HcT0E=",
}


def demo_interfaces() -> list[WgInterface]:
    at = NOW - timedelta(seconds=3)
    wg0 = WgInterface(
        at=at,
        name="wg0",
        host="fufuwuqi",
        public_key=KEYS["hub"],
        listen_port=51820,
        up=True,
        source="wg",
        addresses=("10.100.0.1/24",),
        mtu=1420,
        peers=(
            WgPeer(KEYS["laptop"], "laptop", "198.51.100.7:40211", ("10.100.0.2/32",),
                   NOW - timedelta(seconds=41), 812_345_678, 95_112_004, keepalive=25,
                   age=41, rx_rate=1_250_000, tx_rate=88_000, online=True),
            WgPeer(KEYS["phone"], "phone", "203.0.113.44:5012", ("10.100.0.3/32",),
                   NOW - timedelta(hours=5, minutes=12), 44_000_512, 3_120_448,
                   age=18720, rx_rate=0, tx_rate=0, online=False),
            WgPeer(KEYS["nas"], "nas", None, ("10.100.0.4/32",), None, 0, 0, disabled=True),
            WgPeer(KEYS["tablet"], "tablet", "192.0.2.80:1444", ("10.100.0.5/32",),
                   NOW - timedelta(days=2), 5_120_000, 880_112, age=172800, online=False),
            WgPeer(KEYS["printer"], "printer", None, ("10.100.0.6/32",), None, 0, 0),
        ),
    )  # fmt: skip
    wg1 = WgInterface(
        at=at, name="wg1", host="skylab", public_key=None, listen_port=None, up=False,
        source="wg",
    )  # fmt: skip
    return [wg0, wg1]


def vpn_app() -> HlconApp:
    config = Config(
        vpn=(
            VpnConfig(
                interface="wg0",
                host="fufuwuqi",
                always_on=("laptop",),
                expected_offline=("tablet",),
            ),
            VpnConfig(interface="wg1", host="skylab"),
        )
    )
    readings = [(("vpn", f"{wg.name}@{wg.host}"), wg) for wg in demo_interfaces()]
    return HlconApp(make_context(config=config, readings=readings), initial_pane=4)
