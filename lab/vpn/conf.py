"""wg-quick conf files (pure): parsing, with peer names from `# name` comments and peers
disabled by hlcon (`#! ` lines), and the edits peer add/remove/disable/enable make.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.vpn.parse import _allowed, _endpoint, _int, _key


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


# ---------------------------------------------------------------- editing (pure)
# A conf is edited as lines, so everything hlcon did not write (comments, order, spacing) stays
# byte for byte; parse_wg_quick_conf reads every edit back (tests: the round-trip property).


def client_config(
    *,
    private_key: str,
    address: str,
    server_public: str,
    endpoint: str,
    allowed: str,
    psk: str | None,
    dns: str | None,
    keepalive: int = 25,
) -> str:
    lines = ["[Interface]", f"PrivateKey = {private_key}", f"Address = {address}"]
    if dns:
        lines.append(f"DNS = {dns}")
    lines += ["", "[Peer]", f"PublicKey = {server_public}"]
    if psk:
        lines.append(f"PresharedKey = {psk}")
    lines += [
        f"Endpoint = {endpoint}",
        f"AllowedIPs = {allowed}",
        f"PersistentKeepalive = {keepalive}",
    ]
    return "\n".join(lines) + "\n"


def server_peer_block(name: str, public: str, psk: str | None, allowed: str) -> list[str]:
    out = [f"# {name}", "[Peer]", f"PublicKey = {public}"]
    if psk:
        out.append(f"PresharedKey = {psk}")
    out.append(f"AllowedIPs = {allowed}")
    return out


def append_block(text: str, block: Sequence[str]) -> str:
    body = text.rstrip("\n")
    return (body + "\n\n" if body else "") + "\n".join(block) + "\n"


def remove_block(conf: WgQuickConf, peer: ConfPeer) -> str:
    lines = list(conf.lines)
    del lines[peer.start : peer.end]
    # collapse the blank line the block leaves behind
    while (
        peer.start < len(lines)
        and peer.start > 0
        and not lines[peer.start].strip()
        and not lines[peer.start - 1].strip()
    ):
        del lines[peer.start]
    return "\n".join(lines).rstrip("\n") + "\n"


def set_block_disabled(conf: WgQuickConf, peer: ConfPeer, disabled: bool) -> str:
    lines = list(conf.lines)
    for i in range(peer.start, peer.end):
        if disabled and not lines[i].startswith(DISABLED):
            lines[i] = DISABLED + lines[i]
        elif not disabled and lines[i].startswith(DISABLED):
            lines[i] = lines[i][len(DISABLED) :]
    return "\n".join(lines) + "\n"


def block_values(conf: WgQuickConf, peer: ConfPeer) -> dict[str, str]:
    """Key → raw value of a peer block (PresharedKey included: rollback and enable need it)."""
    out: dict[str, str] = {}
    for raw in conf.lines[peer.start : peer.end]:
        line = raw[len(DISABLED) :] if raw.startswith(DISABLED) else raw
        key, sep, value = line.strip().partition("=")
        if sep and not line.strip().startswith("#"):
            out[key.strip().lower()] = value.split("#", 1)[0].strip()
    return out
