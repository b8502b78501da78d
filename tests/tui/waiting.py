"""Let a Pilot-driven app run until something holds — bounded by a deadline, never a timing
assertion. The deadline is generous because the suite shares two cores with real services."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


async def wait_for(
    pilot: Any, condition: Callable[[], bool], what: str, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened within {timeout:g} s: {what}")
        await pilot.pause(0.05)
