"""The WireGuard reader (I/O): UAPI socket, netlink, `wg show dump` over the host's executor,
link state through pyroute2, and the conf file read from the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.config import Config, VpnConfig
from lab.execute import LocalExecutor
from lab.model import WgInterface
from lab.poller import ReadError
from lab.vpn.conf import parse_wg_quick_conf
from lab.vpn.interface import build_interface
from lab.vpn.names import names_path, remembered_names, target_name
from lab.vpn.parse import (
    RawInterface,
    parse_ip_addr_json,
    parse_uapi,
    parse_wg_dump,
    parse_wg_netlink,
)

if TYPE_CHECKING:
    from lab.execute import Executor
    from lab.poller import Reader
    from lab.wiring import Lab

UAPI_DIR = Path("/var/run/wireguard")
WG_TIMEOUT = 10.0


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
