"""Damping against real podman containers: a container that flaps within the hold sends
nothing; a restart loop (the testbed's crash-loop, restarted by podman's own policy) sends one
notification however long it loops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lab.config import parse_config
from lab.secrets import forget_cached
from tests.test_watch import Shifted
from tests.testbed.podman import IMAGE, NO_NETWORK, LabContainers, idle_command, podman
from tests.testbed.receiver import Receiver
from watch.service import Pass, Watch

pytestmark = pytest.mark.testbed


def config_for(tmp_path: Path, url: str, port: int) -> str:
    return f"""
[console]
state_dir = "{tmp_path}/state"

[local]
enabled = false
containers = "none"
wireguard = false

[watch]
listen = "none"

[[containers]]
name = "pod"
url = "{url}"

[[notify]]
name = "hook"
url = "env:HLCON_TEST_HOOK_URL"
hold = "1m"
domains = ["containers"]
"""


@pytest.fixture
def hook(notify_receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    notify_receiver.reset()
    forget_cached()
    monkeypatch.setenv("HLCON_TEST_HOOK_URL", f"json://127.0.0.1:{notify_receiver.port}/hook")
    return notify_receiver


def about(receiver: Receiver, name: str) -> list[str]:
    return [r.json()["title"] for r in receiver.requests if name in r.json()["title"]]


async def test_a_container_flapping_within_the_hold_sends_nothing(
    tmp_path: Path, lab_containers: LabContainers, hook: Receiver
) -> None:
    env, name = lab_containers.env, "watch-flapper"
    podman(env, "rm", "--force", "--time", "0", name)
    podman(env, "run", "-d", "--name", name, *NO_NETWORK, IMAGE, *idle_command())
    config = parse_config(config_for(tmp_path, lab_containers.url, hook.port), "c.toml")
    clock = Shifted()
    watch = Watch(config, clock=clock)
    await watch.start()
    seen_exited = 0
    try:
        for _ in range(3):
            podman(env, "kill", "--signal", "KILL", name)  # exits 137: a finding
            podman(env, "wait", name)
            seen_exited += await _pass_until(watch, name, present=True)
            clock.advance(30)
            podman(env, "start", name)  # running again: gone
            assert await _pass_until(watch, name, present=False)
            clock.advance(20)
        clock.advance(600)
        await _pass(watch)
    finally:
        await watch.stop()
        podman(env, "rm", "--force", "--time", "0", name)
    assert seen_exited == 3  # the flaps were seen by the rules, every time
    assert about(hook, name) == []


async def test_a_restart_loop_sends_one_notification(
    tmp_path: Path, lab_containers: LabContainers, hook: Receiver
) -> None:
    config = parse_config(config_for(tmp_path, lab_containers.url, hook.port), "c.toml")
    clock = Shifted()
    watch = Watch(config, clock=clock)
    await watch.start()
    try:
        for _ in range(6):  # an hour of passes while podman keeps restarting it
            p = await _pass(watch)
            assert any(
                f.subject == lab_containers.looping and f.rule == "container-restart-loop"
                for f in p.findings
            )
            clock.advance(600)
        await _pass(watch)
    finally:
        await watch.stop()
    loop = about(hook, lab_containers.looping)
    assert len(loop) == 1 and "restart loop" in loop[0], loop


async def _pass_until(watch: Watch, name: str, *, present: bool) -> bool:
    """Passes until the rules see `name`'s finding (or its absence): the reader learns of a
    change from the engine's event stream, a moment after the podman command returns."""
    for _ in range(80):
        p = await _pass(watch)
        if any(f.subject == name and f.rule == "container-exited" for f in p.findings) == present:
            return True
        await asyncio.sleep(0.1)
    return False


async def _pass(watch: Watch) -> Pass:
    await watch.poller.poll_all()
    p = await watch.run_pass()
    for ch in watch.channels.values():
        assert await ch.drain(20)
    return p
