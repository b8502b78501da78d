"""Schedules every reader: one task per (domain, target), re-armed after each poll for the next
slot of a grid all readers share (so readers with one interval poll, and repaint, together).

Polls of one target never overlap (the next sleep starts only after the poll ends), each poll
has a timeout, and failures back off exponentially up to a cap. A reader's exception becomes a
Fault in the store; it never reaches the UI.

While backing off, a reader that was read before and has a cheap `probe()` (an SSH host: a TCP
connect to its port) is probed once an interval: the first probe that says it answers again
ends the backoff, so a host back from a restart is read within `interval + timeout` of its
return instead of after minutes of backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

from lab.model import Fault, Key, Reading, utcnow
from lab.store import Store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Monotonic = Callable[[], float]
Wait = Callable[[asyncio.Event, float], Awaitable[bool]]
"""wait(event, seconds) → True when the event was set (a refresh), False when the time ran out."""


# asyncio.timeout, never asyncio.wait_for, around every await here: Python 3.11's wait_for
# loses a cancel that arrives as the awaited thing finishes (it returns the result instead),
# and a poll loop whose cancel is lost never ends — Poller.stop() hung in 15 of 30 stops of a
# reader that answers at once (tests/unit/test_poller_store.py::test_stop_always_ends).


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
        return True
    return False


class ReadError(Exception):
    """A reader's expected failure: `what` names it ("host unreachable"), str() says why."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(why)
        self.what = what


class Reader(Protocol):
    """One target of one domain. `read()` returns a reading or raises (ReadError preferred)."""

    @property
    def key(self) -> Key: ...

    @property
    def interval(self) -> float: ...

    @property
    def timeout(self) -> float: ...

    async def read(self) -> Reading: ...

    async def close(self) -> None: ...


class Probing(Protocol):
    """A reader that can tell cheaply whether its target answers again (while backing off)."""

    async def probe(self) -> bool: ...


def describe(exc: BaseException) -> tuple[str, str]:
    """(what, why) for an exception, one line each."""
    if isinstance(exc, ReadError):
        return exc.what, str(exc)
    if isinstance(exc, TimeoutError):
        return "timed out", "no answer within the poll timeout"
    why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return "read failed", f"{type(exc).__name__}: {why}"


class Poller:
    def __init__(
        self,
        store: Store,
        readers: Sequence[Reader],
        *,
        clock: Clock = utcnow,
        max_backoff: float = 300.0,
        monotonic: Monotonic = time.monotonic,
        wait: Wait = wait_event,
    ) -> None:
        """`monotonic` and `wait` are the scheduling hooks: tests drive the loop's decisions
        with a fake clock instead of waiting for real time."""
        self.store = store
        self.readers = list(readers)
        self.clock = clock
        self.max_backoff = max_backoff
        self.monotonic = monotonic
        self.wait = wait
        self.backoff_ended: dict[Key, str] = {}  # why the last backoff ended: time/refresh/probe
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self._wake: dict[Key, asyncio.Event] = {}
        self._epoch = monotonic()
        for reader in self.readers:
            store.expect(reader.key)

    async def poll(self, reader: Reader) -> bool:
        """One poll with its timeout; publishes a reading or a fault. True on success."""
        key = reader.key
        try:
            async with asyncio.timeout(reader.timeout):
                reading = await reader.read()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a reader must never take the console down
            what, why = describe(exc)
            log.debug("poll %s failed: %s", key, why)
            now = self.clock()
            previous = self.store.expect(key).fault
            if previous is not None and previous.what == what:
                fault = previous.again(now, why)
            else:
                since = previous.since if previous is not None else now
                fault = Fault(what, f"{key[0]}:{key[1]}", since, why, now)
            self.store.publish_fault(key, fault)
            return False
        self.store.publish(key, reading)
        return True

    async def poll_all(self) -> None:
        """One pass over every reader, concurrently (`hlcon status`). A cancel (Ctrl-C) returns
        only once every poll has ended — each kills and reaps its command — not at the first."""
        polls = [asyncio.ensure_future(self.poll(r)) for r in self.readers]
        try:
            await asyncio.gather(*polls)
        except BaseException:
            for poll in polls:
                poll.cancel()
            while not all(p.done() for p in polls):
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait(polls)
            raise

    async def _loop(self, reader: Reader) -> None:
        failures = 0
        probed = False  # this poll was made because a probe found the target back
        wake = self._wake[reader.key]
        while True:
            ok = await self.poll(reader)
            failures = 0 if ok else failures + 1
            if ok and probed:
                # Back from a restart: what else failed may have failed for the same reason
                # (a host's containers, services, certs over its SSH): retry those now too.
                self.retry_faulted(but=reader.key)
            probed = False
            wake.clear()
            if ok:
                # The next slot of a grid shared by every reader: readers with the same interval
                # poll together and their readings reach the screen in one repaint, where
                # "interval after the last poll ended" let them drift apart into one repaint
                # each. Still never two polls of one target at once: this loop is sequential.
                interval, since = reader.interval, self.monotonic() - self._epoch
                delay = interval - since % interval if interval > 0 else 0
                await self.wait(wake, delay)
            else:
                delay = min(reader.interval * 2**failures, self.max_backoff)
                ended = await self.back_off(reader, delay, wake)
                self.backoff_ended[reader.key] = ended
                probed = ended == "probe"

    def retry_faulted(self, *, but: Key) -> None:
        """Wake every other reader whose last poll failed (one extra poll each at most: one
        still failing goes back to its backoff)."""
        for key, event in self._wake.items():
            entry = self.store.get(key)
            if key != but and entry is not None and entry.fault is not None:
                event.set()

    async def back_off(self, reader: Reader, delay: float, wake: asyncio.Event) -> str:
        """Wait out a failed poll's backoff of `delay` seconds; returns why it ended: "time",
        "refresh" (`refresh()` was called) or "probe" (the target answers again).

        A reader that was read before and can `probe()` is probed on a fixed cadence of its
        interval meanwhile, each probe given at most min(timeout, interval): so a probe starts
        within one interval of the target's return, and the poll it triggers ends within the
        timeout after that."""
        probe = getattr(reader, "probe", None)
        entry = self.store.get(reader.key)
        step = reader.interval
        if probe is None or entry is None or entry.reading is None or not 0 < step < delay:
            return "refresh" if await self.wait(wake, delay) else "time"
        start = self.monotonic()
        end = start + delay
        ticks = 1
        while True:
            now = self.monotonic()
            tick = min(start + ticks * step, end)
            if now < tick and await self.wait(wake, tick - now):
                return "refresh"
            if self.monotonic() >= end:
                return "time"
            ticks = int((self.monotonic() - start) // step) + 1  # the next tick not yet due
            try:
                async with asyncio.timeout(min(reader.timeout, step)):
                    answered = await probe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a probe is a hint: failing it changes nothing
                log.debug("probe %s failed: %s", reader.key, exc)
                answered = False
            if answered:
                log.debug("probe %s: answers again, polling now", reader.key)
                return "probe"

    def start(self) -> None:
        for reader in self.readers:
            if reader.key not in self._tasks:
                self._wake[reader.key] = asyncio.Event()
                self._tasks[reader.key] = asyncio.create_task(
                    self._loop(reader), name=f"poll {reader.key[0]}:{reader.key[1]}"
                )

    def refresh(self, key: Key | None = None) -> None:
        """Poll now (one target or all) instead of waiting for the interval."""
        for k, event in self._wake.items():
            if key is None or k == key:
                event.set()

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        # A cancel lost inside a library's own wait_for would leave a loop running: ask again
        # until every loop has ended.
        while pending := [t for t in tasks if not t.done()]:
            await asyncio.wait(pending, timeout=1.0)
            for task in pending:
                if not task.done():
                    task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
        self._tasks.clear()
        for reader in self.readers:
            with contextlib.suppress(Exception):
                await reader.close()
