"""The containers reader: one per endpoint, the engine's event stream telling it what changed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lab.containers.endpoint import DockerEndpoint, endpoints
from lab.containers.parse import (
    DOMAIN,
    JSONDict,
    StatsSample,
    _dict,
    json_kind,
    objects,
    parse_container,
    parse_stats,
    summary_key,
)
from lab.model import Container, ContainerEndpointState, utcnow
from lab.poller import ReadError

if TYPE_CHECKING:
    from lab.poller import Reader
    from lab.wiring import Lab

log = logging.getLogger("lab.containers")

INSPECT_MAX_AGE = 60.0  # re-inspect an unchanged container at least this often (seconds)
FULL_READ_EVERY = 60.0  # read the whole list at least this often, events or not (seconds)


class EventWatch:
    """Which containers changed since the last refresh, from the engine's event stream (a thread
    reading the SDK's blocking stream). While it runs, a refresh can skip the container list
    and re-inspect only what changed; when it is not running, everything counts as changed."""

    # Actions that change the set of containers (or their names): the list must be read again.
    SET_CHANGES = frozenset({"create", "remove", "destroy", "rename"})

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dirty: set[str] = set()
        self._everything = True
        self.alive = False
        self._stream: Any = None
        self._thread: threading.Thread | None = None

    def take(self) -> tuple[set[str], bool]:
        """(ids changed, whether everything must be read again), and start afresh."""
        with self._lock:
            dirty, everything = self._dirty, self._everything or not self.alive
            self._dirty, self._everything = set(), False
        return dirty, everything

    def mark(self, event: Mapping[str, Any]) -> None:
        actor = event.get("Actor") if isinstance(event.get("Actor"), Mapping) else {}
        cid = str(event.get("id") or event.get("ID") or (actor or {}).get("ID") or "")
        action = str(event.get("Action") or event.get("status") or event.get("Status") or "")
        with self._lock:
            if not cid or action.split(":")[0] in self.SET_CHANGES:
                self._everything = True
            else:
                self._dirty.add(cid)

    async def start(self, endpoint: DockerEndpoint) -> None:
        if self.alive:
            return
        stream = await endpoint.call(
            lambda api: api.events(decode=True, filters={"type": "container"})
        )
        self._stream = stream
        with self._lock:
            self.alive, self._everything = True, True
        self._thread = threading.Thread(
            target=self._run, args=(stream,), name=f"events {endpoint.name}", daemon=True
        )
        self._thread.start()
        if self.stop not in endpoint.on_close:
            endpoint.on_close.append(self.stop)

    def _run(self, stream: Any) -> None:
        try:
            for event in stream:
                if isinstance(event, Mapping):
                    self.mark(event)
        except Exception:  # the connection went away: fall back to full reads
            log.debug("container event stream ended", exc_info=True)
        finally:
            with self._lock:
                self.alive, self._everything = False, True

    async def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(stream.close)
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, 5)


class ContainersReader:
    """Every container of one endpoint, with CPU % and memory, as a ContainerEndpointState.

    A refresh reads stats (podman: one libpod call for all; Docker: one one-shot call per
    running container) and re-inspects only containers that changed: the engine's events say
    which; without events (or every FULL_READ_EVERY seconds) the list says which."""

    def __init__(
        self,
        endpoint: DockerEndpoint,
        *,
        interval: float = 5.0,
        timeout: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
        use_events: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self._interval = interval
        self._timeout = timeout
        self.clock = clock
        self._samples: dict[str, StatsSample] = {}
        # id → (summary key, when inspected (monotonic), inspect JSON)
        self._inspects: dict[str, tuple[tuple[str, ...], float, JSONDict]] = {}
        self._listed_at = float("-inf")
        self.events = EventWatch() if use_events else None
        self.full_reads = 0  # how many refreshes read the list (for tests and the bench)

    @property
    def key(self) -> tuple[str, str]:
        return (DOMAIN, self.endpoint.name)

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def timeout(self) -> float:
        return self._timeout

    async def close(self) -> None:
        if self.events is not None:
            await self.events.stop()
        await self.endpoint.aclose()

    async def read(self) -> ContainerEndpointState:
        ep = self.endpoint
        await ep.client()
        dirty: set[str] = set()
        everything = True
        if self.events is not None:
            with contextlib.suppress(ReadError):  # no events: full reads, as before
                await self.events.start(ep)
            dirty, everything = self.events.take()
        if time.monotonic() - self._listed_at > FULL_READ_EVERY:
            everything = True
        if everything:
            inspects = await self._read_list(dirty)
        else:
            inspects = await self._inspect_dirty(dirty)
        stats = await self._stats()
        if not everything and set(stats) - set(inspects):
            inspects = await self._read_list(dirty)  # a container we never saw: read the list
        now = self.clock()
        containers: list[Container] = []
        samples: dict[str, StatsSample] = {}
        for cid, inspect in inspects.items():
            st = stats.get(cid)
            try:
                container = parse_container(inspect, st, self._samples.get(cid), now=now)
                if st is not None and container.state == "running":
                    samples[cid] = parse_stats(st)
            except ValueError as exc:
                raise ReadError(
                    "not a Docker API", f"{ep.url}: container {cid[:12]}: {exc}"
                ) from exc
            containers.append(container)
        self._samples = samples
        containers.sort(key=lambda c: c.name)
        return ContainerEndpointState(
            at=now,
            endpoint=ep.name,
            engine=ep.engine or "?",
            api_version=ep.api_version or "?",
            containers=tuple(containers),
        )

    async def _read_list(self, dirty: set[str]) -> dict[str, JSONDict]:
        summaries = await self._list()
        self._listed_at = time.monotonic()
        self.full_reads += 1
        return await self._inspect_changed(summaries, dirty)

    async def _list(self) -> list[JSONDict]:
        ep = self.endpoint
        if ep.is_podman:
            summaries = await ep.libpod("/containers/json", all="true")
        else:
            summaries = await ep.call(lambda api: api.containers(all=True))
        try:
            return objects(summaries, "container list")
        except ValueError as exc:
            raise ReadError("not a Docker API", f"{ep.url}: {exc}") from None

    async def _stats(self) -> dict[str, JSONDict]:
        ep = self.endpoint
        if ep.is_podman:
            answer = await ep.libpod("/containers/stats", stream="false")
            try:
                entries = objects(_dict(answer, "answer").get("Stats") or [], "Stats")
            except ValueError as exc:
                raise ReadError("not a Docker API", f"{ep.url}: libpod stats: {exc}") from None
            return {str(s.get("ContainerID")): s for s in entries if s}
        running = [
            cid
            for cid, (_, _, data) in self._inspects.items()
            # a State of the wrong shape is reported by parse_container, with the container
            if isinstance(data.get("State"), Mapping) and data["State"].get("Running")
        ]

        async def one(cid: str) -> tuple[str, JSONDict | None]:
            try:
                st = await ep.limited(lambda api: api.stats(cid, stream=False, one_shot=True))
            except ReadError as exc:
                if exc.what in ("not found", "docker API error"):
                    return cid, None  # stopped or removed meanwhile
                raise
            return cid, st

        results = await asyncio.gather(*(one(c) for c in running))
        return {cid: st for cid, st in results if st is not None}

    async def _inspect_one(self, cid: str, key: tuple[str, ...], now: float) -> JSONDict | None:
        try:
            data: JSONDict = await self.endpoint.limited(lambda api: api.inspect_container(cid))
        except ReadError as exc:
            if exc.what == "not found":
                self._inspects.pop(cid, None)
                return None
            raise
        if not isinstance(data, dict):
            raise ReadError(
                "not a Docker API",
                f"{self.endpoint.url}: inspect of {cid[:12]}: expected an object, "
                f"got {json_kind(data)}",
            )
        self._inspects[cid] = (key, now, data)
        return data

    async def _inspect_changed(
        self, summaries: list[JSONDict], dirty: set[str]
    ) -> dict[str, JSONDict]:
        now = time.monotonic()
        out: dict[str, JSONDict] = {}
        todo: list[tuple[str, tuple[str, ...]]] = []
        for s in summaries:
            cid = str(s.get("Id", ""))
            key = summary_key(s)
            cached = self._inspects.get(cid)
            if (
                cached
                and cid not in dirty
                and cached[0] == key
                and now - cached[1] < INSPECT_MAX_AGE
            ):
                out[cid] = cached[2]
            else:
                todo.append((cid, key))
        results = await asyncio.gather(*(self._inspect_one(c, k, now) for c, k in todo))
        for (cid, _), data in zip(todo, results, strict=True):
            if data is not None:
                out[cid] = data
        seen = {str(s.get("Id", "")) for s in summaries}
        for gone in set(self._inspects) - seen:
            del self._inspects[gone]
        return {
            str(s.get("Id", "")): out[str(s.get("Id", ""))]
            for s in summaries
            if str(s.get("Id", "")) in out
        }

    async def _inspect_dirty(self, dirty: set[str]) -> dict[str, JSONDict]:
        now = time.monotonic()
        todo = [cid for cid in dirty if cid in self._inspects]
        await asyncio.gather(*(self._inspect_one(c, ("event",), now) for c in todo))
        return {cid: entry[2] for cid, entry in self._inspects.items()}


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def readers(lab: Lab) -> list[Reader]:
    c = lab.config.console
    return [
        ContainersReader(e, interval=c.refresh, timeout=c.timeout, clock=lab.clock)
        for e in endpoints(lab)
    ]
