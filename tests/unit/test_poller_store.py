"""Poller and store: no overlapping polls, timeouts and failures become Faults, backoff, history."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lab.model import Key
from lab.poller import Poller, ReadError
from lab.store import HISTORY, Store


@dataclass(frozen=True)
class Sample:
    at: datetime
    value: float

    def metrics(self) -> dict[str, float]:
        return {"v": self.value}


class ScriptedReader:
    """A reader whose polls follow a script: a number, "fail", or "hang"."""

    def __init__(
        self,
        script: list[object],
        *,
        interval: float = 0.01,
        timeout: float = 0.2,
        name: str = "t1",
        duration: float = 0.02,
    ):
        self.script = list(script)
        self.name = name
        self.duration = duration
        self.starts: list[float] = []
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self._interval = interval
        self._timeout = timeout
        self.closed = False

    @property
    def key(self) -> Key:
        return ("test", self.name)

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def timeout(self) -> float:
        return self._timeout

    async def read(self) -> Sample:
        self.calls += 1
        self.starts.append(asyncio.get_running_loop().time())
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            step = self.script.pop(0) if self.script else 1.0
            await asyncio.sleep(self.duration)  # long enough that an overlapping poll would show
            if step == "fail":
                raise ReadError("test unreachable", "connection refused")
            if step == "hang":
                await asyncio.sleep(10)
            assert isinstance(step, float)
            return Sample(datetime.now(UTC), step)
        finally:
            self.active -= 1

    async def close(self) -> None:
        self.closed = True


async def test_polls_never_overlap_and_rearm() -> None:
    store = Store()
    reader = ScriptedReader([1.0] * 50, interval=0.0)
    poller = Poller(store, [reader])
    poller.start()
    await asyncio.sleep(0.3)
    await poller.stop()
    assert reader.calls >= 5
    assert reader.max_active == 1
    assert reader.closed


async def test_readers_of_one_interval_stay_in_step() -> None:
    """A slow and a fast reader with one interval start their polls together every time (one
    repaint per round), instead of the slow one drifting by its duration each round."""
    store = Store()
    fast = ScriptedReader([1.0] * 50, interval=0.3, name="fast", duration=0.0)
    slow = ScriptedReader([1.0] * 50, interval=0.3, name="slow", duration=0.1)
    poller = Poller(store, [fast, slow])
    poller.start()
    await asyncio.sleep(1.25)
    await poller.stop()
    rounds = min(len(fast.starts), len(slow.starts))
    assert rounds >= 4, (fast.starts, slow.starts)
    # drifting would put the 4th polls 0.3 s apart; in step they start within a loop tick
    gaps = [abs(a - b) for a, b in zip(fast.starts[:rounds], slow.starts[:rounds], strict=True)]
    assert max(gaps) < 0.08, gaps


async def test_failure_keeps_last_reading_and_since() -> None:
    ticks = iter(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i) for i in range(100))
    store = Store()
    reader = ScriptedReader([5.0, "fail", "fail", 7.0])
    poller = Poller(store, [reader], clock=lambda: next(ticks))
    assert await poller.poll(reader)
    assert not await poller.poll(reader)
    entry = store.get(reader.key)
    assert entry is not None and entry.fault is not None
    first_since = entry.fault.since
    assert entry.reading is not None and entry.reading.value == 5.0  # type: ignore[attr-defined]
    assert not await poller.poll(reader)
    assert entry.fault.since == first_since and entry.fault.at > first_since
    assert entry.fault.what == "test unreachable" and "refused" in entry.fault.why
    assert await poller.poll(reader)
    assert entry.fault is None
    assert list(entry.history["v"]) == [5.0, 7.0]


async def test_timeout_is_a_fault() -> None:
    store = Store()
    reader = ScriptedReader(["hang"], timeout=0.05)
    poller = Poller(store, [reader])
    assert not await poller.poll(reader)
    entry = store.get(reader.key)
    assert entry is not None and entry.fault is not None
    assert entry.fault.what == "timed out"


async def test_backoff_slows_a_failing_reader() -> None:
    store = Store()
    failing = ScriptedReader(["fail"] * 100, interval=0.01)
    poller = Poller(store, [failing], max_backoff=10)
    poller.start()
    await asyncio.sleep(0.5)
    await poller.stop()
    # without backoff: ~16 polls in 0.5 s (0.02 s read + 0.01 s sleep); with it, a handful
    assert 2 <= failing.calls <= 7


async def test_refresh_wakes_a_sleeping_reader() -> None:
    store = Store()
    reader = ScriptedReader([1.0, 2.0, 3.0], interval=60)
    poller = Poller(store, [reader])
    poller.start()
    await asyncio.sleep(0.1)
    assert reader.calls == 1
    poller.refresh(reader.key)
    await asyncio.sleep(0.1)
    await poller.stop()
    assert reader.calls == 2


def test_history_is_bounded_and_listeners_hear() -> None:
    store = Store()
    heard: list[Key] = []
    unsubscribe = store.subscribe(heard.append)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(HISTORY + 30):
        store.publish(("test", "x"), Sample(now, float(i)))
    entry = store.get(("test", "x"))
    assert entry is not None and len(entry.history["v"]) == HISTORY
    assert entry.history["v"][-1] == HISTORY + 29
    assert len(heard) == HISTORY + 30
    unsubscribe()
    store.publish(("test", "x"), Sample(now, 0.0))
    assert len(heard) == HISTORY + 30
