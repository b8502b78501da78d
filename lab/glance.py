"""Each domain's one line on the overview (its `Domain.summary`): what a healthy lab looks like,
read from the store's entries. Pure: entries, config and now in, the line's parts out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lab.config import Config
from lab.health import ago
from lab.model import Cert, ContainerEndpointState, HostState, RepoState, WgInterface
from lab.store import Entry


def fresh(entries: list[Entry], kind: type) -> list[Any]:
    """The readings of entries read fine in their latest poll (a faulted one's is old)."""
    return [e.reading for e in entries if e.fault is None and isinstance(e.reading, kind)]


def hosts_line(entries: list[Entry], config: Config, now: datetime) -> list[str]:
    states: list[HostState] = fresh(entries, HostState)
    parts = [f"{len(states)}/{len(entries)} up"]
    busy = [s for s in states if s.cpu_percent is not None]
    if busy:
        top = max(busy, key=lambda s: s.cpu_percent or 0.0)
        parts.append(f"top CPU {top.host} {top.cpu_percent:.0f}%")
    disks = [
        (fs.percent, s.host, fs.mount)
        for s in states
        for fs in s.filesystems
        if not any(fs.mount.startswith(p) for p in config.health.ignore_mounts)
    ]
    if disks:
        pct, host, mount = max(disks)
        parts.append(f"fullest {host}:{mount} {pct:.0f}%")
    return parts


def containers_line(entries: list[Entry], config: Config, now: datetime) -> list[str]:
    states: list[ContainerEndpointState] = fresh(entries, ContainerEndpointState)
    every = [c for s in states for c in s.containers]
    running = sum(1 for c in every if c.state == "running")
    unhealthy = sum(1 for c in every if c.health == "unhealthy")
    restarting = sum(1 for c in every if c.state == "restarting")
    return [f"{running}/{len(every)} running", f"{unhealthy} unhealthy", f"{restarting} restarting"]


def vpn_line(entries: list[Entry], config: Config, now: datetime) -> list[str]:
    states: list[WgInterface] = fresh(entries, WgInterface)
    peers = [p for s in states for p in s.peers if not p.disabled]
    online = sum(1 for p in peers if p.online)
    down = sum(1 for s in states if not s.up)
    parts = [f"{online}/{len(peers)} peers online", f"{len(peers) - online} stale"]
    return parts + ([f"{down} interface{'' if down == 1 else 's'} down"] if down else [])


def backups_line(entries: list[Entry], config: Config, now: datetime) -> list[str]:
    parts = []
    for state in sorted(fresh(entries, RepoState), key=lambda r: r.name):
        newest = state.newest
        parts.append(f"{state.name} {ago(now, newest.time) if newest else 'no snapshots'}")
    return [f"newest {parts[0]}", *parts[1:]] if parts else []


def certs_line(entries: list[Entry], config: Config, now: datetime) -> list[str]:
    certs: list[Cert] = fresh(entries, Cert)
    if not certs:
        return []
    soonest = min(certs, key=lambda c: c.not_after)
    if soonest.not_after <= now:
        when = f"expired {ago(now, soonest.not_after)} ago"
    else:
        when = f"expires in {soonest.days_left_at(now)} days"
    return [f"{len(certs)} read", f"soonest {soonest.name} {when} ({soonest.not_after:%Y-%m-%d})"]
