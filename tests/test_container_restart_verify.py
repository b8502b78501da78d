"""A restart's verify reports what the engine did: against real podman, where no healthcheck
timer runs (LAB-NOTES), a container's health stays "starting" after a restart that worked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actions.registry import build
from actions.runner import Runner
from lab.config import Config, ConsoleConfig, LocalConfig
from lab.wiring import Lab
from tests.testbed.podman import IMAGE, LabContainers, idle_command, podman

pytestmark = pytest.mark.testbed

UNTIMED = "hc-untimed"


@pytest.fixture
def untimed(lab_containers: LabContainers) -> Iterator[str]:
    """A healthchecked container nothing ever evaluates (the session's ticker skips it)."""
    env = lab_containers.env
    podman(
        env, "run", "-d", "--name", UNTIMED, "--network", "none",
        "--health-cmd", "true", "--health-interval", "2s", IMAGE, *idle_command(),
    )  # fmt: skip
    try:
        yield UNTIMED
    finally:
        podman(env, "rm", "--force", "--time", "0", UNTIMED)


def health(lab_containers: LabContainers, name: str) -> str:
    fmt = "{{.State.Health.Status}}"
    return podman(lab_containers.env, "inspect", "--format", fmt, name).strip()


async def test_restart_whose_healthcheck_never_runs_passes_with_a_note(
    lab_containers: LabContainers, untimed: str, tmp_path: Path
) -> None:
    lab = Lab(
        Config(
            console=ConsoleConfig(state_dir=tmp_path / "state"),
            local=LocalConfig(containers=lab_containers.url),
        )
    )
    try:
        runner = Runner(lab)
        prepared = await runner.prepare(build("restart", f"container:{untimed}@local", lab, {}))
        seen: list[str] = []
        result = await runner.run(prepared, "", lambda _f, message: seen.append(message))
        assert result.ok, result.outcome.message
        assert "healthcheck not evaluated" in result.outcome.message
        assert result.outcome.details.get("health") == "not evaluated"
        assert health(lab_containers, untimed) == "starting"  # the engine never ran a check
        waits = [m for m in seen if m.startswith("waiting for the healthcheck of")]
        assert waits, seen
        assert waits[-1].endswith(" s") and " s of " in waits[-1], waits
        assert result.rollback is None
    finally:
        await lab.close()


async def test_restart_with_a_failing_healthcheck_still_fails(
    lab_containers: LabContainers, tmp_path: Path
) -> None:
    """The session's ticker runs web-unhealthy's check: evaluated and failing is a failure."""
    lab = Lab(
        Config(
            console=ConsoleConfig(state_dir=tmp_path / "state"),
            local=LocalConfig(containers=lab_containers.url),
        )
    )
    try:
        runner = Runner(lab)
        prepared = await runner.prepare(build("restart", "container:web-unhealthy@local", lab, {}))
        result = await runner.run(prepared, "")
        assert not result.ok
        assert "unhealthy" in result.outcome.message
        assert "not evaluated" not in result.outcome.message
    finally:
        await lab.close()
