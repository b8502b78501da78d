"""One descriptor per domain (lab.domains, issue 13 §2): a domain registered once is read by
Lab.readers(), judged by lab.health, listed on the overview and given a pane, with no other
file naming it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from actions import registry
from lab import domains
from lab.config import Config, ConfigError, parse_config
from lab.domains import DOMAINS, Domain
from lab.health import evaluate
from lab.model import Finding, Key, Severity
from lab.poller import Poller, Reader
from lab.store import Entry, Store
from lab.wiring import Lab
from tui import panes
from tui.panes.overview import glance

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ToyReading:
    at: datetime
    level: int

    def summary(self) -> str:
        return f"level {self.level}"


@dataclass
class ToyReader:
    key: Key = ("toy", "one")
    interval: float = 60.0
    timeout: float = 5.0

    async def read(self) -> ToyReading:
        return ToyReading(NOW, 9)

    async def close(self) -> None:
        pass


def toy_readers(lab: Lab) -> list[Reader]:
    return [ToyReader()]


def toy_rule(state: ToyReading, config: Config, key: Key, now: datetime) -> Iterable[Finding]:
    yield Finding(Severity.WARNING, key, "one", f"toy level {state.level}", rule="toy-level")


def toy_line(entries: list[Entry], config: Config, now: datetime) -> list[str]:
    return [f"{len(entries)} toy"]


TOY = Domain(
    "toys",
    "toy",
    "Toys",
    "hosts",  # any section: `always` reads it whatever the config says
    readers=toy_readers,
    rules=toy_rule,
    summary=toy_line,
    actions=("actions.containers",),
)


async def test_a_registered_domain_is_read_judged_and_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(DOMAINS, "toys", TOY)
    monkeypatch.setitem(panes.DOMAIN_PANES, "toys", (8, "tui.panes.hosts:HostsPane"))
    lab = Lab(parse_config("", "test"))
    toys = [r for r in lab.readers() if r.key[0] == "toy"]
    assert toys == [ToyReader()]
    store = Store()
    poller = Poller(store, toys)
    await poller.poll_all()
    await poller.stop()
    assert [f.message for f in evaluate(store, lab.config, NOW)] == ["toy level 9"]
    assert glance(store, lab.config, NOW) == [(8, "Toys", "1 toy")]
    assert domains.by_key("toy") is TOY


def test_the_lab_domains_in_pane_order() -> None:
    lab_side = [d.name for d in DOMAINS.values()][:5]
    assert lab_side == ["hosts", "containers", "vpn", "backups", "certs"]
    assert [(d.name, n) for d, n in panes.domain_panes()] == [
        ("hosts", 2),
        ("containers", 3),
        ("vpn", 4),
        ("backups", 5),
        ("certs", 6),
    ]
    assert panes.PANES[4] == ("vpn", "VPN", "tui.panes.vpn:VpnPane")
    assert set(registry.FAMILY_MODULES) == {m for d in DOMAINS.values() for m in d.actions}


def test_empty_sections_import_nothing() -> None:
    """backups and certs stay unimported while their sections are empty (start-up time)."""
    code = (
        "import sys; from lab.config import parse_config; from lab.wiring import Lab; "
        "Lab(parse_config('', 'test')).readers(); "
        "print(sorted(m for m in ('lab.backups', 'lab.certs', 'lab.hosts') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["['lab.hosts']"]


def test_the_watch_skips_its_own_channels() -> None:
    import watch.status

    config = parse_config(
        '[[notify]]\nname = "ops"\nkind = "alertmanager"\nurl = "http://127.0.0.1:9093"\n', "test"
    )
    lab = Lab(config)
    assert not DOMAINS["backups"].configured(config)
    assert not DOMAINS["certs"].configured(config)
    assert [r.key for r in lab.readers() if r.key[0] == watch.status.DOMAIN] == [("notify", "ops")]
    assert [r.key for r in lab.readers(by_watch=True) if r.key[0] == "notify"] == []


def test_one_name_and_one_store_key_per_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(domains, "DOMAINS", dict(DOMAINS))
    with pytest.raises(ValueError, match="two domains named 'vpn'"):
        domains.register_domain(Domain("vpn", "vpn2", "VPN", "vpn", readers="lab.vpn:readers"))
    with pytest.raises(ValueError, match="store key 'host'"):
        domains.register_domain(Domain("hosts2", "host", "H", "hosts", readers="lab.hosts:readers"))


def test_notify_domains_are_the_registered_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """[[notify]] domains accepts every domain the watch reads, a new one without a config edit."""
    monkeypatch.setitem(DOMAINS, "toys", TOY)
    notify = '[[notify]]\nname = "ops"\nkind = "alertmanager"\nurl = "http://127.0.0.1:9093"\n'
    config = parse_config(notify + 'domains = ["toy", "cert"]\n', "test")
    assert config.notify[0].domains == ("toy", "cert")
    with pytest.raises(ConfigError, match=r"unknown domain \"notify\".*host, containers"):
        parse_config(notify + 'domains = ["notify"]\n', "test")
