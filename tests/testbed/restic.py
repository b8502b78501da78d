"""restic repositories for the testbed: real backups of a generated tree with awkward names.

`restic_lab` (session): one repository with two snapshots of a tree holding spaces, unicode,
shell metacharacters, glob characters, a symlink, modes and a few large files; plus the error
cases a console must survive: a wrong password and a missing repository. `locked_repo`
(function): a copy of the repository with a stale lock (a `restic backup --stdin` killed -9).
`restic_config(...)` builds a hlcon Config for them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab.config import BackupConfig, Config, ConsoleConfig
from lab.secrets import SecretRef
from tests.testbed import require_tools

PASSWORD = "correct horse battery staple"  # test-only repository password

AWKWARD = (
    "dir with space/a file.txt",
    "ünïcødé/naïve café.txt",
    "x; touch pwned/inside.txt",
    "$(id)/`uname`.txt",
    "[brackets]/star*q?.txt",
    "[brackets]/starXq1.txt",  # what the glob star*q?.txt would also match, unescaped
    "-dash/--help",
)


@dataclass
class ResticLab:
    root: Path
    source: Path  # the tree that was backed up (absolute paths are kept in the snapshot)
    repo: Path
    password_file: Path
    wrong_password_file: Path
    snapshots: list[str] = field(default_factory=list)  # full ids, oldest first
    large: list[str] = field(default_factory=list)  # relative paths of the large files

    def env(self, repo: Path | None = None) -> dict[str, str]:
        return {
            **os.environ,
            "RESTIC_REPOSITORY": str(repo or self.repo),
            "RESTIC_PASSWORD_FILE": str(self.password_file),
        }

    def restic(self, *args: str, repo: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["restic", *args], env=self.env(repo), capture_output=True, text=True, check=True
        )


def make_tree(root: Path, seed: int = 6, large: int = 3, large_size: int = 4 << 20) -> list[str]:
    """A tree with awkward names, a symlink, modes and `large` files of random bytes."""
    rng = random.Random(seed)
    for rel in AWKWARD:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"{rel}\n" * rng.randint(1, 20))
    (root / "modes").mkdir()
    (root / "modes/secret.key").write_text("private\n")
    (root / "modes/secret.key").chmod(0o600)
    (root / "modes/run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "modes/run.sh").chmod(0o755)
    (root / "links").mkdir()
    (root / "links/to-cafe").symlink_to("../ünïcødé/naïve café.txt")
    (root / "empty dir").mkdir()
    names = []
    (root / "big").mkdir()
    for i in range(large):
        rel = f"big/blob {i}.bin"
        with open(root / rel, "wb") as fh:
            fh.write(rng.randbytes(large_size))
        names.append(rel)
    return names


def _stale_lock(env: dict[str, str]) -> int:
    """Start `restic backup --stdin`, wait for its lock, kill -9 it: a lock whose PID is gone."""
    proc = subprocess.Popen(
        ["restic", "backup", "--stdin", "--stdin-filename", "held.txt"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            out = subprocess.run(
                ["restic", "list", "locks", "--no-lock"], env=env, capture_output=True, text=True
            )
            if out.stdout.strip():
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("restic backup --stdin never took its lock")
    finally:
        proc.kill()
        proc.wait()
    return proc.pid


@pytest.fixture(scope="session")
def restic_lab() -> Iterator[ResticLab]:
    require_tools("restic")
    root = Path(tempfile.mkdtemp(prefix="hlcon-restic-"))
    try:
        source = root / "source data"
        source.mkdir()
        large = make_tree(source)
        pw = root / "password"
        pw.write_text(PASSWORD + "\n")
        wrong = root / "wrong-password"
        wrong.write_text("not the password\n")
        lab = ResticLab(root, source, root / "repo", pw, wrong, large=large)
        lab.restic("init")
        lab.restic("backup", "--host", "testbed", "--tag", "daily", str(source))
        (source / "dir with space/a file.txt").write_text("changed after the first snapshot\n")
        (source / "added later.txt").write_text("new\n")
        lab.restic("backup", "--host", "testbed", str(source))
        snaps = json.loads(lab.restic("snapshots", "--json").stdout)
        lab.snapshots = [s["id"] for s in sorted(snaps, key=lambda s: s["time"])]
        yield lab
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class LockedRepo:
    repo: Path
    pid: int


@pytest.fixture
def locked_repo(restic_lab: ResticLab, tmp_path: Path) -> LockedRepo:
    """A copy of the testbed repository holding a stale lock (its process killed -9)."""
    repo = tmp_path / "locked repo"
    shutil.copytree(restic_lab.repo, repo)
    pid = _stale_lock(restic_lab.env(repo))
    return LockedRepo(repo, pid)


def restic_config(
    restic_lab: ResticLab,
    state_dir: Path,
    *,
    extra: tuple[BackupConfig, ...] = (),
    paths: tuple[str, ...] = (),
) -> Config:
    """A Config with repo:main (good), repo:wrongpw, repo:missing, plus `extra` entries."""
    good = SecretRef("file", str(restic_lab.password_file))
    return Config(
        source="<testbed restic>",
        console=ConsoleConfig(state_dir=state_dir),
        backups=(
            BackupConfig(name="main", repository=str(restic_lab.repo), password=good, paths=paths),
            BackupConfig(
                name="wrongpw",
                repository=str(restic_lab.repo),
                password=SecretRef("file", str(restic_lab.wrong_password_file)),
            ),
            BackupConfig(
                name="missing", repository=str(restic_lab.root / "no such repo"), password=good
            ),
            *extra,
        ),
    )
