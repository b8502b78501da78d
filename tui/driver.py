"""A Linux terminal driver whose input thread sleeps until there is input.

Textual's LinuxDriver reads keys in a thread that wakes every 0.1 s (`select(0.1)`) to give its
escape-sequence parser a chance to time out. Left in a tmux pane for weeks, those ten wake-ups a
second were about 0.2 % of a core — a third of hlcon's whole idle budget (bench/idle_cpu.py).
This driver blocks until the terminal has input, or until the parser's own deadline when it is
holding a lone ESC, and a pipe wakes it when the app disables input (quit, suspend).

Only `run_input_thread` and `disable_input` differ from Textual's (pinned in pyproject.toml);
the loop body is Textual's.
"""

from __future__ import annotations

import contextlib
import os
import selectors
from codecs import getincrementaldecoder
from typing import Any

from textual._loop import loop_last
from textual._time import get_time  # the parser's clock
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

IDLE_WAIT = 5.0  # seconds between wake-ups with no input and no pending escape (a safety net)


class QuietLinuxDriver(LinuxDriver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)

    def disable_input(self) -> None:
        # Wake the input thread so it sees exit_event at once instead of at its next timeout.
        if self._wake_write >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_write, b"x")
        super().disable_input()

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._wake_read, 512):
                pass

    def run_input_thread(self) -> None:
        """Textual's loop, with a select timeout that follows the parser's deadline."""
        self._drain_wake()
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        selector.register(self._wake_read, selectors.EVENT_READ)

        fileno = self.fileno
        parser = XTermParser(self._debug)
        feed = parser.feed
        tick = parser.tick
        decode = getincrementaldecoder("utf-8")().decode
        read = os.read

        def timeout() -> float:
            deadline = getattr(parser, "_timeout_time", "unknown")
            if deadline is None:
                return IDLE_WAIT  # nothing half-read: only input (or the wake pipe) matters
            if not isinstance(deadline, float | int):
                return 0.1  # a Textual without that attribute: its own cadence
            return max(0.0, min(0.1, deadline - get_time()))

        def process(events: list[tuple[selectors.SelectorKey, int]], final: bool = False) -> None:
            keyed = [(key, mask) for key, mask in events if key.fd == fileno]
            for last, (_key, mask) in loop_last(keyed):
                if mask & selectors.EVENT_READ:
                    data = decode(read(fileno, 1024 * 4), final=final and last)
                    if not data:
                        break  # stdin piped and closed
                    for event in feed(data):
                        self.process_message(event)
            for event in tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                process(selector.select(timeout()))
            selector.unregister(self.fileno)
            selector.unregister(self._wake_read)
            self._drain_wake()
            process(selector.select(0.1), final=True)
        finally:
            selector.close()
            with contextlib.suppress(Exception):
                for _ in feed(""):
                    pass

    def close(self) -> None:
        super().close()
        fds, (self._wake_read, self._wake_write) = (self._wake_read, self._wake_write), (-1, -1)
        for fd in fds:  # -1 from now on: a closed number may be reused by another file
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
