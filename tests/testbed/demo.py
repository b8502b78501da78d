"""A demo lab from the testbed's own parts, for a newcomer to see every pane filled (and for the
benches in bench/):

    python -m tests.testbed.demo up [--dir D] [--hosts N] [--containers N] [--refresh 5s]
    python -m tests.testbed.demo down [--dir D]

`up` starts (root needed: a test user, sshd on 127.0.0.x, network namespaces):

- a podman Docker-API socket with private storage and the demo containers (healthy, unhealthy,
  exited, crash loop, plain) plus N idle busybox containers (demo-000 …);
- N sshd hosts on 127.0.0.60… that the test user `hlcontest` logs into with a fresh key
  (a known_hosts file holds every host key);
- a wireguard-go pair in network namespaces with a real handshake (kept alive every 25 s) and a
  peer that never shakes hands;
- a restic repository with a snapshot, its password in a file (password = "file:…");
- a TLS server with a 5-day certificate, and Pebble + lego: a certificate that `cert renew`
  really renews;

then writes DIR/config.toml for hlcon pointing at all of it, prints `hlcon --config
DIR/config.toml`, and stays up until Ctrl-C, SIGTERM or `down`, removing everything it made.
DIR/demo.json (written once ready) names what it started: its pid, the network namespaces, and
strings found in the command line of every process it started (for checks that nothing is left).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.testbed import is_root
from tests.testbed.acme import MARGIN, CertServer, _acme_lab, make_cert, write_pair
from tests.testbed.podman import (
    IMAGE,
    HealthTicker,
    PodmanService,
    create_lab_containers,
    idle_command,
    podman,
    podman_service,
)
from tests.testbed.restic import ResticLab, make_tree
from tests.testbed.sshd import SshdLab, sshd_lab, testbed_dir
from tests.testbed.wireguard import SUBNET, WgTestbed, sh

DEFAULT_DIR = Path("/tmp/hlcon-demo")
FIRST_HOST = 60  # sshd hosts on 127.0.0.60 …: clear of the test fixtures' 127.0.0.21–49
DEMO_PASSWORD = "demo restic password"  # test-only


@dataclass
class DemoLab:
    """What `demo_lab()` started. `config` is the hlcon config file pointing at it."""

    directory: Path
    config: Path
    podman: PodmanService
    ssh: SshdLab
    wg: WgTestbed
    restic_repo: Path
    containers: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # in the argv of every process started

    def manifest(self) -> dict[str, object]:
        return {
            "pid": os.getpid(),
            "config": str(self.config),
            "namespaces": list(self.wg.namespaces),
            "tokens": self.tokens,
            "hosts": [h.name for h in self.ssh.hosts],
            "containers": len(self.containers),
        }


def create_idle_containers(env: dict[str, str], count: int, prefix: str = "demo") -> list[str]:
    """`count` running busybox containers PREFIX-000 … (no network, PID 1 exits on TERM);
    names that already exist are started, not created again."""
    names = [f"{prefix}-{i:03d}" for i in range(count)]
    existing = set(podman(env, "ps", "-a", "--format", "{{.Names}}").split())

    def create(name: str) -> None:
        if name not in existing:
            podman(env, "create", "--name", name, "--network", "none", IMAGE, *idle_command())

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, names))
    for i in range(0, count, 50):  # `podman start` takes many names at once
        podman(env, "start", *names[i : i + 50], timeout=600)
    return names


def _remove_containers(env: dict[str, str]) -> None:
    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
        podman(env, "stop", "--all", "--time", "0", timeout=900)
    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
        podman(env, "rm", "--all", "--force", "--time", "0", timeout=900)


def _toml(value: object) -> str:
    """A TOML value: JSON strings, numbers, booleans and arrays are valid TOML too."""
    if isinstance(value, Path):
        value = str(value)
    return json.dumps(value, ensure_ascii=False)


def _table(header: str, values: dict[str, object]) -> str:
    lines = [header]
    lines += [f"{k} = {_toml(v)}" for k, v in values.items() if v is not None]
    return "\n".join(lines) + "\n"


def write_config(
    path: Path,
    *,
    refresh: str,
    state_dir: Path,
    podman_url: str,
    ssh: SshdLab,
    wg: WgTestbed,
    restic_repo: Path,
    password_file: Path,
    certs: list[dict[str, object]],
) -> None:
    parts = [
        "# hlcon demo lab (tests/testbed/demo.py); removed when the demo stops.\n",
        _table("[console]", {"refresh": refresh, "state_dir": state_dir}),
        _table("[local]", {"containers": podman_url, "wireguard": False}),
    ]
    for h in ssh.hosts:
        parts.append(
            _table(
                "[[hosts]]",
                {
                    "name": f"demo-{h.name}",
                    "address": h.address,
                    "port": h.port,
                    "user": ssh.user,
                    "identity": ssh.identity,
                    "known_hosts": ssh.known_hosts,
                },
            )
        )
    parts.append(
        _table(
            "[[vpn]]",
            {
                "interface": wg.iface,
                "host": "local",
                "subnet": SUBNET,
                "endpoint": wg.endpoint_for_new,
                "peers_file": wg.conf,
                "stale_after": "3m",
                "always_on": ["laptop"],
                "netns": wg.ns_server,
            },
        )
    )
    parts.append(
        _table(
            "[[backups]]",
            {
                "name": "demo",
                "repository": restic_repo,
                "password": f"file:{password_file}",
                "max_age": "26h",
            },
        )
    )
    parts += [_table("[[certs]]", c) for c in certs]
    path.write_text("\n".join(parts))


def _restic_repo(root: Path) -> tuple[Path, Path]:
    """A repository with one snapshot of a small awkward tree; (repo, password file)."""
    source = root / "source data"
    source.mkdir(parents=True)
    make_tree(source, large=1, large_size=1 << 20)
    password = root / "password"
    password.write_text(DEMO_PASSWORD + "\n")
    password.chmod(0o600)
    lab = ResticLab(root, source, root / "repo", password, password)
    lab.restic("init")
    lab.restic("backup", "--host", "demo", "--tag", "daily", str(source))
    return lab.repo, password


@contextlib.contextmanager
def demo_lab(
    directory: Path = DEFAULT_DIR,
    *,
    hosts: int = 3,
    containers: int = 10,
    refresh: str = "5s",
    acme: bool = True,
    log: bool = True,
) -> Iterator[DemoLab]:
    """Start the demo lab; yield it; remove everything on exit (also on error mid-start)."""

    def say(text: str) -> None:
        if log:
            print(f"demo: {text}", flush=True)

    directory.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid() % 100000:05d}"
    with contextlib.ExitStack() as stack:
        t0 = time.monotonic()
        say("podman API socket and containers …")
        svc = stack.enter_context(podman_service(f"demo{tag}"))
        # Remove the containers while the API service still runs: removed after it has
        # stopped, the bridge-networked ones left their network namespaces behind.
        stack.callback(_remove_containers, svc.env)
        lab_containers = create_lab_containers(svc)
        ticker = HealthTicker(svc.env, lab_containers.healthchecked, interval=10.0)
        ticker.tick()
        ticker.start()
        stack.callback(ticker.stop)
        names = [*lab_containers.names, *create_idle_containers(svc.env, containers)]

        say(f"{hosts} sshd hosts …")
        ssh_dir = stack.enter_context(testbed_dir("demo"))
        ssh = stack.enter_context(sshd_lab(ssh_dir, count=hosts, first=FIRST_HOST))

        say("wireguard-go pair in network namespaces …")
        wg = WgTestbed(f"hd{tag[-4:]}", Path(tempfile.mkdtemp(prefix="hlcon-demo-wg-")))
        stack.callback(wg.teardown)
        wg.build()
        # keep the handshake fresh while the demo runs (it would go stale after 3 minutes)
        sh("wg", "set", wg.client_iface, "peer", wg.keys["server"][1], "persistent-keepalive", "25")

        say("restic repository …")
        repo, password = _restic_repo(directory / "restic")

        say("TLS endpoints …")
        cert_dir = directory / "certs"
        now = dt.datetime.now(dt.UTC)
        pair = make_cert(
            "svc.demo", ("svc.demo", "127.0.0.1"), not_after=now + dt.timedelta(days=5) + MARGIN
        )
        cert_file, key_file = write_pair(cert_dir, "svc-5-day", pair)
        server = CertServer(cert_file, key_file)
        stack.callback(server.stop)
        certs: list[dict[str, object]] = [
            {"name": "svc-demo", "endpoint": server.endpoint, "sni": "svc.demo", "warn_days": 21}
        ]
        tokens = [str(svc.socket.parent), str(ssh_dir), wg.prefix]
        if acme:
            acme_lab = stack.enter_context(contextlib.contextmanager(_acme_lab)(cert_dir / "acme"))
            certs.append(
                {
                    "name": "lab-local",
                    "endpoint": acme_lab.endpoint,
                    "sni": "lab.local",
                    "ca_file": acme_lab.root_ca,
                    "renew": acme_lab.renew_command,
                }
            )
            tokens.append(str(acme_lab.pebble.config))

        config = directory / "config.toml"
        write_config(
            config,
            refresh=refresh,
            state_dir=directory / "state",
            podman_url=svc.url,
            ssh=ssh,
            wg=wg,
            restic_repo=repo,
            password_file=password,
            certs=certs,
        )
        lab = DemoLab(directory, config, svc, ssh, wg, repo, names, tokens)
        say(f"ready in {time.monotonic() - t0:.1f} s")
        try:
            yield lab
        finally:
            say("stopping …")
            config.unlink(missing_ok=True)
    for leftover in ("restic", "certs", "state", "demo.json"):
        target = directory / leftover
        if target.is_dir():
            subprocess.run(["rm", "-rf", "--", str(target)], check=False)
        else:
            target.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()  # only if nothing else lives there
    say("stopped; everything removed")


class _Stop(Exception):
    pass


def _on_term(signum: int, frame: object) -> None:
    raise _Stop


def up(args: argparse.Namespace) -> int:
    if not is_root():
        print(
            "demo: needs root (a test user, sshd on 127.0.0.x, network namespaces)", file=sys.stderr
        )
        return 1
    directory: Path = args.dir.resolve()
    pid_file = directory / "demo.pid"
    with contextlib.suppress(FileNotFoundError, ValueError):
        other = int(pid_file.read_text())
        if _alive(other):
            print(f"demo: already running in {directory} (pid {other})", file=sys.stderr)
            return 1
    signal.signal(signal.SIGTERM, _on_term)
    directory.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        with demo_lab(
            directory,
            hosts=args.hosts,
            containers=args.containers,
            refresh=args.refresh,
            acme=not args.no_acme,
        ) as lab:
            manifest = directory / "demo.json"
            manifest.write_text(json.dumps(lab.manifest(), indent=2) + "\n")
            print(f"\n    hlcon --config {lab.config}\n", flush=True)
            print("demo: up; Ctrl-C (or `python -m tests.testbed.demo down`) stops it", flush=True)
            with contextlib.suppress(KeyboardInterrupt, _Stop):
                while True:
                    time.sleep(3600)
    except (KeyboardInterrupt, _Stop):
        pass  # stopped while starting: the context managers have cleaned up
    finally:
        pid_file.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            directory.rmdir()
    return 0


def _alive(pid: int) -> bool:
    """Running (a zombie — exited, not yet reaped by its parent — counts as stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def down(args: argparse.Namespace) -> int:
    pid_file = args.dir.resolve() / "demo.pid"
    try:
        pid = int(pid_file.read_text())
    except (FileNotFoundError, ValueError):
        print(f"demo: none running in {args.dir}", file=sys.stderr)
        return 1
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return 0
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            print("demo: stopped")
            return 0
        time.sleep(0.2)
    print(f"demo: pid {pid} still running after {args.timeout:.0f} s", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testbed.demo", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the demo lab and stay up until Ctrl-C / SIGTERM")
    p_up.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where config.toml goes")
    p_up.add_argument("--hosts", type=int, default=3, help="sshd hosts (default 3)")
    p_up.add_argument("--containers", type=int, default=10, help="extra idle containers")
    p_up.add_argument("--refresh", default="5s", help="[console] refresh (default 5s)")
    p_up.add_argument("--no-acme", action="store_true", help="no Pebble + lego certificate")
    p_up.set_defaults(func=up)
    p_down = sub.add_parser("down", help="stop the demo lab running in --dir")
    p_down.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    p_down.add_argument("--timeout", type=float, default=180.0)
    p_down.set_defaults(func=down)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
