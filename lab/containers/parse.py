"""Pure parsers of the Docker/Podman API's JSON: containers, stats, versions, log lines.

No I/O: tests feed them JSON captured from real podman (tests/data/containers/).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lab.model import Container, PortMapping, utcnow

JSONDict = dict[str, Any]

DOMAIN = "containers"


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
