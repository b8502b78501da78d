"""`hlcon request`, `hlcon approvals`, `hlcon approve`, `hlcon deny` as processes against real
podman: a request changes nothing and exits 3 (pending); approving needs a terminal (a pty here,
as a person has) and then restarts the container; the requester's --wait sees the outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.testbed.podman import IMAGE, LabContainers, idle_command, podman

pytestmark = pytest.mark.testbed


@pytest.fixture
def box(lab_containers: LabContainers) -> Iterator[str]:
    name = "appr-cli"
    podman(lab_containers.env, "rm", "-f", "--ignore", name)
    podman(lab_containers.env, "run", "-d", "--name", name, IMAGE, *idle_command())
    yield name
    podman(lab_containers.env, "rm", "-f", "--ignore", name)


def write_config(tmp: Path, url: str) -> Path:
    path = tmp / "config.toml"
    path.write_text(
        f'[console]\nstate_dir = "{tmp / "state"}"\naudit_log = "{tmp / "audit.jsonl"}"\n'
        f'[local]\ncontainers = "{url}"\n'
    )
    return path


def hlcon(
    config: Path, *args: str, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", "--config", str(config), *args],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def hlcon_at_a_tty(config: Path, *args: str, answer: str) -> subprocess.CompletedProcess[str]:
    """Run hlcon with a pty as its stdin (a person's terminal) and type `answer`."""
    master, slave = os.openpty()
    try:
        os.write(master, answer.encode() + b"\n")  # the line waits in the pty until read
        return hlcon(config, *args, stdin=slave)
    finally:
        os.close(slave)
        os.close(master)


def started_at(env: dict[str, str], name: str) -> str:
    return podman(env, "inspect", "--format", "{{.State.StartedAt}}", name).strip()


def request_id(out: str) -> str:
    return out.split()[0]


def test_request_waits_then_a_person_approves_at_a_terminal(
    lab_containers: LabContainers, tmp_path: Path, box: str
) -> None:
    env = lab_containers.env
    config = write_config(tmp_path, lab_containers.url)
    before = started_at(env, box)
    asked = hlcon(config, "request", "restart", f"container:{box}", "--reason", "stuck")
    assert asked.returncode == 3, asked.stderr
    rid = request_id(asked.stdout)
    assert rid.startswith("r-") and "hlcon approve" in asked.stderr
    listed = hlcon(config, "approvals", "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [rid]

    no_tty = hlcon(config, "approve", rid)
    assert no_tty.returncode == 2 and "not a terminal" in no_tty.stderr
    assert started_at(env, box) == before

    approved = hlcon_at_a_tty(config, "approve", rid, answer="y")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "done:" in approved.stdout
    assert started_at(env, box) != before
    done = json.loads(hlcon(config, "approvals", "--all", "--json").stdout)
    assert done[0]["state"] == "done" and done[0]["outcome"]["ok"] is True
    assert done[0]["channel"] == "hlcon approve (tty)"


def test_deny_at_a_terminal_only_and_the_request_exits_2(
    lab_containers: LabContainers, tmp_path: Path, box: str
) -> None:
    config = write_config(tmp_path, lab_containers.url)
    before = started_at(lab_containers.env, box)
    asked = hlcon(config, "request", "restart", f"container:{box}", "--reason", "x")
    rid = request_id(asked.stdout)
    assert hlcon(config, "deny", rid, "--note", "no").returncode == 2
    denied = hlcon_at_a_tty(config, "deny", rid, "--note", "not today", answer="")
    assert denied.returncode == 0, denied.stderr
    waited = hlcon(config, "approvals", "--all")
    assert "denied" in waited.stdout and "not today" in waited.stdout
    assert started_at(lab_containers.env, box) == before


def test_request_refused_by_policy_exits_2_and_queues_nothing(
    lab_containers: LabContainers, tmp_path: Path
) -> None:
    config = write_config(tmp_path, lab_containers.url)
    refused = hlcon(config, "request", "restart", "container:no-such-box", "--reason", "x")
    assert refused.returncode == 2 and "refused" in refused.stderr
    assert json.loads(hlcon(config, "approvals", "--all", "--json").stdout) == []
    bad = hlcon(config, "request", "restart", "container:x", "--reason", "x", "--wait", "soon")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_the_expiry_comes_from_the_config(
    lab_containers: LabContainers, tmp_path: Path, box: str
) -> None:
    config = write_config(tmp_path, lab_containers.url)
    config.write_text(config.read_text() + '[approvals]\nexpiry = "90s"\n')
    asked = hlcon(config, "request", "restart", f"container:{box}", "--reason", "x")
    assert asked.returncode == 3, asked.stderr
    (request,) = json.loads(hlcon(config, "approvals", "--json").stdout)
    created, expires = map(datetime.fromisoformat, (request["created"], request["expires"]))
    assert expires - created == timedelta(seconds=90)


def test_request_wait_sees_the_outcome_of_the_approval(
    lab_containers: LabContainers, tmp_path: Path, box: str
) -> None:
    """`--wait`: the requester's process waits, a person approves meanwhile, it exits 0."""
    config = write_config(tmp_path, lab_containers.url)
    before = started_at(lab_containers.env, box)
    waiting = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--config", str(config), "request", "restart",
         f"container:{box}", "--reason", "x", "--wait", "2m"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert waiting.stdout is not None
        rid = request_id(waiting.stdout.readline())  # printed once queued
        approved = hlcon_at_a_tty(config, "approve", rid, answer="y")
        assert approved.returncode == 0, approved.stderr
        out, err = waiting.communicate(timeout=150)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert waiting.returncode == 0, err
    assert "outcome:      ok" in out
    assert started_at(lab_containers.env, box) != before
