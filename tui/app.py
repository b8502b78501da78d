"""HlconApp: the numbered panes over one ConsoleContext, and `launch(action)`.

Data flow: the poller (started on mount, on this loop) publishes to the store; the store's
listener posts StoreChanged; the visible pane re-reads the store at most 4×/s, never while a
modal covers it (Dolphie), and catches up when the modal closes. Ages tick once a second.

Panes and screens ask by message (tui/messages.py: LaunchAction, JumpToFinding) and read through
`console_app(node).ctx`; they never call the app.

Actions: `launch(action)` → runner.prepare (Refused → a notification with the reason) →
ConfirmModal(plan) → runner.run with an ActionProgress bar → a notification of the outcome (and
rollback); Esc → runner.cancel. Nothing else in the TUI changes the lab.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import ContentSwitcher, Footer
from textual.worker import Worker

from lab.model import Finding, Key
from tui import interrupt
from tui.context import ConsoleApp, ConsoleContext
from tui.messages import JumpToFinding, LaunchAction
from tui.panes import PANES, Pane, pane_class
from tui.panes.placeholder import PlaceholderPane
from tui.screens.confirm import ConfirmModal
from tui.screens.help import HelpScreen, collect_bindings
from tui.screens.wizard import WizardScreen
from tui.textual_private import QuietLinuxDriver
from tui.widgets.panebar import PaneBar
from tui.widgets.progress import ActionProgress

if TYPE_CHECKING:
    from actions.base import Action
    from actions.runner import RunResult

REFRESH_MIN_INTERVAL = 0.25  # panes re-render at most 4×/s however fast readings arrive
EXIT_AFTER_FIRST_FRAME = "HLCON_EXIT_AFTER_FIRST_FRAME"  # bench/startup.py: exit once painted
FIRST_FRAME_FILE = "HLCON_FIRST_FRAME_FILE"  # … and write time.time() of the frame here
# A toast stays over whatever screen is shown next: a failure is said briefly, and the audit
# pane keeps the record.
FAILURE_TOAST_SECONDS = 5.0
FOOTER_COMPACT_BELOW = 100  # columns


class StoreChanged(Message):
    """Posted (once per burst) when the store has new readings or faults."""


class ConsoleScreen(Screen[None]):
    """The main screen: pane bar, the panes, action progress, footer."""

    AUTO_FOCUS = None  # show_pane focuses the visible pane; never a hidden pane's widget

    @property
    def hlcon_app(self) -> HlconApp:
        app = self.app
        assert isinstance(app, HlconApp)
        return app

    def compose(self) -> ComposeResult:
        app = self.hlcon_app
        yield PaneBar([(n, PANES[n][1]) for n in sorted(PANES)], read_only=app.ctx.read_only)
        app.panes = {pane.NUMBER: pane for pane in app.build_panes()}
        initial = app.panes[app.initial_pane]
        # Only the visible pane is mounted now; the others on first show (a faster first frame).
        with ContentSwitcher(id="panes", initial=initial.id):
            yield initial
        yield ActionProgress(id="progress")
        yield Footer()

    async def on_mount(self) -> None:
        app = self.hlcon_app
        await app.show_pane(app.initial_pane)

    def on_resize(self, event: events.Resize) -> None:
        # Narrow terminals get the footer without its padding: a pane's keys fit at 80 columns.
        self.query_one(Footer).compact = event.size.width < FOOTER_COMPACT_BELOW

    def on_screen_resume(self) -> None:
        # A modal closed: catch up on what changed underneath it.
        self.hlcon_app.flush_store_changes(force=True)


class HlconApp(ConsoleApp):
    TITLE = "hlcon"
    CSS_PATH = str(Path(__file__).with_name("hlcon.tcss"))  # absolute: subclasses live elsewhere
    ENABLE_COMMAND_PALETTE = True

    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(str(n), f"show_pane({n})", f"Show pane {n} {PANES[n][1]}", show=False)
            for n in sorted(PANES)
        ),
        Binding("question_mark", "help", "Help"),
        Binding("r", "refresh", "Refresh"),
        Binding("f5", "refresh", "Refresh", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, ctx: ConsoleContext, *, initial_pane: int = 1) -> None:
        super().__init__()
        self.ctx = ctx
        self.initial_pane = initial_pane
        self.panes: dict[int, Pane] = {}  # by number; built by ConsoleScreen.compose
        self.current_pane = initial_pane
        self._dirty: set[Key] = set()
        self._last_flush = 0.0
        self._flush_timer: Timer | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._signals: contextlib.ExitStack | None = None  # set on mount
        self._terminating = False
        self._bad_theme: str | None = None
        if ctx.config.console.theme in self.available_themes:
            self.theme = ctx.config.console.theme
        else:
            self._bad_theme = ctx.config.console.theme

    def get_driver_class(self) -> type[Driver]:
        # On Linux, a driver whose input thread sleeps until a key arrives
        # (tui/textual_private.py); TEXTUAL_DRIVER still picks another, as Textual documents.
        default = super().get_driver_class()
        if default is LinuxDriver:
            return QuietLinuxDriver
        return default

    def notify(self, message: str, *, markup: bool = False, **kwargs: Any) -> None:
        # Plain text by default: messages carry names and config sections like [[hosts]].
        super().notify(message, markup=markup, **kwargs)

    # ------------------------------------------------------------ panes

    def build_panes(self) -> Iterable[Pane]:
        """One pane per number: the registered class, or a placeholder naming what to configure."""
        config = self.ctx.config
        for number in sorted(PANES):
            pane_id, title, _ = PANES[number]
            cls = pane_class(number)
            if not cls.configured(config):
                yield PlaceholderPane.not_configured(
                    number, pane_id, title, cls.CONFIG_SECTION, config.source
                )
            else:
                yield cls()

    def get_default_screen(self) -> Screen[Any]:
        return ConsoleScreen()

    def pane(self, number: int | None = None) -> Pane:
        """The pane under `number` (default: the visible one); it may not be mounted yet."""
        return self.panes[number or self.current_pane]

    async def show_pane(self, number: int) -> Pane | None:
        """Show pane `number` (mounting it on first show), refreshed and focused."""
        pane = self.panes.get(number)
        if pane is None:
            return None
        main = self.screen_stack[0]
        switcher = main.query_one("#panes", ContentSwitcher)
        if pane.parent is None:
            await switcher.mount(pane)
        self.current_pane = number
        switcher.current = pane.id
        main.query_one(PaneBar).current = number
        pane.refresh_from_store()
        pane.focus_default()
        return pane

    async def action_show_pane(self, number: int) -> None:
        await self.show_pane(number)

    async def on_jump_to_finding(self, message: JumpToFinding) -> None:
        await self.jump_to(message.finding)

    async def jump_to(self, finding: Finding) -> None:
        """Show the pane `finding` is about, on its row if it has one."""
        for number, pane in sorted(self.panes.items()):
            if finding.key[0] in pane.DOMAINS:
                await self.show_pane(number)
                if not (finding.row and pane.select_row(finding.row)):
                    pane.select_row(finding.key[1])
                return
        self.notify(f"no pane shows {finding.key[0]}", severity="warning")

    # ------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        # SIGTERM and SIGHUP (the SSH session dropped) end the console like a quit mid-action
        # with Ctrl-C in `hlcon do`: running actions audit their outcome and rollback first.
        self._signals = contextlib.ExitStack()
        self._signals.enter_context(
            interrupt.routed(
                asyncio.get_running_loop(),
                self._on_terminate_signal,
                detach_on_hangup=not self.is_headless,  # a test's stdio is not the console's
            )
        )
        self._unsubscribe = self.ctx.store.subscribe(self._store_listener)
        self.set_interval(1.0, self._tick)
        if self.ctx.poller is not None:
            self.ctx.poller.start()
        self._announce_pending()
        if self._bad_theme is not None:
            self.notify(
                f"unknown theme {self._bad_theme!r} in [console] theme; "
                f"available: {', '.join(sorted(self.available_themes))}",
                severity="warning",
            )
        if os.environ.get(EXIT_AFTER_FIRST_FRAME) == "1":
            self.call_after_refresh(self._first_frame)

    def _first_frame(self) -> None:
        target = os.environ.get(FIRST_FRAME_FILE)
        if target:
            Path(target).write_text(f"{time.time():.6f}\n")
        self.exit()

    def _on_terminate_signal(self, sig: signal.Signals) -> None:
        if self._terminating:
            return  # already ending: the rollbacks are shielded, a second signal waits too
        self._terminating = True
        why = interrupt.describe(sig)
        runner = self.ctx.runner
        runs = runner.interrupt(why) if runner is not None else []
        self.notify(f"{why}: ending the running action first" if runs else why, timeout=10)
        self.run_worker(self._exit_after(runs, 128 + int(sig)), group="terminate")

    async def _exit_after(self, runs: list[asyncio.Task[Any]], code: int) -> None:
        """Exit once every interrupted run has audited its outcome and rollback."""
        if runs:
            await asyncio.wait(runs)
        self.exit(return_code=code)

    async def on_unmount(self) -> None:
        if self._signals is not None:
            self._signals.close()  # the handlers from before are back
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.ctx.poller is not None:
            await self.ctx.poller.stop()
        if self.ctx.lab is not None:
            await self.ctx.lab.close()

    def _announce_pending(self) -> None:
        runner = self.ctx.runner
        if runner is None:
            return
        pending = list(runner.pending())
        if pending:
            self.notify(
                f"{len(pending)} action(s) never finished (the process died mid-action): "
                "see pane 7 Audit",
                title="Unfinished actions",
                severity="error",
                timeout=30,
            )

    # ------------------------------------------------------------ store → UI

    def _store_listener(self, key: Key) -> None:
        # Called by the poller on this loop, or from a thread: post only once per burst.
        first = not self._dirty
        self._dirty.add(key)
        if first:
            if threading.get_ident() == self._thread_id:
                self.post_message(StoreChanged())
            else:
                self.call_from_thread(self.post_message, StoreChanged())

    def on_store_changed(self, _: StoreChanged) -> None:
        wait = REFRESH_MIN_INTERVAL - (time.monotonic() - self._last_flush)
        if wait <= 0:
            self.flush_store_changes()
        elif self._flush_timer is None:
            self._flush_timer = self.set_timer(wait, self._timed_flush)

    def _timed_flush(self) -> None:
        self._flush_timer = None
        self.flush_store_changes()

    def _covered(self) -> bool:
        return len(self.screen_stack) > 1

    def flush_store_changes(self, *, force: bool = False) -> None:
        """Re-render the visible pane if any of its domains changed (or `force`)."""
        if self._covered() or not self.panes:
            return  # stays dirty: ConsoleScreen.on_screen_resume catches up
        dirty, self._dirty = self._dirty, set()
        self._last_flush = time.monotonic()
        pane = self.pane()
        domains = {key[0] for key in dirty}
        if force or not pane.DOMAINS or domains & set(pane.DOMAINS):
            pane.refresh_from_store()

    def _tick(self) -> None:
        if not self._covered() and self.panes:
            self.pane().tick()

    # ------------------------------------------------------------ app actions

    def action_refresh(self) -> None:
        if self.ctx.poller is None:
            self.pane().refresh_from_store()
            return
        pane = self.pane()
        if pane.DOMAINS:
            pane.refresh_now()
        else:
            self.ctx.poller.refresh()
        pane.refresh_from_store()
        self.notify("refreshing…", timeout=1.5)

    def action_help(self) -> None:
        entries = collect_bindings(self, self.screen)
        if isinstance(self.screen, WizardScreen):  # a wizard's keys, not the pane's
            title = self.screen.HELP_NAME.capitalize()
        else:
            pane = self.pane()
            title = f"{pane.NUMBER} {pane.TITLE}"
        self.push_screen(HelpScreen(entries, title))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for number in sorted(PANES):
            _, title, _ = PANES[number]
            yield SystemCommand(
                f"Pane {number}: {title}",
                f"Show the {title} pane (key {number})",
                partial(self.action_show_pane, number),
            )
        yield SystemCommand("Refresh", "Poll now (r / F5)", self.action_refresh)
        yield SystemCommand("Toggle theme", "Switch light/dark theme", self.action_toggle_theme)
        yield SystemCommand("Keys", "Every binding of this pane (?)", self.action_help)
        ours = {"Keys", "Refresh", "Toggle theme"}
        for command in super().get_system_commands(screen):
            # Textual's own "Keys" (its key panel) beside ours listed the same entry twice
            if command.title not in ours:
                yield command

    # ------------------------------------------------------------ actions

    def on_launch_action(self, message: LaunchAction) -> None:
        self.launch(message.action)

    def launch(self, action: Action) -> Worker[RunResult | None]:
        """Plan, confirm, run and report `action` through the runner (never directly)."""
        return self._launch(action)

    @work(group="actions", exit_on_error=False)
    async def _launch(self, action: Action) -> RunResult | None:
        runner = self.ctx.runner
        if runner is None:
            self.notify("actions are unavailable in this session (no runner)", severity="error")
            return None
        from actions.runner import Refused

        try:
            prepared = await runner.prepare(action)
        except Refused as exc:
            # audited as "refused": pane 7 keeps the reason after the toast goes
            self.notify(
                f"{exc}\nthe record: pane 7 Audit",
                title=f"Refused: {action.target}",
                severity="warning",
                timeout=FAILURE_TOAST_SECONDS,
            )
            return None
        except Exception as exc:
            self.notify(
                f"could not plan {action.family} on {action.target}: {exc}",
                severity="error",
                timeout=10,
            )
            return None
        plan = prepared.plan
        answer = await self.push_screen_wait(ConfirmModal(plan))
        if answer is None:
            runner.cancel(prepared)
            self.notify(f"cancelled: {plan.summary}", timeout=4)
            self._after_action()
            return None
        progress = self.screen_stack[0].query_one(ActionProgress)
        progress.start(plan.summary)
        try:
            result = await runner.run(prepared, answer, self._progress_sink(progress))
        except Exception as exc:
            self.notify(
                f"{plan.summary}: {exc}",
                title="Action failed",
                severity="error",
                timeout=FAILURE_TOAST_SECONDS,
            )
            return None
        finally:
            progress.stop()
            self._after_action()
        self._report(plan.summary, result)
        return result

    def _progress_sink(self, progress: ActionProgress) -> Callable[[float | None, str], None]:
        def sink(fraction: float | None, message: str) -> None:
            if threading.get_ident() == self._thread_id:
                progress.report(fraction, message)
            else:
                self.call_from_thread(progress.report, fraction, message)

        return sink

    def _report(self, summary: str, result: RunResult) -> None:
        message = result.outcome.message
        if result.ok:
            self.notify(f"{summary}: {message}", title="Done", timeout=6)
            return
        text = f"{summary}: {message or 'failed'}"
        rollback = result.rollback
        if rollback is not None:
            state = "rolled back" if rollback.ok else "ROLLBACK FAILED"
            text += f"\n{state}: {rollback.message}"
        text += "\nthe record: pane 7 Audit"
        self.notify(text, title="Action failed", severity="error", timeout=FAILURE_TOAST_SECONDS)

    def _after_action(self) -> None:
        if self.ctx.poller is not None:
            self.ctx.poller.refresh()
        if not self._covered():
            self.pane().refresh_from_store()
