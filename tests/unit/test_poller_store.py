"""Poller and store: no overlapping polls, timeouts and failures become Faults, backoff, history."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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

    def summary(self) -> str:
        return f"v={self.value}"


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


async def test_stop_always_ends() -> None:
    """stop() ends however the cancel meets a poll: with asyncio.wait_for, a cancel landing as a
    read finished was lost on Python 3.11 and the loop polled on for ever (15 of these 30 stops
    hung). The bound only tells a hang from an end; a stop takes milliseconds."""
    hung = 0
    for i in range(30):
        reader = ScriptedReader([1.0] * 100_000, interval=0.0, duration=0.0)
        poller = Poller(Store(), [reader])
        poller.start()
        await asyncio.sleep(0.001 * (i % 7))
        stopping = asyncio.ensure_future(poller.stop())
        done, _ = await asyncio.wait({stopping}, timeout=5.0)
        if not done:
            hung += 1
            for task in poller._tasks.values():  # end the runaway loop before the next round
                task.cancel()
    assert hung == 0, f"{hung} of 30 stops did not end"


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
    assert isinstance(entry.reading, Sample) and entry.reading.value == 5.0
    assert not await poller.poll(reader)
    assert entry.fault.since == first_since and entry.fault.at > first_since
    assert entry.fault.what == "test unreachable" and "refused" in entry.fault.why
    assert await poller.poll(reader)
    # a fresh look: mypy keeps `entry.fault` narrowed to a Fault across the awaited poll
    recovered = store.get(reader.key)
    assert recovered is entry and recovered.fault is None
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


# ---------------------------------------------------------------- a host that comes back


class FakeTime:
    """The poller's scheduling hooks on a fake clock: `wait` moves time on instead of sleeping
    (and runs what `script` holds for the times it passes), so the poller's decisions are seen
    without waiting for them."""

    def __init__(self, script: dict[float, Callable[[], None]]) -> None:
        self.now = 0.0
        self.script = dict(script)

    def monotonic(self) -> float:
        return self.now

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        self.now += seconds
        for at in sorted(t for t in self.script if t <= self.now):
            self.script.pop(at)()
        await asyncio.sleep(0)  # let the test see what happened
        return False


class ReturningHost:
    """A reader whose target goes down and comes back; `probe` says whether it answers."""

    interval = 5.0
    timeout = 2.0

    def __init__(self, time: FakeTime, *, up: bool = True) -> None:
        self.time = time
        self.up = up
        self.log: list[tuple[str, float]] = []
        self.read_again = asyncio.Event()
        self.returned_at: float | None = None

    @property
    def key(self) -> Key:
        return ("host", "returning")

    def go_down(self) -> None:
        self.up = False

    def come_back(self) -> None:
        self.up, self.returned_at = True, self.time.now

    async def read(self) -> Sample:
        # The log ends at the first good read after the return: fake time runs on until stop()
        # lands, and how many loop turns that takes is the event loop's business.
        if self.read_again.is_set():
            return Sample(datetime.now(UTC), 1.0)
        self.log.append(("poll", self.time.now))
        if not self.up:
            raise ReadError("host unreachable", "connection refused")
        if self.returned_at is not None:
            self.read_again.set()
        return Sample(datetime.now(UTC), 1.0)

    async def probe(self) -> bool:
        if not self.read_again.is_set():
            self.log.append(("probe", self.time.now))
        return self.up

    async def close(self) -> None:
        pass


async def test_a_host_that_comes_back_is_polled_at_the_next_probe_tick() -> None:
    """Down at t=5, back at t=42, in the middle of a 40 s backoff (the poll at t=35 failed for
    the third time): the probe at t=45 finds it and the poll follows at once — within
    interval + timeout of its return, not at t=75 when the backoff ends."""
    time = FakeTime({})
    host = ReturningHost(time)
    time.script = {5.0: host.go_down, 42.0: host.come_back}
    store = Store()
    poller = Poller(store, [host], monotonic=time.monotonic, wait=time.wait, max_backoff=300)
    poller.start()
    try:
        await asyncio.wait_for(host.read_again.wait(), 10)  # fake time: no real waiting
    finally:
        await poller.stop()
    polls = [t for what, t in host.log if what == "poll"]
    assert polls == [0.0, 5.0, 15.0, 35.0, 45.0]  # 5 + 10, + 20: backing off as before
    probes = [t for what, t in host.log if what == "probe"]
    assert probes == [10.0, 20.0, 25.0, 30.0, 40.0, 45.0]  # once an interval while backing off
    assert host.log[-2:] == [("probe", 45.0), ("poll", 45.0)]  # the probe's answer: poll now
    assert host.returned_at is not None
    assert polls[-1] - host.returned_at <= host.interval + host.timeout
    assert poller.backoff_ended[host.key] == "probe"
    entry = store.get(host.key)
    assert entry is not None and entry.fault is None


async def test_a_host_never_read_is_not_probed() -> None:
    """Only a host that was reachable before is probed; one never read just backs off."""
    time = FakeTime({})
    host = ReturningHost(time, up=False)
    time.script = {100.0: host.come_back}
    poller = Poller(Store(), [host], monotonic=time.monotonic, wait=time.wait)
    poller.start()
    try:
        await asyncio.wait_for(host.read_again.wait(), 10)
    finally:
        await poller.stop()
    assert [what for what, _ in host.log if what == "probe"] == []
    assert [t for what, t in host.log if what == "poll"] == [0.0, 10.0, 30.0, 70.0, 150.0]
