"""Pure parsers of what WireGuard tools answer: `wg show dump`, UAPI `get=1`, netlink messages,
`ip -j addr`. All give one raw shape (RawInterface); private and preshared keys are dropped.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_NO_KEY = "0" * 64


@dataclass(frozen=True)
class RawPeer:
    """A peer as the source reports it; `handshake` is the epoch second (0 = never)."""

    public_key: str
    endpoint: str | None
    allowed_ips: tuple[str, ...]
    handshake: int
    rx_bytes: int
    tx_bytes: int
    keepalive: int | None = None
    has_psk: bool = False


@dataclass(frozen=True)
class RawInterface:
    name: str
    public_key: str | None
    listen_port: int | None
    peers: tuple[RawPeer, ...] = ()


def valid_key(text: str) -> bool:
    """A WireGuard key: 32 bytes, base64 (44 characters ending in '=')."""
    if len(text) != 44 or not text.endswith("="):
        return False
    try:
        return len(base64.b64decode(text, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def public_from_private(private: bytes) -> str:
    """The base64 public key of a raw 32-byte X25519 private key."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    try:
        key = X25519PrivateKey.from_private_bytes(private)
    except ValueError:
        raise ValueError("private key: not 32 bytes") from None
    return base64.b64encode(key.public_key().public_bytes_raw()).decode()


def _int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what}: not a number: {text[:40]!r}") from None
    if value < 0:
        raise ValueError(f"{what}: negative: {value}")
    return value


def _key(text: str, what: str) -> str:
    if not valid_key(text):
        raise ValueError(f"{what}: not a WireGuard key: {text[:50]!r}")
    return text


def parse_wg_dump(text: str, name: str = "") -> dict[str, RawInterface]:
    """`wg show all dump`, or `wg show IFACE dump` (no first column; pass its `name`).

    Interface lines: [iface] private-key public-key listen-port fwmark
    Peer lines:      [iface] public-key preshared-key endpoint allowed-ips handshake rx tx keepalive
    """
    order: list[str] = []
    heads: dict[str, tuple[str | None, int | None]] = {}
    peers: dict[str, list[RawPeer]] = {}
    single: str | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        # `wg show IFACE dump` has no interface column: 4 fields head, 8 fields peer.
        if len(fields) in (4, 8):
            single = name
            fields = [name, *fields]
        where = f"wg dump line {lineno}"
        if len(fields) == 5:
            iface = fields[0]
            if (not iface and single is None) or iface in heads:
                raise ValueError(f"{where}: unexpected interface line")
            port = _int(fields[3], f"{where}: listen port") if fields[3] != "0" else None
            pub = None if fields[2] == "(none)" else _key(fields[2], f"{where}: public key")
            heads[iface] = (pub, port)
            order.append(iface)
            peers[iface] = []
        elif len(fields) == 9:
            iface = fields[0]
            if iface not in heads:
                raise ValueError(f"{where}: peer line before its interface line")
            keepalive = None if fields[8] == "off" else _int(fields[8], f"{where}: keepalive")
            peers[iface].append(
                RawPeer(
                    public_key=_key(fields[1], f"{where}: peer key"),
                    endpoint=None if fields[3] == "(none)" else _endpoint(fields[3], where),
                    allowed_ips=_allowed(fields[4], where),
                    handshake=_int(fields[5], f"{where}: handshake"),
                    rx_bytes=_int(fields[6], f"{where}: rx bytes"),
                    tx_bytes=_int(fields[7], f"{where}: tx bytes"),
                    keepalive=keepalive or None,
                    has_psk=fields[2] != "(none)",
                )
            )
        else:
            raise ValueError(f"{where}: expected 5 or 9 tab-separated fields, got {len(fields)}")
    return {n: RawInterface(n, heads[n][0], heads[n][1], tuple(peers[n])) for n in order}


def _endpoint(text: str, where: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{where}: not an endpoint: {text[:60]!r}")
    return text


def _allowed(text: str, where: str) -> tuple[str, ...]:
    if text in ("(none)", ""):
        return ()
    out = []
    for part in text.split(","):
        try:
            out.append(str(ipaddress.ip_network(part.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"{where}: not an allowed IP: {part[:60]!r}") from None
    return tuple(out)


def _hex_key(text: str, what: str) -> str:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{what}: not a hex key: {text[:70]!r}") from None
    if len(raw) != 32:
        raise ValueError(f"{what}: key of {len(raw)} bytes, expected 32")
    return base64.b64encode(raw).decode()


def parse_uapi(text: str, name: str) -> RawInterface:
    """The UAPI `get=1` answer: key=value lines, peers begin at each public_key, then errno."""
    public_key: str | None = None
    port: int | None = None
    peers: list[RawPeer] = []
    cur: dict[str, Any] | None = None
    errno: int | None = None

    def close() -> None:
        if cur is not None:
            peers.append(
                RawPeer(
                    public_key=cur["public_key"],
                    endpoint=cur.get("endpoint"),
                    allowed_ips=tuple(cur.get("allowed_ips", ())),
                    handshake=cur.get("handshake", 0),
                    rx_bytes=cur.get("rx", 0),
                    tx_bytes=cur.get("tx", 0),
                    keepalive=cur.get("keepalive") or None,
                    has_psk=cur.get("psk", False),
                )
            )

    for lineno, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        key, sep, value = line.partition("=")
        where = f"uapi line {lineno}"
        if not sep:
            raise ValueError(f"{where}: expected key=value, got {line[:60]!r}")
        if key == "errno":
            errno = _int(value.lstrip("-"), f"{where}: errno") * (
                -1 if value.startswith("-") else 1
            )
        elif key == "private_key":
            # UAPI gives no public key: derive it, and keep only that
            public_key = public_from_private(bytes.fromhex(value)) if value != _NO_KEY else None
        elif key == "public_key":
            close()
            cur = {"public_key": _hex_key(value, f"{where}: public key"), "allowed_ips": []}
        elif cur is None:
            if key == "listen_port":
                port = _int(value, f"{where}: listen port") or None
            # fwmark and other device keys are not shown
        elif key == "preshared_key":
            cur["psk"] = value != _NO_KEY  # the value itself is never kept
        elif key == "endpoint":
            cur["endpoint"] = _endpoint(value, where)
        elif key == "allowed_ip":
            cur["allowed_ips"].extend(_allowed(value, where))
        elif key == "last_handshake_time_sec":
            cur["handshake"] = _int(value, f"{where}: handshake")
        elif key == "rx_bytes":
            cur["rx"] = _int(value, f"{where}: rx bytes")
        elif key == "tx_bytes":
            cur["tx"] = _int(value, f"{where}: tx bytes")
        elif key == "persistent_keepalive_interval":
            cur["keepalive"] = _int(value, f"{where}: keepalive")
    close()
    if errno is None:
        raise ValueError("uapi answer ended without errno= (truncated?)")
    if errno != 0:
        raise ValueError(f"uapi answered errno={errno}")
    return RawInterface(name, public_key, port, tuple(peers))


def _nl_attr(msg: Any, name: str) -> Any:
    """An attribute of a pyroute2 nla (get_attr) or of its dump() form ({"attrs": [[k, v]…]})."""
    if hasattr(msg, "get_attr"):
        return msg.get_attr(name)
    if isinstance(msg, Mapping):
        for item in msg.get("attrs", ()):
            if isinstance(item, Sequence) and len(item) >= 2 and item[0] == name:
                return item[1]
        return None
    raise ValueError(f"netlink: not a message: {type(msg).__name__}")


def _nl_key(value: Any, what: str) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if not isinstance(value, str):
        raise ValueError(f"netlink: {what}: not a key")
    return _key(value, f"netlink: {what}")


def parse_wg_netlink(msgs: Iterable[Any], name: str) -> RawInterface:
    """pyroute2 WireGuard.info(IFACE) messages → RawInterface (kernel module path).

    WGDEVICE_A_PEERS may be split over several messages (large peer lists); all are merged.
    """
    public_key: str | None = None
    port: int | None = None
    peers: list[RawPeer] = []
    seen = False
    for msg in msgs:
        seen = True
        pub = _nl_attr(msg, "WGDEVICE_A_PUBLIC_KEY")
        if pub is not None:
            public_key = _nl_key(pub, "public key")
        p = _nl_attr(msg, "WGDEVICE_A_LISTEN_PORT")
        if p:
            port = int(p)
        for peer in _nl_attr(msg, "WGDEVICE_A_PEERS") or ():
            key = _nl_key(_nl_attr(peer, "WGPEER_A_PUBLIC_KEY"), "peer key")
            ep = _nl_attr(peer, "WGPEER_A_ENDPOINT")
            endpoint = None
            if isinstance(ep, Mapping) and ep.get("addr") and ep.get("port"):
                addr = str(ep["addr"])
                if addr not in ("0.0.0.0", "::"):  # noqa: S104 — the kernel's "no endpoint"
                    host = f"[{addr}]" if ":" in addr else addr
                    endpoint = _endpoint(f"{host}:{int(ep['port'])}", "netlink")
            hs = _nl_attr(peer, "WGPEER_A_LAST_HANDSHAKE_TIME")
            handshake = int(hs.get("tv_sec", 0)) if isinstance(hs, Mapping) else 0
            allowed: list[str] = []
            for aip in _nl_attr(peer, "WGPEER_A_ALLOWEDIPS") or ():
                net = aip.get("addr") if isinstance(aip, Mapping) else None
                if net:
                    allowed.extend(_allowed(str(net), "netlink"))
            psk = _nl_attr(peer, "WGPEER_A_PRESHARED_KEY")
            psk_text = psk.decode() if isinstance(psk, bytes) else psk
            peers.append(
                RawPeer(
                    public_key=key,
                    endpoint=endpoint,
                    allowed_ips=tuple(allowed),
                    handshake=handshake,
                    rx_bytes=int(_nl_attr(peer, "WGPEER_A_RX_BYTES") or 0),
                    tx_bytes=int(_nl_attr(peer, "WGPEER_A_TX_BYTES") or 0),
                    keepalive=int(_nl_attr(peer, "WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL") or 0)
                    or None,
                    has_psk=bool(psk_text) and psk_text != base64.b64encode(bytes(32)).decode(),
                )
            )
    if not seen:
        raise ValueError(f"netlink: no message for {name}")
    return RawInterface(name, public_key, port, tuple(peers))


def parse_ip_addr_json(text: str, name: str) -> tuple[tuple[str, ...], int | None, bool]:
    """`ip -j addr show dev IFACE` → (addresses, mtu, up)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"ip -j addr: not JSON: {exc}") from None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise ValueError(f"ip -j addr: no interface {name}")
    link = data[0]
    addrs = tuple(
        f"{a['local']}/{a['prefixlen']}"
        for a in link.get("addr_info", ())
        if isinstance(a, dict) and a.get("scope") != "link" and "local" in a
    )
    mtu = link.get("mtu")
    return addrs, int(mtu) if isinstance(mtu, int) else None, "UP" in link.get("flags", ())
