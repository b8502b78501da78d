"""certs reader (not built yet)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.poller import Reader
    from lab.wiring import Lab


def readers(lab: Lab) -> list[Reader]:
    return []
