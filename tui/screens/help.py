"""`?`: every binding of the current pane, its focused widget and the app — read from the live
binding chain, never hand-written, so it cannot drift from the keys that actually work."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from tui.screens.modal import FramedModal
from tui.screens.wizard import WizardScreen
from tui.textual_private import binding_chain
from tui.widgets.table import CursorTable

HelpEntry = tuple[str, str, str]  # (where, key, description)


def _where(node: DOMNode) -> str:
    from tui.panes.base import Pane

    if isinstance(node, App):
        return "app"
    if isinstance(node, Pane):
        return f"pane {node.NUMBER} {node.TITLE}"
    if isinstance(node, DataTable):
        return "table"
    if isinstance(node, Input):
        return "input"
    if isinstance(node, WizardScreen):
        return node.HELP_NAME
    if isinstance(node, Screen):
        return "screen"
    return type(node).__name__


def collect_bindings(app: App[Any], screen: Screen[Any]) -> list[HelpEntry]:
    """Bindings along the focus chain of `screen`: the pane's, then the app's, then the
    focused widget's and the screen's."""
    out: list[HelpEntry] = []
    seen: set[tuple[str, str]] = set()
    # The chain Textual itself dispatches keys along.
    for node, bindings in binding_chain(screen):
        where = _where(node)
        for key, group in bindings.key_to_bindings.items():
            for binding in group:
                if binding.system:
                    continue
                label = binding.description or binding.action
                shown = app.get_key_display(binding)
                if (where, key) in seen:
                    continue
                seen.add((where, key))
                out.append((where, shown, label))
    # What this pane (or this wizard) and the app do first; cursor movement and focus keys last.
    wizard = screen.HELP_NAME if isinstance(screen, WizardScreen) else None
    order = {"pane": 0, "app": 1}

    def rank(entry: HelpEntry) -> int:
        if wizard is not None and entry[0] == wizard:
            return 0
        return order.get(entry[0].split(" ")[0], 2)

    return sorted(out, key=rank)


class HelpScreen(FramedModal[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss_help", "Close"),
    ]

    DEFAULT_CSS = """
    HelpScreen > #help-dialog { width: 90%; max-width: 90; height: 90%; padding: 0; }
    HelpScreen #help-title { padding: 0 1; text-style: bold; }
    HelpScreen DataTable { height: 1fr; }
    """

    def __init__(self, entries: list[HelpEntry], title: str) -> None:
        super().__init__()
        self.entries = entries
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog", classes="frame"):
            yield Static(
                Text.assemble((f"Keys — {self.title_text}", "bold"), ("  (Esc closes)", "dim")),
                id="help-title",
            )
            table = CursorTable(id="help-table", cursor_type="row")
            table.add_columns("Key", "Does", "Where")
            for where, key, label in self.entries:
                table.add_row(key, label, where)
            yield table

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
