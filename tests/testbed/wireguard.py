"""Testbed component: wireguard-go in network namespaces, with a real handshake (LAB-NOTES.md,
"WireGuard"; the kernel here has no WireGuard module, so the interfaces are userspace ones).

Topology (PREFIX is unique per pytest process, so parallel sessions never collide; interface
names must differ across namespaces because the UAPI sockets in /var/run/wireguard are global):

    PREFIX-c1 ──veth 192.168.201.0/24── PREFIX-srv ──veth 192.168.202.0/24── PREFIX-c2
    wg PREFIXc (10.77.0.2)              wg PREFIXs (10.77.0.1/24, :51820)     (empty: a new
                                        conf: /tmp/…/PREFIXs.conf              peer's device)

The server knows two peers: "laptop" (PREFIX-c1, which pings across the tunnel: a real
handshake and transfer) and "phone" (a key with no device: never shakes hands, so stale).
PREFIX-c2 is where a peer made by peer-add comes up (`bring_up_client`).

Session fixture `wg_testbed` yields a WgTestbed; everything is torn down after the session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab.config import Config, ConsoleConfig, LocalConfig, VpnConfig
from tests.testbed import is_root, require, require_tools

UAPI = Path("/var/run/wireguard")
SUBNET = "10.77.0.0/24"


def sh(*argv: str, input: str | None = None) -> str:
    """Run a command, raising with its stderr on failure."""
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def genkey() -> tuple[str, str]:
    private = sh("wg", "genkey").strip()
    return private, sh("wg", "pubkey", input=private + "\n").strip()


def ping(ns: str, address: str, count: int = 2) -> bool:
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, "busybox", "ping", "-c", str(count), "-W", "2", address],
        capture_output=True,
        timeout=30,
    )
    return proc.returncode == 0


@dataclass
class WgTestbed:
    prefix: str
    root: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # role -> (private, public)

    @property
    def ns_server(self) -> str:
        return f"{self.prefix}-srv"

    @property
    def ns_client(self) -> str:
        return f"{self.prefix}-c1"

    @property
    def ns_new(self) -> str:
        return f"{self.prefix}-c2"

    @property
    def iface(self) -> str:
        return f"{self.prefix}s"

    @property
    def client_iface(self) -> str:
        return f"{self.prefix}c"

    @property
    def conf(self) -> Path:
        return self.root / f"{self.iface}.conf"

    @property
    def endpoint_for_new(self) -> str:
        return "192.168.202.1:51820"

    def vpn_config(self, **overrides: object) -> VpnConfig:
        values: dict[str, object] = {
            "interface": self.iface,
            "host": "local",
            "subnet": SUBNET,
            "endpoint": self.endpoint_for_new,
            "peers_file": self.conf,
            "stale_after": 180.0,
            "always_on": ("laptop", "phone"),
            "netns": self.ns_server,
        }
        values.update(overrides)
        return VpnConfig(**values)  # type: ignore[arg-type]

    def config(self, state_dir: Path, **overrides: object) -> Config:
        return Config(
            source="<wg testbed>",
            console=ConsoleConfig(state_dir=state_dir),
            local=LocalConfig(containers="none", wireguard=False),
            vpn=(self.vpn_config(**overrides),),
        )

    # ---- building

    def start_wireguard_go(self, ns: str, iface: str) -> None:
        env = {**os.environ, "WG_PROCESS_FOREGROUND": "1"}
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, "wireguard-go", iface],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs.append(proc)
        sock = UAPI / f"{iface}.sock"
        deadline = time.monotonic() + 10
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"wireguard-go {iface} in {ns} did not start")
            time.sleep(0.02)

    def add_ns(self, ns: str) -> None:
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")

    def veth(self, a_ns: str, a: str, a_ip: str, b_ns: str, b: str, b_ip: str) -> None:
        sh("ip", "link", "add", a, "netns", a_ns, "type", "veth", "peer", "name", b, "netns", b_ns)
        for ns, dev, ip in ((a_ns, a, a_ip), (b_ns, b, b_ip)):
            sh("ip", "-n", ns, "addr", "add", ip, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")

    def build(self) -> None:
        for ns in (self.ns_server, self.ns_client, self.ns_new):
            self.add_ns(ns)
        p = self.prefix
        self.veth(
            self.ns_server,
            f"{p}v1",
            "192.168.201.1/24",
            self.ns_client,
            f"{p}v2",
            "192.168.201.2/24",
        )
        self.veth(
            self.ns_server, f"{p}v3", "192.168.202.1/24", self.ns_new, f"{p}v4", "192.168.202.2/24"
        )
        for role in ("server", "laptop", "phone"):
            self.keys[role] = genkey()
        srv_priv, srv_pub = self.keys["server"]
        lap_priv, lap_pub = self.keys["laptop"]
        _, phone_pub = self.keys["phone"]
        self.conf.write_text(
            "[Interface]\n"
            "Address = 10.77.0.1/24\n"
            "ListenPort = 51820\n"
            f"PrivateKey = {srv_priv}\n"
            "\n"
            "# laptop\n"
            "[Peer]\n"
            f"PublicKey = {lap_pub}\n"
            "AllowedIPs = 10.77.0.2/32\n"
            "\n"
            "[Peer]\n"
            "# name = phone\n"
            f"PublicKey = {phone_pub}\n"
            "AllowedIPs = 10.77.0.3/32\n"
        )
        self.conf.chmod(0o600)
        # the server, as wg-quick would bring it up from the conf
        self.start_wireguard_go(self.ns_server, self.iface)
        stripped = self.root / "server.setconf"
        stripped.write_text(
            "\n".join(
                ln for ln in self.conf.read_text().splitlines() if not ln.startswith("Address")
            )
        )
        sh("wg", "setconf", self.iface, str(stripped))
        stripped.unlink()
        sh("ip", "-n", self.ns_server, "addr", "add", "10.77.0.1/24", "dev", self.iface)
        sh("ip", "-n", self.ns_server, "link", "set", self.iface, "mtu", "1420", "up")
        # the laptop
        self.start_wireguard_go(self.ns_client, self.client_iface)
        key = self.root / "laptop.key"
        key.write_text(lap_priv + "\n")
        key.chmod(0o600)
        sh(
            "wg", "set", self.client_iface, "private-key", str(key),
            "peer", srv_pub, "allowed-ips", SUBNET, "endpoint", "192.168.201.1:51820",
        )  # fmt: skip
        sh("ip", "-n", self.ns_client, "addr", "add", "10.77.0.2/24", "dev", self.client_iface)
        sh("ip", "-n", self.ns_client, "link", "set", self.client_iface, "up")
        if not ping(self.ns_client, "10.77.0.1"):
            raise RuntimeError("laptop could not ping the server across the tunnel")

    def bring_up_client(self, iface: str, client_conf: str) -> None:
        """A new device in PREFIX-c2 from a generated client config, as wg-quick would:
        setconf without the wg-quick keys, Address on the link, a route per AllowedIPs."""
        self.start_wireguard_go(self.ns_new, iface)
        addresses: list[str] = []
        routes: list[str] = []
        kept: list[str] = []
        for line in client_conf.splitlines():
            key, _, value = line.partition("=")
            k = key.strip().lower()
            if k == "address":
                addresses += [v.strip() for v in value.split(",")]
            elif k == "dns":
                continue
            else:
                if k == "allowedips":
                    routes += [v.strip() for v in value.split(",")]
                kept.append(line)
        fd, tmp = tempfile.mkstemp(dir=self.root)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(kept) + "\n")
        try:
            sh("wg", "setconf", iface, tmp)
        finally:
            os.unlink(tmp)
        for a in addresses:
            sh("ip", "-n", self.ns_new, "addr", "add", a, "dev", iface)
        sh("ip", "-n", self.ns_new, "link", "set", iface, "up")
        for r in routes:
            sh("ip", "-n", self.ns_new, "route", "replace", r, "dev", iface)

    def teardown(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        for sock in UAPI.glob(f"{self.prefix}*.sock"):
            sock.unlink(missing_ok=True)
        subprocess.run(["chattr", "-i", str(self.conf)], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def require_wireguard() -> None:
    require(is_root(), "root (network namespaces)")
    require_tools("wireguard-go", "wg", "ip", "busybox", "chattr")


@pytest.fixture(scope="session")
def wg_testbed() -> Iterator[WgTestbed]:
    require_wireguard()
    prefix = f"h{os.getpid() % 100000:05d}"
    bed = WgTestbed(prefix, Path(tempfile.mkdtemp(prefix=f"hlcon-wg-{prefix}-")))
    try:
        bed.build()
        yield bed
    finally:
        bed.teardown()
