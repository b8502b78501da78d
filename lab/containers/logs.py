"""Container lookups by name and container logs (a tail, or followed from a thread)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

from lab.containers.endpoint import DockerEndpoint, _explain
from lab.containers.parse import JSONDict, json_kind, objects, split_log_lines
from lab.poller import ReadError


async def _container_list(endpoint: DockerEndpoint, fn: Callable[[Any], Any]) -> list[JSONDict]:
    try:
        return objects(await endpoint.call(fn), "container list")
    except ValueError as exc:
        raise ReadError("not a Docker API", f"{endpoint.url}: {exc}") from None


async def find_container(endpoint: DockerEndpoint, name: str) -> JSONDict:
    """Inspect the container named exactly `name` (or with exactly this id); ReadError if none.
    The engine's name filter is a regex, so the match is checked here too."""
    summaries = await _container_list(
        endpoint, lambda api: api.containers(all=True, filters={"name": name})
    )
    exact = [s for s in summaries if name in [str(n).lstrip("/") for n in s.get("Names") or ()]]
    if not exact:
        everything = await _container_list(endpoint, lambda api: api.containers(all=True))
        exact = [
            s
            for s in everything
            if name in [str(n).lstrip("/") for n in s.get("Names") or ()] or s.get("Id") == name
        ]
    if not exact:
        raise ReadError("not found", f"no container named {name!r} on {endpoint.name}")
    cid = str(exact[0]["Id"])
    inspect = await endpoint.call(lambda api: api.inspect_container(cid))
    if not isinstance(inspect, dict):
        raise ReadError(
            "not a Docker API",
            f"{endpoint.url}: inspect of {cid[:12]}: expected an object, got {json_kind(inspect)}",
        )
    return inspect


async def list_names(endpoint: DockerEndpoint) -> dict[str, str]:
    """name → id of every container on the endpoint."""
    summaries = await _container_list(endpoint, lambda api: api.containers(all=True))
    out: dict[str, str] = {}
    for s in summaries:
        for n in s.get("Names") or ():
            out[str(n).lstrip("/")] = str(s["Id"])
    return out


def _decode(data: bytes | str) -> str:
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data


async def tail_logs(endpoint: DockerEndpoint, container: str, lines: int = 200) -> list[str]:
    """The last `lines` lines of a container's log (stdout and stderr); never the whole log."""
    lines = max(1, int(lines))
    inspect = await find_container(endpoint, container)
    cid = str(inspect["Id"])
    raw = await endpoint.call(lambda api: api.logs(cid, stdout=True, stderr=True, tail=lines))
    out, rest = split_log_lines("", _decode(raw))
    if rest:
        out.append(rest)
    return out[-lines:]


async def follow_logs(
    endpoint: DockerEndpoint, container: str, lines: int = 200, *, queue_size: int = 1000
) -> AsyncGenerator[str, None]:
    """The last `lines` lines, then every new line as it is written, until the consumer stops
    iterating (aclose / break / cancel), which closes the stream and ends the reader thread.

    A thread reads the SDK's blocking stream and feeds a bounded asyncio queue (it waits when
    the consumer is slow, so memory stays bounded)."""
    lines = max(0, int(lines))
    inspect = await find_container(endpoint, container)
    cid = str(inspect["Id"])
    stream = await endpoint.call(
        lambda api: api.logs(cid, stdout=True, stderr=True, stream=True, follow=True, tail=lines)
    )
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue(maxsize=queue_size)
    stopped = threading.Event()

    def put(item: str | BaseException | None) -> bool:
        fut = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while not stopped.is_set():
            try:
                fut.result(0.2)
                return True
            except TimeoutError:
                continue
        fut.cancel()
        return False

    def pump() -> None:
        buffer = ""
        try:
            for chunk in stream:
                if stopped.is_set():
                    return
                complete, buffer = split_log_lines(buffer, _decode(chunk))
                for line in complete:
                    if not put(line):
                        return
            if buffer and not stopped.is_set():
                put(buffer)
            put(None)
        except Exception as exc:
            if not stopped.is_set():
                put(_explain(exc, endpoint.url))

    thread = threading.Thread(target=pump, name=f"logs {endpoint.name}/{container}", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopped.set()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(stream.close)
        await asyncio.to_thread(thread.join, 5)


class LogBuffer:
    """The consumer side of a log view: the newest `maxlen` lines, nothing more."""

    def __init__(self, maxlen: int = 5000) -> None:
        self.lines: deque[str] = deque(maxlen=maxlen)

    def extend(self, lines: Iterable[str]) -> None:
        self.lines.extend(lines)

    def append(self, line: str) -> None:
        self.lines.append(line)

    def matching(self, pattern: str) -> list[str]:
        """Lines containing `pattern` (case-insensitive plain text, never a regex)."""
        if not pattern:
            return list(self.lines)
        p = pattern.lower()
        return [ln for ln in self.lines if p in ln.lower()]
