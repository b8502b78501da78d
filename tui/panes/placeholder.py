"""Stands in for a pane whose domain is not configured, and names the config section to add."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from tui.panes.base import Pane


class PlaceholderPane(Pane):
    DEFAULT_CSS = """
    PlaceholderPane > #placeholder { padding: 1 2; }
    """

    def __init__(self, number: int, pane_id: str, title: str, message: str) -> None:
        # Instance attributes shadow the ClassVars: one class serves every missing pane.
        self.NUMBER = number  # type: ignore[misc]
        self.PANE_ID = pane_id  # type: ignore[misc]
        self.TITLE = title  # type: ignore[misc]
        self.message = message
        super().__init__()

    @classmethod
    def not_configured(
        cls, number: int, pane_id: str, title: str, section: str | None, source: str
    ) -> PlaceholderPane:
        where = f"add a {section} section to" if section else "configure it in"
        return cls(
            number,
            pane_id,
            title,
            f"{title} is not configured: {where} your config ({source}).\n"
            "`hlcon config check --explain` lists every key.",
        )

    def compose_body(self) -> ComposeResult:
        yield Static(Text(self.message), id="placeholder")

    def header_status(self) -> tuple[str, list[str]]:
        return "no data source", []
