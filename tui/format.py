"""Human formatting shared by the panes and the CLI (no I/O)."""

from __future__ import annotations

from datetime import datetime

from lab.health import ago as health_ago


def bytes_h(n: float | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover


def duration_h(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def ago(now: datetime, then: datetime | None) -> str:
    """How long ago, in the compact form the health messages use (4s, 3m, 5h, 2d)."""
    return "never" if then is None else health_ago(now, then)
