"""Testbed component: throwaway sshd on loopback addresses (LAB-NOTES "SSH").

Each sshd has its own config, host key and pid file and listens on 127.0.0.X:PORT. Logins use
one session key, for the test user `hlcontest` (shell /bin/sh, so root's pyenv .bashrc does not
add ≈135 ms to every command) and for root (the remote-containers test needs the podman
socket). Plain functions serve the bench too:

- `ensure_test_user()`; `client_key(dir)`; `start_sshd(dir, address, ...)` → Sshd (stop/start);
- `Tarpit` — accepts TCP connections and never speaks (a hung host);
- `DelayProxy` — a TCP proxy adding a fixed delay each way (the kernel has no netem).

Session fixture `sshd_hosts` → SshdLab: four hosts on 127.0.0.21–24 with a known_hosts file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.testbed import is_root, require, require_tools

SSHD = "/usr/sbin/sshd"
TEST_USER = "hlcontest"
TEST_HOME = Path("/var/lib/hlcon-testbed/home")
BASE = Path("/tmp/hlcon-testbed/ssh")


def ensure_test_user() -> str:
    """A plain-shell user for SSH logins (idempotent; root only)."""
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        TEST_HOME.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["useradd", "--system", "--shell", "/bin/sh", "--home-dir", str(TEST_HOME),
             "--create-home", TEST_USER],
            check=True, capture_output=True,
        )  # fmt: skip
        # useradd leaves the account locked ("!"), which sshd refuses even for keys; "*" is
        # "no password" without the lock.
        subprocess.run(["usermod", "-p", "*", TEST_USER], check=True, capture_output=True)
    return TEST_USER


def client_key(directory: Path, name: str = "id_ed25519") -> Path:
    key = directory / name
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hlcon-test", "-f", str(key)],
            check=True,
        )
    return key


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Sshd:
    name: str
    address: str
    port: int
    workdir: Path
    host_key: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.workdir / "sshd_config"

    @property
    def host_key_pub(self) -> str:
        """'ssh-ed25519 AAAA…'"""
        parts = self.host_key.with_suffix(".pub").read_text().split()
        return f"{parts[0]} {parts[1]}"

    @property
    def known_hosts_line(self) -> str:
        return f"[{self.address}]:{self.port} {self.host_key_pub}\n"

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        log = (self.workdir / "sshd.log").open("ab")
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_banner(self.address, self.port, self.proc)

    def stop(self) -> None:
        """Kill it (the killed-sshd fault): new connections are refused."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def kill_all(self) -> None:
        """Kill the listener AND every session it forked (its process group): open connections
        drop, as when a host reboots."""
        if self.proc is not None and self.proc.poll() is None:
            # Sessions call setsid(), so the process group is not enough: walk the children.
            for pid in [*_descendants(self.proc.pid), self.proc.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def new_host_key(self) -> None:
        """Replace the host key (the 'reinstalled or impostor' case); restarts sshd."""
        self.stop()
        self.host_key.unlink()
        self.host_key.with_suffix(".pub").unlink()
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)], check=True
        )
        self.start()


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            out += [int(child), *_descendants(int(child))]
    return out


def wait_banner(
    address: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 15
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd on {address}:{port} exited {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((address, port), 1) as s:
            s.settimeout(2)
            if s.recv(64).startswith(b"SSH-"):
                return
        time.sleep(0.02)
    raise RuntimeError(f"sshd on {address}:{port} did not answer within {timeout}s")


def start_sshd(
    workdir: Path,
    name: str,
    address: str,
    authorized_keys: Path,
    *,
    port: int | None = None,
    users: tuple[str, ...] = (TEST_USER, "root"),
) -> Sshd:
    """An sshd of its own (config, host key, pid file) on address:port; started."""
    workdir.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
    host_key = workdir / "ssh_host_ed25519_key"
    if not host_key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True
        )
    port = port or free_port(address)
    sshd = Sshd(name, address, port, workdir, host_key)
    sshd.config.write_text(
        f"Port {port}\n"
        f"ListenAddress {address}\n"
        f"HostKey {host_key}\n"
        f"PidFile {workdir / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {authorized_keys}\n"
        "UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nUseDNS no\nMaxStartups 100:30:200\nMaxSessions 50\n"
        f"AllowUsers {' '.join(users)}\n"
        "AllowStreamLocalForwarding yes\nLogLevel ERROR\n"
    )
    sshd.start()
    return sshd


class Tarpit:
    """A TCP listener that accepts and never says a word: a host that hangs after connect."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, 0))
        self.sock.listen(64)
        self.address = address
        self.port: int = self.sock.getsockname()[1]
        self._held: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True, name="tarpit")
        self._thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        for conn in self._held:
            conn.close()
        self.sock.close()


class BlackHole:
    """An address whose packets vanish: a veth into a network namespace of our own whose
    iptables drops everything (LAB-NOTES). Connecting hangs until the client's timeout."""

    def __init__(self, index: int = 0) -> None:
        tag = f"{os.getpid() % 100000}{index}"
        self.ns = f"hlcbh{tag}"
        self.host_if, self.ns_if = f"hbh{tag}a", f"hbh{tag}b"
        octet = 4 * (os.getpid() % 60 + index)
        self.local, self.address = f"169.254.99.{octet + 1}", f"169.254.99.{octet + 2}"
        self.port = 22

    def __enter__(self) -> BlackHole:
        def ip(*args: str) -> None:
            subprocess.run(["ip", *args], check=True, capture_output=True)

        ip("netns", "add", self.ns)
        try:
            ip(
                "link",
                "add",
                self.host_if,
                "type",
                "veth",
                "peer",
                "name",
                self.ns_if,
                "netns",
                self.ns,
            )
            ip("addr", "add", f"{self.local}/30", "dev", self.host_if)
            ip("link", "set", self.host_if, "up")
            ip("-n", self.ns, "addr", "add", f"{self.address}/30", "dev", self.ns_if)
            ip("-n", self.ns, "link", "set", self.ns_if, "up")
            subprocess.run(
                ["ip", "netns", "exec", self.ns, "iptables", "-A", "INPUT", "-j", "DROP"],
                check=True, capture_output=True,
            )  # fmt: skip
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


class DelayProxy:
    """asyncio TCP proxy in front of host:port adding `delay` seconds each way (so a round trip
    costs 2×delay). Runs on its own event loop in a thread."""

    def __init__(self, target: tuple[str, int], delay: float, listen: str = "127.0.0.1") -> None:
        self.target = target
        self.delay = delay
        self.listen = listen
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="delay-proxy")
        self._server: asyncio.Server | None = None

    def start(self) -> DelayProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, self.listen, 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Each chunk is delivered `delay` after it arrived, in order, without blocking reads.
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - self._loop.time()))
                writer.write(data)
                await writer.drain()
            with contextlib.suppress(OSError):
                writer.write_eof()

        sender = asyncio.create_task(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((self._loop.time() + self.delay, data))
        except OSError:
            pass
        queue.put_nowait((0.0, b""))
        with contextlib.suppress(Exception):
            await sender

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        # stop() cancels every task; the handler then ends quietly (asyncio's server logs a
        # traceback for a connection handler that ends cancelled)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer))
        for w in (writer, up_w):
            w.close()

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        self._thread.join(5)


@dataclass
class SshdLab:
    hosts: list[Sshd]
    identity: Path
    user: str
    known_hosts: Path  # holds every host's key
    workdir: Path
    extra: list[Sshd] = field(default_factory=list)

    def by_name(self, name: str) -> Sshd:
        return next(h for h in [*self.hosts, *self.extra] if h.name == name)

    def extra_host(self, name: str) -> Sshd:
        """Another sshd (same login key) a test may break: kill it, change its key."""
        n = len(self.extra)
        sshd = start_sshd(
            self.workdir / f"x-{name}", name, f"127.0.0.{40 + n}", self.workdir / "authorized_keys"
        )
        self.extra.append(sshd)
        return sshd

    def known_hosts_text(self) -> str:
        return "".join(h.known_hosts_line for h in self.hosts)


def sshd_available() -> bool:
    return Path(SSHD).exists() and shutil.which("ssh-keygen") is not None


@contextlib.contextmanager
def sshd_lab(workdir: Path, count: int = 4, first: int = 21) -> Iterator[SshdLab]:
    user = ensure_test_user()
    key = client_key(workdir)
    authorized = workdir / "authorized_keys"
    authorized.write_text(key.with_suffix(".pub").read_text())
    authorized.chmod(0o644)
    os.chmod(workdir, 0o755)
    hosts: list[Sshd] = []
    try:
        for i in range(count):
            hosts.append(start_sshd(workdir / f"h{i}", f"h{i}", f"127.0.0.{first + i}", authorized))
        known = workdir / "known_hosts"
        lab = SshdLab(hosts, key, user, known, workdir)
        known.write_text(lab.known_hosts_text())
        yield lab
    finally:
        for h in [*hosts, *(lab.extra if "lab" in locals() else [])]:
            h.stop()


@pytest.fixture(scope="session")
def sshd_hosts() -> Iterator[SshdLab]:
    require(is_root(), "root (a test user and sshd on 127.0.0.x)")
    require(sshd_available(), f"openssh-server ({SSHD})")
    require_tools("ssh-keygen", "useradd")
    with testbed_dir("sshd") as workdir, sshd_lab(workdir) as lab:
        yield lab


@contextlib.contextmanager
def testbed_dir(prefix: str) -> Iterator[Path]:
    """A world-traversable work dir (sshd reads authorized_keys as the login user, and
    pytest's tmp dirs are root-only)."""
    BASE.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}-{os.getpid()}-", dir=BASE))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
