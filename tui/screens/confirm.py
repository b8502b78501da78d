"""ConfirmModal: the plan, in full, and a confirmation scaled to its blast radius.

Dismisses with the user's answer (str) or None when cancelled. A plain confirmation (no
`expect`) takes Enter and answers "yes"; a disruptive or bulk one takes only the typed name or
count (`Plan.confirmation.expect`). Esc cancels either way.
"""

from __future__ import annotations

import shlex
from typing import ClassVar

from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Input, Static

from actions.base import BlastRadius, Plan
from tui.screens.modal import FramedModal

PLAIN_ANSWER = "yes"

_RADIUS_STYLE = {
    BlastRadius.SINGLE: "bold",
    BlastRadius.DISRUPTIVE: "bold red",
    BlastRadius.BULK: "bold red",
}


def plan_text(plan: Plan) -> Text:
    """The plan as the modal (and screenshots) show it."""
    text = Text()
    text.append(plan.summary, "bold")
    text.append("\n")
    text.append(f"{plan.family} on {plan.target}", "dim")
    text.append("\nblast radius: ")
    text.append(plan.blast_radius.value, _RADIUS_STYLE[plan.blast_radius])
    text.append(" · ")
    text.append("reversible" if plan.reversible else "not reversible")
    if plan.cost:
        text.append(f" · cost: {plan.cost}")
    text.append("\n\nSteps:")
    for number, step in enumerate(plan.steps, 1):
        text.append(f"\n {number}. {step.description}")
        text.append(f"  [{step.host}]", "dim")
        if step.argv is not None:
            text.append(f"\n    $ {shlex.join(step.argv)}", "cyan")
        for path in step.changes:
            text.append(f"\n    changes {path}", "yellow")
    for note in plan.notes:
        text.append(f"\n⚠ {note}", "bold yellow")
    return text


class ConfirmModal(FramedModal[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "confirm", "Confirm"),
    ]

    DEFAULT_CSS = """
    ConfirmModal > #dialog { width: 90%; max-width: 100; height: auto; max-height: 90%; }
    ConfirmModal #plan-scroll { height: auto; max-height: 16; }
    ConfirmModal #dialog.-typed { height: 90%; }
    ConfirmModal #dialog.-typed #plan-scroll { height: 1fr; max-height: 100%; }
    ConfirmModal #answer { border: none; height: 1; padding: 0 1; background: $boost; }
    ConfirmModal #prompt { margin-top: 1; }
    ConfirmModal #hint { color: $text-muted; }
    ConfirmModal #mismatch { color: $error; display: none; }
    ConfirmModal #mismatch.-shown { display: block; }
    """

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan

    @property
    def expect(self) -> str | None:
        return self.plan.confirmation.expect

    def compose(self) -> ComposeResult:
        typed = " -typed" if self.expect is not None else ""
        with Vertical(id="dialog", classes="frame -warning" + typed):
            with VerticalScroll(id="plan-scroll"):
                yield Static(plan_text(self.plan), id="plan")
                if self.plan.diff:
                    yield Static(Syntax(self.plan.diff, "diff", word_wrap=True), id="diff")
            yield Static(Text(self.plan.confirmation.prompt, "bold"), id="prompt")
            if self.expect is not None:
                yield Input(placeholder=f"type {self.expect} to confirm", id="answer")
                yield Static(f"type exactly {self.expect!r}, or Esc to cancel", id="mismatch")
                yield Static("Enter confirms the typed answer · Esc cancels", id="hint")
            else:
                yield Static("Enter confirms · Esc cancels", id="hint")

    def on_mount(self) -> None:
        if self.expect is not None:
            self.query_one("#answer", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_confirm(self) -> None:
        if self.expect is None:
            self.dismiss(PLAIN_ANSWER)

    @on(Input.Submitted, "#answer")
    def _typed(self, event: Input.Submitted) -> None:
        event.stop()
        if self.plan.confirmation.accepts(event.value):
            self.dismiss(event.value.strip())
        else:
            self.query_one("#mismatch").add_class("-shown")
