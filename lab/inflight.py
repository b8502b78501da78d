"""Blocking calls that a cancel cannot stop: tracked, so whoever cancelled can wait for them.

The docker SDK blocks, so its calls run in threads, and asyncio cannot stop a thread: a timeout
or Ctrl-C only stops the *waiting*. The engine's stop goes on (for its whole stop timeout), and
a runner that released the target's lock at that point let a second restart into a container
still being stopped. So a call made through `to_thread` inside a `track()` scope is recorded in
that scope (a contextvar: every task the action starts shares it), and `Scope.settle()` waits
until each has returned. Outside a scope (the readers) `to_thread` is asyncio.to_thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class Scope:
    """The blocking calls started by one action (its execute, verify and rollback)."""

    def __init__(self) -> None:
        self._calls: set[asyncio.Future[Any]] = set()

    @property
    def running(self) -> int:
        return sum(1 for f in self._calls if not f.done())

    def add(self, call: asyncio.Future[Any]) -> None:
        self._calls.add(call)
        call.add_done_callback(self._calls.discard)

    async def settle(self) -> None:
        """Return once every call recorded so far has ended (their results are not wanted:
        whoever awaited them has already been told). Cancelling this wait does not stop it."""
        while self._calls:
            pending = list(self._calls)
            waiting = asyncio.ensure_future(asyncio.wait(pending))
            while not waiting.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(waiting)
            for call in pending:
                if call.done() and not call.cancelled():
                    call.exception()  # retrieved: no "exception was never retrieved" warning
                self._calls.discard(call)


_current: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "hlcon_inflight", default=None
)


@contextlib.contextmanager
def track() -> Iterator[Scope]:
    scope = Scope()
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


async def to_thread(fn: Callable[..., T], /, *args: Any) -> T:
    """asyncio.to_thread, recorded in the current scope. A cancel still ends the *await* at
    once; the scope's owner waits for the thread with `settle()`."""
    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    call: asyncio.Future[T] = loop.run_in_executor(None, functools.partial(ctx.run, fn, *args))
    scope = _current.get()
    if scope is None:
        return await call
    scope.add(call)
    # Shielded: a cancel must not mark `call` done while its thread still runs.
    return await asyncio.shield(call)
