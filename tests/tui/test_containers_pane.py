"""The containers pane against the podman testbed, through the real runner and audit log:
select, restart (cancel / confirm), read-only refusal, bulk restart of the filtered rows, logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Label

from actions.runner import Runner
from lab.config import Config, ConsoleConfig, LocalConfig
from lab.containers import readers
from lab.wiring import Lab
from tests.testbed.podman import IMAGE, LabContainers, idle_command, podman
from tests.tui.fixtures import make_context
from tests.tui.waiting import wait_for
from tui.app import HlconApp
from tui.panes.containers import ContainerDetail, ContainersPane
from tui.screens.confirm import ConfirmModal
from tui.screens.logs import LogsScreen

pytestmark = pytest.mark.testbed
SIZE = (100, 30)


async def console(lab_containers: LabContainers, tmp: Path, read_only: bool = False) -> HlconApp:
    config = Config(
        console=ConsoleConfig(state_dir=tmp / "state", read_only=read_only),
        local=LocalConfig(containers=lab_containers.url),
    )
    lab = Lab(config)
    (reader,) = readers(lab)
    reading = await reader.read()
    ctx = make_context(config=config, runner=Runner(lab), lab=lab, readings=[(reader.key, reading)])
    return HlconApp(ctx, initial_pane=3)


def started(lab_containers: LabContainers, name: str) -> str:
    return podman(lab_containers.env, "inspect", "--format", "{{.State.StartedAt}}", name).strip()


def runner_of(app: HlconApp) -> Runner:
    assert app.ctx.runner is not None
    return app.ctx.runner


def lab_of(app: HlconApp) -> Lab:
    assert app.ctx.lab is not None
    return app.ctx.lab


def last_result_ok(app: HlconApp) -> object:
    result = runner_of(app).audit.tail(1)[0].result
    assert result is not None
    return result["ok"]


def phases(app: HlconApp) -> list[str]:
    return [r.phase for r in runner_of(app).audit.records()]


def records(app: HlconApp) -> list[tuple[str, object, object]]:
    return [(r.phase, r.result, r.reason) for r in runner_of(app).audit.records()]


def pane(app: HlconApp) -> ContainersPane:
    return app.query_one(ContainersPane)


async def test_rows_and_detail(lab_containers: LabContainers, tmp_path: Path) -> None:
    app = await console(lab_containers, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        ids = {r.id for r in pane(app).filtered_rows()}
        assert {f"container:{n}@local" for n in lab_containers.names} <= ids
        assert pane(app).select_row("container:web-unhealthy@local")
        await pilot.press("enter")
        assert isinstance(app.screen, ContainerDetail)
        assert "unhealthy" in str(app.screen.query_one("Static").render())
        await pilot.press("escape")
    await lab_of(app).close()


async def test_restart_cancel_then_confirm(lab_containers: LabContainers, tmp_path: Path) -> None:
    app = await console(lab_containers, tmp_path)
    before = started(lab_containers, "web-healthy")
    async with app.run_test(size=SIZE) as pilot:
        assert pane(app).select_row("container:web-healthy@local")
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm modal")
        plan_shown = str(app.screen.query_one("#plan").render())
        assert "Restart container web-healthy on local" in plan_shown
        assert "POST /containers/" in plan_shown
        await pilot.press("escape")
        await wait_for(pilot, lambda: phases(app) == ["planned", "cancelled"], "cancel audited")
        assert started(lab_containers, "web-healthy") == before

        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm modal")
        await pilot.press("enter")
        await wait_for(
            pilot,
            # a failed one is followed by its rollback record: stop waiting at the outcome
            lambda: "outcome" in phases(app),
            "outcome audited",
            seen=lambda: records(app),
        )
    assert phases(app) == ["planned", "cancelled", "planned", "intent", "outcome"], records(app)
    assert last_result_ok(app) is True
    assert started(lab_containers, "web-healthy") != before
    await lab_of(app).close()


async def test_read_only_refuses(lab_containers: LabContainers, tmp_path: Path) -> None:
    app = await console(lab_containers, tmp_path, read_only=True)
    before = started(lab_containers, "db-plain")
    async with app.run_test(size=SIZE) as pilot:
        assert pane(app).select_row("container:db-plain@local")
        await pilot.press("R")
        await wait_for(pilot, lambda: phases(app) == ["refused"], "refusal audited")
        assert not isinstance(app.screen, ConfirmModal)
    assert started(lab_containers, "db-plain") == before
    await lab_of(app).close()


async def test_bulk_restart_of_the_filtered_rows(
    lab_containers: LabContainers, tmp_path: Path
) -> None:
    app = await console(lab_containers, tmp_path)
    before = started(lab_containers, "db-plain")
    others = {n: started(lab_containers, n) for n in ("web-healthy", "web-unhealthy")}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"db-pl", "enter")
        assert [r.id for r in pane(app).filtered_rows()] == ["container:db-plain@local"]
        await pilot.press("B")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm modal")
        assert isinstance(app.screen, ConfirmModal)
        assert app.screen.expect == "1"
        # Typed before the field has focus, "1" is the app's pane key and Enter submits nothing
        await wait_for(pilot, lambda: getattr(app.focused, "id", None) == "answer", "the field")
        await pilot.press("1", "enter")
        await wait_for(
            pilot,
            # a failed one is followed by its rollback record: stop waiting at the outcome
            lambda: "outcome" in phases(app),
            "outcome audited",
            seen=lambda: records(app),
        )
    assert phases(app) == ["planned", "intent", "outcome"], records(app)
    assert last_result_ok(app) is True
    assert started(lab_containers, "db-plain") != before
    assert {n: started(lab_containers, n) for n in others} == others
    await lab_of(app).close()


async def test_logs_key_opens_the_log(lab_containers: LabContainers, tmp_path: Path) -> None:
    app = await console(lab_containers, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        assert pane(app).select_row("container:job-exited@local")
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LogsScreen), "logs screen")
        logs = app.screen
        assert isinstance(logs, LogsScreen)
        await wait_for(pilot, lambda: list(logs.buffer.lines) == ["job failing"], "the log line")
        await pilot.press("escape")
        assert not isinstance(app.screen, LogsScreen)
    await lab_of(app).close()


async def test_restart_whose_healthcheck_never_runs_is_reported_done(
    lab_containers: LabContainers, tmp_path: Path
) -> None:
    """Podman without a timer never evaluates the check: the restart worked, the toast says
    so with a note, and meanwhile the progress line says what it waits for."""
    name = "hc-pane-untimed"
    podman(
        lab_containers.env, "run", "-d", "--name", name, "--network", "none",
        "--health-cmd", "true", "--health-interval", "2s", IMAGE, *idle_command(),
    )  # fmt: skip
    try:
        app = await console(lab_containers, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            assert pane(app).select_row(f"container:{name}@local")
            await pilot.press("R")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm modal")
            await pilot.press("enter")
            label = app.screen_stack[0].query_one("#progress-label", Label)
            await wait_for(
                pilot,
                lambda: str(label.render()).startswith("waiting for the healthcheck of"),
                "progress names the wait",
                seen=lambda: str(label.render()),
            )
            assert " s of " in str(label.render())
            await wait_for(pilot, lambda: "outcome" in phases(app), "outcome audited")
            await pilot.pause()
            toasts = [(n.title, n.message) for n in app._notifications]
            assert any(t == "Done" and "healthcheck not evaluated" in m for t, m in toasts), toasts
            assert not any(t == "Action failed" for t, _ in toasts), toasts
        assert phases(app) == ["planned", "intent", "outcome"], records(app)
        await lab_of(app).close()
    finally:
        podman(lab_containers.env, "rm", "--force", "--time", "0", name)
