"""Enter on a host: its configured services and failed units, fail2ban jails, filesystems, and
the journal of the selected unit (last lines, then follow).

Keys: j journal of the selected unit · f follow on/off · r restart · s start · x stop (through
app.launch → the runner's confirm) · t trust an unverified host key · escape close.
The journal is read through lab.hosts (journalctl over the host's executor); this module never
touches SSH itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, RichLog, Static

from lab.hosts import journal_follow, journal_tail
from lab.model import HostState, Unit
from lab.store import Entry
from tui.context import console_app
from tui.format import bytes_h, duration_h
from tui.messages import LaunchAction
from tui.screens.detail import DetailModal
from tui.widgets.table import CursorTable  # Home/End move the row cursor

if TYPE_CHECKING:
    from lab.wiring import Lab

JOURNAL_LINES = 200

_STATE_STYLE = {"active": "green", "failed": "bold red", "not-found": "yellow"}


def unit_rows(state: HostState) -> list[tuple[str, Unit | None]]:
    """Configured services first, then failed units that are not among them."""
    rows: list[tuple[str, Unit | None]] = [(u.name, u) for u in state.services]
    listed = {u.name for u in state.services}
    rows += [(name, None) for name in state.failed_units if name not in listed]
    return rows


class HostDetailScreen(DetailModal):
    """Enter on a host (pane 2): units, fail2ban jails, filesystems, the journal."""

    inherit_bindings = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close"),
        Binding("j", "journal", "Journal"),
        Binding("f", "follow", "Follow"),
        # The containers pane's keys: R restart, s start, S stop (r stays the app's refresh).
        Binding("R", "service('restart')", "Restart"),
        Binding("s", "service('start')", "Start"),
        Binding("S", "service('stop')", "Stop"),
        Binding("t", "trust", "Trust key", show=False),
        Binding("tab", "app.focus_next", "Focus next", show=False),
        Binding("shift+tab", "app.focus_previous", "Focus previous", show=False),
    ]

    DEFAULT_CSS = """
    HostDetailScreen > #host-detail { width: 98%; height: 96%; }
    HostDetailScreen #tables { height: 2fr; }
    HostDetailScreen #units { width: 3fr; }
    HostDetailScreen #side { width: 2fr; }
    HostDetailScreen DataTable { height: 1fr; }
    HostDetailScreen #journal { height: 1fr; border-top: solid $accent; }
    HostDetailScreen #journal-title { color: $text-muted; }
    """

    def __init__(self, entry: Entry) -> None:
        super().__init__()
        self.entry = entry
        self.host = entry.key[1]
        self.journal_unit: str | None = None
        self.following = False

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        state = self.entry.reading
        with Vertical(id="host-detail", classes="frame"):
            yield Static(self._header(), id="header")
            if isinstance(state, HostState):
                with Horizontal(id="tables"):
                    yield self._units_table(state)
                    with Vertical(id="side"):
                        yield self._jails_table(state)
                        yield self._fs_table(state)
            yield Static("journal: select a unit, press j", id="journal-title")
            yield RichLog(id="journal", max_lines=2000, wrap=False, markup=False)

    def _header(self) -> Text:
        state = self.entry.reading
        text = Text(self.host, "bold")
        if isinstance(state, HostState):
            text.append(
                f"  {state.hostname} · {state.kernel} · {state.cpus} CPUs · up "
                f"{duration_h(state.uptime)} · load "
                + " ".join(f"{x:.2f}" for x in state.load)
                + f"\nmemory {bytes_h(state.mem_used)} of {bytes_h(state.mem_total)}"
                f" · swap {bytes_h(state.swap_used)} of {bytes_h(state.swap_total)} · systemd "
                + {True: "yes", False: "no (units not available)", None: "not asked"}[state.systemd]
            )
        else:
            text.append("  no reading yet")
        fault = self.entry.fault
        if fault is not None:
            text.append(f"\n{fault.what}: {fault.why}", "bold red")
            if fault.what == "unverified host key":
                text.append("  (t: trust this key)", "yellow")
        return text

    def _units_table(self, state: HostState) -> DataTable[Any]:
        table: DataTable[Any] = CursorTable(id="units", cursor_type="row")
        table.add_columns("Unit", "State", "MainPID", "Since")
        for name, unit in unit_rows(state):
            if unit is None:
                table.add_row(name, Text("failed", "bold red"), "-", "-", key=name)
                continue
            failed = name in state.failed_units
            style = "bold red" if failed else _STATE_STYLE.get(unit.active, "yellow")
            since = unit.since.strftime("%Y-%m-%d %H:%M:%S") if unit.since else "-"
            table.add_row(
                name,
                Text(f"{unit.active} ({unit.sub})" if unit.sub else unit.active, style),
                str(unit.main_pid or "-"),
                since,
                key=name,
            )
        return table

    def _jails_table(self, state: HostState) -> DataTable[Any]:
        table: DataTable[Any] = DataTable(id="jails", cursor_type="none")
        table.add_columns("fail2ban jail", "Banned", "Total")
        if state.fail2ban is None:
            table.add_row(Text("fail2ban not installed", "dim"), "", "")
        for jail in state.fail2ban or ():
            table.add_row(jail.name, str(jail.banned), str(jail.total_banned), key=jail.name)
        return table

    def _fs_table(self, state: HostState) -> DataTable[Any]:
        table: DataTable[Any] = DataTable(id="filesystems", cursor_type="none")
        table.add_columns("Mount", "Size", "Use%")
        for fs in sorted(state.filesystems, key=lambda f: f.mount):
            table.add_row(fs.mount, bytes_h(fs.size), f"{fs.percent:.0f}%", key=f"fs:{fs.mount}")
        return table

    # -- helpers ----------------------------------------------------------------------------

    def selected_unit(self) -> str | None:
        with contextlib.suppress(Exception):
            table = self.query_one("#units", DataTable)
            if table.row_count:
                key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
                return str(key.value)
        return None

    def _lab(self) -> Lab | None:
        return console_app(self).ctx.lab

    # -- actions ----------------------------------------------------------------------------

    def action_close(self) -> None:
        self.workers.cancel_group(self, "journal")
        self.dismiss(None)

    def action_journal(self) -> None:
        unit = self.selected_unit()
        if unit is None:
            self.notify("no unit selected", severity="warning")
            return
        self.journal_unit = unit
        self._load_journal(unit, self.following)

    def action_follow(self) -> None:
        self.following = not self.following
        unit = self.journal_unit or self.selected_unit()
        if unit is None:
            self.notify("no unit selected", severity="warning")
            return
        self.journal_unit = unit
        self._load_journal(unit, self.following)

    @work(group="journal", exclusive=True, exit_on_error=False)
    async def _load_journal(self, unit: str, follow: bool) -> None:
        log = self.query_one("#journal", RichLog)
        title = self.query_one("#journal-title", Static)
        lab = self._lab()
        if lab is None:
            title.update(f"journal of {unit}: no lab in this session")
            return
        log.clear()
        title.update(
            f"journal of {unit} on {self.host}" + (" — following (f stops)" if follow else "")
        )
        executor = lab.executor(self.host)

        def write(line: str) -> None:
            log.write(line)

        try:
            if follow:
                await journal_follow(executor, unit, write, lines=JOURNAL_LINES)
            else:
                for line in await journal_tail(executor, unit, JOURNAL_LINES):
                    write(line)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a journal that cannot be read is a message, not a crash
            title.update(Text(f"journal of {unit}: {exc}", "bold red"))

    def action_service(self, verb: str) -> None:
        unit = self.selected_unit()
        lab = self._lab()
        if unit is None or lab is None:
            self.notify("no unit selected" if lab else "no lab in this session", severity="warning")
            return
        from actions.base import Target
        from actions.registry import build

        name = unit.removesuffix(".service")
        try:
            action = build(verb, Target("service", name, self.host), lab, {})
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        self.post_message(LaunchAction(action))

    def action_trust(self) -> None:
        lab = self._lab()
        if lab is None:
            return
        from actions.base import Target
        from actions.registry import build

        self.post_message(LaunchAction(build("trust", Target("host", self.host), lab, {})))
