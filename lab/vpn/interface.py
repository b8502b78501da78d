"""The reading (pure): a raw interface, the conf and the previous reading → WgInterface with
names, ages, rates and online/stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from lab.config import VpnConfig
from lab.model import WgInterface, WgPeer
from lab.vpn.conf import ConfPeer, WgQuickConf
from lab.vpn.parse import RawInterface


def build_interface(
    raw: RawInterface | None,
    cfg: VpnConfig,
    *,
    host: str,
    at: datetime,
    source: str,
    up: bool,
    addresses: tuple[str, ...] = (),
    mtu: int | None = None,
    conf: WgQuickConf | None = None,
    previous: WgInterface | None = None,
    remembered: Mapping[str, str] | None = None,
) -> WgInterface:
    """Names, ages, rates (against `previous`) and online/stale (cfg.stale_after)."""
    conf_peers = {p.public_key: p for p in conf.peers} if conf else {}
    prev = {p.public_key: p for p in previous.peers} if previous else {}
    dt = (at - previous.at).total_seconds() if previous else 0.0
    peers: list[WgPeer] = []
    live_keys: set[str] = set()
    for rp in raw.peers if raw else ():
        live_keys.add(rp.public_key)
        cp = conf_peers.get(rp.public_key)
        handshake = datetime.fromtimestamp(rp.handshake, UTC) if rp.handshake else None
        age = max(0.0, (at - handshake).total_seconds()) if handshake else None
        before = prev.get(rp.public_key)
        rx_rate = tx_rate = None
        if before is not None and dt > 0:
            rx_rate = max(0.0, (rp.rx_bytes - before.rx_bytes) / dt)
            tx_rate = max(0.0, (rp.tx_bytes - before.tx_bytes) / dt)
        peers.append(
            WgPeer(
                public_key=rp.public_key,
                name=_peer_name(rp.public_key, cfg, cp, remembered),
                endpoint=rp.endpoint,
                allowed_ips=rp.allowed_ips,
                latest_handshake=handshake,
                rx_bytes=rp.rx_bytes,
                tx_bytes=rp.tx_bytes,
                keepalive=rp.keepalive,
                has_psk=rp.has_psk,
                age=age,
                rx_rate=rx_rate,
                tx_rate=tx_rate,
                online=age is not None and age <= cfg.stale_after,
            )
        )
    for cp in conf_peers.values():
        if cp.disabled and cp.public_key not in live_keys:
            peers.append(
                WgPeer(
                    public_key=cp.public_key,
                    name=_peer_name(cp.public_key, cfg, cp),
                    endpoint=cp.endpoint,
                    allowed_ips=cp.allowed_ips,
                    latest_handshake=None,
                    rx_bytes=0,
                    tx_bytes=0,
                    keepalive=cp.keepalive,
                    has_psk=cp.has_psk,
                    disabled=True,
                )
            )
    return WgInterface(
        at=at,
        name=cfg.interface,
        host=host,
        public_key=raw.public_key if raw else None,
        listen_port=raw.listen_port if raw else (conf.listen_port if conf else None),
        up=up,
        source=source,
        addresses=addresses or (conf.addresses if conf else ()),
        mtu=mtu,
        peers=tuple(peers),
        stale_after=cfg.stale_after,
    )


def _peer_name(
    key: str, cfg: VpnConfig, cp: ConfPeer | None, remembered: Mapping[str, str] | None = None
) -> str:
    if key in cfg.peer_names:
        return cfg.peer_names[key]
    if cp is not None and cp.name:
        return cp.name
    if remembered and key in remembered:
        return remembered[key]
    return key[:8] + "…"
