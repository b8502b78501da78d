"""Columns share the width by what they carry: the column that tells rows apart is never cut
where the terminal allows, is cut in the middle where it must be, and grows with the terminal;
footers fit at 80 columns."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Footer

from lab.model import RepoState
from tests.tui.backups_demo import demo_backups_context, groups, snap
from tests.tui.containers_demo import containers_context
from tests.tui.screen_text import screen_lines
from tests.tui.waiting import wait_for
from tui.app import HlconApp
from tui.context import ConsoleContext
from tui.panes.base import TablePane, cut_middle, share_widths


def test_share_widths_gives_short_columns_all_they_need() -> None:
    # Everything fits: each column its natural width.
    assert share_widths(40, [5, 10, 8], [3, 3, 3], [False] * 3) == [5, 10, 8]
    # Too narrow: the short one is made whole, the long ones split what is left.
    assert share_widths(30, [6, 40, 40], [3, 3, 3], [False] * 3) == [6, 12, 12]
    # A key column is made whole before the others, however long they are.
    assert share_widths(30, [40, 20], [5, 5], [False, True]) == [10, 20]
    # Never more than the column needs.
    assert share_widths(100, [2, 3], [8, 8], [False, False]) == [2, 3]
    # Not even the minimums fit: the widest other column gives way, the key column keeps its.
    assert share_widths(20, [12, 20, 5], [12, 12, 5], [True, False, False]) == [12, 4, 4]
    assert share_widths(26, [12, 20, 5], [12, 12, 5], [True, False, False]) == [12, 9, 5]


def test_cut_middle_keeps_the_end() -> None:
    assert str(cut_middle("skylab:/var/lib/jellyfin", 16)) == "skyla…b/jellyfin"
    assert str(cut_middle("short", 16)) == "short"


def _backups_with_two_long_paths() -> ConsoleContext:
    ctx = demo_backups_context()
    entry = ctx.store.get(("backup", "nas"))
    assert entry is not None
    state = entry.reading
    assert isinstance(state, RepoState)
    snaps = (
        snap(30, 5, "skylab", ("/srv/containers/volumes/photos",)),
        snap(31, 6, "skylab", ("/srv/containers/volumes/music",)),
    )
    ctx.store.publish(("backup", "nas"), replace(state, snapshots=snaps, groups=groups(snaps)))
    return ctx


async def test_backup_paths_tell_two_groups_apart_at_80_columns() -> None:
    app = HlconApp(_backups_with_two_long_paths(), initial_pane=5)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = [line for line in screen_lines(app) if "└" in line and "skylab" in line]
        assert len(lines) == 2, lines
        assert any("photos" in line for line in lines), lines
        assert any("music" in line for line in lines), lines
    app = HlconApp(_backups_with_two_long_paths(), initial_pane=5)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        assert "skylab:/srv/containers/volumes/photos" in text
        assert "skylab:/srv/containers/volumes/music" in text


async def test_overview_source_is_whole_on_one_line_at_any_width() -> None:
    for size in ((80, 24), (200, 50)):
        app = HlconApp(containers_context())
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            pane = app.pane()
            assert isinstance(pane, TablePane)
            sources = [str(r.cells[1]) for r in pane.filtered_rows()]
            assert "containers:local" in sources, sources
            lines = screen_lines(app)
            for source in sources:
                assert any(source in line for line in lines), (source, lines)


async def test_columns_grow_with_the_terminal() -> None:
    app = HlconApp(containers_context(), initial_pane=3)
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.pause()
        lines = screen_lines(app)
        assert any("quay.io/prometheus/node-exporter:v1.7" in line for line in lines), lines
        (nas,) = [line for line in lines if "(nas)" in line]
        assert "docker endpoint unreachable" in nas, nas


async def test_containers_footer_fits_at_80_columns() -> None:
    app = HlconApp(containers_context(), initial_pane=3)
    async with app.run_test(size=(80, 24)) as pilot:
        # a loaded machine paints the footer a few frames later
        await wait_for(pilot, lambda: "q Quit" in screen_lines(app)[-1], "the footer")
        footer = app.screen.query_one(Footer)
        assert footer.virtual_size.width <= footer.size.width, footer.virtual_size
        last = screen_lines(app)[-1]
        for key in ("l Logs", "R Restart", "q Quit"):
            assert key in last, last


async def test_backups_footer_fits_at_80_columns() -> None:
    app = HlconApp(demo_backups_context(), initial_pane=5)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "q Quit" in screen_lines(app)[-1], "the footer")
        footer = app.screen.query_one(Footer)
        assert footer.virtual_size.width <= footer.size.width, footer.virtual_size
