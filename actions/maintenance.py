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
