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

Layout: parse.py (pure parsers of wg, UAPI, netlink and ip answers), conf.py (wg-quick conf files,
pure), interface.py (the reading, pure), names.py (names hlcon remembers), reader.py (the I/O and
VpnReader). This face re-exports every public name, so `from lab.vpn import X` works as it did
when this was one module.
"""

from __future__ import annotations

from lab.vpn.conf import (
    DISABLED,
    ConfPeer,
    WgQuickConf,
    append_block,
    block_values,
    client_config,
    parse_wg_quick_conf,
    remove_block,
    server_peer_block,
    set_block_disabled,
)
from lab.vpn.interface import build_interface
from lab.vpn.names import (
    MAX_NAMES_BYTES,
    NAMES_FILE,
    names_path,
    remember_name,
    remembered_names,
    target_name,
)
from lab.vpn.parse import (
    RawInterface,
    RawPeer,
    parse_ip_addr_json,
    parse_uapi,
    parse_wg_dump,
    parse_wg_netlink,
    public_from_private,
    valid_key,
)
from lab.vpn.reader import (
    UAPI_DIR,
    WG_TIMEOUT,
    LinkInfo,
    LinkReader,
    VpnReader,
    backup_path,
    config_for,
    link_info,
    netlink_info,
    read_conf_text,
    read_live,
    read_optional_text,
    readers,
    uapi_get,
    wg_dump,
)

__all__ = [
    "DISABLED",
    "MAX_NAMES_BYTES",
    "NAMES_FILE",
    "UAPI_DIR",
    "WG_TIMEOUT",
    "ConfPeer",
    "LinkInfo",
    "LinkReader",
    "RawInterface",
    "RawPeer",
    "VpnReader",
    "WgQuickConf",
    "append_block",
    "backup_path",
    "block_values",
    "build_interface",
    "client_config",
    "config_for",
    "link_info",
    "names_path",
    "netlink_info",
    "parse_ip_addr_json",
    "parse_uapi",
    "parse_wg_dump",
    "parse_wg_netlink",
    "parse_wg_quick_conf",
    "public_from_private",
    "read_conf_text",
    "read_live",
    "read_optional_text",
    "readers",
    "remember_name",
    "remembered_names",
    "remove_block",
    "server_peer_block",
    "set_block_disabled",
    "target_name",
    "uapi_get",
    "valid_key",
    "wg_dump",
]
