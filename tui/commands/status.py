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

from actions.hostkey_audit import audit_key_changes
from lab import __version__
from lab.config import Config, ConfigError, load_config
from lab.health import evaluate, worst
from lab.jsonview import entry_to_json, finding_to_json
from lab.model import Finding, Severity, utcnow
from lab.poller import Poller
from lab.store import Entry, Store
from lab.wiring import Lab
from tui.format import ago
from watch.status import NOTIFY  # noqa: F401  (registers the notify domain: its channels)


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="one collection pass: state, faults, findings (Nagios exit)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


async def collect(config: Config) -> tuple[Store, Lab]:
    lab = Lab(config)
    audit_key_changes(lab)  # a host key that changed is audited even by a read-only pass
    store = Store()
    poller = Poller(store, lab.readers())  # every registered domain (lab.domains)
    try:
        await poller.poll_all()
    finally:
        await poller.stop()
        await lab.close()
    return store, lab


def summary(entry: Entry) -> str:
    """The entry's one line: every reading type says what it read (lab.model `summary()`)."""
    r = entry.reading
    if r is None:
        return "no reading yet"
    return r.summary()


def overall(store: Store, findings: list[Finding]) -> Severity:
    """The exit status: the worst finding, and never better than UNKNOWN while nothing is
    configured or a source has neither a reading nor a fault (nothing seen is not "OK")."""
    status = worst(findings)
    if len(store) == 0 or any(e.reading is None and e.fault is None for e in store):
        status = max(status, Severity.UNKNOWN)
    return status


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return Severity.UNKNOWN.exit_code
    store, _ = asyncio.run(collect(config))
    now = utcnow()
    findings = evaluate(store, config, now)
    status = overall(store, findings)
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
        elif entry.reading is None:
            print(f"  {where:<28} UNKNOWN no reading yet")
        else:
            print(f"  {where:<28} {summary(entry)}")
    if findings:
        print("findings:")
        for finding in findings:
            print(f"  {finding.severity.name:<8} {finding.message}")
    label = "OK" if status <= Severity.INFO else status.name
    print(f"{label}: {len(findings)} finding{'s' if len(findings) != 1 else ''}")
    return status.exit_code
