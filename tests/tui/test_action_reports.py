"""How the console reports an action's result (real runner, real audit log, a test-only family
that fails without changing anything): the rollback that had nothing to undo, the failure toast."""

from __future__ import annotations

from pathlib import Path

from actions.base import (
    Action,
    ActionFailed,
    BlastRadius,
    Confirmation,
    Outcome,
    Plan,
    Progress,
    Step,
    Target,
)
from actions.runner import Runner
from lab.config import Config, ConsoleConfig
from lab.wiring import Lab
from tests.tui.fixtures import make_context
from tests.tui.waiting import wait_for
from tui.app import FAILURE_TOAST_SECONDS, HlconApp
from tui.panes.audit import AuditPane
from tui.screens.confirm import ConfirmModal

SIZE = (80, 24)


class FailsUntouched(Action):
    """Test-only: execute fails before it changes anything; no rollback (nothing to undo)."""

    family = "test.fails-untouched"
    verb = "try"

    async def plan(self) -> Plan:
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"Try {self.target.name}",
            steps=(Step("fail at once", "local"),),
            blast_radius=BlastRadius.SINGLE,
            confirmation=Confirmation(f"Try {self.target.name}?"),
            data=None,
        )

    async def execute(self, plan: Plan, progress: Progress) -> Outcome:
        raise ActionFailed("the engine said no")

    async def verify(self, plan: Plan, outcome: Outcome) -> Outcome:
        return outcome


async def test_rollback_with_nothing_to_undo_is_none_not_failed(tmp_path: Path) -> None:
    config = Config(console=ConsoleConfig(state_dir=tmp_path / "state"))
    lab = Lab(config)
    runner = Runner(lab)
    app = HlconApp(make_context(config=config, runner=runner, lab=lab))
    async with app.run_test(size=SIZE) as pilot:
        worker = app.launch(FailsUntouched(Target("thing", "x"), lab))
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm modal")
        await pilot.press("enter")
        result = await worker.wait()
        assert result is not None
        assert not result.ok and result.rollback is None
        await pilot.pause()

        # The failure toast goes away in a few seconds; the audit pane keeps the record.
        failures = [n for n in app._notifications if n.title == "Action failed"]
        assert failures and all(n.timeout <= FAILURE_TOAST_SECONDS <= 6 for n in failures)
        assert "pane 7" in failures[-1].message

        await pilot.press("7")
        pane = app.pane()
        assert isinstance(pane, AuditPane)
        by_phase = {r.data.phase: r for r in pane.filtered_rows()}
        rollback = str(by_phase["rollback"].cells[4])
        assert rollback == "none — nothing was changed", rollback
        assert "FAILED" in str(by_phase["outcome"].cells[4])
    await lab.close()


async def test_refusal_toast_is_brief_and_points_to_the_audit_pane(tmp_path: Path) -> None:
    config = Config(console=ConsoleConfig(state_dir=tmp_path / "state", read_only=True))
    lab = Lab(config)
    runner = Runner(lab)
    app = HlconApp(make_context(config=config, runner=runner, lab=lab))
    async with app.run_test(size=SIZE) as pilot:
        await app.launch(FailsUntouched(Target("thing", "x"), lab)).wait()
        await pilot.pause()
        refused = [n for n in app._notifications if (n.title or "").startswith("Refused")]
        assert refused and all(n.timeout <= FAILURE_TOAST_SECONDS for n in refused)
        assert "pane 7" in refused[-1].message
        assert [r.phase for r in runner.audit.records()] == ["refused"]
    await lab.close()
