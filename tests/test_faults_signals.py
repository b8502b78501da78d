"""Fault suite: the lock lives as long as the work, children die with hlcon (issue 12 §2, issue
11 §8/§9). Real parts: a real `hlcon do restore` process against a real restic repository killed
with TERM, HUP and -9 mid-restore; a real podman container whose stop takes its whole stop
timeout; `hlcon status` interrupted while a reader's command runs; the environment a real child
process receives.

restic is slowed down, not faked: a `restic` early on PATH execs the real one with
`--limit-download` for `restore`, so a 4 MiB file takes seconds to restore.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from actions.registry import build
from actions.runner import Runner
from lab.config import ActionsConfig, Config, ConsoleConfig, LocalConfig
from lab.execute import LocalExecutor
from lab.wiring import Lab
from tests.testbed.podman import IMAGE, NO_NETWORK, PodmanService, podman
from tests.testbed.restic import PASSWORD, ResticLab

REPO = Path(__file__).resolve().parents[1]
CLI = "import sys; from tui.cli import main; sys.exit(main(sys.argv[1:]))"
GONE_WITHIN = 2.0  # seconds: the bound for "no process of the action alive"

# Secrets in hlcon's environment that a restic restore has no business seeing.
UNNEEDED = {
    "HLCON_TEST_DNS_TOKEN": "dns-token-0b7d1f",  # another certificate's renew variable
    "HLCON_TEST_SSH_PASSPHRASE": "ssh-passphrase-9c2e",
}
NEEDED = ("HLCON_TEST_AWS_KEY", "aws-key-4a1c")  # the repository's own env = {…}


# ---------------------------------------------------------------- processes, seen from /proc


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, starttime) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Every living descendant of `root`: pid → starttime (to tell a reused pid apart)."""
    parent: dict[int, int] = {}
    start: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[1] != "Z":
                parent[int(entry)], start[int(entry)] = st[0], st[2]
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child, ppid in parent.items():
            if ppid == pid and child not in found:
                found[child] = start[child]
                frontier.append(child)
    return found


def living(seen: dict[int, int]) -> list[str]:
    """The processes of `seen` still alive (a zombie has ended), with their command lines."""
    out = []
    for pid, started in seen.items():
        st = _stat(pid)
        if st is not None and st[1] != "Z" and st[2] == started:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            out.append(f"{pid} {cmd.strip()}")
    return out


def descendants_left(seen: dict[int, int]) -> dict[int, int]:
    return {int(line.split()[0]): seen[int(line.split()[0])] for line in living(seen)}


def wait_gone(seen: dict[int, int], within: float = GONE_WITHIN) -> list[str]:
    deadline = time.monotonic() + within
    while (alive := living(seen)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive


def lock_held(path: Path) -> bool:
    """Whether some process holds the flock on `path` (taken and dropped at once if free)."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)  # closing drops a flock this probe took
    return False


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(item.partition("=")[::2] for item in raw.split("\0") if item)


# ---------------------------------------------------------------- a restore to interrupt


def slow_restic(bin_dir: Path) -> None:
    """`restic` that is the real restic, with restores held to 256 KiB/s."""
    real = shutil.which("restic")
    assert real is not None
    bin_dir.mkdir()
    wrapper = bin_dir / "restic"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'case " $* " in *" restore "*) exec {real} --limit-download 256 "$@";; esac\n'
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)


class Restore:
    def __init__(self, restic_lab: ResticLab, tmp: Path) -> None:
        self.tmp = tmp
        self.repo = tmp / "repo"
        shutil.copytree(restic_lab.repo, self.repo)  # a stale lock must not reach other tests
        self.state = tmp / "state"
        self.target = tmp / "restored"
        self.include = str(restic_lab.source / "big" / "blob 0.bin")
        self.config = tmp / "hlcon.toml"
        self.config.write_text(
            f"""
[console]
state_dir = "{self.state}"

[[backups]]
name = "main"
repository = "{self.repo}"
password = "file:{restic_lab.password_file}"
env = {{ AWS_ACCESS_KEY_ID = "env:{NEEDED[0]}" }}

[[certs]]
name = "other"
file = "{tmp / "other.pem"}"
renew = "true"
env = {{ CF_DNS_API_TOKEN = "env:HLCON_TEST_DNS_TOKEN" }}
"""
        )
        slow_restic(tmp / "bin")
        self.env = {k: v for k, v in os.environ.items() if k != "HLCON_CONFIG"}
        self.env.update(UNNEEDED)
        self.env[NEEDED[0]] = NEEDED[1]
        self.env["PATH"] = f"{tmp / 'bin'}:{os.environ['PATH']}"
        self.env["PYTHONPATH"] = str(REPO)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-c", CLI, "--config", str(self.config), *args]

    def start(self) -> subprocess.Popen[bytes]:
        argv = self.argv("do", "restore", "repo:main", "--snapshot", "latest")
        argv += ["--include", self.include, "--target", str(self.target), "--yes"]
        with (self.tmp / "stderr").open("wb") as err:
            return subprocess.Popen(
                argv, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=err, stderr=err
            )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), cwd=REPO, env=self.env, capture_output=True, text=True, timeout=60
        )

    def restic_restoring(self, hlcon: subprocess.Popen[bytes]) -> int:
        """Wait until restic is reading the file's data from the repository (past its start-up
        and its one line of output, so from here on it would go on silently for seconds); its
        pid."""
        data = f"{self.repo / 'data'}/"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and hlcon.poll() is None:
            for pid in descendants(hlcon.pid):
                with contextlib.suppress(OSError):
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    if not (cmd[0].endswith(b"restic") and b"restore" in cmd):
                        continue
                    fds = Path(f"/proc/{pid}/fd").iterdir()
                    if any(os.readlink(fd).startswith(data) for fd in fds):
                        return pid
            time.sleep(0.02)
        raise AssertionError(f"restic never began the restore: {self.stderr()}")

    def stderr(self) -> str:
        return (self.tmp / "stderr").read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        path = self.state / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def locks(self) -> list[Path]:
        return sorted((self.state / "locks").glob("*.lock"))

    def restic_locks(self) -> list[str]:
        """The locks in the repository (read from its directory: asking restic would take a
        second each time)."""
        return sorted(p.name for p in (self.repo / "locks").iterdir())


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name
)
def test_signal_mid_restore_ends_every_child_and_holds_the_lock_until_then(
    sig: signal.Signals, restic_lab: ResticLab, tmp_path: Path
) -> None:
    r = Restore(restic_lab, tmp_path)
    hlcon = r.start()
    seen: dict[int, int] = {}
    try:
        restic = r.restic_restoring(hlcon)
        # issue 11 §9: the child has what it needs (its repository's env), no other secret
        child_env = environ_of(restic)
        assert child_env.get("AWS_ACCESS_KEY_ID") == NEEDED[1]
        leaked = [n for n, v in UNNEEDED.items() if n in child_env or v in child_env.values()]
        assert leaked == []
        locks = r.locks()
        assert locks and all(lock_held(lk) for lk in locks)
        seen.update(descendants(hlcon.pid))
        hlcon.send_signal(sig)
        # While hlcon ends the action, its locks stay held as long as one of its children runs.
        deadline = time.monotonic() + 60
        while hlcon.poll() is None and time.monotonic() < deadline:
            seen.update(descendants(hlcon.pid))
            alive = living(seen)
            free = [lk.name for lk in locks if not lock_held(lk)]
            if alive and free and hlcon.poll() is None:
                pytest.fail(f"lock(s) {free} released while {alive} still run")
            time.sleep(0.01)
        assert hlcon.poll() is not None, "hlcon did not end"
        alive = wait_gone(seen)
        assert not alive, f"still running {GONE_WITHIN:g} s after hlcon ended: {alive}"
        assert not any(lock_held(lk) for lk in locks)
    finally:
        if hlcon.poll() is None:
            hlcon.kill()
        hlcon.wait()
        for pid in descendants_left(seen):
            with contextlib.suppress(OSError):  # a failed test leaves no restic behind
                os.kill(pid, signal.SIGKILL)
    stderr = r.stderr()
    assert "Traceback" not in stderr, stderr
    phases = [(rec["phase"], rec["target"]) for rec in r.records()]
    pending = r.run("audit", "pending")
    if sig == signal.SIGKILL:
        assert hlcon.returncode == -signal.SIGKILL
        assert phases[-1] == ("intent", "repo:main")
        # the next start shows the intent that never finished
        assert pending.returncode == 1 and "repo:main" in pending.stdout, pending
        return
    # TERM and HUP end like Ctrl-C: outcome and rollback audited, the restic lock cleared
    assert hlcon.returncode == 128 + sig, stderr
    assert [p for p, _ in phases][-3:] == ["intent", "outcome", "rollback"], phases
    outcome = r.records()[-2]
    assert outcome["result"]["ok"] is False
    assert sig.name in outcome["result"]["message"], outcome
    assert f"interrupted by {sig.name}" in stderr, stderr
    assert pending.returncode == 0, pending
    assert r.restic_locks() == [], "the killed restore left its restic lock behind"
    for text in (stderr, (r.state / "audit.jsonl").read_text()):
        assert PASSWORD not in text and all(v not in text for v in UNNEEDED.values())


# ---------------------------------------------------------------- a timeout during a slow stop


SLOW = "hlcon-slow-stop"


@pytest.fixture
def slow_stopper(podman_service_session: PodmanService) -> Any:
    """A container whose PID 1 (`sleep`) ignores SIGTERM: a stop takes its 3 s stop timeout."""
    env = podman_service_session.env
    with contextlib.suppress(RuntimeError):
        podman(env, "rm", "--force", "--time", "0", SLOW)
    podman(
        env, "run", "-d", "--name", SLOW, *NO_NETWORK, "--stop-timeout", "3",
        IMAGE, "sleep", "100000",
    )  # fmt: skip
    yield podman_service_session
    with contextlib.suppress(RuntimeError):
        podman(env, "rm", "--force", "--time", "0", SLOW)


class ReleaseWatch(threading.Thread):
    """Waits for a lock under `locks` to be taken, then for it to be released; at that moment
    reads the container's state straight from the engine (its own client, connected first)."""

    def __init__(self, locks: Path, url: str, container: str) -> None:
        import docker

        super().__init__(daemon=True)
        self.locks, self.container = locks, container
        self.client = docker.DockerClient(base_url=url, timeout=30)
        self.client.api.inspect_container(container)  # connected before the watch begins
        self.at_release: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            self._watch()
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.client.close()

    def _watch(self) -> None:
        taken: list[Path] = []
        while not taken and not self.stop.is_set():
            with contextlib.suppress(OSError):
                taken = [p for p in self.locks.glob("*.lock") if p.read_bytes()]
            time.sleep(0.005)
        while taken:  # `stop` comes after the release: probe once more before it counts
            if not lock_held(taken[0]):
                self.at_release = self.client.api.inspect_container(self.container)["State"]
                return
            if self.stop.is_set():
                return
            time.sleep(0.005)


async def test_a_timeout_during_a_slow_stop_keeps_the_lock_until_the_engine_call_ended(
    slow_stopper: PodmanService, tmp_path: Path
) -> None:
    env = slow_stopper.env
    before = podman(env, "inspect", "--format", "{{.State.StartedAt}}", SLOW).strip()
    state_dir = tmp_path / "state"
    config = Config(
        console=ConsoleConfig(state_dir=state_dir),
        local=LocalConfig(containers=slow_stopper.url),
        actions=ActionsConfig(timeout=1.0),  # shorter than the engine's 3 s stop
    )
    lab = Lab(config)
    watch = ReleaseWatch(state_dir / "locks", slow_stopper.url, SLOW)
    try:
        runner = Runner(lab)
        prepared = await runner.prepare(build("restart", f"container:{SLOW}", lab, {}))
        messages: list[str] = []
        watch.start()
        result = await runner.run(prepared, "y", lambda f, m: messages.append(m))
    finally:
        watch.stop.set()
        await asyncio.to_thread(watch.join, 30)
        await lab.close()
    assert not result.ok and "timed out" in result.outcome.message, result.outcome
    state = watch.at_release
    assert state is not None and watch.error is None, ("no release seen", watch.error)
    # When the lock went, the engine's restart had ended: a new start, running — not the old
    # process still being stopped (which a second restart would have run into).
    assert state["Running"] and state["StartedAt"] != before, state
    assert any("engine call" in m for m in messages), messages
    rollback = result.rollback
    assert rollback is None or rollback.ok, rollback
    after = podman(env, "inspect", "--format", "{{.State.Running}}", SLOW).strip()
    assert after == "true"


# ---------------------------------------------------------------- what a child inherits


async def test_a_child_gets_a_safe_base_and_its_own_variables_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in UNNEEDED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RESTIC_PASSWORD", "another-repositorys-password")
    monkeypatch.setenv("LANG", "C.UTF-8")
    for env in (None, {"NEEDED_HERE": "yes"}):
        result = await LocalExecutor().run(["env", "-0"], timeout=10, env=env)
        got = dict(item.partition("=")[::2] for item in result.stdout.split("\0") if item)
        assert got.get("PATH") == os.environ["PATH"] and got.get("LANG") == "C.UTF-8"
        assert got.get("HOME") == os.environ.get("HOME")
        leaked = [name for name in (*UNNEEDED, "RESTIC_PASSWORD") if name in got]
        assert leaked == []  # names only: an assertion must not print the environment
        assert "another-repositorys-password" not in result.stdout
        if env:
            assert got["NEEDED_HERE"] == "yes"


# ---------------------------------------------------------------- hlcon status interrupted


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name
)
def test_status_interrupted_exits_cleanly_and_ends_its_children(
    sig: signal.Signals, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    hanging = bin_dir / "restic"
    hanging.write_text("#!/bin/sh\nexec sleep 120\n")  # a restic that never answers
    hanging.chmod(0o755)
    config = tmp_path / "hlcon.toml"
    config.write_text(
        f"""
[console]
state_dir = "{tmp_path / "state"}"
timeout = "100s"

[[backups]]
name = "hangs"
repository = "{tmp_path / "repo"}"
password = "env:HLCON_TEST_RESTIC_PW"
"""
    )
    env = {k: v for k, v in os.environ.items() if k != "HLCON_CONFIG"}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", PYTHONPATH=str(REPO))
    env["HLCON_TEST_RESTIC_PW"] = "pw-of-the-hanging-repo"
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "--config", str(config), "status"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        seen: dict[int, int] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            seen = descendants(proc.pid)
            if any(b"sleep" in Path(f"/proc/{p}/cmdline").read_bytes() for p in seen):
                break
            time.sleep(0.02)
        assert seen, "the backups reader never started restic"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = err.decode(errors="replace")
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert proc.returncode == 128 + sig, text
    assert "interrupted" in text
    alive = wait_gone(seen)
    assert not alive, f"left running after hlcon status ended: {alive}"


# ---------------------------------------------------------------- the console on SIGTERM / SIGHUP


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
async def test_console_on_a_signal_ends_the_running_action_like_ctrl_c(
    sig: signal.Signals, tmp_path: Path
) -> None:
    """A dropped SSH session (SIGHUP) or `kill` (SIGTERM) while the console runs an action: the
    action is cancelled, its outcome and rollback are audited, then the console exits."""
    import tests.action_families  # noqa: F401 - registers the test-only `write` family
    from tests.tui.fixtures import make_context
    from tests.tui.waiting import wait_for
    from tui.app import HlconApp
    from tui.screens.confirm import ConfirmModal

    files = tmp_path / "files"
    files.mkdir()
    (files / "xfile").write_text("before\n")
    marker = tmp_path / "started"
    config = Config(console=ConsoleConfig(state_dir=tmp_path / "state"))
    lab = Lab(config)
    runner = Runner(lab)
    params = {"dir": str(files), "text": "after\n", "sleep": "30", "marker": str(marker)}
    action = build("write", "file:xfile@local", lab, params)
    # Without the console's own handler the signal lands here (recorded) instead of ending
    # pytest the way it would end hlcon.
    unhandled: list[int] = []
    before = {s: signal.signal(s, lambda n, f: unhandled.append(n)) for s in (sig,)}
    app = HlconApp(make_context(config=config, runner=runner, lab=lab))
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            app.launch(action)
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm modal")
            modal = app.screen
            assert isinstance(modal, ConfirmModal) and modal.expect == "xfile"
            await pilot.pause()
            await pilot.press(*"xfile", "enter")

            def phases() -> list[str]:
                return [r.phase for r in runner.audit.records()]

            await wait_for(pilot, marker.exists, "the action to start", 20, phases)
            os.kill(os.getpid(), sig)
            await wait_for(pilot, lambda: "rollback" in phases(), "rollback", 20, phases)
            await wait_for(pilot, lambda: app.return_code is not None, "exit", 20)
    finally:
        for s, old in before.items():
            signal.signal(s, old)
        await lab.close()
    assert unhandled == []
    records = list(runner.audit.records())
    assert [r.phase for r in records] == ["planned", "intent", "outcome", "rollback"]
    outcome = records[2].result or {}
    assert outcome.get("ok") is False and sig.name in str(outcome.get("message")), outcome
    assert (records[3].result or {}).get("status") == "done"
    assert (files / "xfile").read_text() == "before\n"
    assert app.return_code == 128 + sig


def test_console_ends_cleanly_when_its_terminal_closes(tmp_path: Path) -> None:
    """The SSH session drops: the kernel hangs up the console's terminal and sends SIGHUP. The
    console must exit (not die by the signal, not hang writing to the dead terminal) and leave
    no child behind."""
    import fcntl as fcntl_
    import pty
    import select
    import struct
    import termios

    config = tmp_path / "hlcon.toml"
    config.write_text(f'[console]\nstate_dir = "{tmp_path / "state"}"\n')
    env = {k: v for k, v in os.environ.items() if k != "HLCON_CONFIG"}
    env.update(TERM="xterm-256color", PYTHONPATH=str(REPO))
    master, slave = pty.openpty()
    fcntl_.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))

    def controlling_terminal() -> None:
        fcntl_.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "--config", str(config)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=REPO,
        env=env,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    seen: dict[int, int] = {}
    try:
        screen = b""
        deadline = time.monotonic() + 60
        while b"Overview" not in screen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                screen += os.read(master, 65536)
        assert b"Overview" in screen, "the console never painted"
        seen = descendants(proc.pid)
        os.close(master)  # the terminal goes away
        master = -1
        rc = proc.wait(timeout=30)
    finally:
        if master >= 0:
            os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc >= 0, f"the console died by signal {-rc} instead of ending"
    assert rc == 128 + signal.SIGHUP
    assert not wait_gone(seen)
