"""Prometheus metrics of `hlcon watch`: served over HTTP and written as a node_exporter textfile.

The collector reads a `Snapshot` the watch loop replaces after each pass (one reference
assignment), so a scrape on prometheus_client's server thread never walks the store while the
loop changes it, and costs nothing between scrapes. Every metric is labelled so a Grafana panel
can be built on it; the names are listed in README.md ("Metrics").
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lab.model import (
    Cert,
    ContainerEndpointState,
    Finding,
    RepoState,
    Severity,
    WgInterface,
)
from lab.store import Entry
from watch.channels import ChannelStatus

CONTAINER_STATES = ("running", "exited", "restarting", "paused", "created", "dead")


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    entries: tuple[Entry, ...] = ()
    findings: tuple[Finding, ...] = ()
    hosts: dict[tuple[str, str], str] = field(default_factory=dict)  # key → host name
    channels: tuple[ChannelStatus, ...] = ()
    maintenance: frozenset[str] = frozenset()
    passes: int = 0


class WatchCollector(Collector):
    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        if snap is None:
            return iter(())
        return iter(list(_metrics(snap)))


def _gauge(name: str, doc: str, labels: Sequence[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _metrics(snap: Snapshot) -> Iterable[Metric]:
    now = snap.at
    finding = _gauge(
        "hlcon_finding",
        "An open finding of hlcon's health rules (value: 1); severity in its label.",
        ("domain", "target", "host", "subject", "severity", "rule"),
    )
    counts = {s: 0 for s in (Severity.WARNING, Severity.UNKNOWN, Severity.CRITICAL)}
    for f in snap.findings:
        host = snap.hosts.get(f.key, "")
        finding.add_metric([f.key[0], f.key[1], host, f.subject, f.severity.label, f.rule], 1)
        if f.severity in counts:
            counts[f.severity] += 1
    yield finding
    by_severity = _gauge("hlcon_findings", "Open findings by severity.", ("severity",))
    for sev, n in counts.items():
        by_severity.add_metric([sev.label], n)
    yield by_severity

    age = _gauge(
        "hlcon_source_reading_age_seconds",
        "Age of the last good reading of each source (absent: never read).",
        ("domain", "target"),
    )
    faulted = _gauge(
        "hlcon_source_faulted", "1 while a source's latest poll failed.", ("domain", "target")
    )
    fault_for = _gauge(
        "hlcon_source_fault_seconds", "How long a faulted source has failed.", ("domain", "target")
    )
    backup_age = _gauge(
        "hlcon_backup_age_seconds",
        "Age of the newest snapshot per repository, host and paths.",
        ("repo", "host", "paths"),
    )
    backup_snaps = _gauge("hlcon_backup_snapshots", "Snapshots in a repository.", ("repo",))
    cert_expiry = _gauge(
        "hlcon_cert_expiry_seconds",
        "Seconds until a certificate's notAfter (negative: expired).",
        ("cert",),
    )
    cert_not_after = _gauge(
        "hlcon_cert_not_after_timestamp_seconds", "A certificate's notAfter, Unix time.", ("cert",)
    )
    peer_age = _gauge(
        "hlcon_wireguard_peer_handshake_age_seconds",
        "Age of a peer's latest handshake (absent: never).",
        ("interface", "host", "peer", "public_key"),
    )
    wg_up = _gauge(
        "hlcon_wireguard_interface_up", "1 if the interface is up.", ("interface", "host")
    )
    c_state = _gauge(
        "hlcon_container_state",
        "1 for a container's current state (one series per state).",
        ("endpoint", "container", "state"),
    )
    c_restarts = _gauge(
        "hlcon_container_restart_count",
        "A container's restart count as its engine reports it.",
        ("endpoint", "container"),
    )
    c_health = _gauge(
        "hlcon_container_healthy",
        "1 healthy, 0 unhealthy (absent: no healthcheck).",
        ("endpoint", "container"),
    )
    for entry in snap.entries:
        domain, target = entry.key
        if entry.reading is not None:
            age.add_metric([domain, target], max(0.0, (now - entry.reading.at).total_seconds()))
        faulted.add_metric([domain, target], 1 if entry.fault is not None else 0)
        if entry.fault is not None:
            fault_for.add_metric([domain, target], (now - entry.fault.since).total_seconds())
        r: Any = entry.reading
        if isinstance(r, RepoState):
            backup_snaps.add_metric([r.name], len(r.snapshots))
            for g in r.groups:
                backup_age.add_metric(
                    [r.name, g.host, ",".join(g.paths)], (now - g.newest.time).total_seconds()
                )
        elif isinstance(r, Cert):
            cert_expiry.add_metric([r.name], (r.not_after - now).total_seconds())
            cert_not_after.add_metric([r.name], r.not_after.timestamp())
        elif isinstance(r, WgInterface):
            wg_up.add_metric([r.name, r.host], 1 if r.up else 0)
            for p in r.peers:
                if p.latest_handshake is not None:
                    peer_age.add_metric(
                        [r.name, r.host, p.name, p.public_key],
                        (now - p.latest_handshake).total_seconds(),
                    )
        elif isinstance(r, ContainerEndpointState):
            for c in r.containers:
                for state in CONTAINER_STATES:
                    c_state.add_metric([r.endpoint, c.name, state], 1 if c.state == state else 0)
                c_restarts.add_metric([r.endpoint, c.name], c.restart_count)
                if c.health in ("healthy", "unhealthy"):
                    c_health.add_metric([r.endpoint, c.name], 1 if c.health == "healthy" else 0)
    yield from (age, faulted, fault_for, backup_age, backup_snaps, cert_expiry, cert_not_after)
    yield from (peer_age, wg_up, c_state, c_restarts, c_health)

    failing = _gauge(
        "hlcon_notify_channel_failing", "1 while a channel's deliveries fail.", ("channel", "kind")
    )
    delivered = _gauge(
        "hlcon_notify_delivered", "Notices delivered by a channel since start.", ("channel", "kind")
    )
    for ch in snap.channels:
        failing.add_metric([ch.name, ch.kind], 1 if ch.failing else 0)
        delivered.add_metric([ch.name, ch.kind], ch.delivered)
    yield failing
    yield delivered
    maint = _gauge("hlcon_host_maintenance", "1 for a host in maintenance mode.", ("host",))
    for host in sorted(snap.maintenance):
        maint.add_metric([host], 1)
    yield maint
    passes = _gauge("hlcon_watch_passes", "Passes of the watch loop since start.", ())
    passes.add_metric([], snap.passes)
    yield passes
    last = _gauge("hlcon_watch_last_pass_timestamp_seconds", "When the last pass ran.", ())
    last.add_metric([], snap.at.timestamp())
    yield last


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = WatchCollector()
        self.registry.register(self.collector)
        self._server: Any = None

    def update(self, snapshot: Snapshot) -> None:
        self.collector.snapshot = snapshot

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Serve /metrics on host:port (a thread of prometheus_client). Returns the bound
        address (port 0 picks a free one). Raises OSError if it cannot bind."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        bound = server.server_address
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def write_textfile(self, path: Path) -> None:
        """node_exporter's textfile collector format, replaced atomically (it reads *.prom)."""
        data = self.text()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
