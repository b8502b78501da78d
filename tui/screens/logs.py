"""LogsScreen: one container's log — the last N lines, then new ones as they come.

Keys: `/` filter (plain text, matches highlighted), `w` wrap, `f` pause/resume following,
`end`/`G` jump to the end, `Esc`/`q` back. Memory is bounded: the screen keeps the newest
`keep` lines (a deque) and the log widget holds no more than that either; the engine is always
asked for a tail, never the whole log.

The lines come from lab.containers.follow_logs (a thread reading the Docker SDK's blocking
stream into an asyncio queue); this screen only consumes them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Input, RichLog, Static

from lab.containers import LogBuffer, follow_logs
from lab.poller import ReadError
from tui.panes.base import update_static

if TYPE_CHECKING:
    from lab.containers import DockerEndpoint

MATCH_STYLE = "reverse bold"

LineSource = Callable[[int], AsyncGenerator[str, None]]
"""source(tail) → the last `tail` lines, then new ones (default: lab.containers.follow_logs)."""


def highlight(line: str, pattern: str) -> Text:
    """The line with every case-insensitive occurrence of `pattern` (plain text) marked."""
    text = Text(line)
    if pattern:
        text.highlight_regex(re.compile(re.escape(pattern), re.IGNORECASE), MATCH_STYLE)
    return text


class LogsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back"),
        Binding("slash", "filter", "Filter"),
        Binding("w", "toggle_wrap", "Wrap"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("end,G", "jump_end", "End"),
    ]

    DEFAULT_CSS = """
    LogsScreen > #logs-header { height: 1; padding: 0 1; background: $boost; }
    LogsScreen > #logs-filter { display: none; height: 1; border: none; padding: 0 1; }
    LogsScreen > #logs-filter.-active { display: block; }
    LogsScreen > RichLog { height: 1fr; }
    """

    def __init__(
        self,
        endpoint: DockerEndpoint,
        container: str,
        *,
        lines: int = 200,
        keep: int = 5000,
        follow: bool = True,
        source: LineSource | None = None,
    ) -> None:
        """`source` replaces the engine (frozen lines for snapshots); by default the lines come
        from follow_logs(endpoint, container, tail)."""
        super().__init__()
        self.endpoint = endpoint
        self.source: LineSource = source or (lambda tail: follow_logs(endpoint, container, tail))
        self.container = container
        self.tail = lines
        self.keep = keep
        self.buffer = LogBuffer(keep)
        self.pattern = ""
        self.wrap = False
        self.following = follow
        self.problem: str | None = None
        self._recount_pending = False

    def compose(self) -> ComposeResult:
        yield Static(id="logs-header")
        yield Input(placeholder="filter (Enter keeps it, Esc clears)", id="logs-filter")
        yield RichLog(id="log", max_lines=self.keep, wrap=False, markup=False, auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        self.update_header()
        self.query_one("#log", RichLog).focus()
        self.start()

    @property
    def log_view(self) -> RichLog:
        return self.query_one("#log", RichLog)

    # ------------------------------------------------------------ reading

    def start(self) -> None:
        """(Re)start following: the last `tail` lines, then new ones. Lines written while
        paused are picked up by that tail, so the view starts over rather than keep a gap."""
        self.buffer.lines.clear()
        if self.is_mounted:
            self.log_view.clear()
        self._stream(self.tail)

    @work(group="logs", exclusive=True, exit_on_error=False)
    async def _stream(self, tail: int) -> None:
        self.problem = None
        stream = self.source(tail)
        try:
            async for line in stream:
                self.add_line(line)
                # The header counts the lines shown: recount once the burst that arrived
                # together is in (one header update per burst, not one per line).
                self._recount_soon()
            else:
                self.following = False
                self.problem = "the log stream ended (the container stopped?)"
        except ReadError as exc:
            self.following = False
            self.problem = f"{exc.what}: {exc}"
        finally:
            await stream.aclose()
            self.update_header()

    def _recount_soon(self) -> None:
        if not self._recount_pending:
            self._recount_pending = True
            self.call_later(self._recount)

    def _recount(self) -> None:
        self._recount_pending = False
        self.update_header()

    def add_line(self, line: str) -> None:
        self.buffer.append(line)
        if not self.pattern or self.pattern.casefold() in line.casefold():
            self.log_view.write(highlight(line, self.pattern))

    def redraw(self) -> None:
        view = self.log_view
        view.clear()
        for line in self.buffer.matching(self.pattern):
            view.write(highlight(line, self.pattern))
        view.scroll_end(animate=False)

    def shown_lines(self) -> list[str]:
        """The lines the view shows now (for tests and the CLI's twin)."""
        return self.buffer.matching(self.pattern)

    def update_header(self) -> None:
        try:
            header = self.query_one("#logs-header", Static)
        except Exception:
            return
        state = "following" if self.following else "paused"
        count = len(self.buffer.lines)
        text = Text.assemble(
            ("Logs ", "bold"),
            (f"{self.container}@{self.endpoint.name}", "bold"),
            f"  {state} · {count} line{'' if count == 1 else 's'}",
            f" · wrap {'on' if self.wrap else 'off'}",
        )
        if self.pattern:
            text.append(f" · filter {self.pattern!r}: {len(self.shown_lines())} match")
        if self.problem:
            text.append(f"  ⚠ {self.problem}", "bold red")
        update_static(header, text)

    # ------------------------------------------------------------ keys

    def action_close(self) -> None:
        box = self.query_one("#logs-filter", Input)
        if box.has_focus and box.value:
            box.value = ""
            return
        self.workers.cancel_group(self, "logs")
        self.dismiss(None)

    def action_filter(self) -> None:
        box = self.query_one("#logs-filter", Input)
        box.add_class("-active")
        box.focus()

    def set_filter(self, text: str) -> None:
        self.pattern = text
        self.redraw()
        self.update_header()

    @on(Input.Changed, "#logs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.set_filter(event.value)

    @on(Input.Submitted, "#logs-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value:
            self.query_one("#logs-filter", Input).remove_class("-active")
        self.log_view.focus()

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        self.log_view.wrap = self.wrap
        self.redraw()
        self.update_header()

    def action_toggle_follow(self) -> None:
        self.following = not self.following
        if self.following:
            self.start()
        else:
            self.workers.cancel_group(self, "logs")
        self.update_header()

    def action_jump_end(self) -> None:
        self.log_view.scroll_end(animate=False)
