"""Pane 5: restic repositories — freshness per (host, paths), size, last check, locks.

One row per repository, then one row per (host, paths) group under it. Keys: R opens the
restore wizard, c checks, u unlocks a stale lock, b backs up now (the configured paths).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from lab.config import Config
from lab.model import RepoState
from tui.format import ago, bytes_h, duration_h
from tui.panes.base import Row, TablePane
from tui.screens.detail import TextDetail

if TYPE_CHECKING:
    from actions.base import Action


def _repo_name(row: Row) -> str:
    return row.id.split("|", 1)[0].removeprefix("repo:")


def _row_snapshot(row: Row) -> str | None:
    """The snapshot a row shows: a group's newest, or the repository's newest."""
    state = getattr(row.data, "reading", None)
    if not isinstance(state, RepoState):
        return None
    _, _, group_key = row.id.partition("|")
    for group in state.groups:
        if group_key == f"{group.host}:{','.join(group.paths)}":
            return group.newest.id
    return state.newest.id if state.newest is not None and not group_key else None


class RepoDetail(TextDetail):
    pass


class BackupsPane(TablePane):
    NUMBER = 5
    PANE_ID = "backups"
    TITLE = "Backups"
    DOMAINS = ("backup",)
    CONFIG_SECTION = "[[backups]]"
    # Minimum widths; Host:paths tells two groups apart, so it is never cut where the width
    # allows, and cut in the middle where it must be (the path's end shows)
    KEY_COLUMNS: ClassVar = ("Host:paths",)
    COLUMNS = (
        ("Repo", 9),
        ("Host:paths", 14),
        ("Newest", 8),
        ("Age", 5),
        ("#", 3),
        ("Size", 9),
        ("Check", 7),
        ("Locks", 7),
    )
    ACTION_KEYS: ClassVar[dict[str, str]] = {"c": "check", "u": "unlock", "b": "backup now"}
    FOOTER_HIDDEN: ClassVar = ("u",)  # 80 columns hold the rest; `?` lists it
    BINDINGS: ClassVar[list[BindingType]] = [Binding("R", "restore", "Restore")]

    @classmethod
    def configured(cls, config: Config) -> bool:
        return bool(config.backups)

    def empty_message(self) -> str:
        return "no repositories read yet"

    def rows(self) -> Iterable[Row]:
        now = self.now()
        config = self.ctx.config
        for entry in sorted(self.entries(), key=lambda e: e.key[1]):
            name = entry.key[1]
            cfg = next((b for b in config.backups if b.name == name), None)
            state = entry.reading if isinstance(entry.reading, RepoState) else None
            if state is None:
                status = Text(
                    entry.fault.what if entry.fault else "waiting…",
                    "bold red" if entry.fault else "dim",
                )
                yield Row(f"repo:{name}", (name, status, "", "", "", "", "", ""), data=entry)
                continue
            newest = state.newest
            max_age = cfg.max_age if cfg else float("inf")
            check: Text
            if state.last_check is None:
                check = Text("never", "yellow")
            elif not state.last_check.ok:
                check = Text(f"FAIL {ago(now, state.last_check.at)}", "bold red")
            else:
                check = Text(f"ok {ago(now, state.last_check.at)}")
            stale = [lk for lk in state.locks if lk.stale]
            locks = Text(
                f"{len(stale)} stale" if stale else str(len(state.locks) or "-"),
                "bold yellow" if stale else "",
            )
            age_text = Text(ago(now, newest.time) if newest else "none")
            if newest is None or (now - newest.time).total_seconds() > max_age:
                age_text.stylize("bold red")
            name_cell = Text(name, "bold")
            if entry.fault is not None:
                name_cell.append(f" ⚠ {entry.fault.what}", "bold red")
            yield Row(
                f"repo:{name}",
                (
                    name_cell,
                    state.repository,
                    newest.short_id if newest else "-",
                    age_text,
                    str(len(state.snapshots)),
                    bytes_h(state.stats.total_size) if state.stats else "-",
                    check,
                    locks,
                ),
                data=entry,
            )
            for group in state.groups:
                late = (now - group.newest.time).total_seconds() > max_age
                yield Row(
                    f"repo:{name}|{group.host}:{','.join(group.paths)}",
                    (
                        "  └",
                        f"{group.host}:{', '.join(group.paths)}",
                        group.newest.short_id,
                        Text(
                            ago(now, group.newest.time),
                            "bold red" if late else "",
                        ),
                        str(group.count),
                        bytes_h(group.newest.size),
                        "",
                        "",
                    ),
                    data=entry,
                )

    def open_detail(self, row: Row) -> None:
        entry = row.data
        state = entry.reading if isinstance(entry.reading, RepoState) else None
        text = Text()
        text.append(f"repo:{_repo_name(row)}\n", "bold")
        if entry.fault is not None:
            text.append(f"⚠ {entry.fault.what}: {entry.fault.why}\n", "bold red")
        if state is not None:
            text.append(f"{state.repository} · restic {state.restic_version} on {state.host}\n")
            for lk in state.locks:
                gone = {True: "process gone", False: "process alive", None: "other host"}[
                    lk.process_gone
                ]
                text.append(
                    f"lock {lk.id[:8]} PID {lk.pid} on {lk.hostname} "
                    f"({gone}, {duration_h(lk.age)})\n",
                    "yellow" if lk.stale else "",
                )
            text.append("\nSnapshots (newest first):\n", "bold")
            for s in sorted(state.snapshots, key=lambda s: s.time, reverse=True):
                tags = f" [{', '.join(s.tags)}]" if s.tags else ""
                text.append(
                    f"{s.short_id}  {s.time:%Y-%m-%d %H:%M}  {s.host}  {', '.join(s.paths)}{tags}\n"
                )
        self.app.push_screen(RepoDetail(text))

    def make_action(self, verb: str, row: Row) -> Action | None:
        lab = self.ctx.lab
        if lab is None:
            return None
        from actions.backups import BackupNowAction, CheckAction, UnlockAction
        from actions.base import Target

        target = Target("repo", _repo_name(row))
        try:
            if verb == "check":
                return CheckAction(target, lab)
            if verb == "unlock":
                return UnlockAction(target, lab)
            if verb == "backup now":
                return BackupNowAction(target, lab)
        except ValueError as exc:
            self.notify(str(exc), severity="warning")
        return None

    def action_restore(self) -> None:
        from tui.screens.restore import RestoreScreen

        row = self.selected_row()
        if row is None:
            self.app.push_screen(RestoreScreen())
            return
        self.app.push_screen(RestoreScreen(repo=_repo_name(row), snapshot=_row_snapshot(row)))
