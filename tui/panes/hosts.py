"""Pane 2: one row per host — CPU and memory with sparklines, load, swap, uptime, worst disk."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from lab.config import Config
from lab.model import HostState
from lab.store import Entry
from tui.format import bytes_h, duration_h
from tui.panes.base import Row, TablePane, ago
from tui.widgets.spark import spark
from tui.widgets.table import CursorTable  # Home/End move the row cursor

SPARK = 8


def _pct(value: float | None) -> str:
    return "  -" if value is None else f"{value:3.0f}%"


def _with_spark(value: float | None, history: Iterable[float]) -> Text:
    text = Text(_pct(value) + " ")
    text.append_text(spark(history, SPARK))
    return text


def worst_disk(state: HostState) -> str:
    if not state.filesystems:
        return "-"
    fs = max(state.filesystems, key=lambda f: f.percent)
    return f"{fs.percent:.0f}% {fs.mount}"


class HostDetail(ModalScreen[None]):
    """Enter on a host: its filesystems, services and failed units."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,enter", "close", "Close")]

    DEFAULT_CSS = """
    HostDetail { align: center middle; }
    HostDetail > #host-detail {
        width: 95%; height: 90%; border: thick $accent; background: $surface; padding: 0 1;
    }
    HostDetail DataTable { height: 1fr; }
    """

    def __init__(self, entry: Entry) -> None:
        super().__init__()
        self.entry = entry

    def compose(self) -> ComposeResult:
        state = self.entry.reading
        with Vertical(id="host-detail"):
            if not isinstance(state, HostState):
                yield Static(f"{self.entry.key[1]}: no reading yet")
                return
            yield Static(
                Text.assemble(
                    (state.host, "bold"),
                    f"  {state.hostname} · {state.kernel} · {state.cpus} CPUs · up ",
                    duration_h(state.uptime),
                    "\nload " + " ".join(f"{x:.2f}" for x in state.load),
                    "\n",
                    f"memory {bytes_h(state.mem_used)} of {bytes_h(state.mem_total)}"
                    f" · swap {bytes_h(state.swap_used)} of {bytes_h(state.swap_total)}",
                )
            )
            table: DataTable[str] = CursorTable(id="filesystems", cursor_type="row")
            table.add_columns("Mount", "Device", "Type", "Size", "Used", "Free", "Use%")
            for fs in sorted(state.filesystems, key=lambda f: f.mount):
                table.add_row(
                    fs.mount,
                    fs.device,
                    fs.fstype,
                    bytes_h(fs.size),
                    bytes_h(fs.used),
                    bytes_h(fs.available),
                    f"{fs.percent:.0f}%",
                    key=f"fs:{fs.mount}",
                )
            yield table
            if state.services or state.failed_units:
                lines = [f"{u.name}: {u.active} ({u.sub})" for u in state.services]
                lines += [f"failed: {name}" for name in state.failed_units]
                yield Static("\n".join(lines), id="units")

    def action_close(self) -> None:
        self.dismiss(None)


class HostsPane(TablePane):
    NUMBER = 2
    PANE_ID = "hosts"
    TITLE = "Hosts"
    DOMAINS = ("host",)
    CONFIG_SECTION = "[[hosts]]"
    COLUMNS: ClassVar = (
        ("Host", 10),
        ("CPU", 13),
        ("Memory", 13),
        ("Load", 5),
        ("Swap", 4),
        ("Up", 5),
        "Worst disk",
    )

    @classmethod
    def configured(cls, config: Config) -> bool:
        return bool(config.hosts) or config.local.enabled

    def rows(self) -> Iterable[Row]:
        now = self.now()
        for entry in sorted(self.entries(), key=lambda e: e.key[1]):
            name = entry.key[1]
            state = entry.reading
            if not isinstance(state, HostState):
                status = (
                    Text(f"{entry.fault.what}", "bold red")
                    if entry.fault
                    else Text("waiting for first reading", "dim")
                )
                yield Row(id=name, cells=(name, status, "", "", "", "", ""), data=entry)
                continue
            host = Text(name, "bold red" if entry.fault else "")
            if entry.fault:
                host.append(f" ({ago(now, state.at)})", "dim")
            yield Row(
                id=name,
                cells=(
                    host,
                    _with_spark(state.cpu_percent, entry.history.get("cpu", ())),
                    _with_spark(state.mem_percent, entry.history.get("mem", ())),
                    f"{state.load[0]:.2f}",
                    f"{state.swap_percent:.0f}%" if state.swap_total else "-",
                    duration_h(state.uptime),
                    worst_disk(state),
                ),
                data=entry,
            )

    def empty_message(self) -> str:
        return "No hosts: enable [local] or add a [[hosts]] section to the config."

    def open_detail(self, row: Row) -> None:
        from tui.screens.host_detail import HostDetailScreen  # units, journal, fail2ban

        self.app.push_screen(HostDetailScreen(row.data))
