"""WireGuard reader: interfaces and peers — handshakes, transfer, rates, online or stale.

Three sources, one shape (RawInterface), then one builder (build_interface) that adds names,
ages, rates and online/stale:

- the UAPI control socket /var/run/wireguard/IFACE.sock (wireguard-go, boringtun): `get=1`
  answers key=value lines — used locally when the socket exists (this machine's case);
- the kernel's generic netlink family through pyroute2's WireGuard — used locally when the
  socket does not exist. The kernel here has no WireGuard module, so this path is kept thin and
  its parser (parse_wg_netlink) is tested on netlink-shaped data constructed in the test;
- `wg show IFACE dump` through lab.executor(host): remote hosts, and the local fallback.

Addresses, MTU and up/down come from pyroute2's IPRoute locally (it sees the tun device of
wireguard-go) and from `ip -j addr show dev IFACE` on remote hosts. The persisted wg-quick conf
(peers_file) gives peer names (`# name` comments) and peers disabled by `hlcon do peer-disable`.

Private and preshared keys are dropped by every parser: no reading ever holds one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.config import Config, VpnConfig, state_dir
from lab.execute import LocalExecutor
from lab.model import WgInterface, WgPeer
from lab.poller import ReadError

if TYPE_CHECKING:
    from lab.execute import Executor
    from lab.poller import Reader
    from lab.wiring import Lab

UAPI_DIR = Path("/var/run/wireguard")
_NO_KEY = "0" * 64
WG_TIMEOUT = 10.0

# ---------------------------------------------------------------- raw shapes (pure)


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


# ---------------------------------------------------------------- wg-quick conf (pure)


@dataclass(frozen=True)
class ConfPeer:
    """A [Peer] block of a wg-quick conf. Lines are 0-based, `end` exclusive; the block spans
    its leading `# name` comment too, so removing [start, end) removes the whole peer."""

    public_key: str
    name: str | None
    allowed_ips: tuple[str, ...]
    endpoint: str | None
    keepalive: int | None
    has_psk: bool
    disabled: bool
    start: int
    end: int


@dataclass(frozen=True)
class WgQuickConf:
    addresses: tuple[str, ...]
    listen_port: int | None
    mtu: int | None
    peers: tuple[ConfPeer, ...]
    lines: tuple[str, ...] = field(repr=False, default=())

    def by_key(self, key: str) -> ConfPeer | None:
        return next((p for p in self.peers if p.public_key == key), None)

    def by_name(self, name: str) -> ConfPeer | None:
        return next((p for p in self.peers if p.name == name), None)


DISABLED = "#! "  # prefix of every line of a peer disabled by hlcon
_NAME_INSIDE = re.compile(r"^#\s*name\s*[=:]\s*(?P<name>.+?)\s*$", re.IGNORECASE)
_KNOWN_INTERFACE = {
    "privatekey", "listenport", "fwmark", "address", "dns", "mtu", "table", "preup",
    "postup", "predown", "postdown", "saveconfig",
}  # fmt: skip
_KNOWN_PEER = {"publickey", "presharedkey", "allowedips", "endpoint", "persistentkeepalive"}


def parse_wg_quick_conf(text: str) -> WgQuickConf:
    """A wg-quick conf → addresses, port, MTU and peers with names. Names come from a comment
    line right above [Peer] (`# laptop`) or a `# name = laptop` line inside the block. Peers
    commented out with `#! ` (peer-disable) are kept as disabled. Raises ValueError naming the
    line for anything wg-quick would refuse."""
    lines = tuple(text.splitlines())
    section: str | None = None
    iface: dict[str, str] = {}
    addresses: list[str] = []
    peers: list[ConfPeer] = []
    cur: dict[str, Any] | None = None
    pending_comment: tuple[int, str] | None = None  # (line, text) of a comment above [Peer]
    comment_run: int | None = None  # first line of the comment lines right above this one

    def close(end: int) -> None:
        nonlocal cur
        if cur is None:
            return
        if "publickey" not in cur:
            raise ValueError(f"line {cur['line'] + 1}: [Peer] without PublicKey")
        # trailing blank lines belong to no block
        while end > cur["start"] and not lines[end - 1].strip():
            end -= 1
        peers.append(
            ConfPeer(
                public_key=cur["publickey"],
                name=cur.get("name"),
                allowed_ips=cur.get("allowedips", ()),
                endpoint=cur.get("endpoint"),
                keepalive=cur.get("persistentkeepalive"),
                has_psk="presharedkey" in cur,
                disabled=cur["disabled"],
                start=cur["start"],
                end=end,
            )
        )
        cur = None

    for i, raw in enumerate(lines):
        disabled = raw.startswith(DISABLED)
        line = raw[len(DISABLED) :] if disabled else raw
        stripped = line.strip()
        where = f"line {i + 1}"
        if not stripped:
            pending_comment = comment_run = None
            continue
        if stripped.startswith("#") or stripped.startswith(";"):
            m = _NAME_INSIDE.match(stripped)
            if cur is not None and m:
                cur["name"] = m["name"]  # this block's own name line: never the next block's
                pending_comment = comment_run = None
            else:
                pending_comment = (i, stripped.lstrip("#; ").strip())
                if comment_run is None:
                    comment_run = i
            continue
        if stripped.startswith("["):
            head = stripped.lower()
            if head == "[interface]":
                close(i)
                if section is not None and "interface" in iface:
                    raise ValueError(f"{where}: a second [Interface]")
                iface["interface"] = "1"
                section = "interface"
            elif head == "[peer]":
                start = i
                name = None
                if pending_comment is not None and pending_comment[0] == i - 1:
                    # the comment lines right above belong to this block (its `# name`), not
                    # to the block before: removing that one must leave them
                    assert comment_run is not None
                    start, name = comment_run, pending_comment[1] or None
                close(start)
                section = "peer"
                cur = {"start": start, "line": i, "disabled": disabled, "name": name}
            else:
                raise ValueError(f"{where}: unknown section {stripped[:40]!r}")
            pending_comment = comment_run = None
            continue
        pending_comment = comment_run = None
        key, sep, value = stripped.partition("=")
        if not sep:
            raise ValueError(f"{where}: expected Key = Value, got {stripped[:60]!r}")
        key_l, value = key.strip().lower(), value.split("#", 1)[0].strip()
        if section is None:
            raise ValueError(f"{where}: {key.strip()} outside any section")
        if section == "interface":
            if key_l not in _KNOWN_INTERFACE:
                raise ValueError(f"{where}: unknown [Interface] key {key.strip()!r}")
            if key_l == "address":
                addresses.extend(_addresses(value, where))
            else:
                iface[key_l] = value
            continue
        assert cur is not None
        if key_l not in _KNOWN_PEER:
            raise ValueError(f"{where}: unknown [Peer] key {key.strip()!r}")
        if key_l == "publickey":
            cur["publickey"] = _key(value, f"{where}: PublicKey")
        elif key_l == "allowedips":
            cur["allowedips"] = cur.get("allowedips", ()) + _allowed(value.replace(" ", ""), where)
        elif key_l == "endpoint":
            cur["endpoint"] = _endpoint(value, where)
        elif key_l == "persistentkeepalive":
            cur["persistentkeepalive"] = (
                None if value == "off" else _int(value, f"{where}: PersistentKeepalive")
            )
        else:
            cur["presharedkey"] = True  # never kept
    close(len(lines))
    if "interface" not in iface:
        raise ValueError("no [Interface] section")
    port = iface.get("listenport")
    mtu = iface.get("mtu")
    keys = [p.public_key for p in peers]
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup:
        raise ValueError(f"peer {dup[:8]}… appears twice")
    return WgQuickConf(
        addresses=tuple(addresses),
        listen_port=_int(port, "ListenPort") if port else None,
        mtu=_int(mtu, "MTU") if mtu else None,
        peers=tuple(peers),
        lines=lines,
    )


def _addresses(value: str, where: str) -> list[str]:
    out = []
    for part in value.split(","):
        try:
            out.append(str(ipaddress.ip_interface(part.strip())))
        except ValueError:
            raise ValueError(f"{where}: not an address: {part.strip()[:60]!r}") from None
    return out


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


# ---------------------------------------------------------------- the reading (pure)


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


# ---------------------------------------------------------------- names hlcon remembers

# A peer added where no conf holds its `# name` (no peers_file, a NixOS host) keeps the name it
# was given here: {"IFACE@HOST": {public key: name}}, in hlcon's state directory.
NAMES_FILE = "vpn-peer-names.json"
MAX_NAMES_BYTES = 1 << 20


def names_path(config: Config) -> Path:
    return state_dir(config) / NAMES_FILE


def _load_names(path: Path) -> dict[str, dict[str, str]]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_NAMES_BYTES + 1)
    except FileNotFoundError:
        return {}
    if len(raw) > MAX_NAMES_BYTES:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(t): {str(k): str(v) for k, v in names.items() if isinstance(v, str)}
        for t, names in data.items()
        if isinstance(names, dict)
    }


def remembered_names(config: Config, cfg: VpnConfig) -> dict[str, str]:
    """The names hlcon gave this interface's peers (empty if none, or the file is unreadable:
    names are a nicety, the peers are what matter)."""
    try:
        return _load_names(names_path(config)).get(target_name(cfg), {})
    except OSError:
        return {}


def remember_name(config: Config, cfg: VpnConfig, key: str, name: str | None) -> None:
    """Set (or, with None, forget) the name of a peer; atomic, serialised by a lock file."""
    path = names_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(NAMES_FILE + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = _load_names(path)
        names = data.setdefault(target_name(cfg), {})
        if name is None:
            names.pop(key, None)
        else:
            names[key] = name
        if not names:
            data.pop(target_name(cfg), None)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vpn-peer-names.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


# ---------------------------------------------------------------- I/O


def target_name(cfg: VpnConfig) -> str:
    return f"{cfg.interface}@{cfg.host}"


async def uapi_get(name: str, *, directory: Path = UAPI_DIR, timeout: float = 5.0) -> str:
    """Ask a userspace implementation's control socket for its state."""
    path = directory / f"{name}.sock"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), timeout)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise ReadError("interface missing", f"{path}: {exc.strerror or exc}") from None
    except PermissionError:
        raise ReadError(
            "permission denied", f"{path}: needs root (or the socket's group)"
        ) from None
    try:
        writer.write(b"get=1\n\n")
        await writer.drain()
        chunks: list[bytes] = []
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            chunks.append(chunk)
            if b"".join(chunks[-2:]).endswith(b"\n\n"):
                break
        return b"".join(chunks).decode(errors="replace")
    finally:
        writer.close()


def netlink_info(name: str) -> list[Any]:
    """The kernel module's state through pyroute2 (blocking: run in a thread)."""
    from pyroute2 import WireGuard

    with WireGuard() as wg:
        return list(wg.info(name))


LinkInfo = tuple[tuple[str, ...], int | None, bool]  # (addresses, mtu, up)


def _open_iproute(netns: str | None) -> Any:
    from pyroute2 import IPRoute

    return IPRoute(netns=netns) if netns else IPRoute()


def _link_info(ipr: Any, name: str) -> LinkInfo | None:
    idx = ipr.link_lookup(ifname=name)
    if not idx:
        return None
    link = ipr.get_links(idx[0])[0]
    addrs = tuple(
        f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
        for a in ipr.get_addr(index=idx[0])
        if a["scope"] == 0  # global scope only; link-local fe80:: is noise
    )
    return addrs, link.get_attr("IFLA_MTU"), bool(link["flags"] & 1)  # IFF_UP


def link_info(name: str, netns: str | None) -> LinkInfo | None:
    """(addresses, mtu, up) of a local link via pyroute2 IPRoute; None if there is no such
    link. Blocking: run in a thread. One-shot (actions); the reader keeps a LinkReader."""
    with _open_iproute(netns) as ipr:
        return _link_info(ipr, name)


class LinkReader:
    """One IPRoute socket kept across polls. Opening one inside a network namespace forks a
    helper process each time; a poll every 5 s made that most of the VPN reader's cost.
    Blocking methods: call them from a thread, one at a time (the poller never overlaps)."""

    def __init__(self, netns: str | None) -> None:
        self.netns = netns
        self._ipr: Any = None
        # close() (the console quitting) may come while a poll's info() is in flight: closing
        # the socket under a request left that thread waiting for an answer forever, and the
        # event loop's executor shutdown with it. One at a time.
        self._lock = threading.Lock()

    def info(self, name: str) -> LinkInfo | None:
        with self._lock:
            if self._ipr is None:
                self._ipr = _open_iproute(self.netns)
            try:
                return _link_info(self._ipr, name)
            except Exception:
                self._close()  # the namespace went away, or the socket broke: reopen next time
                raise

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        ipr, self._ipr = self._ipr, None
        if ipr is not None:
            with contextlib.suppress(Exception):
                ipr.close()


def _read_local_file(path: Path) -> str:
    return path.read_text(errors="replace")


async def read_conf_text(executor: Executor, path: Path) -> str:
    """The persisted conf's text: read in-process on this machine, with `cat` through the
    host's executor elsewhere (SSH hosts)."""
    if isinstance(executor, LocalExecutor):
        try:
            return await asyncio.to_thread(_read_local_file, path)
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise ReadError("conf unreadable", f"{path} on {executor.host}: {why}") from None
    result = await executor.run(["cat", "--", str(path)], timeout=WG_TIMEOUT)
    if not result.ok:
        raise ReadError("conf unreadable", f"{path} on {executor.host}: {result.brief()}")
    return result.stdout


def backup_path(conf: Path) -> Path:
    """Where a conf edit keeps the previous bytes (actions.vpn's persist script)."""
    return conf.with_name(conf.name + ".hlcon-bak")


def _read_local_optional(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return None


_CAT_IF_EXISTS = 'if [ -e "$1" ]; then exec cat -- "$1"; else exit 3; fi'


async def read_optional_text(executor: Executor, path: Path) -> str | None:
    """A file's text, or None when it does not exist (any other failure is a ReadError)."""
    if isinstance(executor, LocalExecutor):
        try:
            return await asyncio.to_thread(_read_local_optional, path)
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise ReadError("file unreadable", f"{path} on {executor.host}: {why}") from None
    result = await executor.run(["sh", "-c", _CAT_IF_EXISTS, "sh", str(path)], timeout=WG_TIMEOUT)
    if result.returncode == 3:
        return None
    if not result.ok:
        raise ReadError("file unreadable", f"{path} on {executor.host}: {result.brief()}")
    return result.stdout


async def wg_dump(executor: Executor, name: str) -> RawInterface | None:
    """`wg show IFACE dump` on the host; None if the interface does not exist there."""
    result = await executor.run(["wg", "show", name, "dump"], timeout=WG_TIMEOUT)
    if not result.ok:
        if "No such device" in result.stderr or "Protocol not supported" in result.stderr:
            return None
        raise ReadError("wg failed", f"wg show {name} dump on {executor.host}: {result.brief()}")
    try:
        parsed = parse_wg_dump(result.stdout, name)
    except ValueError as exc:
        raise ReadError("wg output unreadable", f"{executor.host}: {exc}") from None
    return next(iter(parsed.values()), RawInterface(name, None, None))


async def read_live(lab: Lab, cfg: VpnConfig) -> tuple[RawInterface | None, str]:
    """The live interface and where it was read from; None if it does not exist."""
    if lab.is_local(cfg.host):
        sock = UAPI_DIR / f"{cfg.interface}.sock"
        if sock.exists():
            text = await uapi_get(cfg.interface)
            try:
                return parse_uapi(text, cfg.interface), "uapi"
            except ValueError as exc:
                raise ReadError("uapi answer unreadable", f"{sock}: {exc}") from None
        try:
            msgs = await asyncio.to_thread(netlink_info, cfg.interface)
            return parse_wg_netlink(msgs, cfg.interface), "netlink"
        except Exception:  # noqa: S110 — no kernel module (or no interface): try `wg`
            pass
    return await wg_dump(lab.executor(cfg.host), cfg.interface), "wg"


class _NamesCache:
    """remembered_names, read again only when the file changed (a stat per poll)."""

    def __init__(self, config: Config, cfg: VpnConfig) -> None:
        self.config, self.cfg = config, cfg
        self._seen: tuple[int, int] | None = None
        self._names: dict[str, str] = {}

    def get(self) -> dict[str, str]:
        try:
            st = names_path(self.config).stat()
        except OSError:
            self._seen, self._names = None, {}
            return {}
        seen = (st.st_mtime_ns, st.st_size)
        if seen != self._seen:
            self._seen, self._names = seen, remembered_names(self.config, self.cfg)
        return self._names


class VpnReader:
    """One WireGuard interface on one host."""

    def __init__(self, lab: Lab, cfg: VpnConfig) -> None:
        self.lab = lab
        self.cfg = cfg
        self._previous: WgInterface | None = None
        self._links = LinkReader(cfg.netns)
        self._names = _NamesCache(lab.config, cfg)

    @property
    def key(self) -> tuple[str, str]:
        return ("vpn", target_name(self.cfg))

    @property
    def interval(self) -> float:
        return self.lab.config.console.refresh

    @property
    def timeout(self) -> float:
        return self.lab.config.console.timeout

    async def read(self) -> WgInterface:
        cfg = self.cfg
        raw, source = await read_live(self.lab, cfg)
        addresses: tuple[str, ...] = ()
        mtu: int | None = None
        up = raw is not None
        if self.lab.is_local(cfg.host):
            info = await asyncio.to_thread(self._links.info, cfg.interface)
            if info is not None:
                addresses, mtu, up = info
            else:
                up = False
        elif raw is not None:
            result = await self.lab.executor(cfg.host).run(
                ["ip", "-j", "addr", "show", "dev", cfg.interface], timeout=WG_TIMEOUT
            )
            if result.ok:
                # addresses are a nicety; peers are what matter
                with contextlib.suppress(ValueError):
                    addresses, mtu, up = parse_ip_addr_json(result.stdout, cfg.interface)
        conf = None
        if cfg.peers_file is not None:
            # A conf that doesn't parse must not hide the live state: names fall back to keys
            # and peer add refuses (it re-reads and reports the error).
            try:
                text = await read_conf_text(self.lab.executor(cfg.host), cfg.peers_file)
                conf = parse_wg_quick_conf(text)
            except (ReadError, ValueError):
                conf = None
        reading = build_interface(
            raw,
            cfg,
            host=cfg.host,
            at=self.lab.clock(),
            source=source,
            up=up and raw is not None,
            addresses=addresses,
            mtu=mtu,
            conf=conf,
            previous=self._previous,
            remembered=await asyncio.to_thread(self._names.get),
        )
        self._previous = reading
        return reading

    async def close(self) -> None:
        await asyncio.to_thread(self._links.close)


def readers(lab: Lab) -> list[Reader]:
    out: list[Reader] = []
    for cfg in lab.config.vpn:
        out.append(VpnReader(lab, cfg))
    if lab.config.local.wireguard and not lab.config.vpn:
        # Nothing configured: show the local userspace interfaces that exist right now.
        try:
            names = sorted(p.stem for p in UAPI_DIR.glob("*.sock"))
        except OSError:
            names = []
        for name in names:
            out.append(VpnReader(lab, VpnConfig(interface=name, host=lab.local_name)))
    return out


def config_for(lab: Lab, interface: str, host: str) -> VpnConfig:
    """The [[vpn]] entry for vpn:IFACE@HOST (ValueError naming the config key if none)."""
    for cfg in lab.config.vpn:
        same_host = cfg.host == host or (lab.is_local(cfg.host) and lab.is_local(host))
        if cfg.interface == interface and same_host:
            return cfg
    raise ValueError(
        f"no [[vpn]] entry with interface = {interface!r} and host = {host!r}"
        f" in {lab.config.source}"
    )
