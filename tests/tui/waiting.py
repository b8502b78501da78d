"""Let a Pilot-driven app run until something holds — bounded by a deadline, never a timing
assertion. The deadline is generous because the suite shares two cores with real services."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


async def wait_for(
    pilot: Any,
    condition: Callable[[], bool],
    what: str,
    timeout: float = 60.0,
    seen: Callable[[], object] | None = None,
) -> None:
    """`seen` describes the state on failure, so a red test says what it found instead."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            found = f"; found: {seen()}" if seen is not None else ""
            raise AssertionError(f"never happened within {timeout:g} s: {what}{found}")
        await pilot.pause(0.05)
