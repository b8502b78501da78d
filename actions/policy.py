"""Policy: may this action run at all? Read-only mode, maintenance, allow-lists, rate limits.

Each check returns None (allowed) or a reason that says how to change it — naming the exact CLI
flag or config key. `check()` runs them in that order and returns the first reason. Checks made
after the plan take the action's canonical Identity: maintenance of every host it touches, and
the rate limit counted from the audit log over intents on any of its identity keys (whatever
spelling those were typed as), so it holds across processes, restarts and spellings.

Timeouts: `actions.timeouts."FAMILY"` in the config, else the family's own default
(FAMILY_TIMEOUTS, or what its plan says), else `actions.timeout`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from actions.maintenance import Maintenance, MaintenanceError

# STATE_DIR and the audit log path are the loader's; re-exported for the runner and the CLI.
from lab.config import audit_log_path as audit_log_path
from lab.config import state_dir as state_dir
from lab.units import duration

if TYPE_CHECKING:
    from actions.audit import AuditLog, AuditRecord
    from actions.base import Action, Identity
    from lab.config import Config

FAMILY_TIMEOUTS: dict[str, float] = {
    "backup.restore": 6 * 3600.0,
    "backup.now": 6 * 3600.0,
    "backup.check": 3 * 3600.0,
}
"""Families whose work is long by nature; the rest default to actions.timeout (config.toml)."""


def timeout_for(config: Config, family: str, planned: float | None) -> tuple[float, str]:
    """(seconds, where that came from) for one family: actions.timeouts."FAMILY", else the
    plan's own (the family's default), else FAMILY_TIMEOUTS, else actions.timeout."""
    key = f'actions.timeouts."{family}"'
    configured = config.actions.timeouts.get(family)
    if configured is not None:
        return configured, f"{key} in {config.source}"
    default = planned if planned is not None else FAMILY_TIMEOUTS.get(family)
    if default is not None:
        return default, f"{family}'s default; set {key} in {config.source} to change it"
    return config.actions.timeout, (
        f"actions.timeout in {config.source}; {key} sets this family's own"
    )


AllowHook = Callable[["Action"], "str | None"]
ALLOW_HOOKS: list[AllowHook] = []
"""Extra allow-list checks every action passes through (besides Action.allowed())."""


def allow_hook(fn: AllowHook) -> AllowHook:
    """Register an allow-list check: fn(action) → None, or the reason with how to allow it."""
    ALLOW_HOOKS.append(fn)
    return fn


def human_duration(seconds: float) -> str:
    """A duration in a message (lab.units.duration: 0.2s, 90s, 65m, 26h, 3d4h)."""
    return duration(seconds)


def read_only_reason(config: Config, flag: bool | None) -> str | None:
    if flag:
        return "read-only mode: started with --read-only (start hlcon without it to act)"
    if config.console.read_only:
        return (
            f"read-only mode: console.read_only = true in {config.source} (set it to false to act)"
        )
    return None


def maintenance_reasons(maintenance: Maintenance, hosts: tuple[str, ...]) -> str | None:
    for host in dict.fromkeys(hosts):
        why = maintenance_reason(maintenance, host)
        if why:
            return why
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


def record_keys(rec: AuditRecord) -> tuple[str, ...]:
    """The identity keys an intent record acted on: its `identity` (written since identities
    exist), else its `locks`, else the target as typed (records written before)."""
    info = rec.result or {}
    for field in ("identity", "locks"):
        keys = info.get(field)
        if isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys):
            return tuple(keys)
    return (rec.target,) if rec.target else ()


def rate_reason(
    audit: AuditLog,
    target: str,
    config: Config,
    now: datetime,
    identity: Identity | None = None,
) -> str | None:
    """Intents inside the window on any identity key of this action — each key counted on its
    own, so a bulk action counts against every member's limit and uses each one up."""
    limit = config.actions.rate_limit
    window = config.actions.rate_window
    if limit <= 0 or window <= 0:
        return None
    cutoff = now - timedelta(seconds=window)
    keys = identity.all_keys if identity is not None else (target,)
    intents = [r for r in audit.since(cutoff) if r.phase == "intent"]
    for key in keys:
        times = [r.at for r in intents if key in record_keys(r) or r.target == key]
        if len(times) < limit:
            continue
        # The oldest intent that still counts leaves the window first.
        frees_at = sorted(times)[len(times) - limit] + timedelta(seconds=window)
        what = target if key == target else f"{target} ({key}, however it is spelled)"
        return (
            f"rate limit: {len(times)} actions on {what} in the last {human_duration(window)} "
            f"(actions.rate_limit = {limit}, actions.rate_window = {human_duration(window)} in "
            f"{config.source}); next allowed in {human_duration((frees_at - now).total_seconds())}"
        )
    return None


def check(
    action: Action,
    *,
    config: Config,
    read_only: bool | None,
    maintenance: Maintenance,
    audit: AuditLog,
    now: datetime,
    host: str | None = None,
    identity: Identity | None = None,
    plan_only: bool = False,
) -> str | None:
    """The first reason this action may not run, or None. `host` overrides action.host (the
    runner passes its canonical name); with `identity` (known once planned) maintenance covers
    every host of it and the rate limit counts its canonical keys. `plan_only` (a dry run): a
    plan changes nothing, so read-only mode does not refuse it."""
    hosts = (host or action.host, *(identity.hosts if identity is not None else ()))
    return (
        (None if plan_only else read_only_reason(config, read_only))
        or maintenance_reasons(maintenance, hosts)
        or allow_reason(action)
        or rate_reason(audit, str(action.target), config, now, identity)
    )
