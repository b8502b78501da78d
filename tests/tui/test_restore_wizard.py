"""The restore wizard via Pilot against a real restic repository and the real runner: pick a
snapshot, browse lazily, select files, staging target, restore, verify, summary; going back;
refusal at the preview; in place demands the typed path."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Checkbox, DataTable, Input, Static
from textual.widgets.tree import TreeNode

from actions.runner import Runner
from lab.backups import TreeNode as BackupNode
from lab.backups import load_check
from lab.poller import Poller
from lab.store import Store
from lab.wiring import Lab
from tests.testbed.restic import ResticLab, restic_config
from tests.tui.fixtures import frozen_now
from tests.tui.screen_text import screen_lines
from tests.tui.waiting import wait_for
from tui.app import HlconApp
from tui.context import ConsoleContext
from tui.panes.backups import BackupsPane
from tui.screens.help import HelpScreen
from tui.screens.restore import RestoreScreen, SelectTree

pytestmark = pytest.mark.testbed
SIZE = (110, 36)


async def console(restic_lab: ResticLab, tmp_path: Path) -> tuple[HlconApp, Runner]:
    # restic stamps snapshots with the real time: the clock is stopped at the real time too
    lab = Lab(restic_config(restic_lab, tmp_path / "state"), clock=frozen_now())
    store = Store()
    for reader in lab.readers():
        try:
            store.publish(reader.key, await reader.read())
        except Exception:  # the faulty repositories stay faults; the wizard shows "main"
            continue
    runner = Runner(lab)
    ctx = ConsoleContext(config=lab.config, lab=lab, store=store, runner=runner, clock=lab.clock)
    return HlconApp(ctx, initial_pane=5), runner


def screen(app: HlconApp) -> RestoreScreen:
    assert isinstance(app.screen, RestoreScreen)
    return app.screen


async def open_path(pilot: Any, app: HlconApp, parts: list[str]) -> None:
    """Walk the lazy tree: each folder is listed by restic only when it is expanded."""
    tree = app.screen.query_one("#tree", SelectTree)
    node = tree.root
    for part in parts:

        def listed(n: TreeNode[BackupNode | None] = node, p: str = part) -> bool:
            return any(c.data is not None and c.data.name == p for c in n.children)

        await wait_for(pilot, listed, f"{part} listed")
        node = next(c for c in node.children if c.data is not None and c.data.name == part)
        tree.move_cursor(node)
        if node.allow_expand and not node.is_expanded:
            await pilot.press("enter")  # expands it (and lists it lazily)


def parts(restic_lab: ResticLab, *more: str) -> list[str]:
    return [p for p in str(restic_lab.source).split("/") if p] + list(more)


async def start_wizard(pilot: Any, app: HlconApp, restic_lab: ResticLab) -> None:
    assert isinstance(app.pane(), BackupsPane)
    await pilot.press("R")  # on repo:main, the row under the cursor: its snapshots at once
    assert screen(app).step == "snapshot"
    await pilot.press("slash", *"daily")  # the filter leaves the tagged (first) snapshot
    await pilot.press("enter", "enter")
    wiz = screen(app)
    assert wiz.step == "browse" and wiz.snapshot is not None
    assert wiz.snapshot.id == restic_lab.snapshots[0]
    await open_path(pilot, app, parts(restic_lab))


async def test_wizard_restores_selection_to_staging_and_verifies(
    restic_lab: ResticLab, tmp_path: Path
) -> None:
    app, runner = await console(restic_lab, tmp_path)
    target = tmp_path / "staging area"
    src = restic_lab.source
    async with app.run_test(size=SIZE) as pilot:
        await start_wizard(pilot, app, restic_lab)
        await open_path(pilot, app, parts(restic_lab, "big"))
        await pilot.press("space")  # select the folder big/
        await open_path(pilot, app, parts(restic_lab, "dir with space", "a file.txt"))
        await pilot.press("space")
        wiz = screen(app)
        assert wiz.selected == {str(src / "big"), str(src / "dir with space/a file.txt")}
        await pilot.press("n")
        assert wiz.step == "target"
        # going back keeps the selection
        await pilot.press("escape")
        assert wiz.step == "browse" and len(wiz.selected) == 2
        await pilot.press("n")
        wiz.query_one("#target-path", Input).value = str(target)
        await pilot.press("enter")
        await wait_for(pilot, lambda: wiz.step == "preview", "the preview")
        preview = str(wiz.query_one("#preview-text", Static).render())
        assert "4 files" in preview and "nothing existing is overwritten" in preview
        await pilot.press("enter")
        await wait_for(pilot, lambda: wiz.step == "summary", "the summary")
        summary = str(wiz.query_one("#summary-text", Static).render())
        assert "restored and verified" in summary, summary
    out = target / str(src).lstrip("/")
    for rel in restic_lab.large:
        assert (
            hashlib.sha256((out / rel).read_bytes()).digest()
            == hashlib.sha256((src / rel).read_bytes()).digest()
        )
    # the first snapshot's version of the file, not today's
    assert (out / "dir with space/a file.txt").read_text().startswith("dir with space/")
    assert sorted(p.name for p in out.iterdir()) == ["big", "dir with space"]
    phases = [r.phase for r in runner.audit.records()]
    assert phases[-3:] == ["planned", "intent", "outcome"]


async def test_wizard_refuses_a_busy_target_and_in_place_needs_the_typed_path(
    restic_lab: ResticLab, tmp_path: Path
) -> None:
    app, runner = await console(restic_lab, tmp_path)
    src = restic_lab.source
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine\n")
    victim = src / "modes/run.sh"
    original = victim.read_text()
    async with app.run_test(size=SIZE) as pilot:
        await start_wizard(pilot, app, restic_lab)
        await open_path(pilot, app, parts(restic_lab, "modes", "run.sh"))
        await pilot.press("space", "n")
        wiz = screen(app)
        wiz.query_one("#target-path", Input).value = str(busy)
        await pilot.press("enter")
        err = wiz.query_one("#error", Static)
        await wait_for(pilot, lambda: "not empty" in str(err.render()), "the refusal")
        assert wiz.step == "target"
        assert (busy / "keep.txt").read_text() == "mine\n"

        victim.write_text("damaged\n")
        try:
            wiz.query_one("#in-place", Checkbox).focus()
            await pilot.press("space", "n")  # tick "in place", then next
            await wait_for(pilot, lambda: wiz.step == "preview", "the in-place preview")
            assert wiz.prepared is not None
            assert wiz.prepared.plan.confirmation.expect == str(victim)
            await pilot.press("enter")  # a bare Enter is not the typed path
            assert wiz.step == "preview" and "type exactly" in str(err.render())
            assert victim.read_text() == "damaged\n"
            await pilot.press("escape")  # back: the prepared plan is cancelled (audited)
            assert wiz.step == "target"
            assert list(runner.audit.records())[-1].phase == "cancelled"
            wiz.query_one("#overwrite", Checkbox).focus()
            await pilot.press("n")
            await wait_for(pilot, lambda: wiz.step == "preview", "the preview again")
            await pilot.press(*str(victim), "enter")
            await wait_for(pilot, lambda: wiz.step == "summary", "the summary")
            assert "restored and verified" in str(wiz.query_one("#summary-text", Static).render())
            assert victim.read_text() == original
        finally:
            victim.write_text(original)
        await pilot.press("escape")
        assert not isinstance(app.screen, RestoreScreen)


async def test_wizard_cancel_mid_restore_lists_partial_files(
    restic_lab: ResticLab, tmp_path: Path
) -> None:
    app, _runner = await console(restic_lab, tmp_path)
    target = tmp_path / "to cancel"
    big = restic_lab.source / "big"
    async with app.run_test(size=SIZE) as pilot:
        await start_wizard(pilot, app, restic_lab)
        await open_path(pilot, app, parts(restic_lab, "big"))
        await pilot.press("space", "n")
        wiz = screen(app)
        wiz.query_one("#target-path", Input).value = str(target)
        await pilot.press("enter")
        await wait_for(pilot, lambda: wiz.step == "preview", "the preview")
        await pilot.press("enter")
        landed = target / str(big).lstrip("/")
        await wait_for(
            pilot, lambda: landed.exists() and any(landed.iterdir()), "restic writing", timeout=100
        )
        assert wiz.step == "run"
        await pilot.press("escape")
        await wait_for(pilot, lambda: wiz.step == "summary", "the cancel summary")
        summary = str(wiz.query_one("#summary-text", Static).render())
        assert "Restore cancelled" in summary and "blob" in summary
    assert {p.name for p in target.rglob("*") if p.is_file()} <= {
        Path(rel).name for rel in restic_lab.large
    }
    assert restic_lab.restic("list", "locks", "--no-lock").stdout.strip() == ""


async def test_backups_pane_rows_faults_and_check_key(
    restic_lab: ResticLab, tmp_path: Path
) -> None:
    app, runner = await console(restic_lab, tmp_path)
    lab = app.ctx.lab
    assert lab is not None
    for name in ("wrongpw", "missing"):  # the poller's way: a reader's error becomes a Fault
        await Poller(
            app.ctx.store, [r for r in lab.readers() if r.key == ("backup", name)]
        ).poll_all()
    async with app.run_test(size=SIZE) as pilot:
        pane = app.pane()
        assert isinstance(pane, BackupsPane)
        rows = {r.id: r for r in pane.filtered_rows()}
        assert "repo:main" in rows and "repo:wrongpw" in rows and "repo:missing" in rows
        assert "wrong password" in str(rows["repo:wrongpw"].cells[1])
        assert "repository not found" in str(rows["repo:missing"].cells[1])
        main_cells = [str(c) for c in rows["repo:main"].cells]
        assert main_cells[4] == "2" and main_cells[6] == "never"
        header = str(pane.query_one("#pane-header", Static).render())
        assert "wrong password" in header
        pane.select_row("repo:main")
        await pilot.press("c")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmModal", "the confirm")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: any(r.phase == "outcome" for r in runner.audit.records()),
            "the check's outcome",
        )
    record = load_check(lab.config, "main")
    assert record is not None and record.ok


# ---------------------------------------------------------------- the wizard as the README says


def snap_cursor(wiz: RestoreScreen) -> str:
    table = wiz.query_one("#snap-table", DataTable)
    return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)


async def test_wizard_starts_at_the_snapshot_selected_in_the_pane(
    restic_lab: ResticLab, tmp_path: Path
) -> None:
    app, _ = await console(restic_lab, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.pane()
        assert isinstance(pane, BackupsPane)
        group = next(r.id for r in pane.filtered_rows() if r.id.startswith("repo:main|"))
        assert pane.select_row(group)
        await pilot.press("R")
        wiz = screen(app)
        assert wiz.step == "snapshot" and wiz.repo == "main"
        assert snap_cursor(wiz) == restic_lab.snapshots[-1]  # the group's newest
        await pilot.press("escape")  # back to the repository step, still possible
        assert wiz.step == "repo"
        await pilot.press("n")  # the footer's Next works here too
        assert wiz.step == "snapshot"
        await pilot.press("end")
        assert snap_cursor(wiz) == restic_lab.snapshots[0]  # oldest last
        await pilot.press("home")
        assert snap_cursor(wiz) == restic_lab.snapshots[-1]
        await pilot.press("n")  # Next on the snapshot step opens it
        assert wiz.step == "browse" and wiz.snapshot is not None
        assert wiz.snapshot.id == restic_lab.snapshots[-1]


async def test_single_child_folders_open_on_the_way_down(
    restic_lab: ResticLab, tmp_path: Path
) -> None:
    app, _ = await console(restic_lab, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("R", "enter")
        wiz = screen(app)
        assert wiz.step == "browse"
        tree = wiz.query_one("#tree", SelectTree)

        def source_node() -> TreeNode[BackupNode | None] | None:
            node = tree.root
            for part in parts(restic_lab):
                child = next(
                    (c for c in node.children if c.data is not None and c.data.name == part),
                    None,
                )
                if child is None:
                    return None
                node = child
            return node

        # Every folder above the source has one child: all open, with no key pressed, and the
        # cursor waits where the tree first branches.
        await wait_for(
            pilot,
            lambda: (n := source_node()) is not None and n.is_expanded and len(n.children) > 1,
            "the source folder open",
        )
        assert tree.cursor_node is source_node()


async def test_preview_fits_80x24_with_one_unit_and_no_false_warning(
    restic_lab: ResticLab, tmp_path: Path
) -> None:
    app, _ = await console(restic_lab, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await start_wizard(pilot, app, restic_lab)
        await open_path(pilot, app, parts(restic_lab, "modes", "run.sh"))
        await pilot.press("space", "n")
        wiz = screen(app)
        wiz.query_one("#target-path", Input).value = str(tmp_path / "one")
        await pilot.press("enter")
        await wait_for(pilot, lambda: wiz.step == "preview", "the preview")
        await pilot.pause()
        preview = str(wiz.query_one("#preview-text", Static).render())
        assert "1 file," in preview and "1 files" not in preview, preview
        assert "⚠" not in preview, preview  # plenty of room: nothing to warn about
        # One unit family for every size (binary), not GB beside GiB.
        assert not re.search(r"\d (KB|MB|GB|TB)\b", preview), preview
        assert re.search(r"\d (B|KiB|MiB|GiB|TiB) free", preview), preview
        answer = wiz.query_one("#answer", Input)
        assert answer.has_focus
        region = answer.region
        assert region.height > 0 and region.bottom <= 24 - 1, region  # above the footer
        assert app.screen.get_widget_at(region.x + 1, region.y)[0] is answer
        # The question is whole on screen, and so are how much and what is overwritten.
        flat = "".join(screen_lines(app)).replace(" ", "")
        assert wiz.prepared is not None
        prompt = wiz.prepared.plan.confirmation.prompt
        assert prompt.replace(" ", "") in flat, (prompt, screen_lines(app))
        assert "1file," in flat and "nothingexistingisoverwritten" in flat


async def test_choices_differ_without_colour(
    restic_lab: ResticLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app, _ = await console(restic_lab, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start_wizard(pilot, app, restic_lab)
        await open_path(pilot, app, parts(restic_lab, "modes", "run.sh"))
        await pilot.press("space", "n")
        wiz = screen(app)
        box = wiz.query_one("#overwrite", Checkbox)
        off = box.render_line(0).text
        box.value = True
        await pilot.pause()
        on = box.render_line(0).text
        assert off != on, (off, on)


async def test_help_in_the_wizard_lists_its_keys_first(
    restic_lab: ResticLab, tmp_path: Path
) -> None:
    app, _ = await console(restic_lab, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("R")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        first = app.screen.entries[0]
        assert "restore" in first[0].lower(), app.screen.entries
        keys = [e[1] for e in app.screen.entries]
        assert keys.index("n") < keys.index("q"), keys  # Next before the app's Quit
        assert "Restore" in app.screen.title_text
