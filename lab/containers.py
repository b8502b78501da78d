"""Containers: Docker and Podman endpoints read through the Docker SDK (which blocks: every call
runs in a thread via asyncio.to_thread, never on the event loop).

Endpoints
---------
`DockerEndpoint(name, url)` or `DockerEndpoint(name, url_provider=fn)`:

- `url` is fixed: "unix:///run/podman/podman.sock", "tcp://10.0.0.5:2375".
- `url_provider` is an `async () -> str` called whenever a client must be (re)made; lab.ssh uses
  it to hand over the URL of a remote socket forwarded over SSH (the forward may move between
  reconnects, so the URL is asked for again after a connection failure). lab.ssh may expose
  `docker_url_provider(lab, host) -> UrlProvider`; hosts with `containers = "ssh"` get an
  endpoint only once it exists.

Where endpoints come from (`endpoints(lab)`, made once per Lab and shared by the reader, the
actions and the logs screen): `[local] containers` ("auto": $DOCKER_HOST, /var/run/docker.sock,
/run/podman/podman.sock, $XDG_RUNTIME_DIR/podman/podman.sock, the first that answers; "none";
or a URL), every `[[containers]]` entry, and `[[hosts]]` whose `containers` is a URL or "ssh".

Reading
-------
Pure functions turn the engine's JSON into readings (`parse_container`, `parse_stats`,
`cpu_percent`, `parse_version`); tests feed them JSON captured from real podman
(tests/data/containers/). A full refresh costs, on podman, two calls (the libpod list and the
libpod stats of every container in one answer) plus an inspect of each container whose state
changed since it was last inspected; on Docker, a list, inspects of changed containers and one
`stats(one_shot=True)` per running container (bounded concurrency). CPU % comes from the counters
of the previous reading (the engine's own two-sample stats would cost a 1 s wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lab import inflight
from lab.model import Container, ContainerEndpointState, PortMapping, utcnow
from lab.poller import ReadError

if TYPE_CHECKING:
    from lab.poller import Reader
    from lab.wiring import Lab

T = TypeVar("T")
UrlProvider = Callable[[], Awaitable[str]]
JSONDict = dict[str, Any]

log = logging.getLogger(__name__)

DOMAIN = "containers"
STATS_CONCURRENCY = 8  # parallel per-container calls (inspect, stats) on one endpoint
INSPECT_MAX_AGE = 60.0  # re-inspect an unchanged container at least this often (seconds)
FULL_READ_EVERY = 60.0  # read the whole list at least this often, events or not (seconds)
LIBPOD = "/v4.0.0/libpod"

# ---------------------------------------------------------------- pure parsers

_ZERO_TIME = re.compile(r"^0001-01-01")
_FRACTION = re.compile(r"\.(\d+)")


def parse_time(value: object) -> datetime | None:
    """An engine timestamp (RFC 3339 with up to nanoseconds, or unix seconds) → aware UTC; the
    engines' "never" (0001-01-01…, 0, negative) → None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        if value <= 0:
            return None
        try:
            return datetime.fromtimestamp(value, UTC)
        except (ValueError, OverflowError, OSError):
            raise ValueError(f"not a timestamp: {value!r} (out of range)") from None
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    if _ZERO_TIME.match(value):
        return None
    text = _FRACTION.sub(lambda m: "." + m[1][:6].ljust(6, "0"), value, count=1)
    text = text.replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class StatsSample:
    """One container's counters at one moment: enough for CPU % against the next sample."""

    cpu_ns: int  # the container's CPU time, all CPUs
    read_ns: int  # when the engine read it (unix ns)
    mem_usage: int | None
    mem_limit: int | None


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what}: expected a number, got {value!r}")
    return int(value)


def json_kind(value: object) -> str:
    """What a JSON value is, for messages: "a string", "an array", "an object" …"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _dict(value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{what}: expected an object, got {json_kind(value)}")
    return value


def objects(value: object, what: str) -> list[JSONDict]:
    """A JSON array of objects, checked: ValueError naming the first entry that is not one."""
    if not isinstance(value, list):
        raise ValueError(f"{what} is {json_kind(value)}, not a list")
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise ValueError(f"{what}: entry {i} is {json_kind(entry)}, not an object")
    return value


def parse_stats(stats: Mapping[str, Any]) -> StatsSample:
    """Docker's /containers/ID/stats answer, or one entry of podman's libpod stats → a sample."""
    if not isinstance(stats, Mapping):
        raise ValueError(f"stats: expected an object, got {type(stats).__name__}")
    if "CPUNano" in stats:  # libpod: SystemNano is the wall clock in ns
        usage = _int(stats.get("MemUsage", 0), "MemUsage")
        limit = _int(stats.get("MemLimit", 0), "MemLimit")
        return StatsSample(
            _int(stats["CPUNano"], "CPUNano"),
            _int(stats.get("SystemNano", 0), "SystemNano"),
            usage or None,
            limit or None,
        )
    if "cpu_stats" not in stats:
        raise ValueError("stats: neither Docker (cpu_stats) nor libpod (CPUNano) format")
    cpu = _dict(stats["cpu_stats"], "cpu_stats")
    usage_block = _dict(cpu.get("cpu_usage"), "cpu_stats.cpu_usage")
    read = parse_time(stats.get("read"))
    mem = _dict(stats.get("memory_stats"), "memory_stats")
    mem_usage: int | None = None
    if "usage" in mem:
        inner = _dict(mem.get("stats"), "memory_stats.stats")
        # As `docker stats` does: page cache is not the container's memory.
        cache = inner.get("inactive_file", inner.get("total_inactive_file", inner.get("cache", 0)))
        mem_usage = max(0, _int(mem["usage"], "memory_stats.usage") - _int(cache, "cache"))
    mem_limit = mem.get("limit")
    return StatsSample(
        _int(usage_block.get("total_usage", 0), "cpu_usage.total_usage"),
        _ns(read) if read else 0,
        mem_usage,
        _int(mem_limit, "memory_stats.limit") if mem_limit else None,
    )


def _ns(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def cpu_percent(current: StatsSample, previous: StatsSample | None) -> float | None:
    """CPU use between two samples, 100 % = one core busy (as `docker stats` and `podman stats`
    show it). The wall clock is the denominator: podman's system_cpu_usage is not Docker's."""
    if previous is None:
        return None
    dt = current.read_ns - previous.read_ns
    dcpu = current.cpu_ns - previous.cpu_ns
    if dt <= 0 or dcpu < 0 or current.read_ns == 0 or previous.read_ns == 0:
        return None  # same sample, clock went back, or the counter reset (a restart)
    return 100.0 * dcpu / dt


def _ports(inspect: Mapping[str, Any]) -> tuple[PortMapping, ...]:
    network = _dict(inspect.get("NetworkSettings"), "NetworkSettings")
    ports = network.get("Ports") or _dict(inspect.get("HostConfig"), "HostConfig").get(
        "PortBindings"
    )
    out: list[PortMapping] = []
    for container_port, bindings in sorted(_dict(ports, "Ports").items()):
        for b in bindings or ():
            b = _dict(b, "port binding")
            out.append(
                PortMapping(str(container_port), str(b.get("HostIp") or ""), str(b.get("HostPort")))
            )
    return tuple(out)


def _health(state: Mapping[str, Any]) -> str | None:
    block = state.get("Health") or state.get("Healthcheck")  # podman < 4 said Healthcheck
    status = _dict(block, "State.Health").get("Status") if block else None
    return str(status) if status else None


def describe_status(
    state: str,
    health: str | None,
    started: datetime | None,
    finished: datetime | None,
    exit_code: int | None,
    now: datetime,
) -> str:
    """The engine's human status ("Up 3 minutes (healthy)", "Exited (3) 2 hours ago")."""

    def span(since: datetime | None) -> str:
        if since is None:
            return ""
        s = max(0, int((now - since).total_seconds()))
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if s >= size:
                n = s // size
                return f"{n} {unit}{'s' if n != 1 else ''}"
        return f"{s} second{'s' if s != 1 else ''}"

    if state == "running":
        text = f"Up {span(started)}".rstrip()
        return f"{text} ({health})" if health else text
    if state in ("exited", "dead", "stopped"):
        ago = span(finished)
        return f"Exited ({exit_code if exit_code is not None else '?'})" + (
            f" {ago} ago" if ago else ""
        )
    return state.capitalize()


def parse_container(
    inspect: Mapping[str, Any],
    stats: Mapping[str, Any] | None,
    prev: StatsSample | None,
    *,
    now: datetime | None = None,
    status: str | None = None,
) -> Container:
    """A container from its inspect JSON, plus stats (Docker or libpod format) and the previous
    sample of the same container for CPU %. Raises ValueError naming what is wrong."""
    if not isinstance(inspect, Mapping):
        raise ValueError(f"inspect: expected an object, got {type(inspect).__name__}")
    try:
        cid = inspect["Id"]
        state_block = _dict(inspect["State"], "State")
    except KeyError as exc:
        raise ValueError(f"inspect: missing {exc.args[0]!r}") from None
    if not isinstance(cid, str) or not cid:
        raise ValueError(f"inspect: Id is not a string: {cid!r}")
    name = str(inspect.get("Name") or cid[:12]).lstrip("/")
    config = _dict(inspect.get("Config"), "Config")
    host_config = _dict(inspect.get("HostConfig"), "HostConfig")
    image = str(config.get("Image") or inspect.get("ImageName") or inspect.get("Image") or "")
    state = str(state_block.get("Status") or "unknown").lower()
    if state == "configured":  # podman's word for docker's "created"
        state = "created"
    health = _health(state_block)
    started = parse_time(state_block.get("StartedAt"))
    finished = parse_time(state_block.get("FinishedAt"))
    exit_code: int | None = None
    if state in ("exited", "dead", "stopped", "restarting"):  # the last run's code
        exit_code = _int(state_block.get("ExitCode", 0), "State.ExitCode")
    restart_count = _int(inspect.get("RestartCount", 0) or 0, "RestartCount")
    labels = {str(k): str(v) for k, v in _dict(config.get("Labels"), "Config.Labels").items()}
    policy = str(_dict(host_config.get("RestartPolicy"), "RestartPolicy").get("Name") or "")
    cpu: float | None = None
    mem_usage = mem_limit = None
    if stats is not None and state == "running":
        sample = parse_stats(stats)
        cpu = cpu_percent(sample, prev)
        mem_usage, mem_limit = sample.mem_usage, sample.mem_limit
    when = now or utcnow()
    return Container(
        id=cid,
        name=name,
        image=image,
        state=state,
        status=status or describe_status(state, health, started, finished, exit_code, when),
        health=health,
        restart_count=restart_count,
        started_at=started,
        finished_at=finished,
        exit_code=exit_code,
        ports=_ports(inspect),
        cpu_percent=cpu,
        mem_usage=mem_usage,
        mem_limit=mem_limit,
        restart_policy=policy,
        labels=labels,
    )


def parse_version(version: Mapping[str, Any]) -> tuple[str, str, bool]:
    """(engine "podman 4.3.1" / "docker 24.0.7", API version, is_podman) from GET /version."""
    if not isinstance(version, Mapping) or "ApiVersion" not in version:
        raise ValueError("not a Docker API /version answer (no ApiVersion)")
    if not isinstance(version["ApiVersion"], str):
        raise ValueError(
            f"/version: ApiVersion is {json_kind(version['ApiVersion'])}, not a string"
        )
    components = version.get("Components") or []
    if not isinstance(components, list):
        raise ValueError(f"/version: Components is {json_kind(components)}, not a list")
    names = [str(c.get("Name", "")) for c in components if isinstance(c, Mapping)]
    podman = any("podman" in n.lower() for n in names)
    engine = f"{'podman' if podman else 'docker'} {version.get('Version', '?')}"
    return engine, str(version["ApiVersion"]), podman


def summary_key(summary: Mapping[str, Any]) -> tuple[str, ...]:
    """What in a list entry changes whenever inspect would: state, health, start and exit.
    libpod's list has StartedAt/ExitedAt; Docker's has the human Status (which includes them)."""
    fields = ("State", "Status", "StartedAt", "ExitedAt", "ExitCode", "Restarts")
    return tuple(str(summary.get(f, "")) for f in fields)


def match_names(names: Iterable[str], pattern: str) -> list[str]:
    """Container names matching a glob (fnmatch, case-sensitive), sorted. Only ever matched in
    Python against names the engine reported — never handed to a shell."""
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))


def split_log_lines(buffer: str, chunk: str) -> tuple[list[str], str]:
    """Feed a chunk of log text; return the complete lines and what is left of a partial one."""
    text = buffer + chunk
    *lines, rest = text.split("\n")
    return [ln.rstrip("\r") for ln in lines], rest


# ---------------------------------------------------------------- endpoints (I/O)


def _unix_path(url: str) -> Path | None:
    if url.startswith("unix://"):
        return Path(url[len("unix://") :])
    return None


def _explain(exc: BaseException, url: str) -> ReadError:
    """A Docker SDK / requests failure → ReadError that says what and why, one line."""
    from docker import errors as docker_errors

    path = _unix_path(url)
    text = str(exc)
    if isinstance(exc, ReadError):
        return exc
    if path is not None and not path.exists():
        return ReadError("docker endpoint unreachable", f"socket {path} does not exist")
    if isinstance(exc, PermissionError) or "Permission denied" in text:
        return ReadError(
            "docker endpoint refused",
            f"permission denied on {path or url} (is the user in the docker group?)",
        )
    if isinstance(exc, docker_errors.NotFound):
        return ReadError("not found", getattr(exc, "explanation", None) or text)
    if isinstance(exc, docker_errors.APIError):
        return ReadError("docker API error", (getattr(exc, "explanation", None) or text)[:300])
    if "Connection refused" in text or "No such file" in text:
        return ReadError("docker endpoint unreachable", f"connection refused at {url}")
    if isinstance(exc, TimeoutError) or "timed out" in text.lower():
        return ReadError("docker endpoint timed out", f"no answer from {url}")
    if isinstance(exc, ValueError | KeyError | TypeError):
        return ReadError("not a Docker API", f"{url} answered something else: {text[:200]}")
    first = text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
    return ReadError("docker endpoint failed", f"{url}: {first}")


class DockerEndpoint:
    """One Docker/Podman API. The client is made lazily, in a thread, and reused; a connection
    failure drops it, so the next call makes a new one (asking the url_provider again)."""

    def __init__(
        self,
        name: str,
        url: str | None = None,
        *,
        url_provider: UrlProvider | None = None,
        timeout: float = 10.0,
        concurrency: int = STATS_CONCURRENCY,
    ) -> None:
        if (url is None) == (url_provider is None):
            raise ValueError("DockerEndpoint needs exactly one of url and url_provider")
        self.name = name
        self._url = url
        self._url_provider = url_provider
        self.timeout = timeout
        self._client: Any = None
        self._client_url = url or ""
        self._lock = asyncio.Lock()
        self.limit = asyncio.Semaphore(concurrency)
        self.concurrency = concurrency
        self.engine: str | None = None
        self.api_version: str | None = None
        self.is_podman = False
        self.on_close: list[Callable[[], Awaitable[None]]] = []  # streams to end with it

    def __repr__(self) -> str:
        return f"DockerEndpoint({self.name!r}, {self._client_url or '<provider>'!r})"

    @property
    def url(self) -> str:
        """The URL in use (or last used); "" before the first connection via a provider."""
        return self._client_url

    async def resolve_url(self) -> str:
        if self._url is not None:
            return self._url
        assert self._url_provider is not None
        try:
            return await self._url_provider()
        except ReadError:
            raise
        except Exception as exc:
            raise ReadError(
                "docker endpoint unreachable", f"no URL for {self.name}: {exc}"
            ) from exc

    async def client(self) -> Any:
        """The docker.DockerClient, made on first use (in a thread: it connects)."""
        if self._client is not None:
            return self._client
        async with self._lock:
            made: Any = self._client  # another task may have made it while we waited
            if made is not None:
                return made
            url = await self.resolve_url()
            self._client_url = url
            path = _unix_path(url)
            if path is not None and not path.exists():
                raise ReadError("docker endpoint unreachable", f"socket {path} does not exist")
            try:
                client, version = await inflight.to_thread(self._connect, url)
            except Exception as exc:
                raise _explain(exc, url) from exc
            try:
                self.engine, self.api_version, self.is_podman = parse_version(version)
            except ValueError as exc:
                await asyncio.to_thread(client.close)
                raise ReadError("not a Docker API", f"{url}: {exc}") from exc
            self._client = client
            return client

    def _connect(self, url: str) -> tuple[Any, JSONDict]:
        import docker

        # requests takes the float as it is; int() made a sub-second console.timeout 0 (refused)
        client = docker.DockerClient(
            base_url=url,
            timeout=self.timeout,  # type: ignore[arg-type]  # the stubs say int
            max_pool_size=self.concurrency + 2,
        )
        try:
            version = client.api.version()
        except Exception:
            client.close()
            raise
        return client, version

    async def call(self, fn: Callable[[Any], T]) -> T:
        """Run `fn(client.api)` in a thread; failures become ReadError (and drop a client
        whose connection failed)."""
        client = await self.client()
        try:
            # tracked: a runner that times out waits for the engine call before it unlocks
            return await inflight.to_thread(fn, client.api)
        except Exception as exc:
            err = _explain(exc, self._client_url)
            if err.what in ("docker endpoint unreachable", "docker endpoint timed out"):
                await self._drop()
            raise err from exc

    async def limited(self, fn: Callable[[Any], T]) -> T:
        """`call` within the endpoint's concurrency bound (for per-container calls)."""
        async with self.limit:
            return await self.call(fn)

    async def libpod(self, path: str, **params: str) -> Any:
        """GET a libpod API path (podman only), JSON-decoded."""

        def get(api: Any) -> Any:
            res = api.get(f"{api.base_url}{LIBPOD}{path}", params=params)
            api._raise_for_status(res)
            return res.json()

        return await self.call(get)

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(client.close)

    async def aclose(self) -> None:
        for stop in list(self.on_close):
            with contextlib.suppress(Exception):
                await stop()
        await self._drop()


# ---------------------------------------------------------------- endpoint discovery


def auto_candidates(environ: Mapping[str, str] | None = None) -> list[str]:
    """Local sockets to try, in order, for `[local] containers = "auto"`."""
    env = os.environ if environ is None else environ
    out: list[str] = []
    if env.get("DOCKER_HOST"):
        out.append(env["DOCKER_HOST"])
    out += ["unix:///var/run/docker.sock", "unix:///run/podman/podman.sock"]
    if env.get("XDG_RUNTIME_DIR"):
        out.append(f"unix://{env['XDG_RUNTIME_DIR']}/podman/podman.sock")
    return list(dict.fromkeys(out))


def _present(url: str) -> bool:
    path = _unix_path(url)
    return path is None or path.exists()


def auto_provider(candidates: Sequence[str]) -> UrlProvider:
    """The first candidate that answers /_ping (checked once per client made)."""

    def ping(url: str) -> bool:
        import docker

        try:
            client = docker.APIClient(base_url=url, version="1.24", timeout=3)
        except Exception:
            return False
        try:
            return bool(client.ping())
        except Exception:
            return False
        finally:
            client.close()

    async def provider() -> str:
        for url in candidates:
            if _present(url) and await asyncio.to_thread(ping, url):
                return url
        raise ReadError(
            "docker endpoint unreachable",
            "no local Docker or Podman API answered (tried " + ", ".join(candidates) + ")",
        )

    return provider


class ContainerEndpoints:
    """Every endpoint of a Lab by name; lives in lab.shared["containers"]; closed with the Lab."""

    def __init__(self, endpoints: Iterable[DockerEndpoint] = ()) -> None:
        self.by_name: dict[str, DockerEndpoint] = {e.name: e for e in endpoints}

    def get(self, name: str) -> DockerEndpoint:
        try:
            return self.by_name[name]
        except KeyError:
            known = ", ".join(sorted(self.by_name)) or "none configured"
            raise LookupError(f"no container endpoint named {name!r} (known: {known})") from None

    def __iter__(self) -> Any:
        return iter(self.by_name.values())

    async def aclose(self) -> None:
        for endpoint in self.by_name.values():
            await endpoint.aclose()


def build_endpoints(lab: Lab, environ: Mapping[str, str] | None = None) -> ContainerEndpoints:
    config = lab.config
    timeout = config.console.timeout
    out: list[DockerEndpoint] = []
    local = config.local.containers.strip()
    if config.local.enabled and local and local != "none":
        if local == "auto":
            found = [u for u in auto_candidates(environ) if _present(u)]
            if found:
                out.append(
                    DockerEndpoint(
                        lab.local_name, url_provider=auto_provider(found), timeout=timeout
                    )
                )
        else:
            out.append(DockerEndpoint(lab.local_name, local, timeout=timeout))
    for entry in config.containers:
        out.append(DockerEndpoint(entry.name, entry.url, timeout=timeout))
    for host in config.hosts:
        mode = host.containers.strip()
        if mode in ("", "none"):
            continue
        if mode == "ssh":
            from lab import ssh

            make = getattr(ssh, "docker_url_provider", None)
            if make is not None:
                out.append(
                    DockerEndpoint(host.name, url_provider=make(lab, host.name), timeout=timeout)
                )
            continue
        out.append(DockerEndpoint(host.name, mode, timeout=timeout))
    return ContainerEndpoints(out)


def endpoints(lab: Lab) -> ContainerEndpoints:
    """The lab's endpoints, made once."""
    existing = lab.shared.get(DOMAIN)
    if isinstance(existing, ContainerEndpoints):
        return existing
    made = build_endpoints(lab)
    lab.shared[DOMAIN] = made
    return made


# ---------------------------------------------------------------- the reader


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


# ---------------------------------------------------------------- lookups and logs


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
