"""Policy: may this action run at all? Read-only mode, maintenance, allow-lists, rate limits.

Each check returns None (allowed) or a reason that says how to change it. `check()` runs them in
that order and returns the first reason. The rate limit is counted from the audit log (intents on
the same target inside the window), so it holds across processes and restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from actions.maintenance import Maintenance, MaintenanceError

# STATE_DIR and the audit log path are the loader's; re-exported for the runner and the CLI.
from lab.config import audit_log_path as audit_log_path
from lab.config import state_dir as state_dir

if TYPE_CHECKING:
    from actions.audit import AuditLog
    from actions.base import Action
    from lab.config import Config

AllowHook = Callable[["Action"], "str | None"]
ALLOW_HOOKS: list[AllowHook] = []
"""Extra allow-list checks every action passes through (besides Action.allowed())."""


def allow_hook(fn: AllowHook) -> AllowHook:
    """Register an allow-list check: fn(action) → None, or the reason with how to allow it."""
    ALLOW_HOOKS.append(fn)
    return fn


def human_duration(seconds: float) -> str:
    if 0 < seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    s = max(0, round(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m" + (f"{s % 60}s" if s % 60 else "")
    return f"{s // 3600}h" + (f"{s % 3600 // 60}m" if s % 3600 // 60 else "")


def read_only_reason(config: Config, flag: bool | None) -> str | None:
    if flag:
        return "read-only mode: started with --read-only (start hlcon without it to act)"
    if config.console.read_only:
        return (
            f"read-only mode: console.read_only = true in {config.source} (set it to false to act)"
        )
    return None


def maintenance_reason(maintenance: Maintenance, host: str) -> str | None:
    try:
        entry = maintenance.get(host)
    except MaintenanceError as exc:
        return f"maintenance flags unreadable, refusing to act: {exc}"
    if entry is None:
        return None
    note = f": {entry.note}" if entry.note else ""
    return (
        f"host {host} is in maintenance (since {entry.since}, by {entry.by}{note}); "
        f"`hlcon maintenance off {host}` ends it"
    )


def allow_reason(action: Action) -> str | None:
    why = action.allowed()
    if why:
        return why
    for hook in ALLOW_HOOKS:
        why = hook(action)
        if why:
            return why
    return None


def rate_reason(audit: AuditLog, target: str, config: Config, now: datetime) -> str | None:
    limit = config.actions.rate_limit
    window = config.actions.rate_window
    if limit <= 0 or window <= 0:
        return None
    cutoff = now - timedelta(seconds=window)
    times = [r.at for r in audit.since(cutoff) if r.phase == "intent" and r.target == target]
    if len(times) < limit:
        return None
    # The oldest intent that still counts leaves the window first.
    frees_at = sorted(times)[len(times) - limit] + timedelta(seconds=window)
    return (
        f"rate limit: {len(times)} actions on {target} in the last {human_duration(window)} "
        f"(actions.rate_limit = {limit}, actions.rate_window = {human_duration(window)} in "
        f"{config.source}); next allowed in {human_duration((frees_at - now).total_seconds())}"
    )


def check(
    action: Action,
    *,
    config: Config,
    read_only: bool | None,
    maintenance: Maintenance,
    audit: AuditLog,
    now: datetime,
    host: str | None = None,
) -> str | None:
    """The first reason this action may not run, or None. `host` overrides action.host (the
    runner passes "local" for every name of this machine)."""
    return (
        read_only_reason(config, read_only)
        or maintenance_reason(maintenance, host or action.host)
        or allow_reason(action)
        or rate_reason(audit, str(action.target), config, now)
    )
