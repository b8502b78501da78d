"""Pilot tests: the console says only what it has read, and its counts and ages agree with what
is on screen (issue 11, parts 2 and 4)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from textual.app import App
from textual.widgets import Static

from actions.audit import AuditLog, Who
from lab.config import BackupConfig, CertConfig, Config, VpnConfig
from lab.containers import DockerEndpoint
from lab.model import (
    CheckRecord,
    ContainerEndpointState,
    Key,
    Reading,
    RepoState,
    Snapshot,
    SnapshotGroup,
    WgInterface,
    WgPeer,
)
from lab.secrets import SecretRef
from tests.tui.certs_demo import demo_cert
from tests.tui.containers_demo import container
from tests.tui.fixtures import NOW, demo_context, fault, host_state, make_context
from tui.app import HlconApp
from tui.panes.base import TablePane, cell_text
from tui.panes.overview import OverviewPane
from tui.screens.logs import LogsScreen

SIZE = (80, 24)


class LogsApp(App[None]):
    def __init__(self, screen: LogsScreen) -> None:
        super().__init__()
        self.logs = screen

    def on_mount(self) -> None:
        self.push_screen(self.logs)


async def test_logs_header_counts_the_lines_it_shows() -> None:
    more = asyncio.Event()

    async def source(tail: int) -> AsyncGenerator[str, None]:
        for i in range(3):
            yield f"line {i}"
        await more.wait()
        for i in range(3, 5):
            yield f"line {i}"
        await asyncio.Event().wait()  # following, nothing new

    endpoint = DockerEndpoint("local", "unix:///nonexistent/never-connected.sock")
    screen = LogsScreen(endpoint, "web", lines=50, source=source)
    async with LogsApp(screen).run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause()
        header = str(screen.query_one("#logs-header").render())
        assert screen.shown_lines() == ["line 0", "line 1", "line 2"]
        assert "following · 3 lines" in header, header
        more.set()
        await pilot.pause()
        await pilot.pause()
        header = str(screen.query_one("#logs-header").render())
        assert "following · 5 lines" in header, header


# ---------------------------------------------------------------- the overview


def overview_text(app: HlconApp) -> tuple[str, str, str, list[str]]:
    """(summary, glance, empty message, finding messages) of the overview as shown."""
    pane = app.pane(1)
    assert isinstance(pane, OverviewPane)
    summary = str(pane.query_one("#summary", Static).render())
    boxes = pane.query("#glance")
    glance = str(boxes.first(Static).render()) if boxes else ""
    empty = pane.query_one("#empty", Static)
    shown_empty = str(empty.render()) if empty.has_class("-active") else ""
    return summary, glance, shown_empty, [r.data.message for r in pane.filtered_rows()]


def healthy_lab() -> tuple[Config, list[tuple[Key, Reading]]]:
    """Every domain read, nothing wrong: three hosts, containers, a hub with peers, two
    repositories, two certificates."""
    config = Config(
        vpn=(VpnConfig(interface="wg0", host="hub"),),
        backups=(
            BackupConfig(name="main", repository="/srv/restic", password=SecretRef("env", "P")),
            BackupConfig(name="offsite", repository="sftp:nas:/r", password=SecretRef("env", "P")),
        ),
        certs=(CertConfig(name="web.lab", endpoint="web.lab:443"),
               CertConfig(name="mail.lab", endpoint="mail.lab:25")),
    )  # fmt: skip
    hosts = [
        (("host", "local"), host_state("local", cpu=12.0, disks=(("/", 40.0),))),
        (("host", "nas"), host_state("nas", cpu=71.0, disks=(("/", 30.0), ("/srv", 82.0)))),
        (("host", "pi"), host_state("pi", cpu=3.0, disks=(("/", 20.0),))),
    ]
    containers = ContainerEndpointState(
        at=NOW - timedelta(seconds=3), endpoint="local", engine="podman 4.3.1", api_version="1.41",
        containers=(container("web", "nginx", "running", health="healthy"),
                    container("db", "postgres", "running"),
                    container("old", "busybox", "exited", exit_code=0)),
    )  # fmt: skip
    online = WgPeer("k1", "laptop", "198.51.100.7:1", ("10.0.0.2/32",),
                    NOW - timedelta(seconds=30), 1, 1, online=True)  # fmt: skip
    wg0 = WgInterface(at=NOW - timedelta(seconds=3), name="wg0", host="hub", public_key="h",
                      listen_port=51820, up=True, source="wg", peers=(online,))  # fmt: skip

    def repo(name: str, hours: float) -> RepoState:
        snap = Snapshot("a" * 64, "aaaaaaaa", NOW - timedelta(hours=hours), "nas", ("/srv",))
        group = SnapshotGroup("nas", ("/srv",), snap, 1, hours * 3600)
        check = CheckRecord(NOW - timedelta(hours=1), True, "no errors")
        return RepoState(NOW - timedelta(seconds=30), name, "/srv/restic", "local", "0.16.4",
                         (snap,), (group,), last_check=check)  # fmt: skip

    readings: list[tuple[Key, Reading]] = [
        *hosts,
        (("containers", "local"), containers),
        (("vpn", "wg0@hub"), wg0),
        (("backup", "main"), repo("main", 3)),
        (("backup", "offsite"), repo("offsite", 20)),
        (("cert", "web.lab"), demo_cert("web.lab", "tls web.lab:443", days=60)),
        (("cert", "mail.lab"), demo_cert("mail.lab", "tls mail.lab:25", days=40)),
    ]
    return config, readings


async def test_first_frame_says_what_it_waits_for_never_ok() -> None:
    waiting: list[Key] = [("host", "nas"), ("containers", "local"), ("cert", "web"), ("vpn", "wg0")]
    ctx = make_context(
        expect=waiting,
        readings=[(("host", "local"), host_state("local")), (("host", "pi"), host_state("pi"))],
    )
    app = HlconApp(ctx)
    async with app.run_test(size=SIZE):
        summary, glance, empty, findings = overview_text(app)
        assert findings == []
        assert "waiting for 4 of 6 sources" in summary.lower(), summary
        assert not summary.startswith("OK"), summary
        assert "Nothing needs attention" not in empty and "waiting for 4 of 6" in empty, empty
        assert "2/3 up, 1 waiting" in glance, glance
        header = str(app.pane(1).query_one("#pane-header").render())
        assert "4 waiting for first reading" in header, header


async def test_a_healthy_lab_shows_what_is_watched_at_80x24() -> None:
    config, readings = healthy_lab()
    app = HlconApp(make_context(config=config, readings=readings))
    async with app.run_test(size=SIZE):
        summary, glance, _, findings = overview_text(app)
        assert findings == [] and summary.startswith("OK"), (summary, findings)
        lines = glance.splitlines()
        assert [line.split()[:2] for line in lines] == [
            ["2", "Hosts"], ["3", "Containers"], ["4", "VPN"], ["5", "Backups"], ["6", "Certs"]
        ]  # fmt: skip
        hosts, containers, vpn, backups, certs = lines
        assert "3/3 up" in hosts and "top CPU nas 71%" in hosts and "nas:/srv 82%" in hosts
        assert "2/3 running" in containers and "0 unhealthy" in containers
        assert "0 restarting" in containers
        assert "1/1 peers online" in vpn and "0 stale" in vpn
        assert "main 3h" in backups and "offsite 20h" in backups
        assert "soonest mail.lab expires in 40 days" in certs
        # one terminal line each at 80 columns, the findings table below them
        pane = app.pane(1)
        assert pane.query_one("#glance").size.height == 5
        assert max(len(line) for line in lines) <= SIZE[0]
        assert pane.query_one("#table").region.y > pane.query_one("#glance").region.bottom - 1


async def test_a_faulted_endpoint_keeps_its_findings_as_last_known() -> None:
    ill = ContainerEndpointState(
        at=NOW - timedelta(minutes=3), endpoint="local", engine="podman 4.3.1", api_version="1.41",
        containers=(container("db", "postgres", "running", health="unhealthy"),
                    container("web", "nginx", "running")),
    )  # fmt: skip
    ctx = make_context(
        readings=[(("host", "local"), host_state("local")), (("containers", "local"), ill)],
        faults=[
            (("containers", "local"), fault("docker endpoint failed", "containers:local", "EOF"))
        ],
    )
    app = HlconApp(ctx)
    async with app.run_test(size=SIZE):
        _, glance, _, findings = overview_text(app)
        assert len(findings) == 2, findings
        assert findings[0].startswith("docker endpoint failed: EOF; last good reading 3m ago")
        assert findings[1].startswith("last known 3m ago: container db@local is unhealthy")
        pane = app.pane(1)
        assert isinstance(pane, TablePane)
        assert pane.filtered_rows()[1].data.last_known == ill.at
        assert "1 faulted" in glance


async def test_the_fault_banner_the_finding_and_the_row_give_one_age() -> None:
    app = HlconApp(demo_context())  # pi: read 6 min ago, failing for 4
    async with app.run_test(size=SIZE) as pilot:
        _, _, _, findings = overview_text(app)
        pi = next(m for m in findings if m.startswith("host unreachable"))
        await pilot.press("2")
        hosts = app.pane(2)
        assert isinstance(hosts, TablePane)
        header = str(hosts.query_one("#pane-header").render())
        banner = header.split("⚠", 1)[1]
        row = next(r for r in hosts.filtered_rows() if r.id == "pi")
        row_age = re.findall(r"\((\d+[smhd])\)", cell_text(row.cells[0]))
        ages = {
            "banner": re.findall(r"\b\d+[smhd]\b", banner),
            "finding": re.findall(r"\b\d+[smhd]\b", pi),
            "row": row_age,
        }
        assert ages == {"banner": ["6m"], "finding": ["6m"], "row": ["6m"]}, (ages, banner, pi)


async def test_the_updated_age_is_the_freshest_reading_not_a_faulted_host() -> None:
    stale = host_state("nas", ago=timedelta(seconds=150))
    ctx = make_context(
        readings=[(("host", "local"), host_state("local")), (("host", "nas"), stale)],
        faults=[
            (("host", "nas"), fault("host unreachable", "host:nas", "connection refused",
                                    since=timedelta(seconds=140)))
        ],
    )  # fmt: skip
    # the failed poll was 90 s ago: the host is backing off
    nas = ctx.store.get(("host", "nas"))
    assert nas is not None and nas.fault is not None
    nas.fault = replace(nas.fault, at=NOW - timedelta(seconds=90))
    app = HlconApp(ctx, initial_pane=2)
    async with app.run_test(size=SIZE):
        header = str(app.pane(2).query_one("#pane-header").render())
        assert header.splitlines()[0].endswith("updated <5s ago"), header
        assert "last good reading 2m ago" in header, header


async def test_the_audit_pane_shows_an_age(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", clock=lambda: NOW - timedelta(minutes=7))
    log.append("cancelled", who=Who.current(), action="container.restart",
               target="container:web@local", reason="cancelled by user")  # fmt: skip
    app = HlconApp(make_context(audit=log), initial_pane=7)
    async with app.run_test(size=SIZE):
        header = str(app.pane(7).query_one("#pane-header").render())
        assert "last record 7m ago" in header, header


async def test_ages_move_together_between_polls() -> None:
    """A host backing off is not polled for minutes: its row and finding still age with the
    header, on the once-a-second tick."""
    moment = [NOW]
    ctx = demo_context()
    ctx.clock = lambda: moment[0]
    app = HlconApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        moment[0] = NOW + timedelta(minutes=3)  # no poll in between: the store is unchanged
        app.pane(1).tick()
        await pilot.pause()
        _, _, _, findings = overview_text(app)
        assert any("last good reading 9m ago" in m for m in findings), findings
        await pilot.press("2")
        hosts = app.pane(2)
        assert isinstance(hosts, TablePane)
        hosts.tick()
        await pilot.pause()
        row = next(r for r in hosts.filtered_rows() if r.id == "pi")
        assert "(9m)" in cell_text(row.cells[0])
        assert "last good reading 9m ago" in str(hosts.query_one("#pane-header").render())
