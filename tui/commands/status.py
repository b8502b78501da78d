"""`hlcon status [--json]`: one collection pass, printed; exit code by the Nagios convention.

0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (a reader faulted, or nothing could be read), so cron or
an uptime monitor can call it. The JSON shape is documented in README.md ("hlcon status --json").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from lab import __version__
from lab.config import Config, ConfigError, load_config
from lab.health import evaluate, worst
from lab.jsonview import entry_to_json, finding_to_json
from lab.model import ContainerEndpointState, HostState, Severity, utcnow
from lab.poller import Poller
from lab.store import Entry, Store
from lab.wiring import Lab
from tui.format import ago, bytes_h, duration_h


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="one collection pass: state, faults, findings (Nagios exit)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


async def collect(config: Config) -> tuple[Store, Lab]:
    lab = Lab(config)
    store = Store()
    poller = Poller(store, lab.readers())
    try:
        await poller.poll_all()
    finally:
        await poller.stop()
        await lab.close()
    return store, lab


def summary(entry: Entry) -> str:
    r = entry.reading
    if r is None:
        return "no reading"
    if isinstance(r, HostState):
        cpu = f"cpu {r.cpu_percent:.0f}%" if r.cpu_percent is not None else "cpu ?"
        disks = ", ".join(f"{fs.mount} {fs.percent:.0f}%" for fs in r.filesystems[:4])
        return (
            f"{r.hostname}: {cpu}, mem {r.mem_percent:.0f}% of {bytes_h(r.mem_total)}, "
            f"load {r.load[0]:.2f} {r.load[1]:.2f} {r.load[2]:.2f}, up {duration_h(r.uptime)}"
            + (f", disks {disks}" if disks else "")
        )
    if isinstance(r, ContainerEndpointState):
        running = sum(1 for c in r.containers if c.state == "running")
        return f"{r.engine}: {len(r.containers)} containers, {running} running"
    custom = getattr(r, "summary", None)
    return str(custom()) if callable(custom) else type(r).__name__


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return Severity.UNKNOWN.exit_code
    store, _ = asyncio.run(collect(config))
    now = utcnow()
    findings = evaluate(store, config, now)
    status = worst(findings)
    if len(store) == 0:
        status = Severity.UNKNOWN  # nothing configured could be read: that is not "OK"
    if args.json:
        doc = {
            "hlcon": __version__,
            "at": now.isoformat(),
            "config": config.source,
            "status": status.label if status is not Severity.INFO else "ok",
            "exit_code": status.exit_code,
            "findings": [finding_to_json(f) for f in findings],
            "entries": [entry_to_json(e) for e in store],
        }
        print(json.dumps(doc, indent=2))
        return status.exit_code
    print(f"hlcon status  {now:%Y-%m-%d %H:%M:%S} UTC  config: {config.source}")
    for entry in sorted(store, key=lambda e: e.key):
        where = f"{entry.key[0]}:{entry.key[1]}"
        if entry.fault is not None:
            f = entry.fault
            print(f"  {where:<28} FAULT {f.what}: {f.why} (since {ago(now, f.since)} ago)")
        else:
            print(f"  {where:<28} {summary(entry)}")
    if findings:
        print("findings:")
        for finding in findings:
            print(f"  {finding.severity.name:<8} {finding.message}")
    label = "OK" if status <= Severity.INFO else status.name
    print(f"{label}: {len(findings)} finding{'s' if len(findings) != 1 else ''}")
    return status.exit_code
