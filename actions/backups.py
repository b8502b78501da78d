"""restic actions on repo:NAME targets: restore, check, unlock (stale locks), backup now.

Every restic command runs through lab.backups.Restic (the password in env or on stdin, never
argv) on the host the [[backups]] entry names. Every other probe (free space, is the target
empty, which files exist) is an argv command on that same host, so a remote restore checks the
remote disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from actions.base import (
    Action,
    ActionFailed,
    BlastRadius,
    Confirmation,
    Identity,
    Outcome,
    Plan,
    Progress,
    Step,
    Target,
    path_key,
)
from actions.maintenance import canonical_host
from actions.policy import FAMILY_TIMEOUTS
from actions.registry import register
from lab import units
from lab.backups import (
    Restic,
    ResticError,
    TreeNode,
    find_backup,
    parse_check,
    parse_message,
    parse_verified_count,
    save_check,
)
from lab.config import BackupConfig
from lab.execute import Executor
from lab.hosts import parse_df
from lab.model import CheckRecord

if TYPE_CHECKING:
    from lab.wiring import Lab

STAGING_ROOT = "/var/tmp/hlcon-restore"  # noqa: S108 - a user-visible default, same on every host
_SNAPSHOT_ID = re.compile(r"^(latest|[0-9a-f]{4,64})$")
OVERWRITE_LIST_MAX = 200  # paths kept in a plan; the count is always exact


def _flag(value: Any, name: str) -> bool:
    """A boolean parameter; the CLI's --param gives strings ("1", "true", "no" …)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name}: expected true or false, not {value!r}")


def default_staging(repo: str, snapshot: str, now: datetime) -> str:
    """A new folder per restore: STAGING_ROOT/REPO-SNAPSHOT-UTCSTAMP (safe characters only)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", repo)
    return f"{STAGING_ROOT}/{name}-{snapshot[:8]}-{now:%Y%m%d-%H%M%S}"


class RestoreRefused(ActionFailed):
    """plan() found the restore unsafe (target not empty, no room, not writable …)."""


def _repo(target: Target, lab: Lab) -> BackupConfig:
    if target.kind != "repo":
        raise ValueError(f"backup actions act on repo:NAME targets, not {target}")
    try:
        return find_backup(lab.config, target.name)
    except LookupError as exc:
        raise ValueError(str(exc)) from None


def clean_path(text: str, what: str) -> str:
    """An absolute, normalised POSIX path; refuses relative paths and control characters."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"{what}: a path is needed")
    if any(ord(c) < 32 for c in text):
        raise ValueError(f"{what}: control characters are not allowed in {text!r}")
    if not text.startswith("/"):
        raise ValueError(f"{what}: must be an absolute path, not {text!r}")
    return posixpath.normpath(text).replace("//", "/")


def escape_pattern(path: str) -> str:
    """restic's --include is a glob: escape * ? [ and backslash so a name means itself."""
    return re.sub(r"([*?\[\\])", r"\\\1", path)


def _under(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def _join(target: str, path: str) -> str:
    return posixpath.join(target, path.lstrip("/")) if target != "/" else path


def _parse_find(text: str) -> dict[str, tuple[str, int]]:
    """`find … -printf '%y %s %p\\0'` → {path: (type letter, size)}."""
    out: dict[str, tuple[str, int]] = {}
    for item in text.split("\0"):
        if not item:
            continue
        kind, size, path = item.split(" ", 2)
        out[path] = (kind, int(size))
    return out


def _df_available(text: str) -> int:
    """Free bytes of the filesystem `df -P -B1 PATH` names (lab.hosts.parse_df reads it)."""
    filesystems = parse_df(text, block_size=1)
    if not filesystems:
        raise ValueError(f"df: unexpected output {text[:80]!r}")
    return filesystems[-1].available


async def _existing(executor: Executor, paths: Sequence[str]) -> dict[str, tuple[str, int]]:
    """Which of `paths` (and everything below them) exist on the host: {path: (type, size)}."""
    if not paths:
        return {}
    result = await executor.run(
        ["find", *paths, "-printf", "%y %s %p\\0"], timeout=120
    )  # missing roots only print to stderr
    return _parse_find(result.stdout)


async def real_paths(executor: Executor, paths: Sequence[str]) -> list[str]:
    """Each path with its symlinks resolved, on the host (`realpath -m`: missing parts are kept
    as written). Falls back to the normalised paths where realpath is missing or fails."""
    result = await executor.run(["realpath", "-m", "--", *paths], timeout=15)
    lines = result.stdout.splitlines()
    if not result.ok or len(lines) != len(paths):
        return list(paths)
    return lines


@dataclass(frozen=True)
class TargetProbe:
    exists: bool
    entries: int  # 0 or 1: is it non-empty (find -quit)
    writable: bool
    free: int  # bytes available on its filesystem (its nearest existing ancestor's)
    ancestor: str


async def probe_target(executor: Executor, target: str) -> TargetProbe:
    ancestors = [target]
    p = target
    while p != "/":
        p = posixpath.dirname(p)
        ancestors.append(p)
    stat = await executor.run(["stat", "--format=%n", *ancestors], timeout=15)
    existing = set(stat.stdout.splitlines())
    ancestor = next(a for a in ancestors if a in existing or a == "/")
    exists = target in existing
    entries = 0
    if exists:
        found = await executor.run(
            ["find", target, "-mindepth", "1", "-maxdepth", "1", "-print", "-quit"], timeout=15
        )
        entries = 1 if found.stdout.strip() else 0
    writable = (await executor.run(["test", "-w", ancestor], timeout=15)).ok
    df = await executor.run(["df", "-P", "-B1", ancestor], timeout=15)
    free = _df_available(df.stdout) if df.ok else 0
    return TargetProbe(exists, entries, writable, free, ancestor)


# ---------------------------------------------------------------- restore


@dataclass(frozen=True)
class RestoreSpec:
    """A restore as planned: what restic restores where, and what verify compares with (every
    entry of the selection under its restored path: its type and size)."""

    real_paths: tuple[str, ...]  # the written directories, symlinks resolved (the lock keys)
    snapshot_id: str
    include: tuple[str, ...]
    target: str
    in_place: bool
    files: int
    bytes: int
    free: int
    overwritten: tuple[str, ...]  # the first OVERWRITE_LIST_MAX
    overwritten_count: int
    json_progress: bool
    expected: Mapping[str, tuple[str, int]]


@dataclass(frozen=True)
class StaleLocks:
    ids: tuple[str, ...]


RepoPayloadT = TypeVar("RepoPayloadT")


class RepoAction(Action[RepoPayloadT], Generic[RepoPayloadT]):
    """An action on one [[backups]] repository: its config entry and restic, on its host."""

    def __init__(self, target: Target, lab: Lab) -> None:
        super().__init__(target, lab)
        self.cfg = _repo(target, lab)
        self.restic = Restic(lab, self.cfg)

    @property
    def host(self) -> str:
        return self.cfg.host

    # restic's own rule: check and unlock need the repository to themselves; restore and
    # backup only read or add (a restore beside another restore is fine)
    exclusive: ClassVar[bool] = True

    def repo_key(self) -> str:
        """The repository by its location: a path is resolved on the host restic runs on (two
        [[backups]] entries for one repository are one); a URL (sftp:, rest:, s3: …) is the
        same from anywhere."""
        host = canonical_host(self.lab.config, self.cfg.host)
        location = self.cfg.repository
        if location.startswith("/") or location.startswith("local:"):
            path = location.removeprefix("local:")
            path = os.path.realpath(path) if host == "local" else posixpath.normpath(path)
            return f"repo:{path}@{host}"
        return f"repo:{location}"

    def step_args(self, plan: Plan[RepoPayloadT], index: int = 0) -> tuple[str, ...]:
        """The restic arguments of the plan's step `index`: what was confirmed is what runs
        (Restic.run adds the same prefix again, with the secrets in env or stdin)."""
        argv, prefix = plan.steps[index].argv, tuple(self.restic.argv())
        if argv is None or argv[: len(prefix)] != prefix:
            raise ActionFailed(
                f"step {index + 1} of the plan is not restic on repo:{self.cfg.name}"
            )
        return argv[len(prefix) :]

    async def identity(self, plan: Plan[RepoPayloadT]) -> Identity:
        host = canonical_host(self.lab.config, self.cfg.host)
        key = self.repo_key()
        return Identity((key,), (host,)) if self.exclusive else Identity((), (host,), (key,))


@register(kind="repo")
class RestoreAction(RepoAction[RestoreSpec]):
    """Restore files of one snapshot into a staging folder (default) or in place."""

    family = "backup.restore"
    verb = "restore"
    exclusive = False

    def __init__(
        self,
        target: Target,
        lab: Lab,
        *,
        snapshot: str,
        include: Sequence[str] = ("/",),
        restore_to: str | None = None,
        in_place: bool = False,
        overwrite: bool = False,
    ) -> None:
        super().__init__(target, lab)
        if not isinstance(snapshot, str) or not _SNAPSHOT_ID.match(snapshot):
            raise ValueError(
                f"snapshot: expected a snapshot id (hex) or 'latest', not {snapshot!r}"
            )
        self.snapshot = snapshot
        self.include = tuple(dict.fromkeys(clean_path(p, "include") for p in include)) or ("/",)
        self.in_place = bool(in_place)
        if self.in_place:
            if restore_to not in (None, "/"):
                raise ValueError("--in-place restores to the original paths; drop --target")
            self.restore_to = "/"
        elif restore_to:
            self.restore_to = clean_path(restore_to, "target")
            if self.restore_to == "/":
                raise ValueError("target '/' is the original location: use --in-place")
        else:
            self.restore_to = default_staging(self.cfg.name, snapshot, lab.clock())
        self.overwrite = bool(overwrite) or self.in_place
        self.partial: list[dict[str, Any]] | None = None  # set when a restore is cancelled
        self.lock_note = ""  # what became of the lock a cancelled restic left

    @classmethod
    def create(cls, target: Target, lab: Lab, params: Mapping[str, Any]) -> Action:
        include = params.get("include") or ["/"]
        if isinstance(include, str):
            include = [include]
        snapshot = params.get("snapshot")
        if not snapshot:
            raise ValueError("restore needs --snapshot ID (see the backups pane or `hlcon status`)")
        return cls(
            target,
            lab,
            snapshot=str(snapshot),
            include=list(include),
            restore_to=params.get("target"),
            in_place=_flag(params.get("in_place", False), "in_place"),
            overwrite=_flag(params.get("overwrite", False), "overwrite"),
        )

    @property
    def lock_keys(self) -> tuple[str, ...]:
        # two consoles cannot restore into the same place on the same host
        return (str(self.target), f"path:{self.restore_to}@{self.cfg.host}")

    def written(self) -> tuple[str, ...]:
        """The directories this restore writes into: its target; in place, the included paths."""
        return self.include if self.in_place else (self.restore_to,)

    async def identity(self, plan: Plan[RestoreSpec]) -> Identity:
        # The real paths (symlinks resolved on the restic host, when the plan was made) as path
        # keys: the lock layer excludes every restore into an overlapping directory too.
        host = canonical_host(self.lab.config, self.cfg.host)
        real = plan.data.real_paths or self.written()
        paths = tuple(path_key(str(p), host) for p in real)
        return Identity(paths, (host,), (self.repo_key(),))

    def restore_argv(self, snapshot_id: str, json_progress: bool) -> list[str]:
        args = ["restore", "--target", self.restore_to, "--verify"]
        if json_progress:
            args.append("--json")
        for p in self.include:
            if p != "/":
                args += ["--include", escape_pattern(p)]
        return [*args, "--", snapshot_id]

    async def selection(self) -> tuple[str, tuple[TreeNode, ...]]:
        """(full snapshot id, every node the includes select)."""
        try:
            snap, nodes = await self.restic.ls(self.snapshot, *self.include, recursive=True)
        except ResticError as exc:
            raise RestoreRefused(str(exc)) from None
        if snap is None:
            raise RestoreRefused(f"snapshot {self.snapshot} not found in repo:{self.cfg.name}")
        chosen = tuple(n for n in nodes if any(_under(n.path, p) for p in self.include))
        for p in self.include:
            if p != "/" and not any(n.path == p for n in chosen):
                raise RestoreRefused(f"{p} is not in snapshot {snap.short_id}")
        return snap.id, chosen

    async def plan(self) -> Plan[RestoreSpec]:
        version = await self.restic.version()
        snapshot_id, nodes = await self.selection()
        files = [n for n in nodes if n.type == "file"]
        total = sum(n.size for n in files)
        probe = await probe_target(self.restic.executor, self.restore_to)
        roots = [_join(self.restore_to, p) for p in self.include]
        existing = await _existing(self.restic.executor, roots) if probe.exists else {}
        overwritten = sorted(
            _join(self.restore_to, n.path)
            for n in nodes
            if n.type != "dir" and _join(self.restore_to, n.path) in existing
        )
        replaced_bytes = sum(
            existing[p][1] for p in overwritten if existing[p][0] == "f"
        )  # space freed by files restic rewrites
        if not probe.writable:
            raise RestoreRefused(
                f"cannot write to {self.restore_to} on {self.cfg.host} "
                f"({probe.ancestor} is not writable)"
            )
        if probe.entries and not self.overwrite:
            raise RestoreRefused(
                f"target {self.restore_to} is not empty ({len(overwritten)} of the restored "
                f"files would be overwritten): choose an empty folder (--target DIR), or allow "
                f"it with --param overwrite=true (the restore wizard: its overwrite switch)"
            )
        need = max(0, total - replaced_bytes)
        if need > probe.free:
            raise RestoreRefused(
                f"not enough room in {probe.ancestor} on {self.cfg.host}: {units.size(need)} to "
                f"restore, {units.size(probe.free)} free"
            )
        json_progress = version >= (0, 16, 0)
        argv = self.restic.argv(*self.restore_argv(snapshot_id, json_progress))
        where = "in place (original paths)" if self.in_place else self.restore_to
        what = ", ".join(self.include)
        notes = []
        if overwritten:
            notes.append(f"{len(overwritten)} existing files will be overwritten")
        notes.append(f"{units.size(probe.free)} free in {probe.ancestor}")
        if self.in_place:
            expect = (
                self.include[0] if len(self.include) == 1 else posixpath.commonpath(self.include)
            )
            confirmation = Confirmation(
                f"Restore {what} from {snapshot_id[:8]} OVER the original files — type the path "
                f"{expect} to confirm",
                expect=expect,
            )
            blast = BlastRadius.DISRUPTIVE
        elif overwritten:
            confirmation = Confirmation(
                f"Overwrite {len(overwritten)} files in {self.restore_to} — "
                "type the path to confirm",
                expect=self.restore_to,
            )
            blast = BlastRadius.DISRUPTIVE
        else:
            confirmation = Confirmation(f"Restore {what} into {self.restore_to}?")
            blast = BlastRadius.SINGLE
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"Restore {what} from snapshot {snapshot_id[:8]} of repo:{self.cfg.name} "
            f"to {where} on {self.cfg.host}",
            steps=(
                Step(
                    f"restic restore {len(files)} files ({units.size(total)}) with --verify",
                    self.cfg.host,
                    argv=tuple(argv),
                    changes=tuple(roots),
                ),
                Step("compare restored files and sizes with the snapshot listing", self.cfg.host),
            ),
            blast_radius=blast,
            confirmation=confirmation,
            reversible=False,
            cost=f"{len(files)} files, {units.size(total)} to write",
            notes=tuple(notes),
            timeout=FAMILY_TIMEOUTS[self.family],  # actions.timeouts."backup.restore" overrides
            data=RestoreSpec(
                real_paths=tuple(await real_paths(self.restic.executor, self.written())),
                snapshot_id=snapshot_id,
                include=tuple(self.include),
                target=self.restore_to,
                in_place=self.in_place,
                files=len(files),
                bytes=total,
                free=probe.free,
                overwritten=tuple(overwritten[:OVERWRITE_LIST_MAX]),
                overwritten_count=len(overwritten),
                json_progress=json_progress,
                expected={
                    _join(self.restore_to, n.path): (n.type, n.size)
                    for n in nodes
                    if n.type in ("file", "dir", "symlink")
                },
            ),
        )

    async def execute(self, plan: Plan[RestoreSpec], progress: Progress) -> Outcome:
        data = plan.data
        total = data.bytes
        json_progress = data.json_progress
        roots = [_join(data.target, p) for p in data.include]
        verified: list[str] = []

        def on_line(line: str) -> None:
            msg = parse_message(line)
            if msg is None:
                verified.append(line)
                return
            if msg.type == "status":
                done = msg.bytes_done or 0
                left = msg.seconds_remaining
                eta = f", ETA {units.duration(left)}" if left else ""
                of = units.size(msg.total_bytes or total)
                progress(msg.fraction, f"{units.size(done)} of {of}{eta}")

        poll: asyncio.Task[None] | None = None
        if not json_progress and not self.in_place and total:
            poll = asyncio.create_task(self._poll_bytes(roots, total, progress))
        progress(0.0, f"restoring {data.files} files, {units.size(total)}")
        started = datetime.now(UTC)  # wall clock: compared with the times restic writes
        try:
            result = await self.restic.run(
                *self.step_args(plan),
                timeout=plan.timeout or FAMILY_TIMEOUTS[self.family],
                on_line=on_line,
                check=False,
            )
        except asyncio.CancelledError:
            self.partial = await self._report(plan)
            self.lock_note = await self._clear_own_lock(started)
            raise
        finally:
            if poll is not None:
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poll
        if not result.ok:
            raise ActionFailed(
                str(self.restic.failure(result)), {"partial": await self._report(plan)}
            )
        count = parse_verified_count(result.stdout + result.stderr)
        progress(1.0, f"restored {data.files} files, {units.size(total)}")
        return Outcome(
            True,
            f"restored {data.files} files ({units.size(total)}) to {data.target}",
            {"verified_by_restic": count, "target": data.target},
        )

    async def _clear_own_lock(self, started: datetime) -> str:
        """A cancel kills restic, which leaves its lock behind: remove it with `restic unlock`
        (stale locks only), but only when every stale lock is the one this restore left."""
        try:
            locks = await self.restic.lock_states(datetime.now(UTC))
        except ResticError as exc:
            return f"could not read the locks after the cancel: {exc}"
        ours = [lk for lk in locks if lk.process_gone and lk.time >= started - timedelta(seconds=5)]
        others = [lk for lk in locks if lk.stale and lk not in ours]
        if not ours:
            return ""
        if others:
            return "the cancelled restore left a stale lock beside others: unlock from the pane"
        try:
            await self.restic.run("unlock", timeout=60)
        except ResticError as exc:
            return f"the cancelled restore left a stale lock ({exc})"
        return "removed the lock the cancelled restore left"

    async def _poll_bytes(self, roots: list[str], total: int, progress: Progress) -> None:
        """restic 0.14 prints no restore progress: measure what has landed in the target."""
        while True:
            await asyncio.sleep(1.0)
            result = await self.restic.executor.run(
                ["du", "-s", "-B1", "--apparent-size", "-c", *roots], timeout=30
            )
            lines = result.stdout.strip().splitlines()
            if lines and lines[-1].endswith("total"):
                done = int(lines[-1].split()[0])
                progress(min(done / total, 0.99), f"{units.size(done)} of {units.size(total)}")

    async def _report(self, plan: Plan[RestoreSpec]) -> list[dict[str, Any]]:
        """Files of the selection present in the target, and whether each is complete."""
        expected = plan.data.expected
        roots = [_join(plan.data.target, p) for p in plan.data.include]
        found = await _existing(self.restic.executor, roots)
        out = []
        for path, (kind, size) in sorted(found.items()):
            want = expected.get(path)
            if want is None or want[0] != "file" or kind != "f":
                continue
            out.append(
                {"path": path, "size": size, "expected": want[1], "complete": size == want[1]}
            )
        return out

    async def verify(self, plan: Plan[RestoreSpec], outcome: Outcome) -> Outcome:
        expected = plan.data.expected
        roots = [_join(plan.data.target, p) for p in plan.data.include]
        found = await _existing(self.restic.executor, roots)
        letter = {"file": "f", "dir": "d", "symlink": "l"}
        missing, wrong = [], []
        for path, (kind, size) in expected.items():
            got = found.get(path)
            if got is None or got[0] != letter[kind]:
                missing.append(path)
            elif kind == "file" and got[1] != size:
                wrong.append(f"{path}: {got[1]} bytes, snapshot has {size}")
        if missing or wrong:
            raise ActionFailed(
                f"restored files differ from the snapshot: {len(missing)} missing, "
                f"{len(wrong)} with the wrong size",
                {"missing": missing[:50], "wrong_size": wrong[:50]},
            )
        by_restic = outcome.details.get("verified_by_restic")
        return Outcome(
            True,
            f"verified {len(expected)} entries against snapshot {plan.data.snapshot_id[:8]}"
            + (f"; restic --verify checked the content of {by_restic} files" if by_restic else ""),
            {**outcome.details, "entries": len(expected)},
        )


# ---------------------------------------------------------------- check


@register(kind="repo")
class CheckAction(RepoAction[None]):
    """`restic check`; hlcon records the result (restic keeps none) for the health rule."""

    family = "backup.check"
    verb = "check"

    async def plan(self) -> Plan[None]:
        argv = self.restic.argv("check")
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"Check repo:{self.cfg.name} ({self.cfg.repository}) on {self.cfg.host}",
            steps=(
                Step("restic check (takes an exclusive lock)", self.cfg.host, argv=tuple(argv)),
            ),
            blast_radius=BlastRadius.SINGLE,
            confirmation=Confirmation(f"Check repo:{self.cfg.name}?"),
            notes=("backups to this repository wait while the check holds its lock",),
            timeout=FAMILY_TIMEOUTS[self.family],  # actions.timeouts."backup.check" overrides
            data=None,
        )

    async def execute(self, plan: Plan[None], progress: Progress) -> Outcome:
        progress(None, f"checking repo:{self.cfg.name}")
        result = await self.restic.run(
            *self.step_args(plan),
            timeout=plan.timeout or FAMILY_TIMEOUTS[self.family],
            check=False,
        )
        if not result.ok:
            failure = self.restic.failure(result)
            if failure.kind != "failed":  # could not run the check at all: nothing to record
                raise ActionFailed(str(failure))
        ok, message = parse_check(result.returncode, result.stdout, result.stderr)
        save_check(self.lab.config, self.cfg.name, CheckRecord(self.lab.clock(), ok, message))
        if not ok:
            raise ActionFailed(f"repo:{self.cfg.name} check found problems: {message}")
        return Outcome(True, f"repo:{self.cfg.name}: {message}")

    async def verify(self, plan: Plan[None], outcome: Outcome) -> Outcome:
        from lab.backups import load_check

        record = load_check(self.lab.config, self.cfg.name)
        if record is None or not record.ok:
            raise ActionFailed("the check result was not recorded")
        return outcome


# ---------------------------------------------------------------- unlock


@register(kind="repo")
class UnlockAction(RepoAction[StaleLocks]):
    """`restic unlock`: removes stale locks only (restic's rule matches the reader's)."""

    family = "backup.unlock"
    verb = "unlock"

    async def plan(self) -> Plan[StaleLocks]:
        locks = await self.restic.lock_states(self.lab.clock())
        stale = [lk for lk in locks if lk.stale]
        if not stale:
            held = ", ".join(f"PID {lk.pid} on {lk.hostname}" for lk in locks)
            raise ActionFailed(
                f"repo:{self.cfg.name} has no stale lock"
                + (f" (held by live processes: {held}; wait for them)" if held else "")
            )
        described = [
            f"lock {lk.id[:8]} by PID {lk.pid} on {lk.hostname} "
            f"({'process gone' if lk.process_gone else f'{units.age(lk.age)} old'})"
            for lk in stale
        ]
        argv = self.restic.argv("unlock")
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"Remove {len(stale)} stale lock(s) from repo:{self.cfg.name}",
            steps=(Step("restic unlock (stale locks only)", self.cfg.host, argv=tuple(argv)),),
            blast_radius=BlastRadius.DISRUPTIVE,
            confirmation=Confirmation(
                f"Unlock repo:{self.cfg.name} — type {self.cfg.name} to confirm",
                expect=self.cfg.name,
            ),
            notes=tuple(described),
            data=StaleLocks(tuple(lk.id for lk in stale)),
        )

    async def execute(self, plan: Plan[StaleLocks], progress: Progress) -> Outcome:
        try:
            await self.restic.run(*self.step_args(plan), timeout=120)
        except ResticError as exc:
            raise ActionFailed(str(exc)) from None
        return Outcome(True, f"removed stale locks from repo:{self.cfg.name}")

    async def verify(self, plan: Plan[StaleLocks], outcome: Outcome) -> Outcome:
        left = {lk.id for lk in await self.restic.lock_states(self.lab.clock())}
        still = [i for i in plan.data.ids if i in left]
        if still:
            raise ActionFailed(f"{len(still)} stale lock(s) still there: {', '.join(still)}")
        return outcome


# ---------------------------------------------------------------- backup now


@register(kind="repo")
class BackupNowAction(RepoAction[None]):
    """`restic backup` of the entry's configured `paths`, with progress."""

    family = "backup.now"
    verb = "backup-now"

    def __init__(self, target: Target, lab: Lab) -> None:
        super().__init__(target, lab)
        if not self.cfg.paths:
            raise ValueError(f"repo:{self.cfg.name} has no `paths` for backup now ([[backups]])")

    async def plan(self) -> Plan[None]:
        args = ["backup", "--json", "--", *self.cfg.paths]
        argv = self.restic.argv(*args)
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"Back up {', '.join(self.cfg.paths)} to repo:{self.cfg.name} now",
            steps=(Step("restic backup", self.cfg.host, argv=tuple(argv)),),
            blast_radius=BlastRadius.SINGLE,
            confirmation=Confirmation(f"Back up to repo:{self.cfg.name} now?"),
            data=None,  # the paths are in the step's argv, which is what runs
            timeout=FAMILY_TIMEOUTS[self.family],  # actions.timeouts."backup.now" overrides
        )

    async def execute(self, plan: Plan[None], progress: Progress) -> Outcome:
        snapshot: list[str] = []

        def on_line(line: str) -> None:
            msg = parse_message(line)
            if msg is None:
                return
            if msg.type == "status":
                done_text, of = units.size(msg.bytes_done or 0), units.size(msg.total_bytes or 0)
                progress(msg.fraction, f"{done_text} of {of}")
            elif msg.type == "summary" and msg.snapshot_id:
                snapshot.append(msg.snapshot_id)

        try:
            await self.restic.run(
                *self.step_args(plan),
                timeout=plan.timeout or FAMILY_TIMEOUTS[self.family],
                on_line=on_line,
            )
        except ResticError as exc:
            raise ActionFailed(str(exc)) from None
        if not snapshot:
            raise ActionFailed("restic backup ended without a summary (no snapshot id)")
        return Outcome(True, f"snapshot {snapshot[0]} saved", {"snapshot_id": snapshot[0]})

    async def verify(self, plan: Plan[None], outcome: Outcome) -> Outcome:
        new = str(outcome.details["snapshot_id"])
        if not any(s.id.startswith(new) for s in await self.restic.snapshots()):
            raise ActionFailed(f"snapshot {new} is not in the repository's list")
        return outcome
