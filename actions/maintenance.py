"""Maintenance mode: per-host flags in STATE_DIR/maintenance.json.

A host in maintenance refuses every action (the admin is working on it by hand). The file is
rewritten atomically (temp file, fsync, rename) under a flock on STATE_DIR/maintenance.lock, so
two consoles toggling different hosts cannot lose each other's change. Toggling is audited with
phase "maintenance".
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.model import utcnow

if TYPE_CHECKING:
    from actions.audit import AuditLog, Who
    from lab.config import Config

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def _url_host(url: str) -> str | None:
    """The machine a container endpoint URL lives on: "local" for a unix socket or loopback,
    else the host part (unix:///run/x.sock, tcp://nas:2375, ssh://admin@nas)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    if scheme == "unix":
        return "local"
    netloc = rest.split("/", 1)[0].rpartition("@")[2]
    host = netloc[: netloc.rindex("]") + 1] if netloc.startswith("[") else netloc.split(":")[0]
    if host.startswith("127.") or host in _LOOPBACK:
        return "local"
    return host or None


def endpoint_host(config: Config, name: str) -> str | None:
    """The host a `[[containers]]` endpoint named `name` runs on — "local", a [[hosts]] name —
    or None when `name` is no such endpoint or its machine is not one hlcon knows as a host."""
    entry = next((c for c in config.containers if c.name == name), None)
    if entry is None:
        return None
    machine = _url_host(entry.url)
    if machine is None or machine == "local":
        return machine
    for host in config.hosts:
        if machine in (host.address, host.name):
            return host.name
    return None


def canonical_host(config: Config, name: str) -> str:
    """The one name maintenance flags use for `name`: "local" for every name of this machine,
    the host a container endpoint alias runs on, else `name` itself (a [[hosts]] name, or an
    endpoint on a machine hlcon has no host for: that endpoint is its own host)."""
    if name in ("local", config.local.name):
        return "local"
    if any(h.name == name for h in config.hosts):
        return name
    return endpoint_host(config, name) or name


def resolve_host(config: Config, name: str) -> tuple[str, str] | None:
    """What `hlcon maintenance on NAME` puts in maintenance: (host, why that host), or None if
    NAME is no host and no container endpoint. Maintenance is per host and covers every
    endpoint on it, so a container endpoint's name means the host it runs on."""
    if name in ("local", config.local.name):
        return "local", ""
    if any(h.name == name for h in config.hosts):
        return name, ""
    if any(c.name == name for c in config.containers):
        host = canonical_host(config, name)
        if host == name:
            return name, f"{name} is a container endpoint on a machine with no [[hosts]] entry"
        return host, (
            f"{name} is a container endpoint on {host}; maintenance is per host and covers "
            f"every endpoint on it"
        )
    return None


class MaintenanceError(Exception):
    """The flags file cannot be read or written; str() names it and says why."""


@dataclass(frozen=True)
class MaintenanceEntry:
    host: str
    since: str  # UTC ISO time
    by: str  # user who turned it on
    note: str = ""


class Maintenance:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / "maintenance.json"
        self._lock_path = self.state_dir / "maintenance.lock"

    def hosts(self) -> dict[str, MaintenanceEntry]:
        """Every host in maintenance. Raises MaintenanceError if the file is unreadable."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise MaintenanceError(f"cannot read {self.path}: {exc.strerror}") from None
        return _parse(raw, self.path)

    def get(self, host: str) -> MaintenanceEntry | None:
        return self.hosts().get(host)

    def set(
        self,
        host: str,
        on: bool,
        *,
        who: Who,
        note: str = "",
        audit: AuditLog | None = None,
    ) -> bool:
        """Turn maintenance on or off for `host`; True if that changed anything. The change is
        audited (when `audit` is given) after the file is written."""
        with self._locked():
            entries = self.hosts()
            changed = (host in entries) != on
            if on and host not in entries:
                entries[host] = MaintenanceEntry(
                    host, utcnow().isoformat(timespec="seconds"), who.user, note
                )
            elif not on:
                entries.pop(host, None)
            if changed:
                self._write(entries)
        if changed and audit is not None:
            audit.append(
                "maintenance",
                who=who,
                target=f"host:{host}",
                result={"on": on},
                reason=note or None,
            )
        return changed

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise MaintenanceError(f"cannot lock {self._lock_path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, entries: dict[str, MaintenanceEntry]) -> None:
        data = {
            h: {"since": e.since, "by": e.by, "note": e.note} for h, e in sorted(entries.items())
        }
        try:
            fd, tmp = tempfile.mkstemp(dir=self.state_dir, prefix=".maintenance.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(data, f, indent=2)
                    f.write("\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise MaintenanceError(f"cannot write {self.path}: {exc.strerror}") from None


def _parse(raw: bytes, path: Path) -> dict[str, MaintenanceEntry]:
    try:
        data: Any = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise MaintenanceError(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    if not isinstance(data, dict):
        raise MaintenanceError(f"{path} must hold a JSON object of host → flag")
    out: dict[str, MaintenanceEntry] = {}
    for host, entry in data.items():
        if not isinstance(entry, dict):
            raise MaintenanceError(f"{path}: entry for {host!r} is not an object")
        out[host] = MaintenanceEntry(
            host,
            str(entry.get("since", "")),
            str(entry.get("by", "")),
            str(entry.get("note", "")),
        )
    return out
