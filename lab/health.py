"""Pure rules: state → findings. No I/O; tests feed them readings.

Each domain registers one rule function in DOMAIN_RULES: (reading, config, key, now) → findings.
A faulted entry becomes a finding by `fault_finding` whatever its domain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from lab.config import Config
from lab.model import Finding, HostState, Key, Severity, utcnow
from lab.store import Entry, Store

Rule = Callable[[Any, Config, Key, datetime], Iterable[Finding]]
DOMAIN_RULES: dict[str, Rule] = {}


def rule(domain: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        DOMAIN_RULES[domain] = fn
        return fn

    return register


def fault_finding(entry: Entry, now: datetime) -> Finding | None:
    if entry.fault is None:
        return None
    f = entry.fault
    age = ""
    if entry.last_ok is not None:
        age = f"; last good reading {_ago(now, entry.last_ok)} ago"
    severity = Severity.CRITICAL if entry.key[0] == "host" else Severity.UNKNOWN
    return Finding(severity, entry.key, f.where, f"{f.what}: {f.why}{age}", rule="fault")


def evaluate(store: Store, config: Config, now: datetime | None = None) -> list[Finding]:
    """Every finding, worst first (then by domain and subject, for a stable order)."""
    now = now or utcnow()
    findings: list[Finding] = []
    for entry in store:
        fault = fault_finding(entry, now)
        if fault is not None:
            findings.append(fault)
            continue  # the last good reading is stale: judge it again when fresh
        rule_fn = DOMAIN_RULES.get(entry.key[0])
        if entry.reading is not None and rule_fn is not None:
            findings.extend(rule_fn(entry.reading, config, entry.key, now))
    return sorted(findings, key=lambda f: (-f.severity, f.key, f.subject))


def worst(findings: Iterable[Finding]) -> Severity:
    return max((f.severity for f in findings), default=Severity.OK)


def _ago(now: datetime, then: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


# ---------------------------------------------------------------- hosts


@rule("host")
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
    return out
