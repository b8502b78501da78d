"""What panes and screens ask of the console app: messages up (the app handles them), never
calls on `self.app`. Reads go down through `tui.context.console_app(node).ctx`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from actions.base import Action
    from lab.model import Finding


class LaunchAction(Message):
    """Plan, confirm, run and report `action` through the runner (HlconApp.launch)."""

    def __init__(self, action: Action) -> None:
        super().__init__()
        self.action = action


class JumpToFinding(Message):
    """Show the pane `finding` is about, on its row if it has one (the overview's Enter)."""

    def __init__(self, finding: Finding) -> None:
        super().__init__()
        self.finding = finding
