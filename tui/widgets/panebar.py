"""The top line: the numbered panes (the current one highlighted), plus the mode."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


class PaneBar(Static):
    current: reactive[int] = reactive(1)

    DEFAULT_CSS = """
    PaneBar { height: 1; background: $panel; color: $text; }
    """

    def __init__(self, panes: list[tuple[int, str]], *, read_only: bool = False) -> None:
        super().__init__(id="panebar")
        self.panes = panes
        self.read_only = read_only

    def render(self) -> Text:
        text = Text(" hlcon ", style="bold reverse")
        for number, title in self.panes:
            style = "bold reverse" if number == self.current else ""
            text.append(" ")
            text.append(f"{number} {title}", style=style)
        if self.read_only:
            text.append("  READ-ONLY", style="bold yellow")
        return text
