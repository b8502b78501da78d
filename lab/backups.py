"""restic repositories: pure parsers of restic's --json output, the Restic runner, the reader.

restic runs through lab.executor(cfg.host) — this machine or a host over SSH. The password never
reaches a command line: locally it travels in the environment (RESTIC_PASSWORD, and the
repository location in RESTIC_REPOSITORY, since rest: URLs may hold credentials); on a remote
host, where sshd may drop the environment, it is written to restic's stdin and read with
`--password-file=/dev/stdin`.

restic keeps no record of `check`: hlcon records the result of every check it runs in its state
dir (STATE/backups/check-<name>.json) and the reader shows that.

Both restic generations are understood: 0.14 (Debian 12) exits 1 on every error, so the stderr
text decides; ≥ 0.17 exits 10 (no repository), 11 (locked), 12 (wrong password) and, with
--json, prints {"message_type":"exit_error",…} on stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from lab import inflight
from lab.config import BackupConfig, Config, state_dir
from lab.execute import CommandResult, Executor, LineSink
from lab.model import (
    CheckRecord,
    RepoLock,
    RepoState,
    RepoStats,
    Snapshot,
    SnapshotGroup,
)
from lab.poller import ReadError
from lab.secrets import SecretRef, resolve

if TYPE_CHECKING:
    from lab.poller import Reader
    from lab.wiring import Lab

RESTIC = "restic"
MAX_LOCKS_READ = 10  # `cat lock` per lock; a repository with more is broken anyway
RESTIC_ASK_AT_LEAST = 600.0  # seconds: an unchanged local repository is still read this often

# ---------------------------------------------------------------- errors


class ResticError(Exception):
    """restic failed. `kind`: wrong-password | no-repository | locked | no-snapshot | missing |
    failed. `what` is the Fault's short name; str() says why, in one or two lines."""

    def __init__(self, kind: str, what: str, why: str, result: CommandResult | None = None):
        super().__init__(why)
        self.kind = kind
        self.what = what
        self.result = result

    def as_read_error(self) -> ReadError:
        return ReadError(self.what, str(self))


_KINDS = {
    10: ("no-repository", "repository not found"),
    11: ("locked", "repository locked"),
    12: ("wrong-password", "wrong password"),
}


@dataclass(frozen=True)
class Failure:
    kind: str
    what: str
    message: str  # restic's own words, first lines


def parse_exit_error(stderr: str) -> tuple[int, str] | None:
    """restic ≥ 0.17's {"message_type":"exit_error","code":N,"message":…} line, if any."""
    for line in reversed(stderr.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("message_type") == "exit_error":
            code = obj.get("code")
            message = obj.get("message")
            return (code if isinstance(code, int) else 1, str(message or ""))
    return None


def classify_failure(returncode: int, stderr: str) -> Failure:
    """Which failure a non-zero restic exit is, from the exit code (≥ 0.17) or stderr (0.14)."""
    exit_error = parse_exit_error(stderr)
    text = exit_error[1] if exit_error else stderr
    code = exit_error[0] if exit_error else returncode
    message = _first_lines(text)
    if code in _KINDS:
        kind, what = _KINDS[code]
        return Failure(kind, what, message)
    low = text.lower()
    if "wrong password or no key found" in low:
        return Failure("wrong-password", "wrong password", message)
    if "unable to open config file" in low or "repository does not exist" in low:
        return Failure("no-repository", "repository not found", message)
    if "repository is already locked" in low:
        return Failure("locked", "repository locked", message)
    if "no matching id found" in low or "no snapshot found" in low:
        return Failure("no-snapshot", "snapshot not found", message)
    return Failure("failed", "restic failed", message or f"exit code {returncode}")


def _first_lines(text: str, n: int = 2) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("{")] or lines
    return " ".join(lines[:n])[:400]


# ---------------------------------------------------------------- pure parsers


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"restic {what}: not JSON ({exc.msg} at char {exc.pos})") from None


def parse_time(value: Any, what: str = "time") -> datetime:
    """restic's RFC 3339 times carry nanoseconds; Python takes microseconds."""
    if not isinstance(value, str):
        raise ValueError(f"restic {what}: expected a time string, got {type(value).__name__}")
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", value)
    if not m:
        raise ValueError(f"restic {what}: not an RFC 3339 time: {value[:40]!r}")
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        return datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}")
    except ValueError:
        raise ValueError(f"restic {what}: not a valid time: {value[:40]!r}") from None


def parse_version(text: str) -> tuple[int, int, int]:
    """`restic version` → (0, 14, 0)."""
    m = re.search(r"restic (\d+)\.(\d+)\.(\d+)", text)
    if not m:
        raise ValueError(f"not restic's version output: {text.strip()[:80]!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def _str(obj: dict[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ValueError(f"restic {what}: {key!r} missing or not a string")
    return value


def _strs(obj: dict[str, Any], key: str, what: str) -> tuple[str, ...]:
    value = obj.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"restic {what}: {key!r} is not a list of strings")
    return tuple(value)


def _opt_str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _int(obj: dict[str, Any], key: str, what: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"restic {what}: {key!r} missing or not an integer")
    return value


def snapshot_from_json(obj: Any) -> Snapshot:
    if not isinstance(obj, dict):
        raise ValueError("restic snapshot: not an object")
    summary = obj.get("summary")
    size = None
    if isinstance(summary, dict) and isinstance(summary.get("total_bytes_processed"), int):
        size = summary["total_bytes_processed"]
    full = _str(obj, "id", "snapshot")
    return Snapshot(
        id=full,
        short_id=obj["short_id"] if isinstance(obj.get("short_id"), str) else full[:8],
        time=parse_time(obj.get("time"), "snapshot time"),
        host=_str(obj, "hostname", "snapshot"),
        paths=_strs(obj, "paths", "snapshot"),
        tags=_strs(obj, "tags", "snapshot"),
        username=_opt_str(obj, "username"),
        size=size,
    )


def parse_snapshots(text: str) -> tuple[Snapshot, ...]:
    """`restic snapshots --json`: one JSON array (null in some versions when empty)."""
    data = _loads(text, "snapshots")
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ValueError("restic snapshots: expected a JSON array")
    return tuple(snapshot_from_json(o) for o in data)


def group_snapshots(snapshots: Iterable[Snapshot], now: datetime) -> tuple[SnapshotGroup, ...]:
    """The newest snapshot per (host, paths), with its age at `now`; sorted by host, paths."""
    groups: dict[tuple[str, tuple[str, ...]], list[Snapshot]] = {}
    for snap in snapshots:
        groups.setdefault((snap.host, tuple(sorted(snap.paths))), []).append(snap)
    out = []
    for (host, paths), snaps in sorted(groups.items()):
        newest = max(snaps, key=lambda s: s.time)
        age = max(0.0, (now - newest.time).total_seconds())
        out.append(SnapshotGroup(host, paths, newest, len(snaps), age))
    return tuple(out)


def parse_stats(text: str) -> RepoStats:
    data = _loads(text, "stats")
    if not isinstance(data, dict):
        raise ValueError("restic stats: expected a JSON object")
    return RepoStats(
        total_size=_int(data, "total_size", "stats", 0),
        total_file_count=_int(data, "total_file_count", "stats", 0),
        snapshots_count=_int(data, "snapshots_count", "stats", 0),
    )


@dataclass(frozen=True)
class LockInfo:
    """`restic cat lock ID` as restic stores it."""

    id: str
    time: datetime
    exclusive: bool
    hostname: str
    username: str
    pid: int


def parse_lock_ids(text: str) -> tuple[str, ...]:
    """`restic list locks`: one hex id per line."""
    ids = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if not re.fullmatch(r"[0-9a-f]{64}", line):
            raise ValueError(f"restic list locks: not a lock id: {line[:80]!r}")
        ids.append(line)
    return tuple(ids)


def parse_lock(lock_id: str, text: str) -> LockInfo:
    data = _loads(text, "lock")
    if not isinstance(data, dict):
        raise ValueError("restic lock: expected a JSON object")
    return LockInfo(
        id=lock_id,
        time=parse_time(data.get("time"), "lock time"),
        exclusive=bool(data.get("exclusive", False)),
        hostname=_str(data, "hostname", "lock"),
        username=_opt_str(data, "username"),
        pid=_int(data, "pid", "lock", 0),
    )


@dataclass(frozen=True)
class TreeNode:
    """One entry of `restic ls --json`."""

    name: str
    type: str  # file | dir | symlink | dev | chardev | fifo | socket
    path: str  # absolute inside the snapshot
    size: int
    mode: int
    permissions: str
    mtime: datetime | None

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"

    @property
    def parent(self) -> str:
        parent = self.path.rsplit("/", 1)[0]
        return parent or "/"


def parse_ls(text: str) -> tuple[Snapshot | None, tuple[TreeNode, ...]]:
    """`restic ls --json ID [PATH…]`: a snapshot line, then one node per line."""
    snapshot: Snapshot | None = None
    nodes: list[TreeNode] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        obj = _loads(line, f"ls line {n}")
        if not isinstance(obj, dict):
            raise ValueError(f"restic ls line {n}: not an object")
        kind = obj.get("message_type") or obj.get("struct_type")
        if kind == "snapshot":
            snapshot = snapshot_from_json(obj)
        elif kind == "node":
            what = f"ls line {n}"
            mtime = obj.get("mtime")
            nodes.append(
                TreeNode(
                    name=_str(obj, "name", what),
                    type=_str(obj, "type", what),
                    path=_str(obj, "path", what),
                    size=_int(obj, "size", what, 0),
                    mode=_int(obj, "mode", what, 0),
                    permissions=_opt_str(obj, "permissions"),
                    mtime=parse_time(mtime, what) if mtime is not None else None,
                )
            )
        else:
            raise ValueError(f"restic ls line {n}: unknown entry type {kind!r}")
    return snapshot, tuple(nodes)


def children(nodes: Iterable[TreeNode], directory: str) -> tuple[TreeNode, ...]:
    """The direct children of `directory` (restic ls PATH also lists PATH itself)."""
    directory = directory.rstrip("/") or "/"
    return tuple(
        sorted(
            (n for n in nodes if n.parent == directory and n.path != directory),
            key=lambda n: (not n.is_dir, n.name),
        )
    )


@dataclass(frozen=True)
class ResticMessage:
    """One --json line of a long-running command (backup, restore): status, summary, error."""

    type: str
    fraction: float | None = None
    bytes_done: int | None = None
    total_bytes: int | None = None
    files_done: int | None = None
    total_files: int | None = None
    seconds_remaining: int | None = None
    snapshot_id: str | None = None
    text: str = ""


def parse_message(line: str) -> ResticMessage | None:
    """A JSON progress line, or None for anything that is not one (restic mixes in text)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    kind = obj.get("message_type")
    if not isinstance(kind, str):
        return None

    def num(key: str) -> int | None:
        v = obj.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    fraction = obj.get("percent_done")
    bytes_done = num("bytes_done") if "bytes_done" in obj else num("bytes_restored")
    files_done = num("files_done") if "files_done" in obj else num("files_restored")
    err = obj.get("error")
    text = ""
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        text = f"{err['message']} ({obj.get('item', '')})"
    elif isinstance(obj.get("message"), str):
        text = obj["message"]
    return ResticMessage(
        type=kind,
        fraction=float(fraction)
        if isinstance(fraction, int | float) and not isinstance(fraction, bool)
        else None,
        bytes_done=bytes_done,
        total_bytes=num("total_bytes"),
        files_done=files_done,
        total_files=num("total_files"),
        seconds_remaining=num("seconds_remaining"),
        snapshot_id=obj.get("snapshot_id") if isinstance(obj.get("snapshot_id"), str) else None,
        text=text,
    )


def parse_verified_count(text: str) -> int | None:
    """restic restore --verify's "finished verifying N files in TARGET" (0.14 text output)."""
    m = re.search(r"finished verifying (\d+) files", text)
    return int(m.group(1)) if m else None


def parse_check(returncode: int, stdout: str, stderr: str) -> tuple[bool, str]:
    """`restic check` → (ok, one-line message)."""
    if returncode == 0 and "no errors were found" in stdout:
        return True, "no errors were found"
    lines = [ln.strip() for ln in (stderr + "\n" + stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return False, (errors or lines or [f"exit code {returncode}"])[-1][:300]


# ---------------------------------------------------------------- secrets and state


def reveal(ref: SecretRef) -> str:
    """The secret a reference names (resolved once, cached in memory by lab.secrets)."""
    return resolve(ref).reveal()


def check_record_path(config: Config, name: str) -> Path:
    return state_dir(config) / "backups" / f"check-{quote(name, safe='')}.json"


def load_check(config: Config, name: str) -> CheckRecord | None:
    path = check_record_path(config, name)
    try:
        data = json.loads(path.read_text())
        return CheckRecord(
            at=datetime.fromisoformat(data["at"]), ok=bool(data["ok"]), message=str(data["message"])
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise ReadError("check record unreadable", f"{path}: {exc}") from None


def save_check(config: Config, name: str, record: CheckRecord) -> Path:
    """Write atomically (a crash leaves the old record or the new, never half of one)."""
    path = check_record_path(config, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"at": record.at.isoformat(), "ok": record.ok, "message": record.message})
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".check-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------- running restic


class Restic:
    """restic against one configured repository, on the host the config names."""

    def __init__(self, lab: Lab, cfg: BackupConfig, *, password_via: str | None = None):
        self.lab = lab
        self.cfg = cfg
        self.executor: Executor = lab.executor(cfg.host)
        # env on this machine; stdin where the command crosses SSH (sshd may drop env)
        self.password_via = password_via or ("env" if lab.is_local(cfg.host) else "stdin")
        if self.password_via not in ("env", "stdin"):
            raise ValueError(f"password_via must be 'env' or 'stdin', not {self.password_via!r}")
        self._version: tuple[int, int, int] | None = None

    @property
    def where(self) -> str:
        return f"repo:{self.cfg.name} ({self.cfg.repository} on {self.executor.host})"

    def argv(self, *args: str) -> list[str]:
        """The command line `restic ARGS` runs with (no secret is ever on it)."""
        if self.password_via == "env":  # noqa: S105 - a delivery mode, not a password
            return [RESTIC, *args]
        return [RESTIC, "--repo", self.cfg.repository, "--password-file", "/dev/stdin", *args]

    def command(self, *args: str) -> tuple[list[str], dict[str, str], str | None]:
        """(argv, env, stdin) for `restic ARGS`: the secrets are in env or stdin, never argv.
        Resolving may run a command (command: references): async callers use `acommand`."""
        try:
            password = reveal(self.cfg.password)
            extra = {k: reveal(v) for k, v in self.cfg.env.items()}
        except Exception as exc:  # which reference failed, never its value
            raise ResticError(
                "password",
                "password unavailable",
                f"cannot resolve the secret for {self.where}: {type(exc).__name__}: {exc}",
            ) from None
        env = {**extra, "RESTIC_PROGRESS_FPS": "2"}
        if self.password_via == "env":  # noqa: S105 - a delivery mode, not a password
            env["RESTIC_PASSWORD"] = password
            env["RESTIC_REPOSITORY"] = self.cfg.repository
            return self.argv(*args), env, None
        return self.argv(*args), env, password + "\n"

    async def acommand(self, *args: str) -> tuple[list[str], dict[str, str], str | None]:
        # keyring and command: references block; keep them off the event loop (tracked: an
        # action's timeout waits for a command: secret still resolving before it unlocks)
        return await inflight.to_thread(self.command, *args)

    async def run(
        self,
        *args: str,
        timeout: float,
        on_line: LineSink | None = None,
        check: bool = True,
    ) -> CommandResult:
        argv, env, stdin = await self.acommand(*args)
        try:
            result = await self.executor.run(
                argv, timeout=timeout, input=stdin, env=env, on_line=on_line
            )
        except FileNotFoundError:
            raise ResticError(
                "missing", "restic not installed", f"restic is not on PATH on {self.executor.host}"
            ) from None
        if check and not result.ok:
            raise self.failure(result)
        return result

    def failure(self, result: CommandResult) -> ResticError:
        if result.returncode == 127:
            return ResticError(
                "missing", "restic not installed", f"restic not found on {self.executor.host}"
            )
        f = classify_failure(result.returncode, result.stderr)
        hint = {
            "wrong-password": f" — check the password reference {self.cfg.password}",
            "no-repository": " — check `repository` in the [[backups]] entry",
            "locked": " — see the lock on the backups pane; unlock a stale one with `u`",
        }.get(f.kind, "")
        return ResticError(f.kind, f.what, f"{self.where}: {f.message}{hint}", result)

    async def version(self) -> tuple[int, int, int]:
        if self._version is None:
            result = await self.executor.run([RESTIC, "version"], timeout=15)
            if result.returncode == 127 or not result.ok:
                raise ResticError(
                    "missing", "restic not installed", f"restic not usable on {self.executor.host}"
                )
            self._version = parse_version(result.stdout)
        return self._version

    async def snapshots(self, timeout: float = 60) -> tuple[Snapshot, ...]:
        result = await self.run("snapshots", "--json", "--no-lock", timeout=timeout)
        return parse_snapshots(result.stdout)

    async def stats(self, timeout: float = 120) -> RepoStats:
        result = await self.run("stats", "--json", "--no-lock", timeout=timeout)
        return parse_stats(result.stdout)

    async def locks(self, timeout: float = 30) -> tuple[LockInfo, ...]:
        ids = parse_lock_ids((await self.run("list", "locks", "--no-lock", timeout=timeout)).stdout)
        out = []
        for lock_id in ids[:MAX_LOCKS_READ]:
            result = await self.run(
                "cat", "lock", lock_id, "--no-lock", timeout=timeout, check=False
            )
            if result.ok:  # a lock removed between list and cat is simply gone
                out.append(parse_lock(lock_id, result.stdout))
        return tuple(out)

    async def ls(
        self, snapshot: str, *paths: str, recursive: bool = False, timeout: float = 120
    ) -> tuple[Snapshot | None, tuple[TreeNode, ...]]:
        args = ["ls", "--json", "--no-lock"]
        if recursive:
            args.append("--recursive")
        result = await self.run(*args, "--", snapshot, *paths, timeout=timeout)
        return parse_ls(result.stdout)

    async def hostname(self) -> str:
        result = await self.executor.run(["uname", "-n"], timeout=10)
        return result.stdout.strip()

    async def process_alive(self, pid: int) -> bool:
        result = await self.executor.run(["test", "-d", f"/proc/{int(pid)}"], timeout=10)
        return result.ok

    async def lock_states(self, now: datetime, timeout: float = 30) -> tuple[RepoLock, ...]:
        infos = await self.locks(timeout)
        if not infos:
            return ()
        here = await self.hostname()
        out = []
        for info in infos:
            gone: bool | None = None
            if info.hostname == here and info.pid > 0:
                gone = not await self.process_alive(info.pid)
            out.append(
                RepoLock(
                    id=info.id,
                    time=info.time,
                    exclusive=info.exclusive,
                    hostname=info.hostname,
                    username=info.username,
                    pid=info.pid,
                    process_gone=gone,
                    age=max(0.0, (now - info.time).total_seconds()),
                )
            )
        return tuple(out)


def find_backup(config: Config, name: str) -> BackupConfig:
    for cfg in config.backups:
        if cfg.name == name:
            return cfg
    known = ", ".join(b.name for b in config.backups) or "none configured"
    raise LookupError(f"no repository named {name!r} in [[backups]] ({known})")


# ---------------------------------------------------------------- the reader


class RepoReader:
    """One repository: snapshots, stats, locks and the last check hlcon ran."""

    def __init__(self, lab: Lab, cfg: BackupConfig) -> None:
        self.lab = lab
        self.cfg = cfg
        self.restic = Restic(lab, cfg)
        # restic's repository reads cost a key derivation each; backups change slowly
        self._interval = max(lab.config.console.refresh, 60.0)
        # the configured per-poll timeout, as for every reader: a hung restic must not hold
        # `hlcon status` for a minute (raise console.timeout for a slow repository)
        self._timeout = lab.config.console.timeout
        self._stats: tuple[frozenset[str], RepoStats] | None = None
        # (local fingerprint, state, monotonic time restic was last asked)
        self._last: tuple[object, RepoState, float] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return ("backup", self.cfg.name)

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def timeout(self) -> float:
        return self._timeout

    async def read(self) -> RepoState:
        try:
            return await self._read()
        except ResticError as exc:
            raise exc.as_read_error() from None
        except ValueError as exc:  # a parser met output it does not understand
            raise ReadError("unexpected restic output", f"{self.restic.where}: {exc}") from None

    def _local_fingerprint(self) -> object | None:
        """For a repository on this machine's filesystem: what restic's own files say about it
        (names and mtimes under snapshots/, index/, keys/, and that locks/ is empty). Equal
        fingerprints mean the snapshots are those of the last read; None: ask restic."""
        repo = self.cfg.repository.removeprefix("local:")
        if not self.lab.is_local(self.cfg.host) or not repo.startswith("/"):
            return None  # sftp:, rest:, s3: … or another host: only restic can tell
        root = Path(repo)
        try:
            if any(os.scandir(root / "locks")):
                return None  # a backup or prune is running: read it as it happens
            return tuple(
                sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(root / d))
                for d in ("snapshots", "index", "keys")
            )
        except OSError:
            return None  # not a readable local repository: restic says why

    async def _read(self) -> RepoState:
        # restic costs a key derivation per run (~0.5 s of CPU here): skip it while the local
        # repository's files are unchanged, re-aging what was read (bench/idle_cpu.py)
        fingerprint = await asyncio.to_thread(self._local_fingerprint)
        last_read = self._last
        if (
            fingerprint is not None
            and last_read is not None
            and last_read[0] == fingerprint
            # still ask now and then: a changed password or permissions must not hide forever
            and time.monotonic() - last_read[2] < RESTIC_ASK_AT_LEAST
        ):
            now = self.lab.clock()
            last = last_read[1]
            return replace(
                last,
                at=now,
                groups=group_snapshots(last.snapshots, now),
                last_check=load_check(self.lab.config, self.cfg.name),
            )
        state = await self._read_with_restic()
        self._last = (fingerprint, state, time.monotonic()) if fingerprint is not None else None
        return state

    async def _read_with_restic(self) -> RepoState:
        version = await self.restic.version()
        snapshots = await self.restic.snapshots(self._timeout)
        now = self.lab.clock()
        ids = frozenset(s.id for s in snapshots)
        # stats walk every tree: only again when the set of snapshots changed
        if self._stats is None or self._stats[0] != ids:
            self._stats = (ids, await self.restic.stats(self._timeout))
        locks = await self.restic.lock_states(now, self._timeout)
        return RepoState(
            at=now,
            name=self.cfg.name,
            repository=self.cfg.repository,
            host=self.restic.executor.host,
            restic_version=".".join(map(str, version)),
            snapshots=tuple(sorted(snapshots, key=lambda s: s.time)),
            groups=group_snapshots(snapshots, now),
            stats=self._stats[1],
            last_check=load_check(self.lab.config, self.cfg.name),
            locks=locks,
        )

    async def close(self) -> None:
        return None


def readers(lab: Lab) -> list[Reader]:
    return [RepoReader(lab, cfg) for cfg in lab.config.backups]


def restore_argv_paths(includes: Sequence[str]) -> list[str]:
    """`--include P` pairs; each path one argv element (never through a shell)."""
    out: list[str] = []
    for p in includes:
        out += ["--include", p]
    return out
