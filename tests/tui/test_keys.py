"""Keys that work everywhere: Home and End move the cursor in every table; the command palette
lists each entry once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from textual.widgets import DataTable

from lab.model import Unit
from tests.tui.backups_demo import backups_app
from tests.tui.fixtures import demo_context, host_state
from tui.app import HlconApp
from tui.panes.base import TablePane
from tui.screens.help import HelpScreen

SIZE = (80, 24)


async def test_home_and_end_move_the_cursor_in_pane_tables() -> None:
    makers: tuple[tuple[Callable[[], HlconApp], int], ...] = (
        (lambda: HlconApp(demo_context(), initial_pane=2), 2),
        (backups_app, 5),
    )
    for make, number in makers:
        app = make()
        async with app.run_test(size=SIZE) as pilot:
            pane = app.pane()
            assert number == pane.NUMBER
            assert isinstance(pane, TablePane)
            rows = pane.filtered_rows()
            assert len(rows) > 2
            await pilot.press("end")
            assert pane.selected_row() == rows[-1]
            await pilot.press("home")
            assert pane.selected_row() == rows[0]


async def test_home_and_end_move_the_cursor_in_the_help_table() -> None:
    app = HlconApp(demo_context(), initial_pane=2)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one("#help-table", DataTable)
        await pilot.press("end")
        assert table.cursor_row == table.row_count - 1 > 0
        await pilot.press("home")
        assert table.cursor_row == 0


async def test_the_palette_lists_no_entry_twice() -> None:
    app = HlconApp(demo_context())
    async with app.run_test(size=SIZE):
        titles = Counter(c.title for c in app.get_system_commands(app.screen))
        assert [t for t, n in titles.items() if n > 1] == [], titles
        assert "Keys" in titles and "Quit" in titles


async def test_home_and_end_move_the_cursor_in_the_host_detail_table() -> None:
    ctx = demo_context()
    units = tuple(Unit(f"svc{i}.service", "active", "running") for i in range(4))
    ctx.store.publish(("host", "nas"), replace(host_state("nas"), services=units, systemd=True))
    app = HlconApp(ctx, initial_pane=2)
    async with app.run_test(size=(100, 40)) as pilot:
        assert app.pane().select_row("nas")
        await pilot.press("enter")
        table = app.screen.query_one("#units", DataTable)
        table.focus()
        await pilot.pause()
        assert table.row_count == 4
        await pilot.press("end")
        assert table.cursor_row == 3
        await pilot.press("home")
        assert table.cursor_row == 0
