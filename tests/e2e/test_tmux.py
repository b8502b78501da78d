"""End to end: the real `hlcon` console script in a real tmux pane, against podman's Docker API.

Keystrokes only: ? and Esc (help opens and closes), pane 3, filter to one container, R (restart),
Enter (confirm). Then the audit log holds the plan, the intent and a successful outcome, and the
container really restarted.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actions.audit import AuditLog
from tests.testbed import require_tools
from tests.testbed.podman import IMAGE, LabContainers, idle_command, podman

pytestmark = [pytest.mark.e2e, pytest.mark.testbed]

HLCON = Path(sys.executable).with_name("hlcon")
CONTAINER = "e2e-restart-me"


class Pane:
    """One tmux server (own socket) with one 100x30 pane running a command."""

    def __init__(self, name: str, dump: Path | None = None) -> None:
        self.name = name
        self.dump = dump or Path(f"/tmp/{name}.stacks")  # HLCON_STACK_DUMP for the command

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.name, *args], check=True, capture_output=True, text=True
        ).stdout

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-x", "100", "-y", "30", command)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", key)
            time.sleep(0.05)  # a human's pace: Esc and the next key must not merge

    def text(self) -> str:
        return self.tmux("capture-pane", "-p")

    def wait_for(self, what: str | Callable[[str], bool], timeout: float = 60.0) -> str:
        check = (lambda text: what in text) if isinstance(what, str) else what
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if check(text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"the pane never showed {what!r}; it shows:\n{text}")

    def stuck_report(self) -> str:
        """hlcon did not quit: ask it for every thread's stack (tui/cli.py registers SIGUSR1
        with faulthandler) and return what the pane then shows, scrollback included."""
        shell = self.tmux("display-message", "-p", "#{pane_pid}").strip()
        pids = subprocess.run(
            ["pgrep", "-P", shell, "-f", "hlcon"], capture_output=True, text=True
        ).stdout.split()
        for pid in pids:
            subprocess.run(["kill", "-USR1", pid], check=False)
        time.sleep(2)
        text = self.tmux("capture-pane", "-p", "-S", "-300")
        stacks = self.dump.read_text() if self.dump.exists() else "(no stack dump written)"
        who = f"hlcon (pids {pids or 'gone'})"
        return f"{who} did not quit within 60 s; the pane:\n{text}\nstacks:\n{stacks}"

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.name, "kill-server"], capture_output=True)


@pytest.fixture
def restartable(lab_containers: LabContainers) -> Iterator[str]:
    """A running container of our own, so restarting it disturbs no other test."""
    env = lab_containers.env
    podman(env, "rm", "--force", "--time", "0", CONTAINER)
    podman(env, "run", "-d", "--name", CONTAINER, IMAGE, *idle_command())
    yield CONTAINER
    podman(env, "rm", "--force", "--time", "0", CONTAINER)


def started_at(env: dict[str, str], name: str) -> str:
    info = json.loads(podman(env, "inspect", name))
    return str(info[0]["State"]["StartedAt"])


def test_restart_a_container_with_keystrokes(
    tmp_path: Path, lab_containers: LabContainers, restartable: str
) -> None:
    require_tools("tmux")
    assert HLCON.exists(), f"{HLCON} missing: install hlcon into the venv (dev/venv)"
    state = tmp_path / "state"
    config = tmp_path / "hlcon.toml"
    config.write_text(
        "[console]\n"
        'refresh = "1s"\n'
        f"state_dir = {json.dumps(str(state))}\n"
        "[local]\n"
        f"containers = {json.dumps(lab_containers.url)}\n"
        "wireguard = false\n"
    )
    before = started_at(lab_containers.env, restartable)
    pane = Pane(f"hlcon-e2e-{tmp_path.name}", tmp_path / "stacks.txt")
    command = shlex.join(
        [
            "env",
            "TERM=xterm-256color",
            f"XDG_STATE_HOME={tmp_path}",
            f"HLCON_STACK_DUMP={tmp_path / 'stacks.txt'}",
            str(HLCON),
            "--config",
            str(config),
        ]
    )
    pane.start(f"{command}; echo hlcon exited $?; sleep 30")
    try:
        pane.wait_for("1 Overview")
        # A lone Esc reaches the app only through the input parser's timeout (tui/driver.py
        # sleeps until input, then waits out that deadline).
        pane.keys("?")
        pane.wait_for("(Esc closes)")
        pane.keys("Escape")
        pane.wait_for(lambda t: "(Esc closes)" not in t and "1 Overview" in t)
        pane.keys("3")
        pane.wait_for(restartable)
        pane.keys("/", *restartable, "Enter")
        pane.wait_for(lambda t: "Filter" in t and restartable in t)
        pane.keys("R")
        pane.wait_for("Esc cancels")
        assert f"container:{restartable}@local" in pane.text() or restartable in pane.text()
        pane.keys("Enter")
        log = AuditLog(state / "audit.jsonl")

        def finished() -> bool:
            return any(r.phase == "outcome" for r in log.records())

        deadline = time.monotonic() + 60
        while not finished() and time.monotonic() < deadline:
            time.sleep(0.2)
        records = [r for r in log.records() if r.target == f"container:{restartable}@local"]
        assert [r.phase for r in records] == ["planned", "intent", "outcome"], pane.text()
        assert all(r.action == "container.restart" for r in records)
        assert (records[-1].result or {}).get("ok") is True, records[-1]
        assert log.verify().ok
        assert started_at(lab_containers.env, restartable) != before
        pane.keys("q")
        try:
            pane.wait_for("hlcon exited 0")
        except AssertionError:
            raise AssertionError(pane.stuck_report()) from None
    finally:
        pane.kill()
