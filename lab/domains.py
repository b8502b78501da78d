"""One descriptor per domain, registered once: what wiring, health, status and the TUI iterate.

A `Domain` names its config section, its readers, its health rules, its overview summary and its
action family modules. References are "module:attribute" strings, imported on first use: a
domain whose section is empty (backups, certs) costs no import at start-up. The TUI side (pane
number and class) registers in tui/panes/__init__.py under the same name; actions/registry.py
derives the family modules it imports from here. README.md "Adding a domain" says the steps.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lab.config import Config
    from lab.model import Finding, Key
    from lab.poller import Reader
    from lab.store import Entry
    from lab.wiring import Lab

ReadersFactory = Callable[["Lab"], "list[Reader]"]
Rule = Callable[[Any, "Config", "Key", datetime], "Iterable[Finding]"]
Summary = Callable[["list[Entry]", "Config", datetime], "list[str]"]


@dataclass(frozen=True)
class Domain:
    name: str  # "hosts": its pane id and the name the TUI registers its pane under
    key: str  # the first part of its store keys ("host"): entries, findings, rules
    label: str  # "Hosts": the pane's title and the overview line's label
    section: str  # its config section (Config attribute): "hosts" for [[hosts]]
    readers: str | ReadersFactory  # "module:function" (or the function): Lab → readers
    rules: str | Rule | None = None  # (reading, config, key, now) → findings
    summary: str | Summary | None = None  # the overview's one line: (entries, config, now)
    actions: tuple[str, ...] = ()  # action family modules (they @register their classes)
    # Read even with an empty section (hosts reads this machine); False: not imported at all
    # while the section is empty, which keeps cryptography & co. off the start-up path.
    always: bool = True
    polled_by_watch: bool = True  # False: hlcon watch does not read it (its own status file)

    def configured(self, config: Config) -> bool:
        return self.always or bool(getattr(config, self.section))

    def make_readers(self, lab: Lab) -> list[Reader]:
        factory: ReadersFactory = _resolve(self.readers)
        return factory(lab)

    def rule(self) -> Rule | None:
        return None if self.rules is None else _resolve(self.rules)

    def summarise(self) -> Summary | None:
        return None if self.summary is None else _resolve(self.summary)


def _resolve(ref: Any) -> Any:
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


DOMAINS: dict[str, Domain] = {}


def register_domain(domain: Domain) -> Domain:
    """Add `domain` (once; the same descriptor again is a no-op, as on a module reload)."""
    other = DOMAINS.get(domain.name)
    if other is not None and other != domain:
        raise ValueError(f"two domains named {domain.name!r}")
    if any(d.key == domain.key and d.name != domain.name for d in DOMAINS.values()):
        raise ValueError(f"two domains with store key {domain.key!r}")
    DOMAINS[domain.name] = domain
    return domain


def by_key(key: str) -> Domain | None:
    """The domain whose store entries have `key` as their first part ("host" → hosts)."""
    return next((d for d in DOMAINS.values() if d.key == key), None)


# The lab's own domains, in the order of their panes. A domain above the lab (notify, in
# watch/status.py) registers itself where its readers live.
register_domain(
    Domain(
        "hosts",
        "host",
        "Hosts",
        "hosts",
        readers="lab.hosts:readers",
        rules="lab.health:host_findings",
        summary="lab.glance:hosts_line",
        actions=("actions.services", "actions.hostkeys"),
    )
)
register_domain(
    Domain(
        "containers",
        "containers",
        "Containers",
        "containers",
        readers="lab.containers:readers",
        rules="lab.health:container_findings",
        summary="lab.glance:containers_line",
        actions=("actions.containers",),
    )
)
register_domain(
    Domain(
        "vpn",
        "vpn",
        "VPN",
        "vpn",
        readers="lab.vpn:readers",
        rules="lab.health:vpn_findings",
        summary="lab.glance:vpn_line",
        actions=("actions.vpn",),
    )
)
register_domain(
    Domain(
        "backups",
        "backup",
        "Backups",
        "backups",
        readers="lab.backups:readers",
        rules="lab.health:backup_findings",
        summary="lab.glance:backups_line",
        actions=("actions.backups",),
        always=False,
    )
)
register_domain(
    Domain(
        "certs",
        "cert",
        "Certs",
        "certs",
        readers="lab.certs:readers",
        rules="lab.health:cert_findings",
        summary="lab.glance:certs_line",
        actions=("actions.certs",),
        always=False,
    )
)
