"""Testbed component: podman and its Docker-compatible API (LAB-NOTES.md, "Containers").

Plain functions other testbed modules import:

- `podman_env(session=None) -> dict[str, str]`: the environment for running `podman` here
  (CONTAINERS_CONF points at a containers.conf that picks runc, cgroupfs and ulimits that work on
  this machine). With `session`, podman also gets its own storage, state, locks and events under
  /tmp/hlcon-testbed/podman/s/SESSION, so fixed container names never clash between two
  pytest runs going on at the same time in this checkout.
- `ensure_busybox_image(env)`: localhost/busybox:latest from busybox-static; idempotent.
- `podman(env, *args)`: run the CLI, raising with its stderr on failure.

Session fixtures: `podman_socket` (a `podman system service` on a unix socket; yields its URL)
and `lab_containers` (the demo set: healthy, unhealthy, exited non-zero, restart loop).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.testbed import end_process, require, require_tools

ROOT = Path("/tmp/hlcon-testbed/podman")
IMAGE = "localhost/busybox:latest"
BUSYBOX = Path("/bin/busybox")

_CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def _write_if_changed(path: Path, text: str) -> None:
    """Atomic write (temp file + rename), so concurrent callers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if path.read_text() == text:
            return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def session_dir(session: str) -> Path:
    # Kept short: podman refuses a runroot longer than 50 characters, and only says so in
    # conmon's `container cleanup` — which then never runs, and restart policies die silently.
    base = ROOT / "s" / session
    if len(str(base / "run")) > 50:
        raise ValueError(f"podman session name {session!r} too long for a runroot under {ROOT}")
    return base


def podman_env(session: str | None = None) -> dict[str, str]:
    """os.environ plus CONTAINERS_CONF (and, per session, CONTAINERS_STORAGE_CONF)."""
    env = dict(os.environ)
    if session is None:
        conf = ROOT / "containers.conf"
        _write_if_changed(conf, _CONTAINERS_CONF)
        env["CONTAINERS_CONF"] = str(conf)
        return env
    base = session_dir(session)
    # Own storage, database and tmp_dir. The shm lock segment stays shared: it allocates lock
    # numbers for every database on the machine, so containers of two sessions never share a lock.
    # tmp_dir must be private: its `alive` file tells podman the machine has not rebooted, and
    # another session's `system reset` deletes the default /run/libpod — the next podman process
    # of this session then "refreshes" every container's state as after a reboot, and restarts
    # fail "runc create failed: container with given ID already exists".
    conf_text = _CONTAINERS_CONF + (
        f'static_dir = "{base}/storage/libpod"\nvolume_path = "{base}/storage/volumes"\n'
        f'tmp_dir = "{base}/tmp"\n'
    )
    storage_text = (
        f'[storage]\ndriver = "overlay"\ngraphroot = "{base}/storage"\nrunroot = "{base}/run"\n'
    )
    _write_if_changed(base / "containers.conf", conf_text)
    _write_if_changed(base / "storage.conf", storage_text)
    env["CONTAINERS_CONF"] = str(base / "containers.conf")
    env["CONTAINERS_STORAGE_CONF"] = str(base / "storage.conf")
    return env


def podman(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    """Run `podman ARGS` (an argv, never a shell); return stdout or raise with stderr."""
    proc = subprocess.run(
        ["podman", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"podman {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}"
        )
    return proc.stdout


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_busybox_image(env: dict[str, str]) -> str:
    """Import busybox-static as localhost/busybox:latest unless present. Returns the image name."""
    lock = Path(env.get("CONTAINERS_STORAGE_CONF", str(ROOT / "default"))).with_suffix(".lock")
    with _file_lock(lock):
        exists = subprocess.run(
            ["podman", "image", "exists", IMAGE], env=env, capture_output=True, timeout=60
        )
        if exists.returncode == 0:
            return IMAGE
        with tempfile.TemporaryDirectory(prefix="busybox-rootfs-") as tmp:
            rootfs = Path(tmp)
            for d in ("bin", "sbin", "usr/bin", "usr/sbin", "tmp", "etc", "proc", "sys", "dev"):
                (rootfs / d).mkdir(parents=True, exist_ok=True)
            shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
            applets = subprocess.run(
                [str(BUSYBOX), "--list-full"], capture_output=True, text=True, check=True
            ).stdout.split()
            for applet in applets:
                link = rootfs / applet
                if not link.exists():
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to("/bin/busybox")
            (rootfs / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
            (rootfs / "etc/group").write_text("root:x:0:\n")
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            imp = subprocess.run(
                ["podman", "import", "--change", 'CMD ["/bin/sh"]', "-", IMAGE],
                stdin=tar.stdout,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            tar.wait()
            if imp.returncode != 0:
                raise RuntimeError(f"podman import failed: {imp.stderr.strip()}")
    return IMAGE


# Crashes quickly for its first restarts (so the loop shows at once), then every few seconds
# (so it doesn't keep 2 cores busy). The counter lives in the container's own filesystem.
_CRASH_LOOP = (
    "n=$(cat /tmp/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/n; "
    'echo "crashing (run $n)"; if [ $n -gt 6 ]; then sleep 5; fi; exit 1'
)


# PID 1 that exits on TERM, so stop/restart take milliseconds instead of the 10 s kill timeout.
def idle_command(seconds: int = 100000) -> list[str]:
    return ["sh", "-c", f'trap "exit 0" TERM; sleep {seconds} & wait']


@dataclass(frozen=True)
class PodmanService:
    url: str  # unix:///…/podman.sock, for docker.DockerClient(base_url=…)
    socket: Path
    env: dict[str, str]
    session: str


def _wait_for_socket(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"podman system service exited {proc.returncode}")
        if path.exists():
            with socket.socket(socket.AF_UNIX) as s, contextlib.suppress(OSError):
                s.connect(str(path))
                return
        time.sleep(0.05)
    raise RuntimeError(f"podman API socket {path} not ready within {timeout}s")


@contextlib.contextmanager
def podman_service(session: str) -> Iterator[PodmanService]:
    """A `podman system service` on its own socket and storage; removed afterwards."""
    env = podman_env(session)
    base = session_dir(session)
    sock = base / "podman.sock"
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    ensure_busybox_image(env)
    log = (base / "service.log").open("wb")
    proc = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for_socket(sock, proc)
        yield PodmanService(f"unix://{sock}", sock, env, session)
    finally:
        # Remove the containers while the API service still runs: after it stops, a large
        # session's `rm` outlived its timeout and left containers and namespaces behind.
        with contextlib.suppress(Exception):
            podman(env, "rm", "--all", "--force", "--time", "0", timeout=120)
        end_process(proc)
        log.close()
        with contextlib.suppress(Exception):
            podman(env, "system", "reset", "--force", timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def podman_available() -> bool:
    return shutil.which("podman") is not None and BUSYBOX.exists()


@pytest.fixture(scope="session")
def podman_service_session() -> Iterator[PodmanService]:
    require_tools("podman", "runc", "tar")
    require(BUSYBOX.exists(), f"busybox-static ({BUSYBOX})")
    with podman_service(f"pt{os.getpid()}") as service:
        yield service


@pytest.fixture(scope="session")
def podman_socket(podman_service_session: PodmanService) -> str:
    """The URL of a podman Docker-API socket private to this pytest session."""
    return podman_service_session.url


# ---------------------------------------------------------------- the demo containers


@dataclass(frozen=True)
class LabContainers:
    """The demo set on `url`. Names are fixed (the session's storage is private)."""

    url: str
    env: dict[str, str]
    healthy: str = "web-healthy"
    unhealthy: str = "web-unhealthy"
    exited: str = "job-exited"
    looping: str = "crash-loop"
    plain: str = "db-plain"  # running, no healthcheck

    @property
    def names(self) -> tuple[str, ...]:
        return (self.healthy, self.unhealthy, self.exited, self.looping, self.plain)

    @property
    def healthchecked(self) -> tuple[str, ...]:
        return (self.healthy, self.unhealthy)


class HealthTicker:
    """Runs `podman healthcheck run` for each container every `interval` s — the timer that
    systemd runs on a real host and that does not exist here."""

    def __init__(self, env: dict[str, str], names: tuple[str, ...], interval: float = 1.0):
        self.env = env
        self.names = names
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="podman-healthcheck", daemon=True)

    def tick(self) -> None:
        for name in self.names:
            # Exit 1 = unhealthy, 125 = not running (mid-restart): both are fine here.
            with contextlib.suppress(subprocess.TimeoutExpired):
                subprocess.run(
                    ["podman", "healthcheck", "run", name],
                    env=self.env,
                    capture_output=True,
                    timeout=30,
                )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


# The demo containers need no network. With podman's CNI bridge, the IP allocations in
# /var/lib/cni/networks/podman are shared by every storage root on the machine, and a long suite
# (several sessions set up and reset) ended with restarts failing "duplicate allocation is not
# allowed" for the container's own address. Tests that need a port map one on their own container.
NO_NETWORK = ("--network", "none")


def create_lab_containers(service: PodmanService) -> LabContainers:
    env = service.env
    lab = LabContainers(service.url, env)
    for name in lab.names:
        with contextlib.suppress(RuntimeError):
            podman(env, "rm", "--force", "--time", "0", name)
    idle = idle_command()
    podman(
        env, "run", "-d", "--name", lab.healthy, "--label", "hlcon.demo=1", *NO_NETWORK,
        "--health-cmd", "true", "--health-interval", "0", IMAGE, *idle,
    )  # fmt: skip
    podman(
        env, "run", "-d", "--name", lab.unhealthy, "--label", "hlcon.demo=1", *NO_NETWORK,
        "--health-cmd", "false", "--health-retries", "1", "--health-interval", "0",
        IMAGE, *idle,
    )  # fmt: skip
    podman(
        env, "run", "-d", "--name", lab.plain, "--label", "hlcon.demo=1", *NO_NETWORK, IMAGE, *idle
    )
    podman(
        env, "run", "-d", "--name", lab.exited, "--label", "hlcon.demo=1", *NO_NETWORK,
        IMAGE, "sh", "-c", "echo job failing; exit 3",
    )  # fmt: skip
    podman(
        env, "run", "-d", "--name", lab.looping, "--label", "hlcon.demo=1", *NO_NETWORK,
        "--restart", "always", IMAGE, "sh", "-c", _CRASH_LOOP,
    )  # fmt: skip
    # Wait for the one-shot job to finish and the loop to have restarted a few times.
    deadline = time.monotonic() + 60
    seen = ""
    while time.monotonic() < deadline:
        state = podman(env, "inspect", "--format", "{{.State.Status}}", lab.exited).strip()
        loop = podman(
            env, "inspect", "--format", "{{.RestartCount}} {{.State.Status}}", lab.looping
        ).split()
        seen = f"{lab.exited} {state}, {lab.looping} restarts {' '.join(loop)}"
        if state in ("exited", "stopped") and int(loop[0]) >= 6:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"demo containers did not settle within 60 s: {seen}")
    return lab


@pytest.fixture(scope="session")
def lab_containers(podman_service_session: PodmanService) -> Iterator[LabContainers]:
    """The demo containers, with a health-check ticker running for the session."""
    lab = create_lab_containers(podman_service_session)
    ticker = HealthTicker(lab.env, lab.healthchecked)
    ticker.tick()  # health is known before the first test reads it
    ticker.start()
    try:
        yield lab
    finally:
        ticker.stop()
