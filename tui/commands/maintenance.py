"""`hlcon maintenance on|off|list [HOST]`: hosts where every action is refused.

Maintenance is per host and covers everything on it: every container endpoint, interface,
repository and unit. HOST is "local" (or this machine's name), a [[hosts]] name, or a
[[containers]] endpoint's name — which means the host that endpoint runs on (said so when it is
turned on or off); an endpoint on a machine hlcon has no host for is a host of its own.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from actions.audit import AuditError, Who, audit_log_for
from actions.maintenance import Maintenance, MaintenanceError, resolve_host
from actions.policy import state_dir
from lab.config import Config
from tui.commands.do import config_or_exit


def register(sub: Any) -> None:
    p = sub.add_parser("maintenance", help="put a host in maintenance (actions refused)")
    p.add_argument("mode", choices=("on", "off", "list"))
    p.add_argument("host", nargs="?", help='a host name ("local" for this machine)')
    p.add_argument("--note", default="", help="why (shown in refusals)")
    p.set_defaults(func=run_maintenance)


def _canonical(config: Config, host: str) -> tuple[str, str] | None:
    return resolve_host(config, host)


def run_maintenance(args: argparse.Namespace) -> int:
    config = config_or_exit(args, "maintenance")
    if isinstance(config, int):
        return config
    maint = Maintenance(state_dir(config))
    try:
        if args.mode == "list":
            entries = maint.hosts()
            shown = [e for h, e in sorted(entries.items()) if args.host in (None, h)]
            if not shown:
                print("no host in maintenance")
            for e in shown:
                note = f"  {e.note}" if e.note else ""
                print(f"{e.host}  since {e.since}  by {e.by}{note}")
            return 0
        if not args.host:
            print(f"hlcon maintenance {args.mode}: which host?", file=sys.stderr)
            return 2
        resolved = _canonical(config, args.host)
        if resolved is None:
            known = ", ".join(
                ["local", *(h.name for h in config.hosts), *(c.name for c in config.containers)]
            )
            print(
                f"hlcon maintenance: no host named {args.host!r} in {config.source}; "
                f"known: {known}",
                file=sys.stderr,
            )
            return 2
        host, why = resolved
        if why:
            print(why)
        on = args.mode == "on"
        changed = maint.set(
            host, on, who=Who.current(), note=args.note, audit=audit_log_for(config)
        )
    except (MaintenanceError, AuditError) as exc:
        print(f"hlcon maintenance: {exc}", file=sys.stderr)
        return 2
    state = "in maintenance" if on else "out of maintenance"
    print(f"{host} {state}" + ("" if changed else " (already)"))
    return 0
