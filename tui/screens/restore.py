"""The restore wizard: repository → snapshot → browse and select → target → preview → run →
summary. Esc goes back one step until the restore starts; during the run Esc cancels it (the
partial files are listed); after it, Esc closes.

The tree is read lazily (`restic ls --json ID PATH`, one directory at a time) through
lab.backups; the preview and the run go through the runner (actions.runner), so policy, locks,
audit and verification are the same as `hlcon do restore`.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import (
    Checkbox,
    DataTable,
    Footer,
    Input,
    Label,
    OptionList,
    ProgressBar,
    Static,
    Tree,
)
from textual.widgets.tree import TreeNode as UINode
from textual.worker import Worker

from actions.backups import RestoreAction, RestoreSpec, default_staging
from actions.base import Plan, Step, Target
from lab.backups import Restic, TreeNode, children, find_backup
from lab.model import RepoState, Snapshot
from tui.format import bytes_h
from tui.screens.confirm import plan_text
from tui.screens.wizard import WizardScreen
from tui.widgets.table import CursorTable

if TYPE_CHECKING:
    from actions.runner import Prepared, RunResult

SHORT_OF_SPACE = 0.9  # the preview warns when the restore needs this share of the free space

STEPS = ("repo", "snapshot", "browse", "target", "preview", "run", "summary")
TITLES = {
    "repo": "1 Repository",
    "snapshot": "2 Snapshot",
    "browse": "3 Files (space selects, n: next)",
    "target": "4 Target",
    "preview": "5 Preview and confirm",
    "run": "6 Restoring (Esc cancels)",
    "summary": "7 Summary",
}


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


class TickBox(Checkbox):
    """A checkbox whose mark is X when ticked and blank when not: Textual's shows X in both
    states and tells them apart by colour alone, which NO_COLOR removes."""

    def on_mount(self) -> None:
        self.BUTTON_INNER = "X" if self.value else " "

    def watch_value(self) -> None:
        self.BUTTON_INNER = "X" if self.value else " "
        super().watch_value()


class SelectTree(Tree[TreeNode | None]):
    """The snapshot tree; space toggles the node under the cursor in the selection."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("space", "toggle_select", "Select")]

    class Toggle(Message):
        """Space on a node: put it in the selection, or take it out."""

        def __init__(self, node: UINode[TreeNode | None]) -> None:
            super().__init__()
            self.node = node

    def action_toggle_select(self) -> None:
        node = self.cursor_node
        if node is not None and node.data is not None:
            self.post_message(self.Toggle(node))


class RestoreScreen(WizardScreen[None]):
    HELP_NAME = "restore wizard"
    FIRST_STEP = "repo"
    FOCUS: ClassVar[dict[str, str]] = {
        "repo": "#step-repo",
        "snapshot": "#snap-table",
        "browse": "#tree",
        "target": "#target-path",
        "preview": "#answer",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back / cancel"),
        Binding("n", "next", "Next"),
        Binding("slash", "filter", "Filter snapshots"),
    ]
    DEFAULT_CSS = """
    RestoreScreen #step-title { padding: 0 1; background: $boost; text-style: bold; width: 1fr; }
    RestoreScreen #error { color: $error; padding: 0 1; height: auto; }
    RestoreScreen ContentSwitcher { height: 1fr; }
    RestoreScreen #selection { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }
    RestoreScreen #preview-text, RestoreScreen #summary-text { padding: 0 1; }
    RestoreScreen #preview-scroll { height: 1fr; }
    RestoreScreen #prompt { padding: 0 1; text-style: bold; height: auto; width: 1fr; }
    RestoreScreen #progress-label { padding: 0 1; }
    """

    def __init__(self, repo: str | None = None, snapshot: str | None = None) -> None:
        super().__init__()
        self.repo = repo
        self.start_snapshot = snapshot  # the snapshot selected in the pane: start there
        self.snapshot: Snapshot | None = None
        self.selected: set[str] = set()
        self.prepared: Prepared | None = None
        self.action_obj: RestoreAction | None = None
        self.run_worker_: Worker[Any] | None = None
        self.result: RunResult | None = None
        self._loaded: set[str] = set()

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Label(TITLES["repo"], id="step-title")
        yield Static(id="error")
        with self.steps():
            yield OptionList(id="step-repo")
            with Vertical(id="step-snapshot"):
                yield Input(placeholder="filter: host, path, tag or date", id="snap-filter")
                table: DataTable[Any] = CursorTable(id="snap-table", cursor_type="row")
                table.add_columns("ID", "Time", "Host", "Paths", "Tags")
                yield table
            with Vertical(id="step-browse"):
                yield SelectTree("/", id="tree")
                yield Static(id="selection")
            with Vertical(id="step-target"):
                yield Label("Restore into (a new staging folder by default):")
                yield Input(id="target-path")
                yield TickBox("in place: over the original files", id="in-place")
                yield TickBox("overwrite files that exist in the target", id="overwrite")
                yield Label("Enter in the path field or n: preview", classes="hint")
            with Vertical(id="step-preview"):
                # The plan scrolls; the question and its field stay in sight at 80x24.
                with VerticalScroll(id="preview-scroll"):
                    yield Static(id="preview-text")
                yield Label(id="prompt")
                yield Input(id="answer")
            with Vertical(id="step-run"):
                yield Label(id="progress-label")
                yield ProgressBar(total=100, id="progress-bar")
            with VerticalScroll(id="step-summary"):
                yield Static(id="summary-text")
        yield Footer()

    def on_mount(self) -> None:
        options = self.query_one("#step-repo", OptionList)
        names = [b.name for b in self.ctx.config.backups]
        for name in names:
            options.add_option(name)
        if self.repo in names:
            options.highlighted = names.index(self.repo)
        options.focus()
        if self.repo is not None and self.repo in names and self._state(self.repo) is not None:
            # Opened on a repository (or one of its snapshot groups): its snapshots at once
            self._choose_repo(str(self.repo), self.start_snapshot)

    def entered(self, step: str) -> None:
        self.query_one("#step-title", Label).update(TITLES[step])
        self.error("")

    def error(self, text: str) -> None:
        self.query_one("#error", Static).update(Text(text, "bold") if text else "")

    # ------------------------------------------------------------ navigation

    def action_back(self) -> None:
        if self.step == "repo" or self.step == "summary":
            self.dismiss(None)
        elif self.step == "run":
            if self.run_worker_ is not None and self.run_worker_.is_running:
                self.run_worker_.cancel()
        elif self.step == "preview":
            if self.prepared is not None:
                self.ctx.acting()[1].cancel(self.prepared, "went back in the restore wizard")
                self.prepared = None
            self.show_step("target")
        else:
            self.show_step(STEPS[STEPS.index(self.step) - 1])

    def action_filter(self) -> None:
        if self.step == "snapshot":
            self.query_one("#snap-filter", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer offers a key only where it does something: never Next or Filter on the
        steps without one, nor while a text field has focus (the key would be typed)."""
        typing = isinstance(self.focused, Input)
        if action == "next":
            return self.step in ("repo", "snapshot", "browse", "target") and not typing
        if action == "filter":
            return self.step == "snapshot" and not typing
        return True

    def action_next(self) -> None:
        if self.step == "repo":
            options = self.query_one("#step-repo", OptionList)
            if options.highlighted is not None:
                options.action_select()
        elif self.step == "snapshot":
            table = self.query_one("#snap-table", DataTable)
            if table.row_count:
                table.action_select_cursor()
        elif self.step == "browse":
            if not self.selected:
                self.error("select at least one file or folder (space)")
                return
            self.enter_target()
        elif self.step == "target":
            self.preview()

    # ------------------------------------------------------------ 1 repository

    def _state(self, repo: str) -> RepoState | None:
        entry = self.ctx.store.get(("backup", repo))
        state = entry.reading if entry is not None else None
        return state if isinstance(state, RepoState) else None

    @on(OptionList.OptionSelected, "#step-repo")
    def _repo_chosen(self, event: OptionList.OptionSelected) -> None:
        self._choose_repo(str(event.option.prompt), None)

    def _choose_repo(self, repo: str, snapshot: str | None) -> None:
        self.repo = repo
        state = self._state(repo)
        if state is None:
            entry = self.ctx.store.get(("backup", repo))
            why = entry.fault.why if entry is not None and entry.fault else "not read yet"
            self.error(f"repo:{self.repo} has no snapshot list: {why}")
            return
        self._fill_snapshots(state, "")
        self.show_step("snapshot")
        table = self.query_one("#snap-table", DataTable)
        if snapshot is not None and snapshot in table.rows:
            table.move_cursor(row=table.get_row_index(snapshot))

    # ------------------------------------------------------------ 2 snapshot

    def _snapshots(self) -> list[Snapshot]:
        if self.repo is None:
            return []
        entry = self.ctx.store.get(("backup", self.repo))
        state = entry.reading if entry is not None else None
        return list(state.snapshots) if isinstance(state, RepoState) else []

    def _fill_snapshots(self, state: RepoState, needle: str) -> None:
        table = self.query_one("#snap-table", DataTable)
        table.clear()
        needle = needle.casefold()
        for s in sorted(state.snapshots, key=lambda s: s.time, reverse=True):
            cells = (
                s.short_id,
                f"{s.time:%Y-%m-%d %H:%M}",
                s.host,
                ", ".join(s.paths),
                ", ".join(s.tags),
            )
            if needle and not any(needle in c.casefold() for c in cells):
                continue
            table.add_row(*cells, key=s.id)

    @on(Input.Changed, "#snap-filter")
    def _filter(self, event: Input.Changed) -> None:
        if self.repo is None:
            return
        entry = self.ctx.store.get(("backup", self.repo))
        if entry is not None and isinstance(entry.reading, RepoState):
            self._fill_snapshots(entry.reading, event.value)

    @on(Input.Submitted, "#snap-filter")
    def _filter_done(self) -> None:
        self.query_one("#snap-table").focus()

    @on(DataTable.RowSelected, "#snap-table")
    def _snapshot_chosen(self, event: DataTable.RowSelected) -> None:
        snap = next((s for s in self._snapshots() if s.id == event.row_key.value), None)
        if snap is None:
            return
        if self.snapshot is None or snap.id != self.snapshot.id:
            self.snapshot = snap
            self.selected.clear()
            self._loaded.clear()
            tree = self.query_one("#tree", SelectTree)
            tree.clear()
            tree.root.set_label(f"/  (snapshot {snap.short_id})")
            tree.root.data = None
            self.load_dir(tree.root, "/")
        self._show_selection()
        self.show_step("browse")

    # ------------------------------------------------------------ 3 browse

    @work(group="restic-ls", exclusive=False, exit_on_error=False)
    async def load_dir(self, node: UINode[TreeNode | None], path: str) -> None:
        if path in self._loaded or self.snapshot is None:
            return
        self._loaded.add(path)
        restic = Restic(self.ctx.acting()[0], find_backup(self.ctx.config, str(self.repo)))
        try:
            _, nodes = await restic.ls(self.snapshot.id, path)
        except Exception as exc:  # shown on the screen; the wizard stays usable
            self._loaded.discard(path)
            self.error(f"cannot list {path}: {exc}")
            return
        added = []
        for child in children(nodes, path):
            label = self._label(child)
            if child.is_dir:
                added.append(node.add(label, data=child, allow_expand=True))
            else:
                added.append(node.add_leaf(label, data=child))
        node.expand()
        only = added[0] if len(added) == 1 else None
        if only is not None and only.data is not None and only.data.is_dir:
            # A folder with one child folder: open it on the way down (/tmp/…/src took a
            # Down and an Enter per level), the cursor following to where the tree branches.
            tree = self.query_one("#tree", SelectTree)
            tree.call_after_refresh(tree.move_cursor, only)  # its line exists after the refresh
            self.load_dir(only, only.data.path)

    def _label(self, n: TreeNode) -> Text:
        mark = "☑ " if self._covered(n.path) else "☐ "
        text = Text(mark)
        text.append(n.name + ("/" if n.is_dir else ""), "bold" if n.is_dir else "")
        if n.type == "file":
            text.append(f"  {bytes_h(n.size)}", "dim")
        elif n.type == "symlink":
            text.append("  (link)", "dim")
        return text

    def _covered(self, path: str) -> bool:
        return any(path == s or path.startswith(s.rstrip("/") + "/") for s in self.selected)

    @on(Tree.NodeExpanded, "#tree")
    def _expanded(self, event: Tree.NodeExpanded[TreeNode | None]) -> None:
        data = event.node.data
        if data is not None and data.is_dir and data.path not in self._loaded:
            self.load_dir(event.node, data.path)

    def on_select_tree_toggle(self, message: SelectTree.Toggle) -> None:
        self.toggle(message.node)

    def toggle(self, node: UINode[TreeNode | None]) -> None:
        data = node.data
        if data is None:
            return
        if data.path in self.selected:
            self.selected.discard(data.path)
        else:
            # a folder covers what is below it
            self.selected = {
                s for s in self.selected if not s.startswith(data.path.rstrip("/") + "/")
            }
            self.selected.add(data.path)
        self._relabel(self.query_one("#tree", SelectTree).root)
        self._show_selection()

    def _relabel(self, node: UINode[TreeNode | None]) -> None:
        for child in node.children:
            if child.data is not None:
                child.set_label(self._label(child.data))
            self._relabel(child)

    def _show_selection(self) -> None:
        text = "selected: " + (", ".join(sorted(self.selected)) if self.selected else "nothing yet")
        self.query_one("#selection", Static).update(text)

    # ------------------------------------------------------------ 4 target

    def enter_target(self) -> None:
        box = self.query_one("#target-path", Input)
        if not box.value and self.snapshot is not None:
            box.value = default_staging(str(self.repo), self.snapshot.short_id, self.ctx.clock())
        self.show_step("target")

    @on(Checkbox.Changed, "#in-place")
    def _in_place(self, event: Checkbox.Changed) -> None:
        self.query_one("#target-path", Input).disabled = event.value

    @on(Input.Submitted, "#target-path")
    def _target_done(self) -> None:
        self.preview()

    # ------------------------------------------------------------ 5 preview

    def build_action(self) -> RestoreAction:
        in_place = self.query_one("#in-place", Checkbox).value
        params = {
            "snapshot": self.snapshot.id if self.snapshot else "",
            "include": sorted(self.selected),
            "target": None if in_place else self.query_one("#target-path", Input).value.strip(),
            "in_place": in_place,
            "overwrite": self.query_one("#overwrite", Checkbox).value,
        }
        action = RestoreAction.create(Target("repo", str(self.repo)), self.ctx.acting()[0], params)
        assert isinstance(action, RestoreAction)
        return action

    @work(group="restore-plan", exclusive=True, exit_on_error=False)
    async def preview(self) -> None:
        from actions.runner import Refused

        try:
            action = self.build_action()
        except ValueError as exc:
            self.error(str(exc))
            return
        self.error("reading the snapshot and the target…")
        try:
            prepared = await self.ctx.acting()[1].prepare(action)
        except Refused as exc:
            self.error(f"refused: {exc}")
            return
        self.action_obj = action
        self.prepared = prepared
        plan = prepared.plan
        expect = plan.confirmation.expect
        self.query_one("#preview-text", Static).update(preview_text(plan))
        self.query_one("#prompt", Label).update(plan.confirmation.prompt)
        answer = self.query_one("#answer", Input)
        answer.value = ""
        answer.placeholder = (
            f"type {expect} and Enter" if expect else "Enter to restore, Esc to go back"
        )
        self.show_step("preview")

    @on(Input.Submitted, "#answer")
    def _answered(self, event: Input.Submitted) -> None:
        if self.prepared is None:
            return
        expect = self.prepared.plan.confirmation.expect
        answer = event.value if expect else "yes"
        if expect and answer.strip() != expect:
            self.error(f"type exactly {expect} to confirm (Esc goes back)")
            return
        self.run_worker_ = self.run_restore(answer)

    # ------------------------------------------------------------ 6 run

    @work(group="restore-run", exclusive=True, exit_on_error=False)
    async def run_restore(self, answer: str) -> None:
        prepared, self.prepared = self.prepared, None
        if prepared is None:
            return  # confirm() runs only on a preview's plan
        self.show_step("run")
        label = self.query_one("#progress-label", Label)
        bar = self.query_one("#progress-bar", ProgressBar)
        label.update(prepared.plan.summary)

        def progress(fraction: float | None, message: str) -> None:
            label.update(message)
            if fraction is None:
                bar.update(total=None)
            else:
                bar.update(total=100, progress=fraction * 100)

        try:
            result = await self.ctx.acting()[1].run(prepared, answer, progress)
        except asyncio.CancelledError:
            self.summary_cancelled(prepared)
            raise
        except Exception as exc:
            self.summarise(Text(f"The restore did not run: {exc}", "bold red"))
            return
        self.result = result
        outcome = result.outcome
        text = Text()
        text.append(
            "✔ restored and verified\n" if result.ok else "✘ failed\n",
            "bold green" if result.ok else "bold red",
        )
        text.append(outcome.message + "\n")
        for key in ("missing", "wrong_size", "partial"):
            items = outcome.details.get(key)
            if items:
                text.append(f"{key}: {len(items)}\n", "red")
        text.append(f"\ntarget: {prepared.plan.data.target}\n")
        self.summarise(text)

    def summary_cancelled(self, prepared: Prepared) -> None:
        partial = (self.action_obj.partial if self.action_obj else None) or []
        text = Text("Restore cancelled.\n", "bold yellow")
        text.append(f"{len(partial)} files were written (partly) in {prepared.plan.data.target}:\n")
        for p in partial[:20]:
            state = (
                "complete"
                if p["complete"]
                else f"partial {bytes_h(p['size'])} of {bytes_h(p['expected'])}"
            )
            text.append(f"  {p['path']}  {state}\n")
        text.append("Nothing outside the selection was touched.\n")
        note = self.action_obj.lock_note if self.action_obj else ""
        if note:
            text.append(note + "\n", "dim")
        self.summarise(text)

    def summarise(self, text: Text) -> None:
        self.query_one("#summary-text", Static).update(text)
        self.show_step("summary")


def preview_text(plan: Plan[RestoreSpec]) -> Text:
    """The plan as the wizard's preview shows it: how much (in the units of the rest of the
    console) and what is overwritten first, then the plan with each step's exact command. A
    warning only when space is short."""
    data = plan.data
    files, size, free = data.files, data.bytes, data.free
    text = Text()
    text.append(f"{plural(files, 'file')}, {bytes_h(size)} to restore · ", "bold")
    if free and size >= SHORT_OF_SPACE * free:
        text.append(f"⚠ only {bytes_h(free)} free", "bold yellow")
    else:
        text.append(f"{bytes_h(free)} free")
    text.append("\n")
    count = data.overwritten_count
    if count:
        text.append(f"{plural(count, 'existing file')} will be overwritten:\n", "bold red")
        for p in data.overwritten[:10]:
            text.append(f"  {p}\n", "red")
    else:
        text.append("nothing existing is overwritten\n", "green")
    # The plan's steps, cost and notes carry sizes in decimal units (for the CLI); the wizard
    # says them once, above, and shows each step's exact command instead. Notes it restates
    # (free space, overwritten files) are left out; any other is kept.
    notes = tuple(
        n for n in plan.notes if " free in " not in n and not n.endswith("will be overwritten")
    )
    shown = replace(plan, cost="", notes=notes, steps=tuple(_command_step(s) for s in plan.steps))
    text.append("\n")
    text.append_text(plan_text(shown))
    return text


def _command_step(step: Step) -> Step:
    if step.argv is None:
        return step
    return replace(step, description="run:")
