"""Fault suite (issue 12): one target, one identity — against real podman, wireguard-go, restic.

Every spelling of one container (`container:X`, `container:X@local`, `containers:X@local`, a
second `[[containers]]` entry on the same socket), of one interface (`vpn:wg0`, `vpn:wg0@local`)
and every restore into overlapping paths must meet the same lock, rate limit, maintenance flag and
pending intent. A second hlcon is a second process (`hlcon do` as a subprocess) or a second Runner
over the same state dir (flock excludes two open file descriptions in one process too).

The "while A holds its lock" moments are made without timing: A's progress callback (called from
inside execute, with A's locks held) runs B to the end in a thread before A goes on.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from actions.base import Action
from actions.registry import build
from actions.runner import Refused, Runner
from lab.config import load_config
from lab.wiring import Lab
from tests.testbed.podman import IMAGE, PodmanService, idle_command, podman
from tests.testbed.restic import ResticLab
from tests.testbed.wireguard import WgTestbed

pytestmark = pytest.mark.testbed

REPO = Path(__file__).resolve().parents[1]
CLI = "import sys; from tui.cli import main; sys.exit(main(sys.argv[1:]))"


def hlcon(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`hlcon --config CONFIG ARGS` as a separate process, stdin not a terminal."""
    env = {k: v for k, v in os.environ.items() if k != "HLCON_CONFIG"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-c", CLI, "--config", str(config), *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def records(state: Path) -> list[dict[str, Any]]:
    path = state / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_elsewhere(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine to the end on its own event loop in another thread, from synchronous
    code on this loop (a progress callback): what a second console does meanwhile."""
    out: list[Any] = []

    def go() -> None:
        try:
            out.append(asyncio.run(make()))
        except BaseException as exc:  # handed back to the caller
            out.append(exc)

    thread = threading.Thread(target=go)
    thread.start()
    thread.join(timeout=120)
    assert out, "the second attempt did not finish"
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


async def attempt(
    config: Path, verb: str, target: str, answer: str, params: dict[str, Any] | None = None
) -> str:
    """A second Runner over the same state dir runs verb target; 'ran' or why it was refused."""
    lab = Lab(load_config(config))
    try:
        runner = Runner(lab)
        try:
            prepared = await runner.prepare(build(verb, target, lab, params or {}))
            result = await runner.run(prepared, answer)
        except Refused as exc:
            return f"refused: {exc}"
        return f"ran: ok={result.ok} {result.outcome.message}"
    finally:
        await lab.close()


# ---------------------------------------------------------------- containers


@dataclass
class Box:
    """One podman container reachable as `local` and as the second endpoint `alias`."""

    name: str
    service: PodmanService
    state: Path
    config: Path

    def status(self) -> str:
        return podman(
            self.service.env, "inspect", "--format", "{{.State.Status}}", self.name
        ).strip()

    def lab(self) -> Lab:
        return Lab(load_config(self.config))


def write_container_config(path: Path, state: Path, url: str, rate_limit: int = 10) -> None:
    path.write_text(
        f'[console]\nstate_dir = "{state}"\n\n'
        f'[local]\ncontainers = "{url}"\nwireguard = false\n\n'
        f"[actions]\nrate_limit = {rate_limit}\n\n"
        f'[[containers]]\nname = "alias"\nurl = "{url}"\n'
    )


@pytest.fixture
def box(podman_service_session: PodmanService, tmp_path: Path) -> Iterator[Box]:
    service = podman_service_session
    name = f"fault-{tmp_path.name[-20:]}".replace("_", "-")
    podman(service.env, "run", "-d", "--name", name, IMAGE, *idle_command())
    state = tmp_path / "state"
    config = tmp_path / "hlcon.toml"
    write_container_config(config, state, service.url, rate_limit=3)
    try:
        yield Box(name, service, state, config)
    finally:
        podman(service.env, "rm", "--force", "--time", "0", name)


async def restart(box: Box, target: str) -> str:
    return await attempt(box.config, "restart", target, "y")


async def test_rate_limit_counts_every_spelling_of_one_container(box: Box) -> None:
    # rate_limit = 3: three restarts by three spellings use it up …
    for spelling in (
        f"container:{box.name}@local",
        f"container:{box.name}",
        f"container:{box.name}@local",
    ):
        assert (await restart(box, spelling)).startswith("ran: ok=True"), spelling
    # … for every spelling, the second endpoint on the same socket and the bulk form included
    for spelling in (
        f"container:{box.name}@alias",
        f"container:{box.name}",
        f"containers:{box.name}@local",
        f"containers:{box.name}@alias",
    ):
        said = await restart(box, spelling)
        assert said.startswith("refused: rate limit: 3 actions on "), (spelling, said)
        assert "actions.rate_limit = 3" in said
    intents = [r for r in records(box.state) if r["phase"] == "intent"]
    assert len(intents) == 3


async def test_a_restart_holds_the_container_for_every_spelling(box: Box) -> None:
    seen: dict[str, str] = {}

    def meanwhile(fraction: float | None, message: str) -> None:
        if seen:
            return
        seen["stop via alias"] = run_elsewhere(
            lambda: attempt(box.config, "stop", f"container:{box.name}@alias", box.name)
        )
        seen["bulk via alias"] = run_elsewhere(
            lambda: attempt(box.config, "restart", f"containers:{box.name}*@alias", "1")
        )
        seen["plain name"] = run_elsewhere(
            lambda: attempt(box.config, "restart", f"container:{box.name}", "y")
        )

    lab = box.lab()
    try:
        runner = Runner(lab)
        prepared = await runner.prepare(build("restart", f"container:{box.name}@local", lab, {}))
        result = await runner.run(prepared, "y", meanwhile)
    finally:
        await lab.close()
    assert result.ok, result.outcome.message
    assert set(seen) == {"stop via alias", "bulk via alias", "plain name"}
    for how, said in seen.items():
        assert said.startswith("refused: ") and "locked by another hlcon" in said, (how, said)
    assert box.status() == "running"


async def test_maintenance_of_the_host_covers_the_alias(box: Box) -> None:
    on = hlcon(box.config, "maintenance", "on", "alias", "--note", "moving the socket")
    assert on.returncode == 0, on.stderr
    assert "no host named" not in on.stderr
    assert "local in maintenance" in on.stdout
    assert "alias is a container endpoint on local" in on.stdout
    for spelling in (f"container:{box.name}@alias", f"containers:{box.name}@alias"):
        said = await restart(box, spelling)
        assert said.startswith("refused: host local is in maintenance"), (spelling, said)
    off = hlcon(box.config, "maintenance", "off", "local")
    assert off.returncode == 0, off.stderr
    assert (await restart(box, f"container:{box.name}@alias")).startswith("ran: ok=True")


def test_yes_alone_never_stops_a_container(box: Box) -> None:
    r = hlcon(box.config, "do", "stop", f"container:{box.name}@alias", "--yes")
    assert r.returncode == 2, r.stderr
    assert f"--confirm {box.name}" in r.stderr
    assert box.status() == "running"
    wrong = hlcon(box.config, "do", "stop", f"container:{box.name}@alias", "--confirm", "other")
    assert wrong.returncode == 2 and f"--confirm {box.name}" in wrong.stderr
    assert box.status() == "running"
    r = hlcon(box.config, "do", "stop", f"container:{box.name}@alias", "--confirm", box.name)
    assert r.returncode == 0, r.stderr
    assert box.status() == "exited"
    # a plain start stays an Enter-level answer
    r = hlcon(box.config, "do", "start", f"container:{box.name}", "--yes")
    assert r.returncode == 0, r.stderr


def test_bulk_restart_needs_the_count(box: Box) -> None:
    r = hlcon(box.config, "do", "restart", f"containers:{box.name}*@local", "--yes")
    assert r.returncode == 2 and "--confirm 1" in r.stderr, r.stderr
    r = hlcon(box.config, "do", "restart", f"containers:{box.name}*@local", "--confirm", "1")
    assert r.returncode == 0, r.stderr


def test_an_interrupted_restart_blocks_the_container_until_acknowledged(
    podman_service_session: PodmanService, tmp_path: Path
) -> None:
    service = podman_service_session
    name = f"stubborn-{os.getpid()}"
    # PID 1 sleep ignores SIGTERM: the engine's stop waits the whole stop timeout, so hlcon is
    # still inside the restart when it is killed.
    podman(
        service.env, "run", "-d", "--stop-timeout", "60", "--name", name, IMAGE, "sleep", "100000"
    )
    state, config = tmp_path / "state", tmp_path / "hlcon.toml"
    write_container_config(config, state, service.url)
    env = {k: v for k, v in os.environ.items() if k != "HLCON_CONFIG"}
    env["PYTHONPATH"] = str(REPO)
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CLI,
                "--config",
                str(config),
                "do",
                "restart",
                f"container:{name}",
                "--yes",
            ],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            r["phase"] == "intent" for r in records(state)
        ):
            assert proc.poll() is None, "hlcon ended before its intent was written"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        intent = next(r for r in records(state) if r["phase"] == "intent")

        for spelling in (
            f"container:{name}@alias",
            f"container:{name}@local",
            f"containers:{name}@local",
        ):
            r = hlcon(config, "do", "restart", spelling, "--yes")
            assert r.returncode == 2, (spelling, r.stdout, r.stderr)
            assert f"hlcon audit ack {intent['seq']}" in r.stderr, r.stderr
            assert "never finished" in r.stderr and "Check first whether the container" in r.stderr
        # the plan is still allowed: it changes nothing
        assert (
            hlcon(config, "do", "restart", f"container:{name}@alias", "--dry-run").returncode == 0
        )

        ack = hlcon(config, "audit", "ack", str(intent["seq"]), "--note", "checked the container")
        assert ack.returncode == 0, ack.stderr
        r = hlcon(config, "do", "restart", f"container:{name}@alias", "--dry-run")
        assert r.returncode == 0 and "hlcon audit ack" not in r.stderr
        refusals = [r for r in records(state) if r["phase"] == "refused"]
        assert len(refusals) == 3
    finally:
        podman(service.env, "rm", "--force", "--time", "0", name)


# ---------------------------------------------------------------- wireguard


async def test_two_spellings_of_one_interface_share_one_lock(
    wg_testbed: WgTestbed, tmp_path: Path
) -> None:
    config = tmp_path / "hlcon.toml"
    config.write_text(
        f'[console]\nstate_dir = "{tmp_path / "state"}"\n\n'
        f'[local]\ncontainers = "none"\nwireguard = false\n\n'
        f'[[vpn]]\ninterface = "{wg_testbed.iface}"\nhost = "local"\n'
        f'subnet = "10.78.0.0/24"\nendpoint = "{wg_testbed.endpoint_for_new}"\n'
        f'peers_file = "{wg_testbed.conf}"\nnetns = "{wg_testbed.ns_server}"\n'
    )
    seen: list[str] = []

    def meanwhile(fraction: float | None, message: str) -> None:
        if not seen:
            seen.append(
                run_elsewhere(
                    lambda: attempt(
                        config, "peer-add", f"vpn:{wg_testbed.iface}@local", "y", {"name": "second"}
                    )
                )
            )

    lab = Lab(load_config(config))
    runner = Runner(lab)
    action: Action = build("peer-add", f"vpn:{wg_testbed.iface}", lab, {"name": "first"})
    result = await runner.run(await runner.prepare(action), "y", meanwhile)
    await lab.close()
    assert result.ok, result.outcome.message
    (said,) = seen
    assert said.startswith("refused: ") and "locked by another hlcon" in said, said
    assert "# second" not in wg_testbed.conf.read_text()


# ---------------------------------------------------------------- restic


def write_restic_config(path: Path, state: Path, restic_lab: ResticLab, extra: str = "") -> None:
    path.write_text(
        f'[console]\nstate_dir = "{state}"\n\n'
        f'[local]\ncontainers = "none"\nwireguard = false\n\n{extra}'
        f'[[backups]]\nname = "main"\nrepository = "{restic_lab.repo}"\n'
        f'password = "file:{restic_lab.password_file}"\npaths = ["{restic_lab.source}"]\n\n'
        # the same repository under a second name: one location, one identity
        f'[[backups]]\nname = "again"\nrepository = "{restic_lab.repo}/."\n'
        f'password = "file:{restic_lab.password_file}"\n'
    )


FILE = "dir with space/a file.txt"


@pytest.mark.parametrize(("first", "second"), [("", "sub/deeper"), ("sub/deeper", ""), ("x", "x")])
async def test_restores_into_overlapping_paths_exclude_each_other(
    restic_lab: ResticLab, tmp_path: Path, first: str, second: str
) -> None:
    config = tmp_path / "hlcon.toml"
    write_restic_config(config, tmp_path / "state", restic_lab)
    root = tmp_path / "restore here"
    root.mkdir()
    # a symlink spelling of the same place: the lock is on the real path
    (tmp_path / "link").symlink_to(root)
    include = str(restic_lab.source / FILE)
    seen: list[str] = []

    def meanwhile(fraction: float | None, message: str) -> None:
        if not seen:
            seen.append(
                run_elsewhere(
                    lambda: attempt(
                        config,
                        "restore",
                        "repo:again",
                        "y",
                        {
                            "snapshot": "latest",
                            "include": [include],
                            "target": str(tmp_path / "link" / second),
                        },
                    )
                )
            )

    lab = Lab(load_config(config))
    runner = Runner(lab)
    action = build(
        "restore",
        "repo:main",
        lab,
        {"snapshot": "latest", "include": [include], "target": str(root / first)},
    )
    result = await runner.run(await runner.prepare(action), "y", meanwhile)
    await lab.close()
    assert result.ok, result.outcome.message
    (said,) = seen
    assert said.startswith("refused: ") and "locked by another hlcon" in said, said


def test_yes_alone_never_restores_over_the_original(tmp_path: Path) -> None:
    from tests.testbed import require_tools

    require_tools("restic")
    source = tmp_path / "data"
    source.mkdir()
    precious = source / "notes.txt"
    precious.write_text("as backed up\n")
    repo, pw = tmp_path / "repo", tmp_path / "pw"
    pw.write_text("pw\n")
    env = {**os.environ, "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD_FILE": str(pw)}
    for argv in (["init"], ["backup", str(source)]):
        subprocess.run(["restic", *argv], env=env, check=True, capture_output=True, timeout=120)
    precious.write_text("a local edit made after the backup\n")
    config = tmp_path / "hlcon.toml"
    config.write_text(
        f'[console]\nstate_dir = "{tmp_path / "state"}"\n\n'
        f'[local]\ncontainers = "none"\nwireguard = false\n\n'
        f'[[backups]]\nname = "mine"\nrepository = "{repo}"\npassword = "file:{pw}"\n'
    )
    args = ("do", "restore", "repo:mine", "--snapshot", "latest", "--include", str(precious))
    r = hlcon(config, *args, "--in-place", "--yes")
    assert r.returncode == 2, r.stderr
    assert f"--confirm {precious}" in r.stderr
    assert precious.read_text() == "a local edit made after the backup\n"
    # restoring into a folder that holds the file: the refusal names the flag that allows it …
    staging = tmp_path / "staging"
    there = staging / str(precious).lstrip("/")
    there.parent.mkdir(parents=True)
    there.write_text("someone's copy\n")
    r = hlcon(config, *args, "--target", str(staging), "--yes")
    assert r.returncode == 2 and "--param overwrite=true" in r.stderr, r.stderr
    # … and with it, --yes still does not overwrite: the path must be named
    r = hlcon(config, *args, "--target", str(staging), "--param", "overwrite=true", "--yes")
    assert r.returncode == 2 and f"--confirm {staging}" in r.stderr, r.stderr
    assert there.read_text() == "someone's copy\n"
    assert precious.read_text() == "a local edit made after the backup\n"
    r = hlcon(config, *args, "--in-place", "--confirm", str(precious))
    assert r.returncode == 0, r.stderr
    assert precious.read_text() == "as backed up\n"


# ---------------------------------------------------------------- timeouts


def test_family_timeouts_come_from_the_config(restic_lab: ResticLab, tmp_path: Path) -> None:
    config = tmp_path / "hlcon.toml"
    write_restic_config(
        config,
        tmp_path / "state",
        restic_lab,
        '[actions]\ntimeout = "5s"\n\n[actions.timeouts]\n"backup.restore" = "7s"\n'
        '"backup.check" = "9m"\n\n',
    )
    r = hlcon(config, "do", "restore", "repo:main", "--snapshot", "latest", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert 'times out after 7s (actions.timeouts."backup.restore"' in r.stdout, r.stdout
    r = hlcon(config, "do", "check", "repo:main", "--dry-run")
    assert 'times out after 9m (actions.timeouts."backup.check"' in r.stdout, r.stdout
    r = hlcon(config, "do", "backup-now", "repo:main", "--dry-run")
    # no key of its own: the family's documented default, and where to change it
    assert r.returncode == 0, r.stderr
    assert (
        'times out after 6h (backup.now\'s default; set actions.timeouts."backup.now" in '
        f"{config} to change it)"
    ) in r.stdout, r.stdout


async def test_a_check_times_out_by_its_configured_key(
    restic_lab: ResticLab, tmp_path: Path
) -> None:
    """A repository behind a REST server that accepts and never answers: restic hangs, and the
    configured `actions.timeouts."backup.check"` ends it (not 3 h later)."""
    import socket

    tarpit = socket.socket()
    tarpit.bind(("127.0.0.1", 0))
    tarpit.listen(8)
    port = tarpit.getsockname()[1]
    config = tmp_path / "hlcon.toml"
    config.write_text(
        f'[console]\nstate_dir = "{tmp_path / "state"}"\n\n'
        f'[local]\ncontainers = "none"\nwireguard = false\n\n'
        '[actions.timeouts]\n"backup.check" = "2s"\n\n'
        f'[[backups]]\nname = "hung"\nrepository = "rest:http://127.0.0.1:{port}/"\n'
        f'password = "file:{restic_lab.password_file}"\n'
    )
    lab = Lab(load_config(config))
    try:
        runner = Runner(lab)
        prepared = await runner.prepare(build("check", "repo:hung", lab, {}))
        assert prepared.plan.timeout == 2.0
        result = await runner.run(prepared, "y")
    finally:
        await lab.close()
        tarpit.close()
    assert not result.ok
    assert "timed out during execute after 2s" in result.outcome.message, result.outcome.message
