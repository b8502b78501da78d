"""The screen of a running Pilot app as plain text lines (what a terminal would show)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console


def screen_lines(app: Any) -> list[str]:
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), record=True, color_system=None
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text().splitlines()
