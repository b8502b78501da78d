"""Frozen restic readings for the backups pane's and the restore wizard's snapshots (catalog.py).

A plausible homelab: an offsite repository that is fresh and checked, a NAS repository whose
laptop backups stopped two days ago and which holds a stale lock, and one with a wrong password.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from lab.config import BackupConfig, Config
from lab.model import (
    CheckRecord,
    RepoLock,
    RepoState,
    RepoStats,
    Snapshot,
    SnapshotGroup,
)
from lab.secrets import SecretRef
from tests.tui.fixtures import NOW, fault, make_context
from tui.app import HlconApp
from tui.context import ConsoleContext

GB = 1_000_000_000


def snap(n: int, hours: float, host: str, paths: tuple[str, ...], *tags: str) -> Snapshot:
    full = hashlib.sha256(str(n).encode()).hexdigest()
    return Snapshot(full, full[:8], NOW - timedelta(hours=hours), host, paths, tags, "root")


def groups(snaps: tuple[Snapshot, ...]) -> tuple[SnapshotGroup, ...]:
    out: dict[tuple[str, tuple[str, ...]], list[Snapshot]] = {}
    for s in snaps:
        out.setdefault((s.host, s.paths), []).append(s)
    return tuple(
        SnapshotGroup(
            h,
            p,
            max(v, key=lambda s: s.time),
            len(v),
            (NOW - max(s.time for s in v)).total_seconds(),
        )
        for (h, p), v in sorted(out.items())
    )


def demo_backups_context() -> ConsoleContext:
    password = SecretRef("keyring", "hlcon/offsite")
    config = Config(
        backups=(
            BackupConfig(
                name="offsite", repository="sftp:backup@nas:/srv/restic", password=password
            ),
            BackupConfig(name="nas", repository="/mnt/nas/restic", password=password),
            BackupConfig(
                name="b2", repository="s3:s3.eu-central-003.backblazeb2.com/lab", password=password
            ),
        )
    )
    offsite = tuple(
        snap(i, 24 * (6 - i) + 3, "fufuwuqi", ("/etc", "/srv"), "daily") for i in range(7)
    )
    nas = (
        snap(20, 50, "laptop", ("/home/me",)),
        snap(21, 49, "laptop", ("/home/me",)),
        snap(22, 5, "skylab", ("/var/lib/jellyfin",), "media"),
    )
    readings = [
        (
            ("backup", "offsite"),
            RepoState(
                at=NOW - timedelta(seconds=30),
                name="offsite",
                repository="sftp:backup@nas:/srv/restic",
                host="local",
                restic_version="0.14.0",
                snapshots=offsite,
                groups=groups(offsite),
                stats=RepoStats(41 * GB, 182_000, 7),
                last_check=CheckRecord(NOW - timedelta(days=2), True, "no errors were found"),
            ),
        ),
        (
            ("backup", "nas"),
            RepoState(
                at=NOW - timedelta(seconds=40),
                name="nas",
                repository="/mnt/nas/restic",
                host="local",
                restic_version="0.14.0",
                snapshots=nas,
                groups=groups(nas),
                stats=RepoStats(212 * GB, 912_000, 3),
                last_check=None,
                locks=(
                    RepoLock(
                        "9c1f" * 16,
                        NOW - timedelta(hours=3),
                        False,
                        "skylab",
                        "root",
                        4242,
                        True,
                        3 * 3600.0,
                    ),
                ),
            ),
        ),
    ]
    faults = [
        (
            ("backup", "b2"),
            fault(
                "wrong password",
                "backup:b2",
                "repo:b2 (s3:s3.eu-central-003.backblazeb2.com/lab on local): Fatal: wrong "
                "password "
                "or no key found — check the password reference keyring:hlcon/offsite",
            ),
        )
    ]
    return make_context(config=config, readings=readings, faults=faults)


def backups_app() -> HlconApp:
    return HlconApp(demo_backups_context(), initial_pane=5)
