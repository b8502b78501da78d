"""Pure rules: state → findings. No I/O; tests feed them readings.

Each domain's descriptor (lab.domains) names its rule function here: (reading, config, key, now)
→ findings. A faulted entry becomes a finding by `fault_finding` whatever its domain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from lab import domains
from lab.config import Config
from lab.domains import Rule
from lab.model import (
    Cert,
    ContainerEndpointState,
    Finding,
    HostState,
    Key,
    Severity,
    WgInterface,
    utcnow,
)
from lab.store import Entry, Store
from lab.units import age as compact_age


def rule_for(key: Key) -> Rule | None:
    """The health rule of the domain whose store entries `key` names (none: faults only)."""
    domain = domains.by_key(key[0])
    return None if domain is None else domain.rule()


AGE_STEP = 5  # seconds: fault and last-known ages move in the steps the pane headers use


def fault_age(entry: Entry, now: datetime) -> str:
    """The one age a faulted entry is shown with, by the pane header, the overview's finding and
    `hlcon status` alike: how old the last good reading is (what the panes' rows still show),
    or how long it has failed when it was never read."""
    f = entry.fault
    if entry.last_ok is not None:
        return (
            f"last good reading {ago(now, entry.last_ok, step=AGE_STEP)} ago "
            f"({entry.last_ok:%H:%M:%S})"
        )
    since = f"failing since {f.since:%H:%M:%S} ({ago(now, f.since, step=AGE_STEP)})" if f else ""
    return f"{since}, no good reading yet" if since else "no good reading yet"


def fault_finding(entry: Entry, now: datetime) -> Finding | None:
    if entry.fault is None:
        return None
    f = entry.fault
    severity = Severity.CRITICAL if entry.key[0] == "host" else Severity.UNKNOWN
    return Finding(
        severity, entry.key, f.where, f"{f.what}: {f.why}; {fault_age(entry, now)}", rule="fault"
    )


def last_known_findings(entry: Entry, config: Config, now: datetime) -> list[Finding]:
    """A faulted entry's findings on its last good reading: they are not known to be fixed, so
    they stay on screen, marked as last known with that reading's age, beside the fault."""
    rule_fn = rule_for(entry.key)
    reading = entry.reading
    if reading is None or rule_fn is None:
        return []
    age = ago(now, reading.at, step=AGE_STEP)
    return [
        replace(f, message=f"last known {age} ago: {f.message}", last_known=reading.at)
        for f in rule_fn(reading, config, entry.key, now)
    ]


def evaluate(store: Store, config: Config, now: datetime | None = None) -> list[Finding]:
    """Every finding, worst first (then by domain and subject, for a stable order). A faulted
    entry's fault comes first in its group, its last-known findings right after it."""
    now = now or utcnow()
    ranked: list[tuple[tuple[int, Key, int, str], Finding]] = []
    for entry in store:
        fault = fault_finding(entry, now)
        if fault is not None:
            group = [fault, *last_known_findings(entry, config, now)]
            rank = -worst(group)
            ranked.extend(((rank, entry.key, i, f.subject), f) for i, f in enumerate(group))
            continue
        rule_fn = rule_for(entry.key)
        if entry.reading is not None and rule_fn is not None:
            ranked.extend(
                ((-f.severity, f.key, 1, f.subject), f)
                for f in rule_fn(entry.reading, config, entry.key, now)
            )
    return [f for _, f in sorted(ranked, key=lambda pair: pair[0])]


def worst(findings: Iterable[Finding]) -> Severity:
    return max((f.severity for f in findings), default=Severity.OK)


def ago(now: datetime, then: datetime, *, step: int = 1) -> str:
    """A compact age, the same everywhere hlcon shows one: 4s, 3m, 5h, 2d. With `step`,
    seconds go in steps of that many ("<5s", "5s", "10s" …) so a text redrawn every second
    changes only every `step` seconds."""
    return compact_age((now - then).total_seconds(), step=step)


# ---------------------------------------------------------------- hosts


def host_findings(state: HostState, config: Config, key: Key, now: datetime) -> list[Finding]:
    h = config.health
    out: list[Finding] = []
    for fs in state.filesystems:
        if any(fs.mount.startswith(p) for p in h.ignore_mounts):
            continue
        pct = fs.percent
        if pct >= h.disk_critical:
            sev, limit = Severity.CRITICAL, h.disk_critical
        elif pct >= h.disk_warn:
            sev, limit = Severity.WARNING, h.disk_warn
        else:
            continue
        out.append(
            Finding(
                sev,
                key,
                fs.mount,
                f"disk {pct:.0f}% full on {state.host}:{fs.mount} ({sev.label} at {limit:.0f}%)",
                row=f"fs:{fs.mount}",
                rule="disk",
            )
        )
    mem = state.mem_percent
    if mem >= h.memory_critical or mem >= h.memory_warn:
        sev = Severity.CRITICAL if mem >= h.memory_critical else Severity.WARNING
        limit = h.memory_critical if sev is Severity.CRITICAL else h.memory_warn
        out.append(
            Finding(
                sev,
                key,
                "memory",
                f"memory {mem:.0f}% used on {state.host} ({sev.label} at {limit:.0f}%)",
                rule="memory",
            )
        )
    if state.swap_total and state.swap_percent >= h.swap_warn:
        out.append(
            Finding(
                Severity.WARNING,
                key,
                "swap",
                f"swap {state.swap_percent:.0f}% used on {state.host} "
                f"(warning at {h.swap_warn:.0f}%)",
                rule="swap",
            )
        )
    if state.cpus and state.load[0] / state.cpus >= h.load_warn:
        out.append(
            Finding(
                Severity.WARNING,
                key,
                "load",
                f"load {state.load[0]:.2f} on {state.cpus} CPUs on {state.host} "
                f"(warning at {h.load_warn:g} per CPU)",
                rule="load",
            )
        )
    out.extend(_unit_findings(state, h.fail2ban_bans_warn, key))
    return out


def _unit_findings(state: HostState, bans_warn: int, key: Key) -> list[Finding]:
    """systemd and fail2ban: failed units, configured services not active, bans."""
    out: list[Finding] = []
    for unit in state.failed_units:
        out.append(
            Finding(
                Severity.WARNING,
                key,
                unit,
                f"unit {unit} failed on {state.host}",
                row=f"unit:{unit}",
                rule="failed-unit",
            )
        )
    for svc in state.services:
        if svc.active == "active" or svc.name in state.failed_units:
            continue  # a failed one is reported above already
        sev = Severity.WARNING if svc.active == "not-found" else Severity.CRITICAL
        what = "not installed" if svc.active == "not-found" else f"{svc.active} ({svc.sub})"
        out.append(
            Finding(
                sev,
                key,
                svc.name,
                f"service {svc.name} on {state.host} is {what}",
                row=f"unit:{svc.name}",
                rule="service-inactive",
            )
        )
    for jail in state.fail2ban or ():
        if jail.banned >= bans_warn:
            out.append(
                Finding(
                    Severity.WARNING,
                    key,
                    f"fail2ban {jail.name}",
                    f"fail2ban jail {jail.name} on {state.host} bans {jail.banned} addresses "
                    f"(warning at {bans_warn})",
                    row=f"jail:{jail.name}",
                    rule="fail2ban",
                )
            )
    return out


# ---------------------------------------------------------------- containers

UNHEALTHY_GRACE = timedelta(minutes=5)  # unhealthy this soon after a start: still settling
STOP_EXIT_CODES = (0, 130, 143)  # clean, SIGINT, SIGTERM: how a deliberate stop ends


def container_findings(
    state: ContainerEndpointState, config: Config, key: Key, now: datetime
) -> list[Finding]:
    out: list[Finding] = []
    loop_at = config.health.restart_loop
    for c in state.containers:
        where = f"{c.name}@{state.endpoint}"
        row = f"container:{c.name}@{state.endpoint}"  # the containers pane's row id
        if c.state == "restarting" or c.restart_count >= loop_at:
            out.append(
                Finding(
                    Severity.CRITICAL,
                    key,
                    c.name,
                    f"container {where} in a restart loop ({c.restart_count} restarts, "
                    f"{c.state}; critical at {loop_at})",
                    row=row,
                    rule="container-restart-loop",
                )
            )
        if c.health == "unhealthy":
            settled = c.started_at is None or now - c.started_at >= UNHEALTHY_GRACE
            out.append(
                Finding(
                    Severity.CRITICAL if settled else Severity.WARNING,
                    key,
                    c.name,
                    f"container {where} is unhealthy (its healthcheck fails)"
                    + ("" if settled else "; started under 5 minutes ago"),
                    row=row,
                    rule="container-unhealthy",
                )
            )
        if c.state in ("exited", "dead") and c.exit_code not in (None, *STOP_EXIT_CODES):
            out.append(
                Finding(
                    Severity.WARNING,
                    key,
                    c.name,
                    f"container {where} exited with code {c.exit_code}",
                    row=row,
                    rule="container-exited",
                )
            )
    return out


# ---------------------------------------------------------------- vpn


def vpn_findings(state: WgInterface, config: Config, key: Key, now: datetime) -> list[Finding]:
    """An interface down is critical. Every enabled peer that never completed a handshake, or
    whose last one is older than stale_after, is a warning — unless listed in expected_offline
    (a roaming phone). An always_on peer is critical when it never shook hands or is 10× past
    stale_after."""
    cfg = next(
        (v for v in config.vpn if f"{v.interface}@{v.host}" == key[1]),
        None,
    )
    where = f"{state.name}@{state.host}"
    if not state.up:
        return [
            Finding(
                Severity.CRITICAL,
                key,
                state.name,
                f"WireGuard interface {where} is down",
                rule="vpn-down",
            )
        ]
    out: list[Finding] = []
    always_on = set(cfg.always_on) if cfg else set()
    expected_offline = set(cfg.expected_offline) if cfg else set()
    stale_after = cfg.stale_after if cfg else state.stale_after
    for peer in state.peers:
        if peer.disabled or {peer.name, peer.public_key} & expected_offline:
            continue
        must = bool({peer.name, peer.public_key} & always_on)
        if peer.latest_handshake is None:
            sev = Severity.CRITICAL if must else Severity.WARNING
            text = "never completed a handshake"
        else:
            age = (now - peer.latest_handshake).total_seconds()
            if age <= stale_after:
                continue
            sev = Severity.CRITICAL if must and age > 10 * stale_after else Severity.WARNING
            text = f"last handshake {ago(now, peer.latest_handshake)} ago"
        kind = "always-on peer" if must else "peer"
        out.append(
            Finding(
                sev,
                key,
                f"{state.name} peer {peer.name}",
                f"{kind} {peer.name} on {where}: {text} "
                f"(stale after {ago(now, now - timedelta(seconds=stale_after))})",
                row=f"{where}/{peer.public_key}",
                rule="vpn-stale-peer",
            )
        )
    return out


# ---------------------------------------------------------------- backups


def backup_findings(state: Any, config: Config, key: Key, now: datetime) -> list[Finding]:
    """No snapshot within max_age; last check failed or too old (or never run); stale lock."""
    from lab.model import RepoState

    if not isinstance(state, RepoState):
        return []
    cfg = next((b for b in config.backups if b.name == state.name), None)
    if cfg is None:
        return []
    out: list[Finding] = []
    newest = state.newest
    if newest is None:
        out.append(
            Finding(
                Severity.CRITICAL,
                key,
                state.name,
                f"repo {state.name}: no snapshots",
                row=f"repo:{state.name}",
                rule="backup-age",
            )
        )
    limit = timedelta(seconds=cfg.max_age)
    for group in state.groups:
        age = (now - group.newest.time).total_seconds()
        if age > cfg.max_age:
            paths = ", ".join(group.paths)
            out.append(
                Finding(
                    Severity.CRITICAL,
                    key,
                    f"{group.host}:{paths}",
                    f"repo {state.name}: newest snapshot of {group.host}:{paths} is "
                    f"{ago(now, group.newest.time)} old (max_age {ago(now, now - limit)})",
                    row=f"repo:{state.name}|{group.host}:{','.join(group.paths)}",  # pane row
                    rule="backup-age",
                )
            )
    check = state.last_check
    if check is None:  # hlcon has never run `check` here (restic keeps no record of it)
        out.append(
            Finding(
                Severity.WARNING,
                key,
                "check",
                f"repo {state.name}: never checked by hlcon",
                row=f"repo:{state.name}",
                rule="backup-check",
            )
        )
    elif not check.ok:
        out.append(
            Finding(
                Severity.CRITICAL,
                key,
                "check",
                f"repo {state.name}: last check failed {ago(now, check.at)} ago: {check.message}",
                row=f"repo:{state.name}",
                rule="backup-check",
            )
        )
    elif (now - check.at).total_seconds() > cfg.check_max_age:
        out.append(
            Finding(
                Severity.WARNING,
                key,
                "check",
                f"repo {state.name}: last check {ago(now, check.at)} ago "
                f"(older than check_max_age)",
                row=f"repo:{state.name}",
                rule="backup-check",
            )
        )
    for lock in state.locks:
        if lock.stale:
            why = "its process is gone" if lock.process_gone else f"{ago(now, lock.time)} old"
            out.append(
                Finding(
                    Severity.WARNING,
                    key,
                    f"lock {lock.id[:8]}",
                    f"repo {state.name}: stale lock by PID {lock.pid} on {lock.hostname} ({why}); "
                    f"unlock it from the backups pane",
                    row=f"repo:{state.name}",
                    rule="backup-lock",
                )
            )
    return out


# ---------------------------------------------------------------- certs


def cert_findings(cert: Cert, config: Config, key: Key, now: datetime) -> list[Finding]:
    """Expired, inside the critical or warn window (per [[certs]] entry), untrusted, and the
    checked hostname missing from the SANs. Days are counted from `now`, not the reading."""
    cfg = next((c for c in config.certs if c.name == cert.name), None)
    warn_days = cfg.warn_days if cfg is not None else 21
    critical_days = cfg.critical_days if cfg is not None else 7
    out: list[Finding] = []
    days = cert.days_left_at(now)
    end = cert.not_after.strftime("%Y-%m-%d %H:%M UTC")
    row = f"cert:{cert.name}"
    if cert.not_after <= now:
        out.append(
            Finding(
                Severity.CRITICAL,
                key,
                cert.name,
                f"certificate {cert.name} expired {ago(now, cert.not_after)} ago ({end})",
                row=row,
                rule="cert-expired",
            )
        )
    elif days <= critical_days:
        out.append(
            Finding(
                Severity.CRITICAL,
                key,
                cert.name,
                f"certificate {cert.name} expires in {days} days ({end}; critical at "
                f"{critical_days})",
                row=row,
                rule="cert-critical",
            )
        )
    elif days <= warn_days:
        out.append(
            Finding(
                Severity.WARNING,
                key,
                cert.name,
                f"certificate {cert.name} expires in {days} days ({end}; warning at {warn_days})",
                row=row,
                rule="cert-warn",
            )
        )
    # An expired chain fails verification too: that is said above already.
    if cert.trusted is False and cert.not_after > now:
        why = "self-signed" if cert.self_signed else (cert.trust_error or "chain does not verify")
        out.append(
            Finding(
                Severity.WARNING,
                key,
                cert.name,
                f"certificate {cert.name} is not trusted: {why}",
                row=row,
                rule="cert-untrusted",
            )
        )
    if cert.hostname_matches is False:
        names = ", ".join(cert.sans) or "no subjectAltName"
        out.append(
            Finding(
                Severity.CRITICAL,
                key,
                cert.name,
                f"certificate {cert.name} does not cover {cert.hostname} (it names {names})",
                row=row,
                rule="cert-hostname",
            )
        )
    return out
