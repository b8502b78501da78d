"""The numbered panes. A domain's pane registers once, in DOMAIN_PANES, under its lab.domains name;
its title is the domain's label. PANES (number → pane id, title, "module:Class") is derived.

A pane whose `configured(config)` is False is replaced by tui.panes.placeholder.PlaceholderPane,
which says so and names the config section to add.
"""

from __future__ import annotations

import importlib

from lab.domains import DOMAINS, Domain
from tui.panes.base import Pane, Row, TablePane

__all__ = ["DOMAIN_PANES", "PANES", "Pane", "Row", "TablePane", "domain_panes", "pane_class"]

DOMAIN_PANES: dict[str, tuple[int, str]] = {
    # lab.domains name: (number, "module:Class")
    "hosts": (2, "tui.panes.hosts:HostsPane"),
    "containers": (3, "tui.panes.containers:ContainersPane"),
    "vpn": (4, "tui.panes.vpn:VpnPane"),
    "backups": (5, "tui.panes.backups:BackupsPane"),
    "certs": (6, "tui.panes.certs:CertsPane"),
}

PANES: dict[int, tuple[str, str, str]] = {
    # number: (pane id, title, "module:Class")
    1: ("overview", "Overview", "tui.panes.overview:OverviewPane"),
    **{n: (name, DOMAINS[name].label, spec) for name, (n, spec) in DOMAIN_PANES.items()},
    7: ("audit", "Audit", "tui.panes.audit:AuditPane"),
}


def domain_panes() -> list[tuple[Domain, int]]:
    """Each registered domain that has a pane, with its number, in the order of the numbers."""
    return sorted(
        ((DOMAINS[name], n) for name, (n, _) in DOMAIN_PANES.items() if name in DOMAINS),
        key=lambda pair: pair[1],
    )


def pane_class(number: int) -> type[Pane]:
    """The pane class registered under `number` (imported on first use: a faster start)."""
    _, _, spec = PANES[number]
    module_name, _, class_name = spec.partition(":")
    cls: type[Pane] = getattr(importlib.import_module(module_name), class_name)
    return cls
