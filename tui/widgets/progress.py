"""The running action's progress, docked above the footer while an action executes."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


class ActionProgress(Horizontal):
    DEFAULT_CSS = """
    ActionProgress { height: 1; display: none; background: $boost; }
    ActionProgress.-running { display: block; }
    ActionProgress > Label { width: 1fr; padding: 0 1; }
    ActionProgress > ProgressBar { width: 30; }
    """

    def compose(self) -> ComposeResult:
        yield Label(id="progress-label")
        # Determinate while hidden: an indeterminate bar animates on a 15 Hz timer even when
        # not displayed — that timer alone was most of an idle console's CPU.
        yield ProgressBar(total=100, show_eta=False, id="progress-bar")

    def start(self, summary: str) -> None:
        self.query_one("#progress-label", Label).update(summary)
        self.query_one("#progress-bar", ProgressBar).update(total=None, progress=0)
        self.add_class("-running")

    def report(self, fraction: float | None, message: str) -> None:
        self.query_one("#progress-label", Label).update(message)
        bar = self.query_one("#progress-bar", ProgressBar)
        if fraction is None:
            bar.update(total=None)
        else:
            bar.update(total=100, progress=max(0.0, min(1.0, fraction)) * 100)

    def stop(self) -> None:
        self.remove_class("-running")
        self.query_one("#progress-bar", ProgressBar).update(total=100, progress=0)
