"""Pane 3: every container of every Docker/Podman endpoint — state, health, restarts, CPU, memory.

Keys on a row: `R` restart, `s` start, `S` stop (type the name), `l` logs, Enter detail;
`B` restarts every container the `/` filter leaves (one endpoint at a time; type the count).
Row ids are `container:NAME@ENDPOINT`, as lab.health's findings name them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from actions.base import Action, Target
from actions.containers import (
    ContainerBulkRestart,
    ContainerRestart,
    ContainerStart,
    ContainerStop,
)
from lab.config import Config
from lab.model import Container, ContainerEndpointState
from tui.format import bytes_h
from tui.messages import LaunchAction
from tui.panes.base import Row, TablePane, ago
from tui.screens.detail import TextDetail, fields_text

_STATE_STYLE = {"running": "green", "restarting": "bold yellow", "paused": "yellow"}
_HEALTH_STYLE = {"healthy": "green", "unhealthy": "bold red", "starting": "yellow"}
_VERBS: dict[str, type[Action]] = {
    "restart": ContainerRestart,
    "start": ContainerStart,
    "stop": ContainerStop,
}


@dataclass(frozen=True)
class ContainerRow:
    endpoint: str
    container: Container


def row_id(endpoint: str, name: str) -> str:
    return f"container:{name}@{endpoint}"


def state_cell(c: Container) -> Text:
    if c.state == "exited" and c.exit_code not in (None, 0):
        return Text(f"exited {c.exit_code}", "bold red")
    return Text(c.state, _STATE_STYLE.get(c.state, "dim"))


def health_cell(c: Container) -> Text:
    if c.health is None:
        return Text("-", "dim")
    return Text(c.health, _HEALTH_STYLE.get(c.health, ""))


def detail_text(endpoint: str, c: Container) -> Text:
    def when(t: object) -> str:
        return f"{t:%Y-%m-%d %H:%M:%S} UTC" if t is not None else "never"

    lines = [
        ("container", f"{c.name}@{endpoint}"),
        ("id", c.id),
        ("image", c.image),
        ("state", f"{c.state} — {c.status}"),
        ("health", c.health or "no healthcheck"),
        ("restarts", f"{c.restart_count} (policy {c.restart_policy or 'none'})"),
        ("started", when(c.started_at)),
        ("finished", when(c.finished_at)),
        ("exit code", "-" if c.exit_code is None else str(c.exit_code)),
        ("cpu", "-" if c.cpu_percent is None else f"{c.cpu_percent:.1f}%"),
        ("memory", f"{bytes_h(c.mem_usage)} of {bytes_h(c.mem_limit)}"),
        ("ports", ", ".join(map(str, c.ports)) or "-"),
    ]
    lines += [(f"label {k}", v) for k, v in sorted(c.labels.items())]
    return fields_text(lines)


class ContainerDetail(TextDetail):
    def __init__(self, row: ContainerRow) -> None:
        super().__init__(detail_text(row.endpoint, row.container))
        self.row = row


class ContainersPane(TablePane):
    NUMBER = 3
    PANE_ID = "containers"
    TITLE = "Containers"
    DOMAINS = ("containers",)
    CONFIG_SECTION = "[[containers]]"
    COLUMNS: ClassVar = (
        ("Container", 16),
        ("On", 6),
        ("State", 9),
        ("Health", 9),
        ("Rst", 3),
        ("CPU", 4),
        ("Memory", 9),
        "Ports / image",
    )
    KEY_COLUMNS: ClassVar = ("Container",)
    ACTION_KEYS: ClassVar = {"R": "restart", "s": "start", "S": "stop"}
    FOOTER_HIDDEN: ClassVar = ("s", "S")  # 80 columns hold the rest; `?` lists every key
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "logs", "Logs"),
        Binding("B", "bulk_restart", "Restart shown"),
    ]

    @classmethod
    def configured(cls, config: Config) -> bool:
        return (
            (config.local.enabled and config.local.containers != "none")
            or bool(config.containers)
            or any(h.containers not in ("", "none") for h in config.hosts)
        )

    def rows(self) -> Iterable[Row]:
        now = self.now()
        for entry in sorted(self.entries(), key=lambda e: e.key[1]):
            endpoint = entry.key[1]
            state = entry.reading
            if not isinstance(state, ContainerEndpointState):
                status = (
                    Text(entry.fault.what, "bold red")
                    if entry.fault
                    else Text("waiting for first reading", "dim")
                )
                yield Row(
                    id=f"endpoint:{endpoint}",
                    cells=(Text(f"({endpoint})", "dim"), endpoint, status, "", "", "", "", ""),
                    data=None,
                )
                continue
            stale = f" ({ago(now, state.at)} old)" if entry.fault else ""
            for c in state.containers:
                yield Row(
                    id=row_id(endpoint, c.name),
                    cells=(
                        Text(c.name, "bold red" if entry.fault else ""),
                        endpoint,
                        state_cell(c),
                        health_cell(c),
                        Text(
                            str(c.restart_count),
                            "bold red" if c.restart_count >= self.loop_at else "",
                        ),
                        "-" if c.cpu_percent is None else f"{c.cpu_percent:.0f}%",
                        bytes_h(c.mem_usage) if c.mem_usage is not None else "-",
                        (", ".join(map(str, c.ports)) or c.image) + stale,
                    ),
                    data=ContainerRow(endpoint, c),
                )

    @property
    def loop_at(self) -> int:
        return self.ctx.config.health.restart_loop

    def empty_message(self) -> str:
        return (
            "No containers: no local Docker/Podman socket answered. Set [local] containers = "
            '"unix:///…" or add a [[containers]] endpoint.'
        )

    def open_detail(self, row: Row) -> None:
        if isinstance(row.data, ContainerRow):
            self.app.push_screen(ContainerDetail(row.data))

    def make_action(self, verb: str, row: Row) -> Action | None:
        lab = self.ctx.lab
        family = _VERBS.get(verb)
        if lab is None or family is None or not isinstance(row.data, ContainerRow):
            return None
        return family(Target("container", row.data.container.name, row.data.endpoint), lab)

    def action_logs(self) -> None:
        row = self.selected_row()
        lab = self.ctx.lab
        if row is None or not isinstance(row.data, ContainerRow):
            self.notify("no container selected", severity="warning")
            return
        if lab is None:
            self.notify("logs are unavailable in this session (no lab)", severity="warning")
            return
        from lab.containers import endpoints
        from tui.screens.logs import LogsScreen

        try:
            endpoint = endpoints(lab).get(row.data.endpoint)
        except LookupError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.app.push_screen(LogsScreen(endpoint, row.data.container.name))

    def bulk_action(self) -> Action | str:
        """The bulk restart of the filtered rows, or why there is none."""
        lab = self.ctx.lab
        chosen = [r.data for r in self.filtered_rows() if isinstance(r.data, ContainerRow)]
        if lab is None:
            return "actions are unavailable in this session (no lab)"
        if not chosen:
            return "no containers to restart (the filter leaves none)"
        where = sorted({c.endpoint for c in chosen})
        if len(where) > 1:
            return f"the filter leaves containers on {', '.join(where)}: narrow it to one endpoint"
        names = [c.container.name for c in chosen]
        return ContainerBulkRestart.create(
            Target("containers", "selection", where[0]), lab, {"names": names}
        )

    def action_bulk_restart(self) -> None:
        action = self.bulk_action()
        if isinstance(action, str):
            self.notify(action, severity="warning", markup=False)
            return
        self.post_message(LaunchAction(action))
