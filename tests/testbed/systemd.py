"""Testbed component: a real systemd host — Debian bookworm in podman (LAB-NOTES "systemd").

The root filesystem is made once by debootstrap from the Debian mirror in /etc/apt/sources.list*
and cached as a tarball under /var/cache/hlcon-testbed (≈60 s the first time, then seconds);
it is imported into podman's default storage as localhost/hlcon-debian-systemd:VERSION.

Inside: systemd as PID 1, journald, openssh-server, fail2ban (sshd jail, dummy ban action so bans
count without touching a firewall), `demo.service` (a long-running unit that logs its PID) and
`broken.service` (fails at boot). Root logs in with the session's key, mounted at run time.

Session fixture: `systemd_host` → SystemdHost (address, port, user, identity, host key line).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.testbed import is_root, require, require_tools
from tests.testbed.podman import podman, podman_env

VERSION = "v1"  # bump when the customisation below changes: the cache is rebuilt
CACHE = Path("/var/cache/hlcon-testbed")
TARBALL = CACHE / f"debian-systemd-bookworm-{VERSION}.tar"
IMAGE = f"localhost/hlcon-debian-systemd:{VERSION}"
PACKAGES = "systemd,systemd-sysv,openssh-server,dbus,procps,iproute2,fail2ban,python3-systemd"

DEMO_UNIT = """\
[Unit]
Description=hlcon demo service

[Service]
ExecStart=/bin/sh -c 'echo "demo started pid $$"; exec sleep infinity'

[Install]
WantedBy=multi-user.target
"""

BROKEN_UNIT = """\
[Unit]
Description=hlcon unit that always fails

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "broken: giving up" >&2; exit 3'

[Install]
WantedBy=multi-user.target
"""

JAIL_LOCAL = """\
[DEFAULT]
banaction = dummy
banaction_allports = dummy

[sshd]
enabled = true
backend = systemd
"""


def debian_mirror() -> str:
    """The first Debian (not security) mirror this machine's apt uses."""
    paths = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in paths:
        with contextlib.suppress(OSError):
            text = path.read_text()
            for m in re.finditer(r"(?:URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, re.M):
                uri = m.group(1)
                if "security" not in uri and "debian" in uri:
                    return uri
    return "http://deb.debian.org/debian"


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _customise(root: Path) -> None:
    units = root / "etc/systemd/system"
    wants = units / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (units / "demo.service").write_text(DEMO_UNIT)
    (units / "broken.service").write_text(BROKEN_UNIT)
    for unit in ("demo.service", "broken.service"):
        link = wants / unit
        if not link.is_symlink():
            link.symlink_to(f"/etc/systemd/system/{unit}")
    (root / "etc/fail2ban/jail.local").write_text(JAIL_LOCAL)
    sshd_d = root / "etc/ssh/sshd_config.d"
    sshd_d.mkdir(parents=True, exist_ok=True)
    (sshd_d / "hlcon-testbed.conf").write_text(
        "PermitRootLogin prohibit-password\nUseDNS no\nPasswordAuthentication no\n"
    )
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Units that cannot work in a container would be failed units on every boot: mask them so
    # the only failed unit is the one we planted.
    for unit in ("systemd-remount-fs.service", "getty@tty1.service", "console-getty.service"):
        mask = units / unit
        if not mask.exists() and not mask.is_symlink():
            mask.symlink_to("/dev/null")
    (root / "etc/hostname").write_text("hlcon-systemd\n")


def build_tarball() -> Path:
    """debootstrap + customise + tar, cached. Safe to call from parallel sessions."""
    with _lock(CACHE / ".build.lock"):
        if TARBALL.exists():
            return TARBALL
        with tempfile.TemporaryDirectory(prefix="debootstrap-", dir=CACHE) as tmp:
            root = Path(tmp) / "root"
            proc = subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={PACKAGES}",
                    "bookworm",
                    str(root),
                    debian_mirror(),
                ],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
                raise RuntimeError("debootstrap failed: " + " | ".join(tail))
            _customise(root)
            partial = TARBALL.with_suffix(".partial")
            subprocess.run(
                ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."],
                check=True,
                timeout=300,
            )
            os.replace(partial, TARBALL)
    return TARBALL


def ensure_image(env: dict[str, str]) -> str:
    with _lock(CACHE / ".import.lock"):
        exists = subprocess.run(
            ["podman", "image", "exists", IMAGE], env=env, capture_output=True, timeout=60
        )
        if exists.returncode == 0:
            return IMAGE
        tarball = build_tarball()
        with tarball.open("rb") as f:
            proc = subprocess.run(
                [
                    "podman",
                    "import",
                    "--change",
                    'CMD ["/sbin/init"]',
                    "--change",
                    "STOPSIGNAL SIGRTMIN+3",
                    "-",
                    IMAGE,
                ],
                stdin=f,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
        if proc.returncode != 0:
            raise RuntimeError(f"podman import failed: {proc.stderr.strip()}")
    return IMAGE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class SystemdHost:
    name: str  # the container's name
    address: str
    port: int
    user: str
    identity: Path  # private key file
    known_hosts_line: str  # "[127.0.0.1]:PORT ssh-ed25519 AAAA…"
    env: dict[str, str]

    def exec(self, *argv: str, timeout: float = 60) -> str:
        """Run argv inside the host (through podman, not SSH): for test setup and checks."""
        return podman(self.env, "exec", self.name, *argv, timeout=timeout)


def _wait_ssh_banner(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.settimeout(2)
            if s.recv(64).startswith(b"SSH-"):
                return
        time.sleep(0.1)
    raise RuntimeError(f"sshd in the systemd container did not answer on port {port}")


def _wait_booted(host: SystemdHost, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        proc = subprocess.run(
            ["podman", "exec", host.name, "systemctl", "is-system-running"],
            env=host.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        state = proc.stdout.strip()
        if state in ("running", "degraded"):
            return state
        time.sleep(0.2)
    raise RuntimeError(f"systemd in {host.name} not up within {timeout}s (state {state!r})")


@contextlib.contextmanager
def systemd_container(workdir: Path) -> Iterator[SystemdHost]:
    env = podman_env()
    image = ensure_image(env)
    key = workdir / "id_ed25519"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hlcon-testbed", "-f", str(key)],
            check=True,
        )
    pub = key.with_suffix(".pub")
    pub.chmod(0o644)
    port = free_port()
    name = f"hlcon-systemd-{os.getpid()}"
    with contextlib.suppress(RuntimeError):
        podman(env, "rm", "--force", "--time", "0", name)
    podman(
        env,
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        "hlcon-systemd",
        "--systemd=always",
        "-p",
        f"127.0.0.1:{port}:22",
        "-v",
        f"{pub}:/root/.ssh/authorized_keys:ro",
        image,
    )
    try:
        host_key = podman(env, "exec", name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").split()
        host = SystemdHost(
            name=name,
            address="127.0.0.1",
            port=port,
            user="root",
            identity=key,
            known_hosts_line=f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}",
            env=env,
        )
        _wait_booted(host)
        _wait_ssh_banner(port)
        yield host
    finally:
        with contextlib.suppress(Exception):
            podman(env, "rm", "--force", "--time", "0", name, timeout=120)


def systemd_available() -> bool:
    return TARBALL.exists() or shutil.which("debootstrap") is not None


@pytest.fixture(scope="session")
def systemd_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemdHost]:
    require_tools("podman", "runc", "ssh-keygen", "tar")
    require(is_root(), "root (podman with systemd, debootstrap)")
    require(systemd_available(), "debootstrap (or a cached image)")
    with systemd_container(tmp_path_factory.mktemp("systemd-host")) as host:
        yield host


if __name__ == "__main__":  # warm the cache: python -m tests.testbed.systemd
    print(ensure_image(podman_env()))
