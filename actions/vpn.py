"""WireGuard actions: peer add (with the client config and a QR code), remove, disable, enable.

Targets are vpn:IFACE@HOST ([[vpn]] in the config). Every family changes two things — the live
interface (`wg set`, via lab.executor(host), so SSH hosts work the same) and the persisted
wg-quick conf (peers_file: written atomically with a backup). The live change runs as the plan's
own first step (its argv is not kept twice); the payload (PeerChange) keeps what rollback needs
to put both back: the argv that undoes the live change and the conf's old bytes.

Secrets: the new client's private key and the preshared key live only in the payload (never in
Plan.to_record(), so never in the audit) and in Outcome.details under keys the audit log masks
(`secret_client_config`, `secret_qr`: actions.audit masks values under keys naming a secret).
`wg set` reads the preshared key from stdin, never from argv. The diff shown in the plan hides
PrivateKey and PresharedKey values.

A peer name is free text for humans (`# name` comment in the conf); it never reaches a shell:
commands are argv lists (quoted by lab.ssh for remote hosts) and the name is written only as a
comment line, so control characters (a newline would inject conf lines) are refused. An
existing peer is named by its name or by its public key (the pane passes the key).

Rollback puts back the conf and its `.hlcon-bak` as they were before (a backup the failed write
made is removed).
"""

from __future__ import annotations

import asyncio
import base64
import difflib
import io
import ipaddress
import os
import re
import secrets as pysecrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from actions.base import (
    JSON,
    Action,
    ActionFailed,
    BlastRadius,
    Confirmation,
    Outcome,
    Plan,
    Progress,
    Step,
    Target,
)
from actions.registry import register
from lab.config import VpnConfig
from lab.execute import Executor
from lab.poller import ReadError
from lab.vpn import (
    ConfPeer,
    RawInterface,
    WgQuickConf,
    backup_path,
    config_for,
    link_info,
    parse_ip_addr_json,
    parse_wg_quick_conf,
    read_conf_text,
    read_live,
    read_optional_text,
    remember_name,
    remembered_names,
    valid_key,
)

# The conf edits live beside parse_wg_quick_conf (lab.vpn.conf); named here as before.
from lab.vpn import append_block as append_block
from lab.vpn import block_values as block_values
from lab.vpn import client_config as client_config
from lab.vpn import remove_block as remove_block
from lab.vpn import server_peer_block as server_peer_block
from lab.vpn import set_block_disabled as set_block_disabled

if TYPE_CHECKING:
    from lab.wiring import Lab

CMD_TIMEOUT = 15.0
MAX_NAME = 40
_NAME_OK = re.compile(r"^[^\x00-\x1f\x7f]+$")

# Fixed shell text; the path arrives as "$1" (an argv element, quoted by lab.ssh remotely) and
# the new content on stdin. A failed write leaves the old file untouched (rename is atomic).
PERSIST_SCRIPT = r"""set -e
f="$1"; tmp="$f.hlcon-new"
trap 'rm -f "$tmp"' EXIT
umask 077
cat > "$tmp"
if [ -e "$f" ]; then chmod "$(stat -c %a "$f")" "$tmp"; fi
if [ "$2" = backup ] && [ -e "$f" ]; then cp -p "$f" "$f.hlcon-bak"; fi
sync "$tmp" 2>/dev/null || sync
mv -f "$tmp" "$f"
"""


# ---------------------------------------------------------------- pure helpers


def check_name(name: str) -> str:
    """A peer name: 1..40 printable characters, no newline (it becomes a conf comment)."""
    name = name.strip()
    if not name:
        raise ValueError("peer name is empty (give --name NAME)")
    if len(name) > MAX_NAME:
        raise ValueError(f"peer name longer than {MAX_NAME} characters: {name[:20]!r}…")
    if not _NAME_OK.match(name):
        raise ValueError(f"peer name has control characters: {name!r}")
    return name


def check_peer(peer: str) -> str:
    """An existing peer, named by its public key (44 base64 characters) or by its name."""
    peer = peer.strip()
    return peer if valid_key(peer) else check_name(peer)


def flag(value: Any, name: str) -> bool:
    """A boolean parameter; the CLI's --param gives strings ("true", "false", "no" …)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"--param {name}: expected true or false, not {str(value)[:20]!r}")


def check_endpoint(endpoint: str | None) -> str:
    """HOST:PORT a client can dial ([v6]:port for IPv6)."""
    if not endpoint:
        raise ValueError('no endpoint configured ([[vpn]] endpoint = "vpn.example.org:51820")')
    m = re.match(
        r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>\d{1,5})$", endpoint
    )
    if not m or not 0 < int(m["port"]) < 65536:
        raise ValueError(
            f"invalid endpoint {endpoint!r} (expected host:port, e.g. vpn.example.org:51820)"
        )
    if m["v6"]:
        try:
            ipaddress.IPv6Address(m["v6"])
        except ValueError:
            raise ValueError(f"invalid endpoint {endpoint!r}: not an IPv6 address") from None
    elif m["host"].startswith("-") or ".." in m["host"]:
        raise ValueError(f"invalid endpoint {endpoint!r}: not a host name")
    return endpoint


def next_free_address(
    subnet: str, used: Iterable[str]
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The lowest host address of `subnet` not inside any of `used` (addresses or networks)."""
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise ValueError(f"subnet {subnet!r} is not a network (e.g. 10.100.0.0/24)") from None
    taken = []
    for u in used:
        try:
            taken.append(ipaddress.ip_network(u, strict=False))
        except ValueError:
            continue
    for addr in net.hosts():
        if not any(addr in t for t in taken if t.version == addr.version):
            return addr
    raise ValueError(f"subnet {net} is exhausted: every address is taken")


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def server_addresses(subnet: str, known: Sequence[str]) -> tuple[list[str], str | None]:
    """The interface's own addresses (as single IPs), and a note when none is known: then the
    subnet's first host address is reserved as the server's — the address clients usually use
    for it, never to be handed to a peer."""
    own = [_own(a) for a in known]
    net = ipaddress.ip_network(subnet, strict=False)
    if any(ipaddress.ip_address(a) in net for a in own):
        return own, None
    first = next(iter(net.hosts()), None)
    if first is None:
        return own, None
    return [*own, str(first)], (
        f"no address of the interface (nor Address in its conf) is in {net}: "
        f"{first} is kept as the server's"
    )


def pick_address(
    subnet: str, own: Sequence[str], taken: Mapping[str, str], wanted: str | None = None
) -> IpAddress:
    """The peer's address: `wanted` if it is free — inside the subnet, not its network or
    broadcast address, not the interface's own, not inside a peer's allowed IPs (`taken`:
    network → peer label) — else the lowest free one. ValueError says why not."""
    if not wanted:
        return next_free_address(subnet, [*own, *taken])
    net = ipaddress.ip_network(subnet, strict=False)
    text = wanted.strip()
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        example = next(iter(net.hosts()), net.network_address)
        raise ValueError(f"{text[:50]!r} is not an address (e.g. {example})") from None
    addr = iface.ip
    if iface.network.prefixlen != addr.max_prefixlen:
        raise ValueError(f"a peer gets one address: {addr}, not {iface.network}")
    if addr.version != net.version or addr not in net:
        raise ValueError(f"{addr} is outside the subnet {net}")
    reserved = {net.network_address}
    if net.version == 4:
        reserved.add(net.broadcast_address)
    if net.num_addresses > 2 and addr in reserved:
        raise ValueError(f"{addr} is the network or broadcast address of {net}")
    if str(addr) in own:
        raise ValueError(f"{addr} is the interface's own address")
    for network, label in taken.items():
        try:
            inside = addr in ipaddress.ip_network(network, strict=False)
        except ValueError:
            continue
        if inside:
            raise ValueError(f"{addr} is taken by peer {label}")
    return addr


def _own(address: str) -> str:
    """An interface address (10.0.0.1/24) takes only itself, not its whole network."""
    return str(ipaddress.ip_interface(address).ip)


def new_keypair() -> tuple[str, str]:
    """(private, public) base64 X25519 keys, made here."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    key = X25519PrivateKey.generate()
    private = base64.b64encode(key.private_bytes_raw()).decode()
    public = base64.b64encode(key.public_key().public_bytes_raw()).decode()
    return private, public


def new_psk() -> str:
    return base64.b64encode(pysecrets.token_bytes(32)).decode()


_HIDE = re.compile(
    r"^(?P<head>[-+ ]?(?:#! )?\s*(?:PrivateKey|PresharedKey)\s*=\s*).+$", re.IGNORECASE
)


def hidden_diff(old: str, new: str, path: str) -> str:
    """A unified diff with key material hidden (it is shown on screen and audited)."""
    lines = difflib.unified_diff(
        old.splitlines(),
        new.splitlines(),
        fromfile=f"{path} (now)",
        tofile=f"{path} (after)",
        lineterm="",
    )
    return "\n".join(_HIDE.sub(r"\g<head>(hidden)", ln) for ln in lines)


def nix_snippet(iface: str, name: str, public: str, allowed: str) -> str:
    def nix_str(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'

    return (
        f"# add to networking.wireguard.interfaces.{iface}.peers, then nixos-rebuild switch\n"
        f"{{\n"
        f"  name = {nix_str(name)};\n"
        f"  publicKey = {nix_str(public)};\n"
        f"  presharedKeyFile = {nix_str(f'/etc/wireguard/{iface}-{public[:8]}.psk')};\n"
        f"  allowedIPs = [ {nix_str(allowed)} ];\n"
        f"}}\n"
    )


def qr_text(text: str) -> str:
    """The QR code of `text` as terminal text (half blocks, two modules per character)."""
    import segno

    qr = segno.make(text, error="l", micro=False)
    out = io.StringIO()
    qr.terminal(out=out, compact=True)
    return out.getvalue()


def save_client_config(path: Path, text: str) -> Path:
    """Write a client config on this machine, mode 0600, never over an existing file."""
    path = path.expanduser()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def wg_set_peer_argv(iface: str, peer: Mapping[str, str | None], psk: bool) -> list[str]:
    argv = ["wg", "set", iface, "peer", str(peer["publickey"])]
    if psk:
        argv += ["preshared-key", "/dev/stdin"]
    argv += ["allowed-ips", str(peer.get("allowedips") or "")]
    if peer.get("endpoint"):
        argv += ["endpoint", str(peer["endpoint"])]
    if peer.get("persistentkeepalive"):
        argv += ["persistent-keepalive", str(peer["persistentkeepalive"])]
    return argv


# ---------------------------------------------------------------- the families


@dataclass
class _State:
    cfg: VpnConfig
    executor: Executor
    live: RawInterface
    conf_text: str | None
    conf: WgQuickConf | None
    backup_text: str | None = None  # the conf's .hlcon-bak before this action (None: none)


@dataclass(frozen=True)
class WgSet:
    """A `wg set` command and what it reads on stdin (a preshared key: never in argv)."""

    argv: tuple[str, ...]
    stdin: str | None = None


@dataclass(frozen=True)
class ConfChange:
    """The peers_file before and after, and its `.hlcon-bak` before (None: there was none)."""

    path: str
    old: str
    new: str
    old_backup: str | None


@dataclass(frozen=True)
class NameMemory:
    """A peer name hlcon keeps itself (no `# name` comment holds it): set to `name`, was
    `before`."""

    key: str
    name: str | None
    before: str | None


@dataclass(frozen=True)
class PeerChange:
    """What a peer family changes. The live change is the plan's first step; `live_stdin` is what
    that step reads on stdin (a preshared key)."""

    name: str
    public_key: str
    undo: WgSet
    live_before: bool
    live_after: bool
    live_stdin: str | None = None
    conf: ConfChange | None = None
    remember: NameMemory | None = None


@dataclass(frozen=True, kw_only=True)
class NewPeer(PeerChange):
    """Peer add: the new client's address, keys and config (secrets: never in the record)."""

    address: str
    client_private_key: str
    client_config: str
    nix: str | None = None  # a declarative host: the snippet to add to its Nix config


ChangeT = TypeVar("ChangeT", bound=PeerChange)


class WgAction(Action[ChangeT], Generic[ChangeT]):
    """Shared plumbing: load state, run `wg set`, persist the conf, roll both back."""

    kind: ClassVar[str] = "vpn"
    persists: ClassVar[bool] = True

    def cfg(self) -> VpnConfig:
        try:
            return config_for(self.lab, self.target.name, self.host)
        except ValueError as exc:
            raise ActionFailed(str(exc)) from None

    async def load(self) -> _State:
        cfg = self.cfg()
        executor = self.lab.executor(cfg.host)
        try:
            live, _ = await read_live(self.lab, cfg)
        except ReadError as exc:
            raise ActionFailed(f"cannot read {self.target}: {exc}") from None
        if live is None:
            raise ActionFailed(f"interface {cfg.interface} does not exist on {cfg.host}")
        conf_text = conf = backup_text = None
        if cfg.peers_file is not None and not self.nixos(cfg):
            try:
                conf_text = await read_conf_text(executor, cfg.peers_file)
            except ReadError as exc:
                raise ActionFailed(str(exc)) from None
            try:
                conf = parse_wg_quick_conf(conf_text)
            except ValueError as exc:
                raise ActionFailed(
                    f"{cfg.peers_file} on {cfg.host} does not parse ({exc}); fix it first — "
                    "nothing was changed"
                ) from None
            try:
                backup_text = await read_optional_text(executor, backup_path(cfg.peers_file))
            except ReadError as exc:
                raise ActionFailed(str(exc)) from None
        return _State(cfg, executor, live, conf_text, conf, backup_text)

    def nixos(self, cfg: VpnConfig) -> bool:
        return cfg.nixos or any(h.name == cfg.host and h.nixos for h in self.lab.config.hosts)

    def persist_step(self, cfg: VpnConfig) -> Step:
        assert cfg.peers_file is not None
        return Step(
            f"write {cfg.peers_file} atomically (backup: {backup_path(cfg.peers_file)})",
            cfg.host,
            argv=("sh", "-c", "<persist script>", "sh", str(cfg.peers_file), "backup"),
            changes=(str(cfg.peers_file),),
        )

    def remembered(self, cfg: VpnConfig) -> dict[str, str]:
        """Names hlcon keeps for peers no conf names (added with no peers_file, or on NixOS)."""
        return remembered_names(self.lab.config, cfg)

    def find(self, st: _State, who: str) -> tuple[str, ConfPeer | None]:
        """A peer by name or public key → (public key, its conf block)."""
        names = {v: k for k, v in self.remembered(st.cfg).items()}
        names.update({v: k for k, v in st.cfg.peer_names.items()})
        conf_peer = None
        if st.conf is not None:
            conf_peer = st.conf.by_name(who) or st.conf.by_key(who)
        key = names.get(who) or (conf_peer.public_key if conf_peer else None)
        if key is None and valid_key(who):
            key = who
        if key is None:
            raise ActionFailed(f"no peer named {who!r} on {self.target}")
        if conf_peer is None and st.conf is not None:
            conf_peer = st.conf.by_key(key)
        return key, conf_peer

    # ---- doing

    async def run_cmd(
        self, executor: Executor, argv: Sequence[str], stdin: str | None, what: str
    ) -> None:
        result = await executor.run(list(argv), timeout=CMD_TIMEOUT, input=stdin)
        if not result.ok:
            raise ActionFailed(f"{what} failed on {executor.host}: {result.brief()}")

    async def persist(self, executor: Executor, path: str, text: str, backup: bool) -> None:
        argv = ["sh", "-c", PERSIST_SCRIPT, "sh", path, "backup" if backup else "nobackup"]
        await self.run_cmd(executor, argv, text, f"writing {path}")

    async def guard_unchanged(self, plan: Plan[ChangeT], executor: Executor) -> None:
        """The conf must still be what the plan diffed against (nothing is changed otherwise)."""
        conf = plan.data.conf
        if conf is None:
            return
        try:
            now = await read_conf_text(executor, Path(conf.path))
        except ReadError as exc:
            raise ActionFailed(str(exc)) from None
        if now != conf.old:
            raise ActionFailed(f"{conf.path} changed since the plan was made; plan again")

    async def execute(self, plan: Plan[ChangeT], progress: Progress) -> Outcome:
        cfg = self.cfg()
        executor = self.lab.executor(cfg.host)
        await self.guard_unchanged(plan, executor)
        progress(0.2, "changing the live interface")
        # what was confirmed is what runs: the plan's own first step
        live_argv = plan.steps[0].argv
        if live_argv is None:
            raise ActionFailed(f"the plan's first step is not a command: {plan.steps[0]}")
        await self.run_cmd(executor, live_argv, plan.data.live_stdin, "wg set")
        conf = plan.data.conf
        if conf is not None:
            progress(0.6, f"writing {conf.path}")
            await self.persist(executor, conf.path, conf.new, True)
        remember = plan.data.remember
        if remember is not None:
            await asyncio.to_thread(
                remember_name, self.lab.config, cfg, remember.key, remember.name
            )
        progress(1.0, "done")
        return Outcome(True, plan.summary, self.outcome_details(plan))

    def outcome_details(self, plan: Plan[ChangeT]) -> dict[str, JSON]:
        return {"peer": plan.data.public_key, "name": plan.data.name}

    async def verify(self, plan: Plan[ChangeT], outcome: Outcome) -> Outcome:
        cfg = self.cfg()
        key = plan.data.public_key
        live, _ = await read_live(self.lab, cfg)
        present = live is not None and any(p.public_key == key for p in live.peers)
        if present != plan.data.live_after:
            state = "missing from" if not present else "still on"
            raise ActionFailed(f"peer {key[:8]}… is {state} {cfg.interface} after the change")
        conf = plan.data.conf
        if conf is not None:
            text = await read_conf_text(self.lab.executor(cfg.host), Path(conf.path))
            if text != conf.new:
                raise ActionFailed(f"{conf.path} does not hold what was written")
        return outcome

    async def rollback(self, plan: Plan[ChangeT]) -> Outcome | None:
        cfg = self.cfg()
        executor = self.lab.executor(cfg.host)
        undone: list[str] = []
        undo = plan.data.undo
        live, _ = await read_live(self.lab, cfg)
        key = plan.data.public_key
        present = live is not None and any(p.public_key == key for p in live.peers)
        if present != plan.data.live_before:
            await self.run_cmd(executor, undo.argv, undo.stdin, "wg set (rollback)")
            undone.append("live interface restored")
        conf = plan.data.conf
        if conf is not None:
            path = conf.path
            now = await read_conf_text(executor, Path(path))
            if now != conf.old:
                await self.persist(executor, path, conf.old, False)
                undone.append(f"{path} restored byte for byte")
            else:
                undone.append(f"{path} unchanged")
            # the write made a backup first; put the backup back as it was, or remove it
            bak = backup_path(Path(path))
            old_backup = conf.old_backup
            if await read_optional_text(executor, bak) != old_backup:
                if old_backup is None:
                    await self.run_cmd(executor, ["rm", "-f", "--", str(bak)], None, "rm")
                    undone.append(f"{bak} removed")
                else:
                    await self.persist(executor, str(bak), str(old_backup), False)
                    undone.append(f"{bak} restored")
        remember = plan.data.remember
        if remember is not None:
            before = remember.before
            if self.remembered(cfg).get(key) != before:
                await asyncio.to_thread(remember_name, self.lab.config, cfg, key, before)
                undone.append("the peer's name put back" if before else "the peer's name forgotten")
        return Outcome(True, "; ".join(undone) or "nothing to undo", {"peer": key})


@register
class PeerAdd(WgAction[NewPeer]):
    family = "vpn.peer-add"
    verb = "peer-add"

    def __init__(
        self, target: Target, lab: Lab, name: str = "", psk: bool = True, address: str | None = None
    ) -> None:
        super().__init__(target, lab)
        self.name = name
        self.psk = psk
        self.address = address  # None: the next free address of the subnet

    @classmethod
    def create(cls, target: Target, lab: Lab, params: Mapping[str, Any]) -> PeerAdd:
        if target.kind != "vpn":
            raise ValueError(f"peer-add acts on vpn:IFACE@HOST targets, not {target}")
        name = check_name(str(params.get("name") or ""))
        address = str(params.get("address") or "").strip() or None
        return cls(target, lab, name, psk=flag(params.get("psk", True), "psk"), address=address)

    async def link_addresses(self) -> list[str]:
        """The addresses on the interface's link (pyroute2 here, `ip -j addr` over SSH)."""
        cfg = self.cfg()
        if self.lab.is_local(cfg.host):
            info = await asyncio.to_thread(link_info, cfg.interface, cfg.netns)
            return list(info[0]) if info is not None else []
        result = await self.lab.executor(cfg.host).run(
            ["ip", "-j", "addr", "show", "dev", cfg.interface], timeout=CMD_TIMEOUT
        )
        if not result.ok:
            return []
        try:
            return list(parse_ip_addr_json(result.stdout, cfg.interface)[0])
        except ValueError:
            return []

    async def plan(self) -> Plan[NewPeer]:
        name = check_name(self.name)
        st = await self.load()
        cfg = st.cfg
        try:
            endpoint = check_endpoint(cfg.endpoint)
        except ValueError as exc:
            raise ActionFailed(str(exc)) from None
        if not cfg.subnet:
            raise ActionFailed(f'no subnet for {self.target} ([[vpn]] subnet = "10.100.0.0/24")')
        taken_names = set(cfg.peer_names.values())
        if st.conf is not None:
            taken_names |= {p.name for p in st.conf.peers if p.name}
        if name in taken_names:
            raise ActionFailed(f"a peer named {name!r} already exists on {self.target}")
        if st.live.public_key is None:
            raise ActionFailed(f"{cfg.interface} has no private key set")
        names = {p.public_key: p.name for p in st.conf.peers if p.name} if st.conf else {}
        names.update({k: v for k, v in cfg.peer_names.items()})
        taken: dict[str, str] = {}
        for peer_key, ips in [(p.public_key, p.allowed_ips) for p in st.live.peers] + (
            [(p.public_key, p.allowed_ips) for p in st.conf.peers] if st.conf else []
        ):
            for ip in ips:
                taken.setdefault(ip, names.get(peer_key) or peer_key[:8] + "…")
        try:
            own, reserved_note = server_addresses(
                cfg.subnet, [*(st.conf.addresses if st.conf else ()), *await self.link_addresses()]
            )
            address = pick_address(cfg.subnet, own, taken, self.address)
        except ValueError as exc:
            raise ActionFailed(str(exc)) from None
        private, public = new_keypair()
        known = {p.public_key for p in st.live.peers} | (
            {p.public_key for p in st.conf.peers} if st.conf else set()
        )
        if public in known or public == st.live.public_key:
            raise ActionFailed("generated key collides with an existing peer; try again")
        psk = new_psk() if self.psk else None
        host_net = f"{address}/{address.max_prefixlen}"
        subnet = str(ipaddress.ip_network(cfg.subnet, strict=False))
        client = client_config(
            private_key=private,
            address=host_net,
            server_public=st.live.public_key,
            endpoint=endpoint,
            allowed=subnet,
            psk=psk,
            dns=cfg.dns,
        )
        argv = ["wg", "set", cfg.interface, "peer", public]
        if psk:
            argv += ["preshared-key", "/dev/stdin"]
        argv += ["allowed-ips", host_net]
        steps = [
            Step(f"add peer {name} ({host_net}) to {cfg.interface} live", cfg.host, tuple(argv))
        ]
        diff = None
        notes: list[str] = [reserved_note] if reserved_note else []
        snippet: str | None = None
        conf: ConfChange | None = None
        if self.nixos(cfg):
            snippet = nix_snippet(cfg.interface, name, public, host_net)
            notes.append("declarative host: the conf is not edited; add this to the Nix config:")
            notes.append(snippet)
        elif cfg.peers_file is not None and st.conf_text is not None:
            new = append_block(st.conf_text, server_peer_block(name, public, psk, host_net))
            diff = hidden_diff(st.conf_text, new, str(cfg.peers_file))
            steps.append(self.persist_step(cfg))
            conf = ConfChange(str(cfg.peers_file), st.conf_text, new, st.backup_text)
        else:
            notes.append("no peers_file configured: the peer is live only and goes at restart")
        data = NewPeer(
            name=name,
            public_key=public,
            undo=WgSet(("wg", "set", cfg.interface, "peer", public, "remove")),
            live_before=False,
            live_after=True,
            live_stdin=psk,
            conf=conf,
            # no `# name` comment will hold the name: hlcon does
            remember=NameMemory(public, name, None) if conf is None else None,
            address=host_net,
            client_private_key=private,
            client_config=client,
            nix=snippet,
        )
        steps.append(Step(f"verify {name} appears in `wg show {cfg.interface}`", cfg.host))
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"Add peer {name} ({host_net}) to {cfg.interface} on {cfg.host}",
            steps=tuple(steps),
            blast_radius=BlastRadius.SINGLE,
            confirmation=Confirmation(f"Add peer {name} to {self.target}?"),
            reversible=True,
            diff=diff,
            notes=tuple(notes),
            data=data,
        )

    def outcome_details(self, plan: Plan[NewPeer]) -> dict[str, JSON]:
        client = plan.data.client_config
        nix = plan.data.nix
        return {
            "peer": plan.data.public_key,
            "name": plan.data.name,
            "address": plan.data.address,
            # masked by the audit log (keys naming a secret); for the CLI and the wizard only
            "secret_client_config": client,
            "secret_qr": qr_text(client),
            **({"nix": nix} if nix is not None else {}),
            # what `hlcon do` prints verbatim after "done:"
            "print": [
                "secret_client_config",
                "secret_qr",
                *(["nix"] if nix is not None else []),
            ],
        }


class _ExistingPeer(WgAction[PeerChange]):
    """Remove, disable, enable: act on one existing peer, named by name or public key."""

    def __init__(self, target: Target, lab: Lab, peer: str = "") -> None:
        super().__init__(target, lab)
        self.peer = peer

    @classmethod
    def create(cls, target: Target, lab: Lab, params: Mapping[str, Any]) -> _ExistingPeer:
        if target.kind != "vpn":
            raise ValueError(f"{cls.verb} acts on vpn:IFACE@HOST targets, not {target}")
        peer = str(params.get("peer") or params.get("name") or "").strip()
        if not peer:
            raise ValueError(f"{cls.verb} needs the peer: --name NAME (or its public key)")
        return cls(target, lab, check_peer(peer))

    async def live_psk(self, st: _State, key: str) -> str | None:
        result = await st.executor.run(
            ["wg", "show", st.cfg.interface, "preshared-keys"], timeout=CMD_TIMEOUT
        )
        if not result.ok:
            return None
        for line in result.stdout.splitlines():
            k, _, v = line.partition("\t")
            if k == key and v.strip() not in ("", "(none)"):
                return v.strip()
        return None

    def readd(self, st: _State, key: str, conf_peer: ConfPeer | None, psk: str | None) -> WgSet:
        """The `wg set` that puts the peer back live as it was (or as its conf block says)."""
        live = next((p for p in st.live.peers if p.public_key == key), None)
        values: dict[str, str | None]
        if live is not None:
            values = {
                "publickey": key,
                "allowedips": ",".join(live.allowed_ips),
                "endpoint": live.endpoint,
                "persistentkeepalive": str(live.keepalive) if live.keepalive else None,
            }
        elif conf_peer is not None and st.conf is not None:
            raw = block_values(st.conf, conf_peer)
            values = {
                "publickey": key,
                "allowedips": raw.get("allowedips"),
                "endpoint": raw.get("endpoint"),
                "persistentkeepalive": raw.get("persistentkeepalive"),
            }
            psk = psk or raw.get("presharedkey")
        else:
            raise ActionFailed(f"peer {key[:8]}… is neither live nor in the conf")
        return WgSet(tuple(wg_set_peer_argv(st.cfg.interface, values, psk is not None)), psk)


@register
class PeerRemove(_ExistingPeer):
    family = "vpn.peer-remove"
    verb = "peer-remove"

    async def plan(self) -> Plan[PeerChange]:
        st = await self.load()
        key, cp = self.find(st, self.peer)
        live_now = any(p.public_key == key for p in st.live.peers)
        psk = await self.live_psk(st, key) if live_now else None
        kept = self.remembered(st.cfg).get(key)
        label = cp.name if cp and cp.name else (kept or self.peer)
        rm = ["wg", "set", st.cfg.interface, "peer", key, "remove"]
        steps = [Step(f"remove peer {label} from {st.cfg.interface} live", st.cfg.host, tuple(rm))]
        diff = None
        conf: ConfChange | None = None
        if cp is not None and st.conf is not None and st.conf_text is not None:
            new = remove_block(st.conf, cp)
            diff = hidden_diff(st.conf_text, new, str(st.cfg.peers_file))
            steps.append(self.persist_step(st.cfg))
            conf = ConfChange(str(st.cfg.peers_file), st.conf_text, new, st.backup_text)
        data = PeerChange(
            name=label,
            public_key=key,
            undo=self.readd(st, key, cp, psk),
            live_before=live_now,
            live_after=False,
            conf=conf,
            remember=NameMemory(key, None, kept) if kept is not None else None,
        )
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"Remove peer {label} ({key[:8]}…) from {st.cfg.interface} on {st.cfg.host}",
            steps=tuple(steps),
            blast_radius=BlastRadius.DISRUPTIVE,
            confirmation=Confirmation(
                f"This cuts {label}'s access. Type {label} to remove it:", label
            ),
            reversible=True,
            diff=diff,
            data=data,
        )


@register
class PeerDisable(_ExistingPeer):
    family = "vpn.peer-disable"
    verb = "peer-disable"

    async def plan(self) -> Plan[PeerChange]:
        st = await self.load()
        key, cp = self.find(st, self.peer)
        if cp is None or st.conf is None or st.conf_text is None:
            raise ActionFailed(
                f"peer {self.peer!r} is not in a peers_file: disable keeps it there commented out"
            )
        if cp.disabled:
            raise ActionFailed(f"peer {self.peer!r} is already disabled")
        live_now = any(p.public_key == key for p in st.live.peers)
        psk = await self.live_psk(st, key) if live_now else None
        rm = ["wg", "set", st.cfg.interface, "peer", key, "remove"]
        new = set_block_disabled(st.conf, cp, True)
        label = cp.name or self.peer
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"Disable peer {label} on {st.cfg.interface}@{st.cfg.host}",
            steps=(
                Step(f"remove peer {label} from {st.cfg.interface} live", st.cfg.host, tuple(rm)),
                self.persist_step(st.cfg),
            ),
            blast_radius=BlastRadius.DISRUPTIVE,
            confirmation=Confirmation(
                f"This cuts {label}'s access. Type {label} to disable it:", label
            ),
            reversible=True,
            diff=hidden_diff(st.conf_text, new, str(st.cfg.peers_file)),
            data=PeerChange(
                name=label,
                public_key=key,
                undo=self.readd(st, key, cp, psk),
                live_before=live_now,
                live_after=False,
                conf=ConfChange(str(st.cfg.peers_file), st.conf_text, new, st.backup_text),
            ),
        )


@register
class PeerEnable(_ExistingPeer):
    family = "vpn.peer-enable"
    verb = "peer-enable"

    async def plan(self) -> Plan[PeerChange]:
        st = await self.load()
        key, cp = self.find(st, self.peer)
        if cp is None or st.conf is None or st.conf_text is None or not cp.disabled:
            raise ActionFailed(f"peer {self.peer!r} is not a disabled peer in the peers_file")
        add = self.readd(st, key, cp, None)
        new = set_block_disabled(st.conf, cp, False)
        label = cp.name or self.peer
        argv = add.argv
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"Enable peer {label} on {st.cfg.interface}@{st.cfg.host}",
            steps=(
                Step(f"add peer {label} to {st.cfg.interface} live", st.cfg.host, tuple(argv)),
                self.persist_step(st.cfg),
            ),
            blast_radius=BlastRadius.SINGLE,
            confirmation=Confirmation(f"Enable peer {label}?"),
            reversible=True,
            diff=hidden_diff(st.conf_text, new, str(st.cfg.peers_file)),
            data=PeerChange(
                name=label,
                public_key=key,
                undo=WgSet(("wg", "set", st.cfg.interface, "peer", key, "remove")),
                live_before=any(p.public_key == key for p in st.live.peers),
                live_after=True,
                live_stdin=add.stdin,
                conf=ConfChange(str(st.cfg.peers_file), st.conf_text, new, st.backup_text),
            ),
        )
