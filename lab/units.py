"""Units, one place: sizes (IEC: KiB, MiB, GiB), durations (parsed and shown) and ages.

Pure functions, no I/O. Every size hlcon shows is binary (1 KiB = 1024 B), whatever tool it came
from; every age and duration uses the same steps (seconds up to 119, minutes up to 119, hours up
to 47, then days), so "3m" means the same in a health message, a pane and a refusal.
"""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size(n: float) -> str:
    """Bytes → '1023 B', '1.5 KiB', '20.0 GiB' (IEC, one decimal above bytes)."""
    value = float(n)
    for unit in _SIZE_UNITS:
        if abs(value) < 1024 or unit == _SIZE_UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------- ages and shown durations


def age(seconds: float, *, step: int = 1) -> str:
    """A compact age, the same everywhere hlcon shows one: 4s, 3m, 5h, 2d. With `step`,
    seconds go in steps of that many ("<5s", "5s", "10s" …) so a text redrawn every second
    changes only every `step` seconds."""
    s = max(0, int(seconds))
    if step > 1 and s < step:
        return f"<{step}s"
    if s < 120:
        return f"{s - s % step}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def duration(seconds: float) -> str:
    """A duration to show: the steps of `age` plus the next unit down, when not zero —
    '0.2s', '5s', '90s', '10m', '65m30s', '26h', '3d4h'. Tenths under 10 s (a 0.2 s timeout)."""
    if 0 < seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    s = max(0, round(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m" + (f"{s % 60}s" if s % 60 else "")
    if s < 172800:
        return f"{s // 3600}h" + (f"{s % 3600 // 60}m" if s % 3600 // 60 else "")
    return f"{s // 86400}d" + (f"{s % 86400 // 3600}h" if s % 86400 // 3600 else "")


# ---------------------------------------------------------------- durations written in config

_DURATION_UNITS: dict[str, Fraction] = {
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
    "d": Fraction(86400),
    "w": Fraction(7 * 86400),
}
# "ms" before "m": alternation takes the first that matches.
_DURATION_PART = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d|w)")
_DURATION_MAX = Fraction(100 * 365 * 86400)
DURATION_HINT = 'expected a duration like "30s", "3m", "1h30m" or "2d" (units ms, s, m, h, d, w)'


def _quote(text: str, limit: int = 40) -> str:
    shown = text if len(text) <= limit else text[:limit] + "…"
    return json.dumps(shown, ensure_ascii=False)


def parse_duration(text: str) -> float:
    """'5s', '3m', '26h', '1h30m', '2d', '500ms' → seconds (to the millisecond). ValueError for
    anything else, bare numbers included."""
    if not isinstance(text, str):
        raise ValueError(DURATION_HINT)
    s = text.strip()
    if not s:
        raise ValueError(f"{DURATION_HINT}, got an empty string")
    total = Fraction(0)
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(f"{DURATION_HINT}, got {_quote(text)}")
        total += Fraction(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if total > _DURATION_MAX:
        raise ValueError(f"duration {_quote(text)} is longer than 100 years")
    # To the millisecond: finer means nothing for polling and timeouts, and it makes
    # format_duration's output read back to exactly the same value.
    return float(Fraction(round(total * 1000), 1000))


def format_duration(seconds: float) -> str:
    """Seconds → '1d2h', '1h30m', '500ms', '0s', exactly, to the millisecond: parse_duration
    reads it back to the same value (what a written config holds; `duration` is for showing)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a duration: {seconds!r}")
    ms = round(Fraction(seconds) * 1000)
    if ms == 0:
        return "0s"
    parts: list[str] = []
    for unit, size_ms in (
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ):
        n, ms = divmod(ms, size_ms)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)
