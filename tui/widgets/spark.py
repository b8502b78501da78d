"""A text sparkline for table cells (Textual's Sparkline widget cannot live in a DataTable)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

BLOCKS = "▁▂▃▄▅▆▇█"


def spark(
    values: Iterable[float], width: int = 10, *, low: float = 0.0, high: float = 100.0
) -> Text:
    """The last `width` values as block characters, scaled between low and high."""
    tail = list(values)[-width:]
    if not tail:
        return Text(" " * width)
    span = (high - low) or 1.0
    chars = []
    for v in tail:
        level = (min(max(v, low), high) - low) / span
        chars.append(BLOCKS[min(len(BLOCKS) - 1, int(level * len(BLOCKS)))])
    return Text("".join(chars).rjust(width), style="cyan")
