"""The numbered panes. Register a pane by adding its "module:Class" under its number below.

A pane whose `configured(config)` is False is replaced by tui.panes.placeholder.PlaceholderPane,
which says so and names the config section to add.
"""

from __future__ import annotations

import importlib

from tui.panes.base import Pane, Row, TablePane

__all__ = ["PANES", "Pane", "Row", "TablePane", "pane_class"]

PANES: dict[int, tuple[str, str, str]] = {
    # number: (pane id, title, "module:Class")
    1: ("overview", "Overview", "tui.panes.overview:OverviewPane"),
    2: ("hosts", "Hosts", "tui.panes.hosts:HostsPane"),
    3: ("containers", "Containers", "tui.panes.containers:ContainersPane"),
    4: ("vpn", "VPN", "tui.panes.vpn:VpnPane"),
    5: ("backups", "Backups", "tui.panes.backups:BackupsPane"),
    6: ("certs", "Certs", "tui.panes.certs:CertsPane"),
    7: ("audit", "Audit", "tui.panes.audit:AuditPane"),
}


def pane_class(number: int) -> type[Pane]:
    """The pane class registered under `number` (imported on first use: a faster start)."""
    _, _, spec = PANES[number]
    module_name, _, class_name = spec.partition(":")
    cls: type[Pane] = getattr(importlib.import_module(module_name), class_name)
    return cls
