"""Containers against real podman (its Docker-compatible API on a private socket): list, stats,
logs, restart, stop/start, bulk restart through the runner, dry-run, refusals, endpoint faults."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actions.base import BlastRadius, Target
from actions.registry import build
from actions.runner import Refused, Runner
from lab.config import Config, ConsoleConfig, ContainerEndpointConfig, LocalConfig
from lab.containers import (
    ContainersReader,
    DockerEndpoint,
    build_endpoints,
    endpoints,
    follow_logs,
    readers,
    tail_logs,
)
from lab.health import container_findings
from lab.model import ContainerEndpointState
from lab.poller import Poller, ReadError
from lab.store import Store
from lab.wiring import Lab
from tests.testbed.podman import IMAGE, LabContainers, idle_command, podman

pytestmark = pytest.mark.testbed


def make_lab(url: str, tmp: Path, **console: object) -> Lab:
    config = Config(
        console=ConsoleConfig(state_dir=tmp / "state", audit_log=tmp / "audit.jsonl", **console),  # type: ignore[arg-type]
        local=LocalConfig(containers=url),
    )
    return Lab(config)


@pytest.fixture
async def lab(lab_containers: LabContainers, tmp_path: Path) -> AsyncIterator[Lab]:
    made = make_lab(lab_containers.url, tmp_path)
    yield made
    await made.close()


def inspect(env: dict[str, str], name: str, fmt: str) -> str:
    return podman(env, "inspect", "--format", fmt, name).strip()


def audit_phases(lab: Lab) -> list[tuple[str, str]]:
    path = lab.config.console.audit_log
    assert path is not None
    lines = path.read_text().splitlines() if path.exists() else []
    return [(r["phase"], r["target"]) for r in map(json.loads, lines)]


# ---------------------------------------------------------------- reading


async def test_reader_lists_every_demo_container_with_state(
    lab_containers: LabContainers, lab: Lab
) -> None:
    (reader,) = readers(lab)
    assert reader.key == ("containers", "local")
    state = await reader.read()
    assert isinstance(state, ContainerEndpointState)
    assert state.engine.startswith("podman ")
    by = {c.name: c for c in state.containers}
    assert set(lab_containers.names) <= set(by)
    assert by["web-healthy"].health == "healthy"
    assert by["web-unhealthy"].health == "unhealthy"
    assert (by["job-exited"].state, by["job-exited"].exit_code) == ("exited", 3)
    assert by["crash-loop"].restart_count >= 6
    assert by["db-plain"].health is None and by["db-plain"].state == "running"
    # Stats: memory at once, CPU % from the second reading on (counters of the previous one).
    assert by["db-plain"].mem_usage and by["db-plain"].cpu_percent is None
    second = await reader.read()
    assert isinstance(second, ContainerEndpointState)
    again = {c.name: c for c in second.containers}
    assert again["db-plain"].cpu_percent is not None and again["db-plain"].cpu_percent >= 0
    findings = {f.subject for f in container_findings(state, lab.config, reader.key, state.at)}
    assert {"web-unhealthy", "job-exited", "crash-loop"} <= findings


async def test_docker_path_reads_the_same_as_the_libpod_path(
    lab_containers: LabContainers, lab: Lab
) -> None:
    """The generic Docker route (list + inspect + one-shot stats) against the same engine."""
    podman_reader = ContainersReader(DockerEndpoint("a", lab_containers.url))
    docker_endpoint = DockerEndpoint("b", lab_containers.url)
    docker_reader = ContainersReader(docker_endpoint)
    try:
        await docker_endpoint.client()
        docker_endpoint.is_podman = False  # take the route a Docker engine takes
        a, b = await podman_reader.read(), await docker_reader.read()
        key = {c.name: (c.id, c.state, c.health, c.exit_code) for c in a.containers}
        assert {c.name: (c.id, c.state, c.health, c.exit_code) for c in b.containers} == key
        running = [c for c in b.containers if c.state == "running"]
        assert running and all(c.mem_usage for c in running)
    finally:
        await podman_reader.close()
        await docker_reader.close()


async def test_ports_are_read(lab_containers: LabContainers, lab: Lab) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = lab_containers.env
    podman(
        env, "run", "-d", "--name", "ported", "-p", f"127.0.0.1:{port}:80", IMAGE, *idle_command()
    )
    try:
        state = await readers(lab)[0].read()
        assert isinstance(state, ContainerEndpointState)
        ported = next(c for c in state.containers if c.name == "ported")
        assert [str(p) for p in ported.ports] == [f"127.0.0.1:{port}->80/tcp"]
    finally:
        podman(env, "rm", "--force", "--time", "0", "ported")


async def test_missing_socket_is_a_fault_on_that_endpoint_only(
    lab_containers: LabContainers, tmp_path: Path
) -> None:
    config = Config(
        local=LocalConfig(containers=lab_containers.url),
        containers=(ContainerEndpointConfig("gone", f"unix://{tmp_path}/missing.sock"),),
    )
    lab = Lab(config)
    store = Store()
    poller = Poller(store, readers(lab))
    try:
        await poller.poll_all()
    finally:
        await lab.close()
    good, bad = store.get(("containers", "local")), store.get(("containers", "gone"))
    assert good is not None and good.fault is None and good.reading is not None
    assert bad is not None and bad.reading is None and bad.fault is not None
    assert bad.fault.what == "docker endpoint unreachable"
    assert "missing.sock does not exist" in bad.fault.why


async def test_not_a_docker_api_is_a_clear_fault(tmp_path: Path) -> None:
    """A unix socket that speaks something else (here: an HTTP server that answers 404)."""
    path = tmp_path / "other.sock"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot here\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(handle, str(path))
    endpoint = DockerEndpoint("other", f"unix://{path}")
    try:
        with pytest.raises(ReadError) as info:
            await ContainersReader(endpoint).read()
        assert info.value.what in ("docker API error", "not a Docker API", "docker endpoint failed")
        assert str(info.value)
    finally:
        await endpoint.aclose()
        server.close()
        await server.wait_closed()


async def test_url_provider_is_asked_for_the_url(lab_containers: LabContainers) -> None:
    asked: list[int] = []

    async def provider() -> str:
        asked.append(1)
        return lab_containers.url

    endpoint = DockerEndpoint("via-provider", url_provider=provider)
    try:
        state = await ContainersReader(endpoint).read()
        assert state.endpoint == "via-provider" and state.containers
        assert asked == [1]
    finally:
        await endpoint.aclose()


# ---------------------------------------------------------------- logs


async def test_tail_logs_is_bounded(lab_containers: LabContainers, lab: Lab) -> None:
    endpoint = endpoints(lab).get("local")
    lines = await tail_logs(endpoint, "crash-loop", 2)
    assert len(lines) == 2 and all(line.startswith("crashing (run ") for line in lines)
    assert await tail_logs(endpoint, "job-exited", 50) == ["job failing"]
    with pytest.raises(ReadError, match="no container named"):
        await tail_logs(endpoint, "$(id)", 5)


async def test_follow_logs_streams_new_lines_and_stops_cleanly(
    lab_containers: LabContainers, lab: Lab
) -> None:
    env = lab_containers.env
    talk = 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.2; done'
    podman(
        env,
        "run",
        "-d",
        "--name",
        "talker",
        IMAGE,
        "sh",
        "-c",
        f'trap "exit 0" TERM; {talk} & wait',
    )
    try:
        endpoint = endpoints(lab).get("local")
        seen: list[str] = []
        stream = follow_logs(endpoint, "talker", 1)
        async for line in stream:
            seen.append(line)
            if len(seen) == 4:
                break
        await stream.aclose()
        numbers = [int(s.split()[1]) for s in seen]
        assert numbers == sorted(numbers) and len(set(numbers)) == 4
    finally:
        podman(env, "rm", "--force", "--time", "0", "talker")


# ---------------------------------------------------------------- actions through the runner


async def test_restart_changes_started_at_and_is_audited(
    lab_containers: LabContainers, lab: Lab
) -> None:
    env = lab_containers.env
    before = inspect(env, "web-healthy", "{{.State.StartedAt}}")
    runner = Runner(lab)
    prepared = await runner.prepare(build("restart", "container:web-healthy@local", lab, {}))
    plan = prepared.plan
    assert plan.blast_radius is BlastRadius.SINGLE and plan.confirmation.expect is None
    cid = inspect(env, "web-healthy", "{{.Id}}")
    assert f"POST /containers/{cid[:12]}/restart" in plan.steps[0].description
    result = await runner.run(prepared, "")
    assert result.ok, result.outcome.message
    assert "healthy" in result.outcome.message
    assert inspect(env, "web-healthy", "{{.State.StartedAt}}") != before
    assert inspect(env, "web-healthy", "{{.State.Running}}") == "true"
    assert [p for p, _ in audit_phases(lab)] == ["planned", "intent", "outcome"]


async def test_restart_of_an_unhealthy_container_fails_verification(
    lab_containers: LabContainers, lab: Lab
) -> None:
    runner = Runner(lab)
    prepared = await runner.prepare(build("restart", "container:web-unhealthy", lab, {}))
    result = await runner.run(prepared, "")
    assert not result.ok
    assert "unhealthy" in result.outcome.message
    assert inspect(lab_containers.env, "web-unhealthy", "{{.State.Running}}") == "true"


async def test_restart_that_leaves_the_container_down_is_rolled_back(
    lab_containers: LabContainers, lab: Lab, tmp_path: Path
) -> None:
    """The engine stops the container, then cannot start it (its bind-mount source is gone):
    the rollback tries to start it again and the audit says why that failed too."""
    env = lab_containers.env
    data = tmp_path / "data"
    data.mkdir()
    podman(
        env, "run", "-d", "--name", "mount-gone", "--network", "none",
        "-v", f"{data}:/data", IMAGE, *idle_command(),
    )  # fmt: skip
    try:
        runner = Runner(lab)
        prepared = await runner.prepare(build("restart", "container:mount-gone@local", lab, {}))
        data.rmdir()
        result = await runner.run(prepared, "")
        assert not result.ok
        assert "restart" in result.outcome.message
        assert result.rollback is not None and not result.rollback.ok
        assert "start" in result.rollback.message and str(data) in result.rollback.message
        assert inspect(env, "mount-gone", "{{.State.Running}}") == "false"
        assert [p for p, _ in audit_phases(lab)] == ["planned", "intent", "outcome", "rollback"]

        # Same failure with the source back in place before the rollback: it comes back up.
        data.mkdir()
        podman(env, "start", "mount-gone")
        prepared = await runner.prepare(build("restart", "container:mount-gone@local", lab, {}))
        plan = prepared.plan
        podman(env, "stop", "--time", "0", "mount-gone")
        rolled = await build("restart", "container:mount-gone@local", lab, {}).rollback(plan)
        assert rolled is not None and rolled.ok, rolled
        assert inspect(env, "mount-gone", "{{.State.Running}}") == "true"
        # A container that still runs is left alone.
        assert await build("restart", "container:mount-gone@local", lab, {}).rollback(plan) is None
    finally:
        podman(env, "rm", "--force", "--time", "0", "mount-gone")


async def test_stop_needs_the_name_then_start(lab_containers: LabContainers, lab: Lab) -> None:
    env = lab_containers.env
    runner = Runner(lab)
    prepared = await runner.prepare(build("stop", "container:db-plain@local", lab, {}))
    assert prepared.plan.blast_radius is BlastRadius.DISRUPTIVE
    assert prepared.plan.confirmation.expect == "db-plain"
    with pytest.raises(Refused, match="confirmation did not match"):
        await runner.run(prepared, "")
    assert inspect(env, "db-plain", "{{.State.Status}}") == "running"

    prepared = await runner.prepare(build("stop", "container:db-plain@local", lab, {}))
    result = await runner.run(prepared, "db-plain")
    assert result.ok, result.outcome.message
    assert inspect(env, "db-plain", "{{.State.Status}}") == "exited"

    prepared = await runner.prepare(build("start", "container:db-plain@local", lab, {}))
    result = await runner.run(prepared, "")
    assert result.ok, result.outcome.message
    assert inspect(env, "db-plain", "{{.State.Status}}") == "running"


async def test_bulk_restart_of_a_glob(lab_containers: LabContainers, lab: Lab) -> None:
    env = lab_containers.env
    for name in ("bulk-a", "bulk-b", "bulk-c"):
        podman(env, "run", "-d", "--name", name, IMAGE, *idle_command())
    try:
        before = {n: inspect(env, n, "{{.State.StartedAt}}") for n in ("bulk-a", "bulk-b")}
        other = inspect(env, "bulk-c", "{{.State.StartedAt}}")
        runner = Runner(lab)
        prepared = await runner.prepare(build("restart", "containers:bulk-[ab]@local", lab, {}))
        plan = prepared.plan
        assert plan.blast_radius is BlastRadius.BULK
        assert plan.confirmation.expect == "2" and len(plan.steps) == 2
        result = await runner.run(prepared, "2")
        assert result.ok, result.outcome.message
        assert all(inspect(env, n, "{{.State.StartedAt}}") != t for n, t in before.items())
        assert inspect(env, "bulk-c", "{{.State.StartedAt}}") == other
    finally:
        podman(env, "rm", "--force", "--time", "0", "bulk-a", "bulk-b", "bulk-c")


async def test_bulk_restart_of_a_filtered_selection(
    lab_containers: LabContainers, lab: Lab
) -> None:
    env = lab_containers.env
    before = int(inspect(env, "crash-loop", "{{.RestartCount}}"))
    runner = Runner(lab)
    action = build("restart", "containers:selection@local", lab, {"names": ["db-plain"]})
    prepared = await runner.prepare(action)
    assert prepared.plan.confirmation.expect == "1"
    assert action.lock_keys == ("container:db-plain@local",)
    result = await runner.run(prepared, "1")
    assert result.ok, result.outcome.message
    assert int(inspect(env, "crash-loop", "{{.RestartCount}}")) >= before  # still looping


async def test_dry_run_changes_nothing_and_is_audited_planned(
    lab_containers: LabContainers, lab: Lab
) -> None:
    env = lab_containers.env
    before = inspect(env, "web-healthy", "{{.State.StartedAt}}")
    runner = Runner(lab)
    prepared = await runner.prepare(build("restart", "container:web-healthy@local", lab, {}))
    runner.cancel(prepared)
    assert inspect(env, "web-healthy", "{{.State.StartedAt}}") == before
    assert audit_phases(lab) == [
        ("planned", "container:web-healthy@local"),
        ("cancelled", "container:web-healthy@local"),
    ]


@pytest.mark.parametrize("name", ["$(id)", "`id`", "web-*", "x;id"])
async def test_hostile_names_are_looked_up_exactly(
    lab_containers: LabContainers, lab: Lab, name: str
) -> None:
    runner = Runner(lab)
    with pytest.raises(Refused, match="no container named"):
        await runner.prepare(build("restart", Target("container", name, "local"), lab, {}))


async def test_name_with_spaces_is_not_a_target(lab: Lab) -> None:
    with pytest.raises(ValueError, match="not a target"):
        build("restart", "container:x; touch /tmp/pwned@local", lab, {})


async def test_read_only_refuses(lab_containers: LabContainers, tmp_path: Path) -> None:
    lab = make_lab(lab_containers.url, tmp_path, read_only=True)
    before = inspect(lab_containers.env, "web-healthy", "{{.State.StartedAt}}")
    try:
        with pytest.raises(Refused, match="read-only"):
            await Runner(lab).prepare(build("restart", "container:web-healthy", lab, {}))
    finally:
        await lab.close()
    assert inspect(lab_containers.env, "web-healthy", "{{.State.StartedAt}}") == before
    assert [p for p, _ in audit_phases(lab)] == ["refused"]


async def test_unknown_endpoint_is_refused_with_the_known_ones(lab: Lab) -> None:
    with pytest.raises(Refused, match="no container endpoint named 'nas'"):
        await Runner(lab).prepare(build("restart", "container:web-healthy@nas", lab, {}))


# ---------------------------------------------------------------- events keep refreshes small


async def test_events_tell_the_reader_what_changed(lab_containers: LabContainers) -> None:
    env = lab_containers.env
    reader = ContainersReader(DockerEndpoint("ev", lab_containers.url))
    try:
        first = {c.name: c for c in (await reader.read()).containers}
        assert reader.events is not None and reader.events.alive
        await reader.read()
        assert reader.full_reads == 1  # nothing was created or removed: no list read again
        podman(env, "restart", "--time", "0", "db-plain")
        podman(env, "run", "-d", "--name", "newcomer", IMAGE, *idle_command())
        for _ in range(100):  # the events arrive on their own thread
            now = {c.name: c for c in (await reader.read()).containers}
            if "newcomer" in now and now["db-plain"].started_at != first["db-plain"].started_at:
                break
            await asyncio.sleep(0.1)
        assert "newcomer" in now
        assert now["db-plain"].started_at != first["db-plain"].started_at
        assert now["db-plain"].state == "running"
    finally:
        podman(env, "rm", "--force", "--time", "0", "newcomer")
        await reader.close()
    assert reader.events is not None and not reader.events.alive


async def test_auto_detect_takes_the_first_socket_that_answers(
    lab_containers: LabContainers, tmp_path: Path
) -> None:
    runtime = tmp_path / "xdg"
    (runtime / "podman").mkdir(parents=True)
    (runtime / "podman" / "podman.sock").symlink_to(lab_containers.url.removeprefix("unix://"))
    dead = tmp_path / "dead.sock"  # a socket file nobody listens on
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(dead))
    environ = {"DOCKER_HOST": f"unix://{dead}", "XDG_RUNTIME_DIR": str(runtime)}
    lab = Lab(Config(local=LocalConfig(containers="auto")))
    (endpoint,) = build_endpoints(lab, environ=environ)
    try:
        state = await ContainersReader(endpoint).read()
        system_sockets = ("/var/run/docker.sock", "/run/podman/podman.sock")
        if not any(Path(p).exists() for p in system_sockets):  # they would come first
            assert endpoint.url == f"unix://{runtime}/podman/podman.sock"
        assert {c.name for c in state.containers} >= set(lab_containers.names)
    finally:
        await endpoint.aclose()
