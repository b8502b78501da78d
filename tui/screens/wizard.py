"""The base of the console's wizards (restore, peer add): steps in one ContentSwitcher, one
shown at a time, and a name the `?` help lists the wizard's keys under, first.

A wizard composes its steps as children of `steps()` with ids "step-NAME", calls
`show_step(NAME)` to move, and says in `FOCUS` which widget takes the keys on each step (a
step without one takes focus away, so the wizard's own keys work). `step` is the step shown.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual.screen import Screen
from textual.widgets import ContentSwitcher

from tui.context import ConsoleContext, console_app

ResultT = TypeVar("ResultT")


class WizardScreen(Screen[ResultT]):
    HELP_NAME: ClassVar[str] = "wizard"  # `?` lists these keys first, under this name
    FIRST_STEP: ClassVar[str]
    FOCUS: ClassVar[dict[str, str]] = {}  # step → the selector of what takes the keys there

    def __init__(self) -> None:
        super().__init__()
        self.step = self.FIRST_STEP

    @property
    def ctx(self) -> ConsoleContext:
        return console_app(self).ctx

    def steps(self) -> ContentSwitcher:
        """The container of the steps; compose the steps inside it."""
        return ContentSwitcher(id="steps", initial=f"step-{self.step_shown(self.FIRST_STEP)}")

    def step_shown(self, step: str) -> str:
        """The step whose widgets show `step` (two steps may share a page)."""
        return step

    def show_step(self, step: str) -> None:
        self.step = step
        self.query_one("#steps", ContentSwitcher).current = f"step-{self.step_shown(step)}"
        self.entered(step)
        self.refresh_bindings()  # check_action: the footer offers this step's keys
        focus = self.FOCUS.get(step)
        if focus:
            self.query_one(focus).focus()
        else:
            self.set_focus(None)

    def entered(self, step: str) -> None:
        """Called when `step` is shown, before its focus moves (titles, hints)."""
