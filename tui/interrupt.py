"""SIGTERM and SIGHUP end hlcon the way Ctrl-C does, never the way kill -9 does.

Python's default for both is to die on the spot: no outcome audited, no rollback, the target's
children left running. A dropped SSH session sends SIGHUP; `systemctl stop` and `kill` send
SIGTERM. So:

- `install()` (every command, from tui.cli) makes both behave as SIGINT: whatever handles Ctrl-C
  at that moment handles them too (asyncio.run cancels its main task; elsewhere
  KeyboardInterrupt), and `exit_code()` is then 128 + the signal, as a shell reports it.
- `routed(loop, callback)` (the runs that must audit how they ended: `hlcon do`, the console)
  sends both to `callback(signal)` on the event loop instead, for as long as it is entered. A
  SIGHUP there first detaches the dead terminal (stdio → /dev/null), so nothing hangs writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
from collections.abc import Callable, Iterator
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGHUP)

received: list[signal.Signals] = []  # the signals that interrupted this process, in order


def describe(sig: signal.Signals | None = None) -> str:
    sig = sig or (received[-1] if received else signal.SIGINT)
    return f"interrupted by {sig.name}"


def exit_code() -> int:
    """128 + the signal that interrupted hlcon (130 for Ctrl-C)."""
    return 128 + int(received[-1] if received else signal.SIGINT)


def _like_ctrl_c(signum: int, frame: FrameType | None) -> None:
    received.append(signal.Signals(signum))
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # SIGINT ignored or default: still end, cleanly
        raise KeyboardInterrupt


def install() -> None:
    for sig in SIGNALS:
        with contextlib.suppress(ValueError):  # not the main thread: leave the defaults
            signal.signal(sig, _like_ctrl_c)


def detach_terminal() -> None:
    """Point stdin, stdout and stderr at /dev/null if they are a terminal (a character device):
    after a hangup every write to the terminal fails, and Textual's output thread dies on the
    first, after which the console's last writes (restoring the screen) wait forever on its full
    queue. Done in the signal handler itself, before anything else writes."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
    except OSError:
        return
    try:
        null_dev = os.fstat(null).st_rdev
        for fd in (0, 1, 2):
            with contextlib.suppress(OSError):
                st = os.fstat(fd)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev != null_dev:
                    os.dup2(null, fd)
    finally:
        os.close(null)


@contextlib.contextmanager
def routed(
    loop: asyncio.AbstractEventLoop,
    callback: Callable[[signal.Signals], None],
    *,
    detach_on_hangup: bool = True,
) -> Iterator[None]:
    """While entered, SIGTERM and SIGHUP call `callback(sig)` on `loop` (the handlers before are
    put back afterwards). The signal only schedules the callback: it runs between two steps of
    the loop, never inside whatever the main thread was doing."""

    def handler(signum: int, frame: FrameType | None) -> None:
        sig = signal.Signals(signum)
        received.append(sig)
        if sig == signal.SIGHUP and detach_on_hangup:
            detach_terminal()
        loop.call_soon_threadsafe(callback, sig)

    before: dict[signal.Signals, object] = {}
    try:
        for sig in SIGNALS:
            with contextlib.suppress(ValueError):
                before[sig] = signal.signal(sig, handler)
        yield
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
