"""Peer names hlcon remembers where no conf holds a `# name` (no peers_file, a NixOS host)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from pathlib import Path

from lab.config import Config, VpnConfig, state_dir


def target_name(cfg: VpnConfig) -> str:
    return f"{cfg.interface}@{cfg.host}"


# A peer added where no conf holds its `# name` (no peers_file, a NixOS host) keeps the name it
# was given here: {"IFACE@HOST": {public key: name}}, in hlcon's state directory.
NAMES_FILE = "vpn-peer-names.json"
MAX_NAMES_BYTES = 1 << 20


def names_path(config: Config) -> Path:
    return state_dir(config) / NAMES_FILE


def _load_names(path: Path) -> dict[str, dict[str, str]]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_NAMES_BYTES + 1)
    except FileNotFoundError:
        return {}
    if len(raw) > MAX_NAMES_BYTES:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(t): {str(k): str(v) for k, v in names.items() if isinstance(v, str)}
        for t, names in data.items()
        if isinstance(names, dict)
    }


def remembered_names(config: Config, cfg: VpnConfig) -> dict[str, str]:
    """The names hlcon gave this interface's peers (empty if none, or the file is unreadable:
    names are a nicety, the peers are what matter)."""
    try:
        return _load_names(names_path(config)).get(target_name(cfg), {})
    except OSError:
        return {}


def remember_name(config: Config, cfg: VpnConfig, key: str, name: str | None) -> None:
    """Set (or, with None, forget) the name of a peer; atomic, serialised by a lock file."""
    path = names_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(NAMES_FILE + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = _load_names(path)
        names = data.setdefault(target_name(cfg), {})
        if name is None:
            names.pop(key, None)
        else:
            names[key] = name
        if not names:
            data.pop(target_name(cfg), None)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vpn-peer-names.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
