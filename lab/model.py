"""Readings: frozen, time-stamped values a reader returns, plus Fault and Finding.

Every reading carries `at` (UTC). A reader never raises into the UI: the poller turns an
exception into a `Fault` (what, where, since when, why) and keeps the last good reading.

Domain sections below are kept apart by headers; add a domain's readings in its own section.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Protocol, runtime_checkable

# Ages and sizes as hlcon shows them (lab.units); compact_* are the names the readings' summaries
# and lab.health have always used.
from lab.units import age as compact_age
from lab.units import duration, size


def utcnow() -> datetime:
    return datetime.now(UTC)


class Severity(IntEnum):
    """Ordered worst-last, so max() finds the worst. Exit codes follow Nagios."""

    OK = 0
    INFO = 1
    WARNING = 2
    UNKNOWN = 3
    CRITICAL = 4

    @property
    def exit_code(self) -> int:
        return {
            Severity.OK: 0,
            Severity.INFO: 0,
            Severity.WARNING: 1,
            Severity.CRITICAL: 2,
            Severity.UNKNOWN: 3,
        }[self]

    @property
    def label(self) -> str:
        return self.name.lower()


compact_bytes = size  # the sizes of every summary: lab.units' one IEC formatter

Key = tuple[str, str]
"""(domain, target): ("host", "local"), ("containers", "local"), ("cert", "fufu.land") …"""


@runtime_checkable
class Reading(Protocol):
    @property
    def at(self) -> datetime: ...

    def summary(self) -> str:
        """One line for plain `hlcon status`, from the reading alone (ages as of `at`)."""
        ...


@runtime_checkable
class HasMetrics(Protocol):
    """Readings that feed sparklines expose numbers by name; the store keeps their history."""

    def metrics(self) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class Fault:
    """A reader that could not read. `since` is when the failures began; `at` the latest."""

    what: str  # "host unreachable", "docker endpoint failed" …
    where: str  # "host:fufuwuqi", "containers:local" …
    since: datetime
    why: str  # one line, for a human; never holds a secret
    at: datetime

    def again(self, at: datetime, why: str) -> Fault:
        return Fault(self.what, self.where, self.since, why, at)


@dataclass(frozen=True)
class Finding:
    """Something that needs attention, made by a pure rule in lab.health."""

    severity: Severity
    key: Key  # the store entry it is about
    subject: str  # what exactly: "/var", "jellyfin", "wg0 peer phone"
    message: str  # "disk 93 % full (warn at 90 %)"
    row: str | None = None  # the row id in that domain's table, for Enter-to-jump
    rule: str = ""
    last_known: datetime | None = None  # set: judged on the reading of then (source faulted)

    @property
    def pane(self) -> str:
        return self.key[0]


# ---------------------------------------------------------------- hosts


@dataclass(frozen=True)
class Filesystem:
    mount: str
    device: str
    fstype: str
    size: int  # bytes
    used: int
    available: int

    @property
    def percent(self) -> float:
        # df's "Use%": used / (used + available), the root-reserved blocks excluded
        denominator = self.used + self.available
        return 100.0 * self.used / denominator if denominator else 0.0


@dataclass(frozen=True)
class Unit:
    """A systemd unit's state as `systemctl show` reports it."""

    name: str
    active: str  # active, inactive, failed, activating …
    sub: str  # running, dead, exited …
    since: datetime | None = None
    main_pid: int | None = None
    description: str = ""


@dataclass(frozen=True)
class Fail2banJail:
    name: str
    banned: int
    total_banned: int = 0


@dataclass(frozen=True)
class HostState:
    at: datetime
    host: str
    hostname: str
    kernel: str
    uptime: float  # seconds
    load: tuple[float, float, float]
    cpus: int
    cpu_percent: float | None  # None until two samples exist
    mem_total: int  # bytes
    mem_available: int
    swap_total: int
    swap_free: int
    filesystems: tuple[Filesystem, ...] = ()
    systemd: bool | None = None  # None: not asked (local default); False: no systemd on host
    services: tuple[Unit, ...] = ()  # the configured services
    failed_units: tuple[str, ...] = ()
    fail2ban: tuple[Fail2banJail, ...] | None = None  # None: fail2ban not present

    @property
    def mem_used(self) -> int:
        return self.mem_total - self.mem_available

    @property
    def mem_percent(self) -> float:
        return 100.0 * self.mem_used / self.mem_total if self.mem_total else 0.0

    @property
    def swap_used(self) -> int:
        return self.swap_total - self.swap_free

    @property
    def swap_percent(self) -> float:
        return 100.0 * self.swap_used / self.swap_total if self.swap_total else 0.0

    def metrics(self) -> Mapping[str, float]:
        out = {"mem": self.mem_percent, "load1": self.load[0]}
        if self.cpu_percent is not None:
            out["cpu"] = self.cpu_percent
        return out

    def summary(self) -> str:
        cpu = f"cpu {self.cpu_percent:.0f}%" if self.cpu_percent is not None else "cpu ?"
        disks = ", ".join(f"{fs.mount} {fs.percent:.0f}%" for fs in self.filesystems[:4])
        load = " ".join(f"{v:.2f}" for v in self.load)
        return (
            f"{self.hostname}: {cpu}, mem {self.mem_percent:.0f}% of "
            f"{compact_bytes(self.mem_total)}, load {load}, up {duration(self.uptime)}"
            + (f", disks {disks}" if disks else "")
        )


# ---------------------------------------------------------------- containers


@dataclass(frozen=True)
class PortMapping:
    container_port: str  # "80/tcp"
    host_ip: str
    host_port: str

    def __str__(self) -> str:
        host = f"{self.host_ip}:" if self.host_ip not in ("", "0.0.0.0") else ""  # noqa: S104
        return f"{host}{self.host_port}->{self.container_port}"


@dataclass(frozen=True)
class Container:
    id: str  # full id
    name: str
    image: str
    state: str  # running, exited, restarting, paused, created, dead
    status: str  # the engine's human status, "Up 3 minutes (healthy)"
    health: str | None  # healthy, unhealthy, starting; None without a healthcheck
    restart_count: int
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    ports: tuple[PortMapping, ...] = ()
    cpu_percent: float | None = None
    mem_usage: int | None = None  # bytes
    mem_limit: int | None = None
    restart_policy: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id[:12]


@dataclass(frozen=True)
class ContainerEndpointState:
    """Everything one Docker/Podman endpoint holds, read in one pass."""

    at: datetime
    endpoint: str  # the endpoint's name: "local", a host name, or a configured name
    engine: str  # "podman 4.3.1", "docker 24.0.7"
    api_version: str
    containers: tuple[Container, ...] = ()

    def summary(self) -> str:
        running = sum(1 for c in self.containers if c.state == "running")
        unhealthy = sum(1 for c in self.containers if c.health == "unhealthy")
        restarting = sum(1 for c in self.containers if c.state == "restarting")
        extra = "".join(
            f", {n} {label}"
            for n, label in ((unhealthy, "unhealthy"), (restarting, "restarting"))
            if n
        )
        return f"{self.engine}: {len(self.containers)} containers, {running} running{extra}"


# ---------------------------------------------------------------- vpn


@dataclass(frozen=True)
class WgPeer:
    """One WireGuard peer as the interface reports it (never a private or preshared key)."""

    public_key: str
    name: str  # from config peer_names, a `# name` comment in the conf, else the short key
    endpoint: str | None  # "203.0.113.5:51820"; None until the peer has been seen
    allowed_ips: tuple[str, ...]
    latest_handshake: datetime | None  # None: never shook hands
    rx_bytes: int
    tx_bytes: int
    keepalive: int | None = None  # persistent keepalive seconds
    has_psk: bool = False
    age: float | None = None  # seconds since the handshake, at the reading's time
    rx_rate: float | None = None  # bytes/s since the previous reading; None on the first
    tx_rate: float | None = None
    online: bool = False  # handshake within stale_after
    disabled: bool = False  # in the conf (commented out by peer-disable) but not live

    @property
    def short_key(self) -> str:
        return self.public_key[:8] + "…"

    @property
    def stale(self) -> bool:
        return not self.online and not self.disabled


@dataclass(frozen=True)
class WgInterface:
    """A WireGuard interface on one host; key ("vpn", "IFACE@HOST")."""

    at: datetime
    name: str
    host: str
    public_key: str | None
    listen_port: int | None
    up: bool
    source: str  # "uapi", "wg", "netlink": where the reading came from
    addresses: tuple[str, ...] = ()
    mtu: int | None = None
    peers: tuple[WgPeer, ...] = ()
    stale_after: float = 180.0

    @property
    def online_count(self) -> int:
        return sum(1 for p in self.peers if p.online)

    def summary(self) -> str:
        if not self.up:
            return f"{self.name}@{self.host}: down"
        live = [p for p in self.peers if not p.disabled]
        port = f", port {self.listen_port}" if self.listen_port else ""
        addresses = f" {', '.join(self.addresses)}" if self.addresses else ""
        disabled = len(self.peers) - len(live)
        return (
            f"{self.name}@{self.host}{addresses}: up{port}, {len(live)} peers, "
            f"{self.online_count} online, {sum(1 for p in live if p.stale)} stale"
            + (f", {disabled} disabled" if disabled else "")
            + f" ({self.source})"
        )

    def metrics(self) -> Mapping[str, float]:
        return {
            "online": float(self.online_count),
            "rx": float(sum(p.rx_bytes for p in self.peers)),
            "tx": float(sum(p.tx_bytes for p in self.peers)),
        }


# ---------------------------------------------------------------- backups


@dataclass(frozen=True)
class Snapshot:
    """One restic snapshot. `size` is known from restic ≥ 0.17's summary, else None."""

    id: str
    short_id: str
    time: datetime
    host: str
    paths: tuple[str, ...]
    tags: tuple[str, ...] = ()
    username: str = ""
    size: int | None = None  # bytes processed by the backup that made it


@dataclass(frozen=True)
class SnapshotGroup:
    """The newest snapshot of one (host, paths) set, and how old it is at reading time."""

    host: str
    paths: tuple[str, ...]
    newest: Snapshot
    count: int
    age: float  # seconds, at the reading's `at`


@dataclass(frozen=True)
class RepoStats:
    total_size: int  # bytes restorable (restic stats, restore-size mode)
    total_file_count: int
    snapshots_count: int


@dataclass(frozen=True)
class CheckRecord:
    """The last `restic check` that hlcon ran (restic keeps none: hlcon's state dir does)."""

    at: datetime
    ok: bool
    message: str


@dataclass(frozen=True)
class RepoLock:
    id: str
    time: datetime
    exclusive: bool
    hostname: str
    username: str
    pid: int
    process_gone: bool | None  # None: the locking host is not where restic runs, can't tell
    age: float  # seconds, at the reading's `at`

    @property
    def stale(self) -> bool:
        """restic's own rule: the process is gone, or the lock is older than 30 minutes."""
        return bool(self.process_gone) or self.age > 30 * 60


@dataclass(frozen=True)
class RepoState:
    at: datetime
    name: str
    repository: str  # the location as configured (never holds the password)
    host: str  # where restic ran
    restic_version: str
    snapshots: tuple[Snapshot, ...] = ()  # oldest first, as restic lists them
    groups: tuple[SnapshotGroup, ...] = ()
    stats: RepoStats | None = None
    last_check: CheckRecord | None = None
    locks: tuple[RepoLock, ...] = ()

    @property
    def newest(self) -> Snapshot | None:
        return max(self.snapshots, key=lambda s: s.time) if self.snapshots else None

    def summary(self) -> str:
        parts = [f"restic {self.restic_version}" if self.restic_version else "restic"]
        newest = self.newest
        if newest is None:
            parts.append("no snapshots")
        else:
            groups = len(self.groups)
            parts.append(
                f"{len(self.snapshots)} snapshots in {groups} group{'' if groups == 1 else 's'}"
                f", newest {compact_age((self.at - newest.time).total_seconds())} old"
            )
        if self.stats is not None:
            parts.append(compact_bytes(self.stats.total_size))
        check = self.last_check
        if check is None:
            parts.append("never checked by hlcon")
        else:
            age = compact_age((self.at - check.at).total_seconds())
            parts.append(f"check {'ok' if check.ok else 'FAILED'} {age} ago")
        stale = sum(1 for lock in self.locks if lock.stale)
        if stale:
            parts.append(f"{stale} stale lock{'' if stale == 1 else 's'}")
        return f"{self.name} ({self.repository}): " + ", ".join(parts)

    def metrics(self) -> Mapping[str, float]:
        out: dict[str, float] = {"snapshots": float(len(self.snapshots))}
        if self.stats is not None:
            out["size"] = float(self.stats.total_size)
        return out


# ---------------------------------------------------------------- certs


@dataclass(frozen=True)
class Cert:
    """One certificate as served by an endpoint or held in a PEM file (its leaf)."""

    at: datetime
    name: str  # the configured name (targets: cert:NAME)
    source: str  # "tls 127.0.0.1:8443", "smtp+starttls mail.lan:25", "file local:/etc/…/cert.pem"
    subject: str  # RFC 4514: "CN=fufu.land"
    sans: tuple[str, ...]  # "DNS:fufu.land", "IP:10.0.0.1"
    issuer: str
    serial: str  # lower-case hex, no separators
    not_before: datetime
    not_after: datetime
    days_left: int  # whole days from `at` to notAfter, truncated toward zero; < 0 once expired
    key_type: str  # "EC P-256", "RSA 2048", "Ed25519"
    fingerprint: str  # SHA-256 of the DER, hex
    self_signed: bool
    trusted: bool | None  # the chain verifies against the system store (+ ca_file); None: unknown
    trust_error: str = ""  # why not trusted, one line
    hostname: str | None = None  # the name checked against the SANs (SNI, endpoint host)
    hostname_matches: bool | None = None  # None: no name to check

    @property
    def expired(self) -> bool:
        return self.not_after <= self.at

    def days_left_at(self, now: datetime) -> int:
        return int((self.not_after - now).total_seconds() / 86400)

    def metrics(self) -> Mapping[str, float]:
        return {"days_left": float(self.days_left)}

    def summary(self) -> str:
        """One line for `hlcon status`."""
        left = (
            f"expired {-self.days_left} days ago" if self.expired else f"{self.days_left} days left"
        )
        trust = {True: "trusted", False: "untrusted", None: "trust unknown"}[self.trusted]
        if self.self_signed:
            trust = "self-signed"
        host = ", hostname NOT in SANs" if self.hostname_matches is False else ""
        return f"{self.source}: {left} ({self.not_after:%Y-%m-%d}), {trust}{host}, {self.issuer}"
