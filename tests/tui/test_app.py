"""Pilot tests of the console shell: panes by number, filter, help, palette, a real Fault, the
confirm flow through the real runner and audit log, pending intents, modal pause."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from textual.command import CommandList, CommandPalette

from actions.audit import AuditLog, Who
from actions.base import (
    Action,
    BlastRadius,
    Confirmation,
    Outcome,
    Plan,
    Progress,
    Step,
    Target,
)
from actions.runner import Runner
from lab.config import Config, ConsoleConfig, LocalConfig
from lab.execute import CommandResult, LocalExecutor
from lab.hosts import HostReader
from lab.poller import Poller
from lab.store import Store
from lab.wiring import Lab
from tests.testbed import is_root, require, require_tools
from tests.tui.fixtures import demo_context, frozen_clock, host_state, make_context
from tests.tui.waiting import wait_for
from tui.app import HlconApp
from tui.commands.console import run_console
from tui.context import ConsoleContext
from tui.panes import PANES, Pane, Row, TablePane, pane_class
from tui.panes.audit import AuditPane
from tui.panes.hosts import HostsPane
from tui.panes.placeholder import PlaceholderPane
from tui.screens.confirm import ConfirmModal
from tui.screens.help import HelpScreen
from tui.screens.host_detail import HostDetailScreen

SIZE = (80, 24)


# ---------------------------------------------------------------- panes, filter, help, palette


async def test_number_keys_show_each_pane() -> None:
    app = HlconApp(demo_context())
    async with app.run_test(size=SIZE) as pilot:
        for number in range(1, 8):
            await pilot.press(str(number))
            pane = app.pane()
            assert app.current_pane == number
            assert number == pane.NUMBER
            assert pane.display and pane.parent is not None
        assert isinstance(app.pane(2), HostsPane)
        assert isinstance(app.pane(7), AuditPane)


async def test_unconfigured_pane_names_the_config_section() -> None:
    config = Config(local=LocalConfig(enabled=False, containers="none", wireguard=False))
    app = HlconApp(demo_context(config=config))
    async with app.run_test(size=SIZE) as pilot:
        hosts_placeholder = app.pane(2)
        assert isinstance(hosts_placeholder, PlaceholderPane)
        assert "[[hosts]]" in hosts_placeholder.message
        for number in PANES:
            cls = pane_class(number)
            pane = app.pane(number)
            if not cls.configured(config):
                assert isinstance(pane, PlaceholderPane)
                assert cls.CONFIG_SECTION is None or cls.CONFIG_SECTION in pane.message
        await pilot.press("2")
        assert app.focused is hosts_placeholder  # keys reach the app, not a hidden widget


async def test_filter_narrows_rows_and_escape_clears() -> None:
    app = HlconApp(demo_context(), initial_pane=2)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.pane()
        assert isinstance(pane, TablePane)
        assert [r.id for r in pane.filtered_rows()] == ["local", "nas", "pi"]
        await pilot.press("slash", "N", "a")
        assert [r.id for r in pane.filtered_rows()] == ["nas"]
        assert pane.table.row_count == 1
        await pilot.press("backspace", "backspace", "s", "r", "v")  # matches a cell: /srv/data
        assert [r.id for r in pane.filtered_rows()] == ["nas"]
        await pilot.press("escape")
        assert len(pane.filtered_rows()) == 3


@contextlib.asynccontextmanager
async def hosts_pane_on_nas(ctx: ConsoleContext) -> AsyncIterator[tuple[Any, TablePane]]:
    """The demo's hosts pane with the cursor on its second row, "nas"."""
    app = HlconApp(ctx, initial_pane=2)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.pane()
        assert isinstance(pane, TablePane)
        await pilot.press("down")
        assert (pane.selected_row() or Row("", ())).id == "nas"
        yield pilot, pane


async def test_cursor_keeps_its_row_across_refreshes() -> None:
    ctx = demo_context()
    async with hosts_pane_on_nas(ctx) as (pilot, pane):
        # a new host sorts before "nas": the cursor must stay on nas, not on index 1
        ctx.store.publish(("host", "alpha"), host_state("alpha"))
        await wait_for(pilot, lambda: len(pane.filtered_rows()) == 4, "alpha shown")
        assert (pane.selected_row() or Row("", ())).id == "nas"


async def test_a_changed_reading_updates_its_cells_in_place() -> None:
    """Same rows, one value changed: only that row's cells are rewritten (no clear, no re-add),
    the cursor stays put, and the table shows the new value."""
    ctx = demo_context()
    async with hosts_pane_on_nas(ctx) as (pilot, pane):
        keys_before = list(pane.table.rows)
        ctx.store.publish(("host", "pi"), host_state("pi", load=(7.77, 0.35, 0.30)))

        def load_of_pi() -> str:
            return str(pane.table.get_cell("pi", "Load"))

        await wait_for(pilot, lambda: "7.77" in load_of_pi(), "pi's new load", seen=load_of_pi)
        assert list(pane.table.rows) == keys_before
        assert all(a is b for a, b in zip(pane.table.rows, keys_before, strict=True))
        assert (pane.selected_row() or Row("", ())).id == "nas"
        assert "7.77" not in str(pane.table.get_cell("nas", "Load"))


async def test_help_lists_every_binding_of_pane_and_app() -> None:
    app = HlconApp(demo_context(), initial_pane=2)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        listed = {(where.split(" ")[0], label) for where, _, label in app.screen.entries}
        pane = app.pane(2)
        for group in pane._bindings.key_to_bindings.values():
            for binding in group:
                assert ("pane", binding.description) in listed
        for group in app._bindings.key_to_bindings.values():
            for binding in group:
                if not binding.system:
                    assert ("app", binding.description) in listed
        assert ("app", "palette") in listed  # Textual's own ctrl+p
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_palette_switches_pane() -> None:
    app = HlconApp(demo_context())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Pane 2")
        commands = app.screen.query_one(CommandList)
        await wait_for(pilot, lambda: commands.option_count > 0, "palette results")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_pane == 2, "pane 2 via palette")
        assert isinstance(app.pane(), HostsPane)


async def test_overview_enter_jumps_to_the_finding() -> None:
    app = HlconApp(demo_context())
    async with app.run_test(size=SIZE) as pilot:
        overview = app.pane(1)
        assert isinstance(overview, TablePane)
        messages = [r.data.message for r in overview.filtered_rows()]
        assert messages[0].startswith("host unreachable")  # critical first
        assert any("disk 93% full" in m for m in messages)
        await pilot.press("down", "enter")  # the disk finding on nas
        assert app.current_pane == 2
        hosts = app.pane(2)
        assert isinstance(hosts, TablePane)
        assert (hosts.selected_row() or Row("", ())).id == "nas"


async def test_theme_from_config_and_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    ctx = demo_context(config=Config(console=ConsoleConfig(theme="nord")))
    app = HlconApp(ctx)
    async with app.run_test(size=SIZE):
        assert app.theme == "nord"
        assert app.no_color
        svg = app.export_screenshot()
    # Monochrome: every colour in the picture is a grey.
    import re

    # the SVG's window buttons and its terminal theme's default foreground are not the app's
    chrome = {"ff5f57", "febc2e", "28c840", "c5c8c6"}
    colours = set(re.findall(r"#([0-9a-f]{6})\b", svg)) - chrome
    assert colours
    assert all(c[0:2] == c[2:4] == c[4:6] for c in colours), sorted(colours)[:5]


# ---------------------------------------------------------------- store → UI


async def test_modal_pauses_rendering_and_catches_up() -> None:
    ctx = demo_context()
    app = HlconApp(ctx, initial_pane=2)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.pane()
        assert isinstance(pane, TablePane)
        await pilot.press("enter")  # host detail, a modal
        assert isinstance(app.screen, HostDetailScreen)
        ctx.store.publish(("host", "zeta"), host_state("zeta"))
        await pilot.pause(0.6)  # longer than the refresh interval
        assert "zeta" not in [r.id for r in pane.filtered_rows()]
        await pilot.press("escape")
        await wait_for(pilot, lambda: "zeta" in [r.id for r in pane.filtered_rows()], "zeta")


class EmptyProcExecutor:
    """This machine through a private mount namespace whose /proc is an empty tmpfs: a real
    host whose /proc cannot be read, so the real host reader really fails."""

    def __init__(self) -> None:
        self._local = LocalExecutor("broken")

    @property
    def host(self) -> str:
        return "broken"

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> CommandResult:
        wrapped = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /proc && exec "$@"', "sh"]
        return await self._local.run(
            [*wrapped, *argv], timeout=timeout, input=input, env=env, on_line=on_line
        )


async def test_a_failing_reader_shows_a_fault_in_the_header() -> None:
    require_tools("unshare")
    require(is_root(), "root (to mount a private /proc)")
    store = Store()
    reader = HostReader("broken", EmptyProcExecutor(), interval=60, timeout=10)
    poller = Poller(store, [reader])
    ctx = ConsoleContext(Config(), None, store, poller, None)
    app = HlconApp(ctx, initial_pane=2)
    async with app.run_test(size=SIZE) as pilot:
        entry = store.get(("host", "broken"))
        assert entry is not None
        await wait_for(pilot, lambda: entry.fault is not None, "the reader's fault")
        await pilot.pause(0.4)
        pane = app.pane()
        text = str(pane.query_one("#pane-header").render())
        assert "host read failed" in text
        assert "host:broken" in text
        assert "no good reading yet" in text
        row = pane.filtered_rows()[0] if isinstance(pane, TablePane) else None
        assert row is not None and row.id == "broken"
        # and the overview lists it as critical
        await pilot.press("1")
        overview = app.pane()
        assert isinstance(overview, TablePane)
        assert overview.filtered_rows()[0].data.severity.label == "critical"


async def test_r_polls_now_through_the_real_poller() -> None:
    store = Store()
    reader = HostReader("local", LocalExecutor(), interval=3600, timeout=10)
    ctx = ConsoleContext(Config(), None, store, Poller(store, [reader]), None)
    app = HlconApp(ctx, initial_pane=2)
    async with app.run_test(size=SIZE) as pilot:
        entry = store.get(("host", "local"))
        assert entry is not None
        await wait_for(pilot, lambda: entry.reading is not None, "first reading")
        first = entry.reading
        assert first is not None
        await pilot.press("r")  # the interval is an hour: only the key can make a new poll
        await wait_for(pilot, lambda: entry.reading is not first, "a second reading")
        pane = app.pane()
        assert isinstance(pane, TablePane)
        assert [r.id for r in pane.filtered_rows()] == ["local"]
        assert "updated" in str(pane.query_one("#pane-header").render())


# ---------------------------------------------------------------- actions


class WriteMarker(Action):
    """Test-only action: writes a marker file. Its Target names the file."""

    family = "test.write-marker"
    verb = "write"

    def __init__(self, target: Target, lab: Lab, path: Path, expect: str | None = None) -> None:
        super().__init__(target, lab)
        self.path = path
        self.expect = expect

    async def plan(self) -> Plan:
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"Write marker {self.target.name}",
            steps=(Step(f"write {self.path.name}", "local", changes=(str(self.path),)),),
            blast_radius=BlastRadius.DISRUPTIVE if self.expect else BlastRadius.SINGLE,
            confirmation=Confirmation(f"Write {self.target.name}?", self.expect),
            reversible=True,
            cost="one small file",
            notes=("test-only action",),
            data=None,
        )

    async def execute(self, plan: Plan, progress: Progress) -> Outcome:
        progress(0.5, "writing")
        await asyncio.to_thread(self.path.write_text, "written\n")
        return Outcome(True, f"wrote {self.path.name}")

    async def verify(self, plan: Plan, outcome: Outcome) -> Outcome:
        assert self.path.read_text() == "written\n"
        return outcome


def action_context(tmp_path: Path) -> tuple[ConsoleContext, Lab, Runner]:
    config = Config(console=ConsoleConfig(state_dir=tmp_path / "state"))
    lab = Lab(config, clock=frozen_clock)
    runner = Runner(lab)
    ctx = make_context(config=config, runner=runner, lab=lab)
    return ctx, lab, runner


def phases(runner: Runner) -> list[str]:
    return [r.phase for r in runner.audit.records()]


async def test_confirm_cancel_writes_nothing_and_audits_cancelled(tmp_path: Path) -> None:
    ctx, lab, runner = action_context(tmp_path)
    marker = tmp_path / "marker"
    app = HlconApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        worker = app.launch(WriteMarker(Target("file", "marker"), lab, marker))
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm modal")
        await pilot.press("escape")
        await worker.wait()
    assert not marker.exists()
    assert phases(runner) == ["planned", "cancelled"]


async def test_confirm_enter_runs_and_audits(tmp_path: Path) -> None:
    ctx, lab, runner = action_context(tmp_path)
    marker = tmp_path / "marker"
    app = HlconApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        worker = app.launch(WriteMarker(Target("file", "marker"), lab, marker))
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm modal")
        await pilot.press("enter")
        result = await worker.wait()
        assert result is not None and result.ok
    assert marker.read_text() == "written\n"
    records = list(runner.audit.records())
    assert [r.phase for r in records] == ["planned", "intent", "outcome"]
    assert (records[-1].result or {}).get("ok") is True


async def test_typed_confirmation_needs_the_exact_name(tmp_path: Path) -> None:
    ctx, lab, runner = action_context(tmp_path)
    marker = tmp_path / "marker"
    app = HlconApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        action = WriteMarker(Target("file", "marker"), lab, marker, expect="marker")
        worker = app.launch(action)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm modal")
        await pilot.press("enter")  # an empty answer is not the name
        await pilot.press(*"markr", "enter")
        assert isinstance(app.screen, ConfirmModal)
        assert not marker.exists()
        assert app.screen.query_one("#mismatch").has_class("-shown")
        await pilot.press("ctrl+a", "ctrl+k", *"marker", "enter")
        result = await worker.wait()
        assert result is not None and result.ok
    assert marker.exists()
    assert phases(runner) == ["planned", "intent", "outcome"]


async def test_refused_action_is_notified_with_the_reason(tmp_path: Path) -> None:
    config = Config(console=ConsoleConfig(state_dir=tmp_path / "state", read_only=True))
    lab = Lab(config, clock=frozen_clock)
    runner = Runner(lab)
    app = HlconApp(make_context(config=config, runner=runner, lab=lab))
    marker = tmp_path / "marker"
    async with app.run_test(size=SIZE):
        await app.launch(WriteMarker(Target("file", "marker"), lab, marker)).wait()
        notes = [n.message for n in app._notifications]
        assert any("read-only" in n.lower() or "read_only" in n for n in notes), notes
    assert not marker.exists()
    assert phases(runner) == ["refused"]


class MarkerPane(TablePane):
    """A pane with an action key, standing in for a domain pane."""

    NUMBER = 3
    PANE_ID = "containers"
    TITLE = "Markers"
    COLUMNS: ClassVar = ("Marker",)
    ACTION_KEYS: ClassVar = {"w": "write"}
    directory: ClassVar[Path]

    def rows(self) -> Iterable[Row]:
        for name in ("a", "b; touch /tmp/pwned", "$(id)"):
            yield Row(id=name, cells=(name,), data=name)

    def make_action(self, verb: str, row: Row) -> Action | None:
        lab = self.ctx.lab
        assert lab is not None
        path = self.directory / f"marker-{len(row.id)}"
        return WriteMarker(Target("file", f"m{len(row.id)}"), lab, path)


class MarkerApp(HlconApp):
    def build_panes(self) -> Iterable[Pane]:
        for pane in super().build_panes():
            yield MarkerPane() if pane.NUMBER == 3 else pane


async def test_action_key_on_a_row_launches_through_the_runner(tmp_path: Path) -> None:
    ctx, _, runner = action_context(tmp_path)
    MarkerPane.directory = tmp_path
    app = MarkerApp(ctx, initial_pane=3)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "w")  # the row named "b; touch /tmp/pwned"
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm modal")
        await pilot.press("enter")
        await wait_for(pilot, lambda: phases(runner)[-1:] == ["outcome"], "outcome audited")
    assert (tmp_path / f"marker-{len('b; touch /tmp/pwned')}").exists()
    assert not Path("/tmp/pwned").exists()


# ---------------------------------------------------------------- audit pane, pending intents


async def test_pending_intent_is_announced_and_shown_loudly(tmp_path: Path) -> None:
    ctx, _, runner = action_context(tmp_path)
    dead_pid = 2**22 + 12345  # above pid_max's default: no such process
    runner.audit.append(
        "intent",
        who=Who.current(),
        action="container.restart",
        target="container:web@local",
        ref=1,
        result={"pid": dead_pid, "locks": ["container:web@local"]},
        sync=True,
    )
    app = HlconApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        assert any("never finished" in n.message for n in app._notifications)
        await pilot.press("7")
        pane = app.pane()
        assert isinstance(pane, AuditPane)
        pending = pane.query_one("#pending")
        assert pending.has_class("-shown")
        assert "container:web@local" in str(pending.render())
        assert [r.data.phase for r in pane.filtered_rows()] == ["intent"]


async def test_audit_pane_lists_records_newest_first_and_filters(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", clock=frozen_clock)
    for name in ("web", "db", "cache"):
        log.append(
            "cancelled",
            who=Who.current(),
            action="container.restart",
            target=f"container:{name}@local",
            reason="cancelled by user",
        )
    app = HlconApp(make_context(audit=log), initial_pane=7)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.pane()
        assert isinstance(pane, TablePane)
        assert [r.data.target for r in pane.filtered_rows()] == [
            "container:cache@local",
            "container:db@local",
            "container:web@local",
        ]
        await pilot.press("slash", *"db")
        assert [r.data.target for r in pane.filtered_rows()] == ["container:db@local"]


# ---------------------------------------------------------------- the console command


def test_read_only_flag_makes_the_config_read_only(tmp_path: Path) -> None:
    from tui.commands.console import load

    good = tmp_path / "hlcon.toml"
    good.write_text('[console]\nrefresh = "2s"\n')
    assert load(argparse.Namespace(config=good, read_only=True)).console.read_only
    assert not load(argparse.Namespace(config=good, read_only=False)).console.read_only


async def test_read_only_is_shown_in_the_pane_bar() -> None:
    config = Config(console=ConsoleConfig(read_only=True))
    app = HlconApp(demo_context(config=config))
    async with app.run_test(size=SIZE):
        from tui.widgets import PaneBar

        assert "READ-ONLY" in str(app.screen.query_one(PaneBar).render())


async def test_palette_toggles_theme_and_refreshes() -> None:
    app = HlconApp(demo_context())
    async with app.run_test(size=SIZE) as pilot:
        before = app.theme
        await pilot.press("ctrl+p", *"Toggle theme")
        commands = app.screen.query_one(CommandList)
        await wait_for(pilot, lambda: commands.option_count > 0, "palette results")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.theme != before, "theme toggled")


def test_console_with_a_broken_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "hlcon.toml"
    bad.write_text('[console]\nrefresh = "soon"\n')
    code = run_console(argparse.Namespace(config=bad, read_only=False))
    assert code == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "refresh" in err
