"""The latest reading or Fault per (domain, target), plus short numeric history for sparklines.

Readers publish through the poller; the TUI and `hlcon status` read. Subscribers are called on
the publishing thread (the poller runs on the event loop) with the key that changed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from lab.model import Fault, HasMetrics, Key, Reading

HISTORY = 120  # samples per metric: 10 minutes at the default 5 s refresh


@dataclass
class Entry:
    key: Key
    reading: Reading | None = None  # the last good reading, kept while faulted
    fault: Fault | None = None  # set while the latest poll failed
    history: dict[str, deque[float]] = field(default_factory=dict)

    @property
    def last_ok(self) -> datetime | None:
        return self.reading.at if self.reading is not None else None

    @property
    def updated(self) -> datetime | None:
        """When this entry last changed: the newer of the reading and the fault."""
        times = [t for t in (self.last_ok, self.fault.at if self.fault else None) if t]
        return max(times) if times else None


Listener = Callable[[Key], None]


class Store:
    def __init__(self) -> None:
        self._entries: dict[Key, Entry] = {}
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def expect(self, key: Key) -> Entry:
        """Make an entry exist before its first poll, so panes can show 'waiting'."""
        return self._entries.setdefault(key, Entry(key))

    def publish(self, key: Key, reading: Reading) -> None:
        entry = self.expect(key)
        entry.reading = reading
        entry.fault = None
        if isinstance(reading, HasMetrics):
            for name, value in reading.metrics().items():
                entry.history.setdefault(name, deque(maxlen=HISTORY)).append(value)
        self._notify(key)

    def publish_fault(self, key: Key, fault: Fault) -> None:
        self.expect(key).fault = fault
        self._notify(key)

    def get(self, key: Key) -> Entry | None:
        return self._entries.get(key)

    def domain(self, domain: str) -> list[Entry]:
        return [e for k, e in self._entries.items() if k[0] == domain]

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def _notify(self, key: Key) -> None:
        for listener in list(self._listeners):
            listener(key)
