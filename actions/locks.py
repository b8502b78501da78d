"""Per-target locks across processes: fcntl.flock on STATE_DIR/locks/<safe name>.lock.

Non-blocking: a held lock is refused at once with who holds it (pid and since when, written into
the lock file by the holder). The kernel drops a flock when its holder dies, so a kill -9 never
leaves a target locked. flock locks belong to an open file description, so two runners in one
process exclude each other too.

Keys are canonical identities (actions.base.Identity), never the string the user typed. A key
may be held shared (LOCK_SH): several holders at once, none beside an exclusive one. A path key
(`path:/a/b@host`) is taken exclusively and every ancestor (`path:/a@host`, `path:/@host`)
shared, so a restore into /a/b and one into /a or /a/b/c exclude each other, while /a/b and /a/c
do not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from actions.base import path_key, split_path_key
from lab.model import utcnow

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class LockHeld(Exception):
    """Another process holds a lock; str() says which target, pid and since when."""

    def __init__(self, key: str, pid: int | None, since: str | None) -> None:
        who = f"pid {pid}" if pid else "pid unknown"
        when = f", since {since}" if since else ""
        super().__init__(f"target {key} locked by another hlcon ({who}{when})")
        self.key = key
        self.pid = pid
        self.since = since


def lock_path(state_dir: Path, key: str) -> Path:
    """A file name that is safe whatever the key holds (`x; rm -rf /`, `../..`), and distinct for
    keys that sanitise alike (the hash suffix)."""
    safe = _UNSAFE.sub("_", key).strip("._")[:80] or "target"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return state_dir / "locks" / f"{safe}-{digest}.lock"


@dataclass
class _Held:
    key: str
    fd: int
    shared: bool = False


def path_ancestors(key: str) -> tuple[str, ...]:
    """The path keys above a path key (`path:/a/b@h` → `path:/a@h`, `path:/@h`); () otherwise."""
    split = split_path_key(key)
    if split is None:
        return ()
    path, host = split
    out = []
    while path != "/":
        path = posixpath.dirname(path.rstrip("/")) or "/"
        out.append(path_key(path, host))
    return tuple(out)


class TargetLocks:
    """Hold every key in `keys` exclusively and every key in `shared` shared (taken in sorted
    order, so two holders cannot deadlock — and none waits: a held lock is refused at once)."""

    def __init__(
        self, state_dir: Path, keys: tuple[str, ...], shared: tuple[str, ...] = ()
    ) -> None:
        self.state_dir = state_dir
        self.keys = tuple(sorted(set(keys)))
        extra = {a for k in self.keys for a in path_ancestors(k)} | set(shared)
        self.shared = tuple(sorted(extra - set(self.keys)))
        self._held: list[_Held] = []

    def acquire(self) -> None:
        """Take every lock or none. Raises LockHeld, or OSError when the lock dir is unusable."""
        wanted = sorted([(k, False) for k in self.keys] + [(k, True) for k in self.shared])
        try:
            for key, shared in wanted:
                fd = _take(lock_path(self.state_dir, key), key, shared)
                self._held.append(_Held(key, fd, shared))
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        while self._held:
            held = self._held.pop()
            if not held.shared:  # a shared file may name another holder still inside
                with contextlib.suppress(OSError):
                    os.ftruncate(held.fd, 0)
            os.close(held.fd)  # closing drops the flock

    def __enter__(self) -> TargetLocks:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _take(path: Path, key: str, shared: bool = False) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            os.close(fd)
            raise
        pid, since = _holder(fd)
        os.close(fd)
        raise LockHeld(key, pid, since) from None
    info = json.dumps(
        {"pid": os.getpid(), "since": utcnow().isoformat(timespec="seconds"), "key": key}
    ).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, info, 0)
    return fd


def _holder(fd: int) -> tuple[int | None, str | None]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    pid = data.get("pid")
    since = data.get("since")
    return (
        pid if isinstance(pid, int) else None,
        since if isinstance(since, str) else None,
    )
