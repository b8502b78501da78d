"""What every pane and screen of the console reads: one ConsoleContext per app.

Panes reach it as `self.ctx` (tui.panes.base.Pane), screens as `console_app(self).ctx`; the app
as `app.ctx`. Tests build one from
frozen readings and a frozen clock with tests/tui/fixtures.py's `make_context`, without a poller
or a runner, so snapshots are stable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from textual.app import App
from textual.message_pump import MessagePump

from lab.config import Config
from lab.model import utcnow
from lab.store import Store

if TYPE_CHECKING:
    from actions.audit import AuditLog
    from actions.runner import Runner
    from lab.poller import Poller
    from lab.wiring import Lab

Clock = Callable[[], datetime]


@dataclass
class ConsoleContext:
    """The console's world.

    config   the loaded Config (panes read their sections from it)
    lab      the Lab (executors, shared clients); actions are built against it
    store    the latest reading or Fault per (domain, target); panes only read it
    poller   schedules the readers; None in snapshot tests (the store is pre-filled)
    runner   actions.runner.Runner: the only way anything changes; None = no actions possible
    clock    "now" for ages and findings; frozen in snapshot tests
    audit    actions.audit.AuditLog the audit pane reads; None = taken from the runner if it
             has one (`runner.audit`), else the pane says there is none
    """

    config: Config
    lab: Lab | None
    store: Store
    poller: Poller | None = None
    runner: Runner | None = None
    clock: Clock = utcnow
    audit: AuditLog | None = None

    @property
    def read_only(self) -> bool:
        return self.config.console.read_only

    def audit_log(self) -> AuditLog | None:
        """The AuditLog to show, or None."""
        if self.audit is not None:
            return self.audit
        return self.runner.audit if self.runner is not None else None

    def acting(self) -> tuple[Lab, Runner]:
        """The lab and the runner, for a screen that acts (a wizard once it plans)."""
        if self.lab is None or self.runner is None:
            raise RuntimeError("actions are unavailable in this session (no lab or runner)")
        return self.lab, self.runner


class ConsoleApp(App[None]):
    """An app that carries a ConsoleContext (tui.app.HlconApp): what panes and screens run in."""

    ctx: ConsoleContext


def console_app(node: MessagePump) -> ConsoleApp:
    """`node.app`, typed: the reads of panes and screens (their requests go up as messages)."""
    app = node.app
    if not isinstance(app, ConsoleApp):
        raise TypeError(f"{type(node).__name__} runs only inside the console app, not {app!r}")
    return app
