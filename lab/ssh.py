"""SSH connections to hosts (not built yet)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.execute import Executor
    from lab.wiring import Lab


def executor_for(lab: Lab, host: str) -> Executor:
    raise NotImplementedError("SSH hosts are not built yet")
