"""`hlcon do`, `hlcon audit`, `hlcon maintenance` as a user runs them: real processes, real
config files, a real pty for the prompts, kill -9 for a process dying mid-action."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actions.runner import Runner
from lab.config import load_config
from lab.wiring import Lab

REPO = Path(__file__).resolve().parents[1]
# hlcon with the test-only action families registered (tests/action_families.py).
CLI = (
    "import sys; import tests.action_families; from tui.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.files = tmp_path / "files"
        self.files.mkdir()
        self.state = tmp_path / "state"
        self.config = tmp_path / "hlcon.toml"
        self.write_config()

    def write_config(self, extra: str = "") -> None:
        self.config.write_text(f'[console]\nstate_dir = "{self.state}"\n{extra}')

    @property
    def audit(self) -> Path:
        return self.state / "audit.jsonl"

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-c", CLI, "--config", str(self.config), *args]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "HLCON_CONFIG"}
        env["PYTHONPATH"] = str(REPO)
        return env

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """No TTY on stdin (like cron or a pipe)."""
        return subprocess.run(
            self.argv(*args),
            cwd=REPO,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def run_tty(self, *args: str, answer: str) -> subprocess.CompletedProcess[str]:
        """stdin is a real terminal; `answer` is what the user types."""
        master, slave = pty.openpty()
        try:
            os.write(master, answer.encode())
            return subprocess.run(
                self.argv(*args),
                cwd=REPO,
                env=self.env(),
                stdin=slave,
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            os.close(slave)
            os.close(master)

    def phases(self) -> list[str]:
        if not self.audit.exists():
            return []
        return [json.loads(line)["phase"] for line in self.audit.read_text().splitlines()]

    def write(self, name: str, *extra: str) -> tuple[str, ...]:
        return ("do", "write", f"file:{name}@local", "--param", f"dir={self.files}", *extra)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def test_without_tty_and_without_yes_refuses(env: Env) -> None:
    r = env.run(*env.write("a.txt"))
    assert r.returncode == 2
    assert "stdin is not a terminal" in r.stderr and "add --yes to confirm" in r.stderr
    assert "Write 6 bytes to" in r.stdout  # the plan is still shown
    assert not (env.files / "a.txt").exists()
    assert env.phases() == ["planned", "refused"]


def test_dry_run_shows_the_plan_and_changes_nothing(env: Env) -> None:
    (env.files / "b.txt").write_text("old\n")
    r = env.run(*env.write("b.txt", "--param", "text=new\n", "--dry-run"))
    assert r.returncode == 0, r.stderr
    assert "blast radius: disruptive    reversible: yes" in r.stdout
    assert "-old\n    +new" in r.stdout  # the diff
    assert "dry run: nothing was changed" in r.stdout
    assert (env.files / "b.txt").read_text() == "old\n"
    assert env.phases() == ["planned"]
    assert not (env.state / "locks").exists()


def test_yes_runs_verifies_and_streams_progress(env: Env) -> None:
    r = env.run(*env.write("c.txt", "--yes"))
    assert r.returncode == 0, r.stderr
    assert f"done: wrote {env.files / 'c.txt'}" in r.stdout
    assert "[  0%] writing" in r.stderr and "[100%] written" in r.stderr
    assert (env.files / "c.txt").read_text() == "hello\n"
    assert env.phases() == ["planned", "intent", "outcome"]


def test_tty_plain_confirmation(env: Env) -> None:
    no = env.run_tty(*env.write("d.txt"), answer="n\n")
    assert no.returncode == 130 and "Proceed? [y/N]" in no.stderr
    assert not (env.files / "d.txt").exists()
    yes = env.run_tty(*env.write("d.txt"), answer="y\n")
    assert yes.returncode == 0, yes.stderr
    assert (env.files / "d.txt").exists()
    assert env.phases() == ["planned", "cancelled", "planned", "intent", "outcome"]


def test_tty_typed_confirmation(env: Env) -> None:
    (env.files / "e.txt").write_text("precious\n")
    wrong = env.run_tty(*env.write("e.txt"), answer="y\n")
    assert wrong.returncode == 2
    assert "Type 'e.txt' to confirm:" in wrong.stderr
    assert "confirmation did not match" in wrong.stderr
    assert (env.files / "e.txt").read_text() == "precious\n"
    right = env.run_tty(*env.write("e.txt"), answer="e.txt\n")
    assert right.returncode == 0, right.stderr
    assert (env.files / "e.txt").read_text() == "hello\n"


def test_failure_exits_1_and_says_it_rolled_back(env: Env) -> None:
    (env.files / "f.txt").write_text("before\n")
    r = env.run(*env.write("f.txt", "--param", "fail=execute", "--confirm", "f.txt"))
    assert r.returncode == 1
    assert "failed: execute failed: the disk said no" in r.stderr
    assert f"rolled back: restored {env.files / 'f.txt'}" in r.stderr
    assert (env.files / "f.txt").read_text() == "before\n"
    r = env.run(
        "do",
        "append",
        "file:g.txt@local",
        "--param",
        f"dir={env.files}",
        "--param",
        "fail=execute",
        "--yes",
    )
    assert r.returncode == 1 and "rollback: none — nothing was changed" in r.stderr
    assert "cannot roll back" not in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("do", "reboot", "file:x@local"),
            "no action 'reboot' for file targets; known: append, badplan, write",
        ),
        (("do", "write", "nonsense"), "not a target: 'nonsense'"),
        (("do", "write", "file:x@local"), "write file:x@local needs --param dir=DIR"),
        (("do", "write", "file:x@local", "--param", "novalue"), "expected KEY=VALUE"),
        (("do", "write", "teapot:x@local"), "no actions for teapot targets"),
    ],
)
def test_usage_errors_exit_2(env: Env, args: tuple[str, ...], message: str) -> None:
    r = env.run(*args)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not list(env.files.iterdir())


def test_read_only_flag_and_config(env: Env) -> None:
    r = env.run("--read-only", *env.write("h.txt", "--yes"))
    assert r.returncode == 2 and "started with --read-only" in r.stderr
    env.write_config("read_only = true\n")
    r = env.run(*env.write("h.txt", "--yes"))
    assert r.returncode == 2
    assert f"console.read_only = true in {env.config}" in r.stderr
    assert not (env.files / "h.txt").exists()


def test_read_only_still_shows_a_plan(env: Env) -> None:
    """A dry run changes nothing, so read-only mode (flag or config) allows it."""
    r = env.run("--read-only", *env.write("h2.txt", "--dry-run"))
    assert r.returncode == 0, r.stderr
    assert "dry run: nothing was changed" in r.stdout
    env.write_config("read_only = true\n")
    r = env.run(*env.write("h2.txt", "--dry-run"))
    assert r.returncode == 0, r.stderr
    assert env.phases() == ["planned", "planned"]
    assert env.run(*env.write("h2.txt", "--yes")).returncode == 2
    assert not (env.files / "h2.txt").exists()


def test_yes_never_answers_a_typed_confirmation(env: Env) -> None:
    (env.files / "y.txt").write_text("precious\n")
    r = env.run(*env.write("y.txt", "--yes"))
    assert r.returncode == 2
    assert "--yes answers Enter-level confirmations only" in r.stderr
    assert "add --confirm y.txt" in r.stderr
    r = env.run(*env.write("y.txt", "--confirm", "nope"))
    assert r.returncode == 2 and "--confirm nope does not match" in r.stderr
    assert "add --confirm y.txt" in r.stderr
    r = env.run(*env.write("y.txt"))  # no TTY, no flag: the flag this one needs
    assert r.returncode == 2 and "add --confirm y.txt to confirm non-interactively" in r.stderr
    assert (env.files / "y.txt").read_text() == "precious\n"
    assert env.phases() == ["planned", "refused"] * 3
    r = env.run(*env.write("y.txt", "--confirm", "y.txt"))
    assert r.returncode == 0, r.stderr
    assert (env.files / "y.txt").read_text() == "hello\n"
    # an Enter-level one still takes --yes
    assert env.run(*env.write("new.txt", "--yes")).returncode == 0


def test_shell_metacharacters_stay_literal(env: Env) -> None:
    name = "$(touch${IFS}pwned);`id`"
    r = env.run(*env.write(name, "--yes"))
    assert r.returncode == 0, r.stderr
    assert (env.files / name).read_text() == "hello\n"
    assert not (REPO / "pwned").exists() and not (env.files / "pwned").exists()
    locks = [p.name for p in (env.state / "locks").iterdir()]
    assert locks and all(re.fullmatch(r"[A-Za-z0-9._-]+", n) for n in locks)


def test_maintenance_cli(env: Env) -> None:
    r = env.run("maintenance", "on", "local", "--note", "swapping the disk")
    assert r.returncode == 0 and "local in maintenance" in r.stdout
    r = env.run("maintenance", "list")
    assert "local  since " in r.stdout and "swapping the disk" in r.stdout
    r = env.run(*env.write("i.txt", "--yes"))
    assert r.returncode == 2 and "host local is in maintenance" in r.stderr
    assert env.run("maintenance", "on", "nosuchhost").returncode == 2
    r = env.run("maintenance", "off", "local")
    assert r.returncode == 0 and "local out of maintenance" in r.stdout
    assert env.run(*env.write("i.txt", "--yes")).returncode == 0
    tail = env.run("audit", "tail", "--json", "-n", "100")
    records = [json.loads(line) for line in tail.stdout.splitlines()]
    toggles = [(r["target"], r["result"]) for r in records if r["phase"] == "maintenance"]
    assert toggles == [("host:local", {"on": True}), ("host:local", {"on": False})]


def test_audit_verify_names_the_flipped_line(env: Env) -> None:
    for name in ("j1", "j2"):
        assert env.run(*env.write(name, "--yes")).returncode == 0
    r = env.run("audit", "verify")
    assert r.returncode == 0 and r.stdout.strip().endswith("6 records, chain intact")
    data = bytearray(env.audit.read_bytes())
    line4 = [i for i, b in enumerate(data) if b == 10][2] + 1
    pos = data.index(b"file:j2", line4) + 5
    data[pos] ^= 0x01  # j2 → j3 inside line 4
    env.audit.write_bytes(bytes(data))
    r = env.run("audit", "verify")
    assert r.returncode == 1
    assert "line 4 is bad: its MAC does not match: the line was altered" in r.stderr


KILLED = "victim.txt"


def test_kill_9_mid_action_leaves_a_pending_intent(env: Env) -> None:
    (env.files / KILLED).write_text("untouched\n")
    marker = env.tmp / "started"
    proc = subprocess.Popen(
        env.argv(
            *env.write(
                KILLED, "--param", "sleep=60", "--param", f"marker={marker}", "--confirm", KILLED
            )
        ),
        cwd=REPO,
        env=env.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "the action never started"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert env.phases() == ["planned", "intent"]

    runner = Runner(Lab(load_config(env.config)))
    pending = runner.pending()
    assert [(p.phase, p.target) for p in pending] == [("intent", f"file:{KILLED}@local")]
    seq = pending[0].seq

    r = env.run("audit", "pending")
    assert r.returncode == 1
    assert f"file:{KILLED}@local" in r.stdout and "never finished" in r.stdout
    # the lock died with the process, but the target stays blocked until a human has looked:
    # every run is refused with the command that closes it; a plan (changes nothing) is shown
    blocked = env.run(*env.write(KILLED, "--confirm", KILLED))
    assert blocked.returncode == 2
    assert f"`hlcon audit ack {seq}` closes it" in blocked.stderr
    assert "never finished" in blocked.stderr and "Check first" in blocked.stderr
    dry = env.run(*env.write(KILLED, "--dry-run"))
    assert dry.returncode == 0 and f"hlcon audit ack {seq}" in dry.stdout

    r = env.run("audit", "ack", str(seq), "--note", "checked: file untouched")
    assert r.returncode == 0, r.stderr
    r = env.run("audit", "pending")
    assert r.returncode == 0 and "no pending actions" in r.stdout
    assert env.run("audit", "ack", str(seq)).returncode == 2
    assert (env.files / KILLED).read_text() == "untouched\n"
    assert env.run("audit", "verify").returncode == 0
    assert env.run(*env.write(KILLED, "--confirm", KILLED)).returncode == 0  # unblocked


def _wait_for_text(proc: subprocess.Popen[bytes], text: str) -> str:
    """Read proc's stderr until `text` shows (or the process ends)."""
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + 60
    while text.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.5)
        if ready:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    return seen.decode(errors="replace")


def test_ctrl_c_at_the_prompt_cancels(env: Env) -> None:
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            env.argv(*env.write("p.txt")),
            cwd=REPO,
            env=env.env(),
            stdin=slave,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert "Proceed? [y/N]" in _wait_for_text(proc, "Proceed? [y/N]")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        os.close(slave)
        os.close(master)
    assert env.phases() == ["planned", "cancelled"]
    assert not (env.files / "p.txt").exists()


def test_ctrl_c_mid_action_rolls_back_and_exits_130(env: Env) -> None:
    target = env.files / "q.txt"
    target.write_text("before\n")
    marker = env.tmp / "started"
    proc = subprocess.Popen(
        env.argv(
            *env.write(
                "q.txt", "--param", "sleep=60", "--param", f"marker={marker}", "--confirm", "q.txt"
            )
        ),
        cwd=REPO,
        env=env.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _wait_for_text(proc, "writing")
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "the action never started"
    target.write_text("half-written\n")  # as if execute had got that far
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert target.read_text() == "before\n"
    assert env.phases() == ["planned", "intent", "outcome", "rollback"]
    records = [json.loads(line) for line in env.audit.read_text().splitlines()]
    assert records[2]["result"]["message"] == "cancelled during execute"
    assert records[3]["result"]["status"] == "done"
