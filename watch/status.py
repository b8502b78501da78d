"""What a running `hlcon watch` says about its channels, for the other hlcon processes.

This module owns STATE_DIR/watch-status.json: the watch rewrites it (`write_status`) when a
channel starts or stops failing. One reader per [[notify]] channel (domain "notify") reads it,
so `hlcon status` and the console show a failing channel as a Fault — through the same store,
findings and exit code as every other source — without talking to the watch. With no watch
running, the reading says so and is no fault: nothing is claimed about a channel nobody uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.config import Config, state_dir
from lab.domains import Domain, register_domain
from lab.model import Key, utcnow
from lab.poller import Reader, ReadError

if TYPE_CHECKING:
    from lab.wiring import Lab

DOMAIN = "notify"
STATUS_FILE = "watch-status.json"


@dataclass(frozen=True)
class ChannelReading:
    at: datetime
    name: str
    kind: str
    watch_pid: int | None  # None: no hlcon watch running
    delivered: int = 0

    def summary(self) -> str:
        if self.watch_pid is None:
            return f"{self.kind} channel; no hlcon watch running"
        return f"{self.kind} channel, delivering (hlcon watch pid {self.watch_pid})"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_status(path: Path, doc: dict[str, Any]) -> None:
    """Replace the status file atomically (temp file, rename): readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_status(path: Path) -> dict[str, Any] | None:
    """The status file of a live watch, or None (none written, unreadable, its process gone)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid = doc.get("pid") if isinstance(doc, dict) else None
    if not isinstance(pid, int) or not _alive(pid):
        return None
    assert isinstance(doc, dict)
    return doc


class ChannelReader:
    def __init__(self, config: Config, name: str, kind: str) -> None:
        self.path = state_dir(config) / STATUS_FILE
        self.name, self.kind = name, kind
        self._interval = config.console.refresh
        self._timeout = config.console.timeout

    @property
    def key(self) -> Key:
        return (DOMAIN, self.name)

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def timeout(self) -> float:
        return self._timeout

    async def read(self) -> ChannelReading:
        doc = read_status(self.path)
        now = utcnow()
        if doc is None:
            return ChannelReading(now, self.name, self.kind, None)
        channel = next(
            (
                c
                for c in doc.get("channels") or ()
                if isinstance(c, dict) and c.get("name") == self.name
            ),
            None,
        )
        if channel is None:
            raise ReadError("not in the running watch", "hlcon watch runs an older config")
        if channel.get("failing_since"):
            raise ReadError(
                "notify channel failing",
                f"{self.name} ({self.kind}): {channel.get('last_error') or 'delivery failed'}; "
                f"failing since {channel['failing_since'][:19]} UTC, {channel.get('failures', '?')}"
                " tries (hlcon watch retries with backoff)",
            )
        return ChannelReading(
            now, self.name, self.kind, int(doc["pid"]), channel.get("delivered", 0)
        )

    async def close(self) -> None:
        pass


def readers(config: Config) -> list[Reader]:
    """One per [[notify]] channel (none without channels)."""
    return [ChannelReader(config, c.name, c.kind) for c in config.notify]


def lab_readers(lab: Lab) -> list[Reader]:
    return readers(lab.config)


# The notify domain's descriptor: Lab.readers() reads its channels wherever this module is
# imported (hlcon status, the console); hlcon watch does not read the file it writes itself.
NOTIFY = register_domain(
    Domain(
        DOMAIN,
        DOMAIN,
        "Notify",
        "notify",
        readers=lab_readers,
        always=False,
        polled_by_watch=False,
    )
)
