"""Against the real systemd host (Debian bookworm in podman, reached over SSH): host reading
with systemd and fail2ban, the journal, service restart/stop through the runner, refusals."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from actions.base import BlastRadius, Target
from actions.registry import build
from actions.runner import Refused, Runner
from lab.config import Config, ConsoleConfig, HostConfig
from lab.health import host_findings
from lab.hosts import HostReader, journal_follow, journal_tail
from lab.model import HostState, Severity
from lab.wiring import Lab
from tests.testbed.systemd import SystemdHost

pytestmark = pytest.mark.testbed

SERVICES = ("demo", "broken", "$(id)")


@pytest.fixture
async def lab(systemd_host: SystemdHost, tmp_path: Path):  # type: ignore[no-untyped-def]
    known = tmp_path / "known_hosts"
    known.write_text(systemd_host.known_hosts_line + "\n")
    host = HostConfig(
        name="sysd",
        address=systemd_host.address,
        port=systemd_host.port,
        user=systemd_host.user,
        identity=systemd_host.identity,
        known_hosts=known,
        services=SERVICES,
    )
    the_lab = Lab(Config(console=ConsoleConfig(state_dir=tmp_path), hosts=(host,)))
    yield the_lab
    await the_lab.close()


async def read(lab: Lab) -> HostState:
    reader = HostReader(
        "sysd", lab.executor("sysd"), interval=5, timeout=10, units=True, services=SERVICES
    )
    return await reader.read()


async def test_reads_systemd_units_and_fail2ban(lab: Lab, systemd_host: SystemdHost) -> None:
    systemd_host.exec("fail2ban-client", "set", "sshd", "banip", "192.0.2.7")
    state = await read(lab)
    assert state.systemd is True
    assert state.hostname == "hlcon-systemd"
    assert "broken.service" in state.failed_units
    units = {u.name: u for u in state.services}
    assert units["demo.service"].active == "active" and units["demo.service"].main_pid
    assert units["demo.service"].since is not None
    assert units["broken.service"].active == "failed"
    # the hostile name was passed as a parameter: systemd just never heard of it
    assert units["$(id).service"].active == "not-found"
    jails = {j.name: j for j in state.fail2ban or ()}
    assert jails["sshd"].banned >= 1
    rules = {
        (f.rule, f.subject) for f in host_findings(state, lab.config, ("host", "sysd"), state.at)
    }
    assert ("failed-unit", "broken.service") in rules
    assert ("service-inactive", "$(id).service") in rules


async def test_restart_changes_mainpid_and_the_journal_shows_it(lab: Lab) -> None:
    before = {u.name: u for u in (await read(lab)).services}["demo.service"]
    runner = Runner(lab)
    prepared = await runner.prepare(build("restart", "service:demo@sysd", lab, {}))
    assert prepared.plan.blast_radius is BlastRadius.SINGLE
    assert prepared.plan.steps[0].argv == ("systemctl", "restart", "--", "demo.service")
    followed: list[str] = []
    follow = asyncio.create_task(
        journal_follow(lab.executor("sysd"), "demo.service", followed.append, lines=0)
    )
    await asyncio.sleep(0.5)  # journalctl -f is attached
    result = await runner.run(prepared, "")
    assert result.ok, result.outcome.message
    new_pid = result.outcome.details["main_pid"]
    assert new_pid and new_pid != before.main_pid
    after = {u.name: u for u in (await read(lab)).services}["demo.service"]
    assert after.main_pid == new_pid and after.active == "active"
    tail = await journal_tail(lab.executor("sysd"), "demo.service", 20)
    assert any(f"[{new_pid}]" in line for line in tail), tail
    for _ in range(50):
        if any(f"[{new_pid}]" in line for line in followed):
            break
        await asyncio.sleep(0.1)
    follow.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await follow
    assert any(f"[{new_pid}]" in line for line in followed), followed


async def test_service_not_on_the_list_is_refused(lab: Lab) -> None:
    runner = Runner(lab)
    with pytest.raises(Refused, match=r'add "ssh" to services = \[\.\.\.\] in \[\[hosts\]\] sysd'):
        await runner.prepare(build("restart", "service:ssh@sysd", lab, {}))


async def test_hostile_unit_name_never_reaches_a_shell(lab: Lab, systemd_host: SystemdHost) -> None:
    runner = Runner(lab)
    with pytest.raises(Refused, match="does not exist"):
        await runner.prepare(build("restart", Target("service", "$(id)", "sysd"), lab, {}))
    with pytest.raises(Refused, match="not among"):
        await runner.prepare(
            build("restart", Target("service", "x;touch${IFS}/tmp/pwned", "sysd"), lab, {})
        )
    assert "pwned" not in systemd_host.exec("ls", "/tmp")


async def test_stop_needs_the_name_typed_then_start_brings_it_back(lab: Lab) -> None:
    runner = Runner(lab)
    prepared = await runner.prepare(build("stop", "service:demo@sysd", lab, {}))
    assert prepared.plan.blast_radius is BlastRadius.DISRUPTIVE
    with pytest.raises(Refused):
        await runner.run(prepared, "")
    prepared = await runner.prepare(build("stop", "service:demo@sysd", lab, {}))
    result = await runner.run(prepared, "demo")
    assert result.ok and result.outcome.details["state"] == "inactive/dead"
    prepared = await runner.prepare(build("start", "service:demo@sysd", lab, {}))
    result = await runner.run(prepared, "")
    assert result.ok and result.outcome.details["state"] == "active/running"
    state = await read(lab)
    findings = host_findings(state, lab.config, ("host", "sysd"), state.at)
    assert not [f for f in findings if f.subject == "demo.service"]
    assert max(f.severity for f in findings) >= Severity.WARNING  # broken.service stays
