"""Enter on a row: a modal over the pane. DetailModal is what every detail shares (the
FramedModal frame, 95% x 90%; Esc, q or Enter closes it); TextDetail is the whole reading as text,
scrollable.

Panes subclass TextDetail only to give their detail a name (tests and CSS can tell them apart).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.screens.modal import FramedModal


def fields_text(fields: Iterable[tuple[str, str]], text: Text | None = None) -> Text:
    """Label / value lines, labels bold and right-aligned in one column."""
    pairs = list(fields)
    width = max((len(label) for label, _ in pairs), default=0)
    text = text if text is not None else Text()
    for label, value in pairs:
        text.append(f"{label:>{width}}  ", "bold")
        text.append(f"{value}\n")
    return text


class DetailModal(FramedModal[None]):
    """A detail over the pane: compose one container with class "frame"; a subclass changes
    only what differs (its size, its close keys)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,enter", "close", "Close")]
    DEFAULT_CSS = """
    DetailModal > .frame { width: 95%; height: 90%; }
    """

    def action_close(self) -> None:
        self.dismiss(None)


class TextDetail(DetailModal):
    DEFAULT_CSS = """
    TextDetail > .frame { height: auto; max-height: 90%; }
    """

    def __init__(self, text: Text) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="detail frame"):
            yield Static(self.text)
