"""A full host refresh of 20 SSH hosts: hlcon beside OpenSSH (sequential and 20 parallel) and
ansible, on loopback and again with 50 ms round trips (a delaying TCP proxy per sshd; the
kernel here has no netem).

Every contender runs the same text: hlcon's own host script (load, memory, uptime, CPU, df,
kernel, systemd, failed units, services, fail2ban) as the test user `hlcontest`, whose shell
is /bin/sh (root's .bashrc here runs pyenv and adds ≈135 ms per command).

    .venv/bin/python bench/hosts.py [--hosts 20] [--rounds 5] [--no-ansible]

ansible-core is installed into its own venv under /tmp (never the project's).
Needs root (a test user, sshd on 127.0.0.10–29).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.config import Config, ConsoleConfig, HostConfig, LocalConfig
from lab.hosts import HostReader, host_script
from lab.wiring import Lab
from tests.testbed.sshd import (
    DelayProxy,
    Sshd,
    client_key,
    ensure_test_user,
    start_sshd,
    testbed_dir,
)

ANSIBLE_VENV = Path("/tmp/hlcon-bench-ansible")
COMMAND = ["sh", "-c", host_script(units=True), "hlcon-host"]


def ensure_ansible() -> Path | None:
    exe = ANSIBLE_VENV / "bin" / "ansible"
    if exe.exists():
        return exe
    print("installing ansible-core into", ANSIBLE_VENV, "…", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(ANSIBLE_VENV)], check=True)
        subprocess.run([str(ANSIBLE_VENV / "bin/pip"), "install", "-q", "ansible-core"], check=True)
    except subprocess.CalledProcessError as exc:
        print("ansible unavailable:", exc)
        return None
    return exe


class Target:
    def __init__(self, name: str, address: str, port: int) -> None:
        self.name, self.address, self.port = name, address, port


def ssh_argv(t: Target, key: Path, known: Path, user: str) -> list[str]:
    return [
        "ssh", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known}",
        "-o", "StrictHostKeyChecking=yes", "-o", "ControlMaster=no", "-i", str(key),
        "-p", str(t.port), f"{user}@{t.address}", shlex.join(COMMAND),
    ]  # fmt: skip


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


async def atimed(fn: Callable[[], Awaitable[object]]) -> float:
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


def run_ok(argv: list[str], **kw: object) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {proc.stderr.strip()[-300:]}")


def sequential_ssh(targets: list[Target], key: Path, known: Path, user: str) -> None:
    for t in targets:
        run_ok(ssh_argv(t, key, known, user), timeout=60)


def parallel_ssh(targets: list[Target], key: Path, known: Path, user: str) -> None:
    procs = [
        subprocess.Popen(
            ssh_argv(t, key, known, user), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for t in targets
    ]
    for p in procs:
        p.communicate(timeout=60)
        if p.returncode != 0:
            raise RuntimeError("parallel ssh failed")


def ansible_inventory(
    workdir: Path, targets: list[Target], key: Path, known: Path, user: str
) -> Path:
    ctl = workdir / "cp"
    ctl.mkdir(exist_ok=True)
    lines = ["[all]"]
    for t in targets:
        lines.append(
            f"{t.name} ansible_host={t.address} ansible_port={t.port} ansible_user={user} "
            f"ansible_ssh_private_key_file={key} ansible_python_interpreter=/usr/bin/python3"
        )
    lines += [
        "[all:vars]",
        f"ansible_ssh_common_args='-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes "
        f"-o ControlMaster=auto -o ControlPersist=120s -o ControlPath={ctl}/%C'",
    ]
    inv = workdir / f"inventory-{targets[0].port}.ini"
    inv.write_text("\n".join(lines) + "\n")
    return inv


def run_ansible(exe: Path, inv: Path, n: int, pipelining: bool) -> None:
    env = {
        **os.environ,
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PIPELINING": "True" if pipelining else "False",
        "ANSIBLE_LOCAL_TEMP": "/tmp/hlcon-bench-ansible/tmp",
        "ANSIBLE_REMOTE_TEMP": "/tmp/.ansible-hlcontest",
        "ANSIBLE_GATHERING": "explicit",
    }
    run_ok(
        [str(exe), "all", "-i", str(inv), "-m", "shell", "-a", shlex.join(COMMAND), "-f", str(n)],
        env=env,
        timeout=600,
    )


async def bench_hlcon(
    targets: list[Target], key: Path, known: Path, user: str, rounds: int, state: Path
) -> dict[str, float]:
    hosts = tuple(
        HostConfig(
            name=t.name, address=t.address, port=t.port, user=user, identity=key,
            known_hosts=known, services=("ssh",),
        )
        for t in targets
    )  # fmt: skip
    lab = Lab(
        Config(
            console=ConsoleConfig(state_dir=state), local=LocalConfig(enabled=False), hosts=hosts
        )
    )
    readers = [
        HostReader(
            h.name, lab.executor(h.name), interval=5, timeout=30, units=True, services=h.services
        )
        for h in hosts
    ]
    try:
        cold = await atimed(lambda: asyncio.gather(*(r.read() for r in readers)))
        warm = [
            await atimed(lambda: asyncio.gather(*(r.read() for r in readers)))
            for _ in range(rounds)
        ]
        one = readers[0]
        single = [await atimed(one.read) for _ in range(rounds)]
        ex = lab.executor(hosts[0].name)
        rtt = [await atimed(lambda: ex.run(["true"], timeout=10)) for _ in range(rounds)]
        executors = [lab.executor(h.name) for h in hosts]
        all_true = [
            await atimed(lambda: asyncio.gather(*(e.run(["true"], timeout=10) for e in executors)))
            for _ in range(rounds)
        ]
    finally:
        await lab.close()
    return {
        "cold": cold,
        "warm": statistics.median(warm),
        "single": statistics.median(single),
        "true": statistics.median(rtt),
        "all_true": statistics.median(all_true),
    }


def scenario(
    label: str,
    targets: list[Target],
    key: Path,
    known: Path,
    user: str,
    rounds: int,
    workdir: Path,
    ansible: Path | None,
) -> None:
    n = len(targets)
    print(f"\n== {label}: {n} hosts ==", flush=True)
    h = asyncio.run(bench_hlcon(targets, key, known, user, rounds, workdir / "state"))
    seq = timed(lambda: sequential_ssh(targets, key, known, user))
    par = statistics.median(
        timed(lambda: parallel_ssh(targets, key, known, user)) for _ in range(3)
    )
    rows = [
        ("hlcon warm (open connections)", h["warm"]),
        ("hlcon cold (connect included)", h["cold"]),
        ("  one host, same read, warm", h["single"]),
        ("  one host, `true`, warm", h["true"]),
        (f"  all {n} hosts, `true`, warm", h["all_true"]),
        (f"OpenSSH sequential ({n} ssh)", seq),
        (f"OpenSSH parallel ({n} ssh at once)", par),
    ]
    if ansible is not None:
        inv = ansible_inventory(workdir, targets, key, known, user)
        for pipelining in (False, True):
            tag = "pipelining" if pipelining else "no pipelining"
            cold_a = timed(lambda p=pipelining: run_ansible(ansible, inv, n, p))  # type: ignore[misc]
            warm_a = timed(lambda p=pipelining: run_ansible(ansible, inv, n, p))  # type: ignore[misc]
            rows.append((f"ansible -m shell -f {n}, {tag}, cold", cold_a))
            rows.append((f"ansible -m shell -f {n}, {tag}, warm", warm_a))
    for name, seconds in rows:
        ratio = f"{seconds / h['warm']:7.1f}x" if not name.startswith("hlcon warm") else "    1.0x"
        print(f"  {name:44s} {seconds * 1000:9.1f} ms  {ratio}")
    print(
        f"  warm refresh / one host's read: {h['warm'] / h['single']:.2f} "
        f"(goal ≤ 1.5); {n} × `true` / one `true`: {h['all_true'] / h['true']:.2f} "
        "(all hosts are this 2-core machine: the host script's forks compete for its CPUs)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--delay", type=float, default=0.050, help="round trip added by the proxy")
    ap.add_argument("--no-ansible", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/hosts.py needs root (a test user and sshd on 127.0.0.x)")
    user = ensure_test_user()
    ansible = None if args.no_ansible else ensure_ansible()
    print(f"{os.cpu_count()} CPUs; user {user} (/bin/sh); command: hlcon's host script")
    with testbed_dir("bench") as workdir:
        key = client_key(workdir)
        authorized = workdir / "authorized_keys"
        authorized.write_text(key.with_suffix(".pub").read_text())
        sshds: list[Sshd] = []
        proxies: list[DelayProxy] = []
        try:
            for i in range(args.hosts):
                sshds.append(
                    start_sshd(workdir / f"h{i}", f"h{i}", f"127.0.0.{10 + i}", authorized)
                )
            known = workdir / "known_hosts"
            known.write_text("".join(s.known_hosts_line for s in sshds))
            direct = [Target(s.name, s.address, s.port) for s in sshds]
            scenario("loopback", direct, key, known, user, args.rounds, workdir, ansible)

            proxies = [
                DelayProxy((s.address, s.port), args.delay / 2, listen=s.address).start()
                for s in sshds
            ]
            # The proxies listen on the sshd's own address, another port: new known_hosts lines.
            known_d = workdir / "known_hosts_delayed"
            known_d.write_text(
                "".join(
                    f"[{s.address}]:{p.port} {s.host_key_pub}\n"
                    for s, p in zip(sshds, proxies, strict=True)
                )
            )
            delayed = [
                Target(s.name, s.address, p.port) for s, p in zip(sshds, proxies, strict=True)
            ]
            scenario(
                f"{args.delay * 1000:.0f} ms round trips (delaying proxy)",
                delayed, key, known_d, user, args.rounds, workdir, ansible,
            )  # fmt: skip
        finally:
            for p in proxies:
                p.stop()
            for s in sshds:
                s.stop()


if __name__ == "__main__":
    main()
