"""The audit pane closes a pending intent the way `hlcon audit ack SEQ` does (issue 12, 4): `a`
on it says what died and what to check first, Enter acknowledges, Esc keeps it open."""

from __future__ import annotations

from pathlib import Path

from actions.audit import Who
from actions.runner import Runner
from lab.config import Config, ConsoleConfig
from lab.wiring import Lab
from tests.tui.fixtures import frozen_clock, make_context
from tests.tui.waiting import wait_for
from tui.app import HlconApp
from tui.panes.audit import AckModal, AuditPane

SIZE = (100, 30)
DEAD_PID = 2**22 + 12345  # above pid_max's default: no such process


def runner_with_a_dead_intent(tmp_path: Path) -> tuple[Runner, int]:
    config = Config(console=ConsoleConfig(state_dir=tmp_path / "state"))
    runner = Runner(Lab(config, clock=frozen_clock))
    runner.audit.append(
        "cancelled", who=Who.current(), action="container.restart", target="container:db@local"
    )
    intent = runner.audit.append(
        "intent",
        who=Who.current(),
        action="container.restart",
        target="container:web@local",
        ref=1,
        result={"pid": DEAD_PID, "locks": ["container:abc"], "identity": ["container:abc"]},
        sync=True,
    )
    return runner, intent.seq


async def test_a_acknowledges_the_selected_pending_intent(tmp_path: Path) -> None:
    runner, seq = runner_with_a_dead_intent(tmp_path)
    app = HlconApp(make_context(config=runner.config, runner=runner, lab=runner.lab))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7")
        pane = app.pane()
        assert isinstance(pane, AuditPane)
        assert "press a to acknowledge" in str(pane.query_one("#pending").render())

        # a row that is no pending intent: says which are
        assert pane.select_row("1")
        await pilot.press("a")
        assert not isinstance(app.screen, AckModal)
        assert any(f"#{seq}" in n.message for n in app._notifications)

        assert pane.select_row(str(seq))
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AckModal), "the ack modal")
        said = app.screen.explanation  # type: ignore[attr-defined]
        assert "container.restart on container:web@local never finished" in said
        assert "Check first whether the container runs" in said
        assert f"`hlcon audit ack {seq}`" in said
        await pilot.press("escape")  # not yet: it stays pending
        await wait_for(pilot, lambda: not isinstance(app.screen, AckModal), "modal closed")
        assert [r.seq for r in runner.pending()] == [seq]

        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AckModal), "the ack modal")
        await pilot.press("enter")
        await wait_for(pilot, lambda: runner.pending() == [], "the intent acknowledged")
        await wait_for(
            pilot, lambda: not pane.query_one("#pending").has_class("-shown"), "banner gone"
        )
    closing = list(runner.audit.records())[-1]
    assert closing.phase == "outcome" and closing.result is not None
    assert closing.result["status"] == "abandoned" and closing.result["intent"] == seq
    assert closing.reason == "acknowledged in the console's audit pane"
