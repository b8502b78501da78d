"""Human formatting shared by the panes and the CLI (no I/O): lab.units, with "-" for unknown."""

from __future__ import annotations

from datetime import datetime

from lab.health import ago as health_ago
from lab.units import duration, size


def bytes_h(n: float | None) -> str:
    """IEC sizes (1.5 KiB, 20.0 GiB), as everywhere in hlcon; "-" when unknown."""
    return "-" if n is None else size(n)


def duration_h(seconds: float | None) -> str:
    """A duration as lab.units shows one (90s, 65m30s, 26h, 3d4h); "-" when unknown."""
    return "-" if seconds is None else duration(seconds)


def ago(now: datetime, then: datetime | None) -> str:
    """How long ago, in the compact form the health messages use (4s, 3m, 5h, 2d)."""
    return "never" if then is None else health_ago(now, then)
