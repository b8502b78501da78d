"""Readings, faults and findings as plain JSON values (for `hlcon status --json`)."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from lab.model import Finding
from lab.store import Entry


def to_json(value: Any) -> Any:
    """Dataclasses → dicts (properties that are plain numbers included), datetimes → ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in ("percent", "mem_percent", "swap_percent", "days_left", "short_id"):
            if hasattr(type(value), name) and name not in out:
                out[name] = to_json(getattr(value, name))
        return out
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.name.lower() if isinstance(value.value, int) else value.value
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def entry_to_json(entry: Entry) -> dict[str, Any]:
    return {
        "domain": entry.key[0],
        "target": entry.key[1],
        "updated": to_json(entry.updated),
        "last_ok": to_json(entry.last_ok),
        "fault": to_json(entry.fault),
        "reading": to_json(entry.reading),
    }


def finding_to_json(finding: Finding) -> dict[str, Any]:
    return {
        "severity": finding.severity.label,
        "domain": finding.key[0],
        "target": finding.key[1],
        "subject": finding.subject,
        "message": finding.message,
        "rule": finding.rule,
    }
