"""Backups against real restic repositories (tests/testbed/restic.py): reader, faults, locks,
restore through the runner (staging, overwrite, in place, refusals, cancel), check, unlock,
backup now."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from actions.backups import (
    BackupNowAction,
    CheckAction,
    RestoreAction,
    RestoreRefused,
    UnlockAction,
)
from actions.base import BlastRadius, Target
from actions.runner import Refused, Runner
from lab.backups import RepoReader, Restic, load_check
from lab.config import BackupConfig, Config, ConsoleConfig, HostConfig
from lab.execute import CommandResult, LineSink, LocalExecutor
from lab.health import backup_findings
from lab.model import RepoState
from lab.poller import Poller, ReadError
from lab.secrets import SecretRef
from lab.store import Store
from lab.wiring import Lab
from tests.testbed import is_root, require
from tests.testbed import sshd as sshd_testbed
from tests.testbed.restic import PASSWORD, LockedRepo, ResticLab, restic_config

pytestmark = pytest.mark.testbed

REPO = Target("repo", "main")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def lab(restic_lab: ResticLab, tmp_path: Path) -> Lab:
    return Lab(restic_config(restic_lab, tmp_path / "state", paths=(str(restic_lab.source),)))


def reader(lab: Lab, name: str) -> RepoReader:
    return next(r for r in lab.readers() if r.key == ("backup", name))  # type: ignore[return-value]


# ---------------------------------------------------------------- reader


async def test_reader_reads_snapshots_stats_and_groups(lab: Lab, restic_lab: ResticLab) -> None:
    state = await reader(lab, "main").read()
    assert isinstance(state, RepoState)
    assert state.restic_version.startswith("0.")
    assert [s.id for s in state.snapshots] == restic_lab.snapshots
    assert state.snapshots[0].tags == ("daily",)
    assert state.snapshots[0].host == "testbed"
    assert state.snapshots[0].paths == (str(restic_lab.source),)
    (group,) = state.groups
    assert group.newest.id == restic_lab.snapshots[-1] and group.count == 2
    assert state.stats is not None and state.stats.snapshots_count == 2
    assert state.stats.total_size > 3 * (4 << 20)
    assert state.locks == () and state.last_check is None
    findings = backup_findings(state, lab.config, ("backup", "main"), state.at)
    assert [f.rule for f in findings] == ["backup-check"]  # fresh, but never checked


class CountingExecutor(LocalExecutor):
    """This machine, noting each command it runs (they still run for real)."""

    def __init__(self) -> None:
        super().__init__()
        self.commands: list[list[str]] = []

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        on_line: LineSink | None = None,
    ) -> CommandResult:
        self.commands.append(list(argv))
        return await super().run(argv, timeout=timeout, input=input, env=env, on_line=on_line)


async def test_unchanged_local_repository_is_not_asked_again(
    restic_lab: ResticLab, tmp_path: Path
) -> None:
    """restic costs a key derivation per run: while the repository's files are unchanged the
    reader re-ages its last reading instead; a new snapshot makes it ask restic again."""
    repo = tmp_path / "repo"
    shutil.copytree(restic_lab.repo, repo)
    cfg = BackupConfig(
        name="copy",
        repository=str(repo),
        password=SecretRef("file", str(restic_lab.password_file)),
    )
    lab = Lab(restic_config(restic_lab, tmp_path / "state", extra=(cfg,)))
    repo_reader = reader(lab, "copy")
    counting = CountingExecutor()
    repo_reader.restic.executor = counting
    first = await repo_reader.read()
    assert len(first.snapshots) == 2 and any("snapshots" in c for c in counting.commands)
    ran = len(counting.commands)

    again = await repo_reader.read()
    assert len(counting.commands) == ran  # no restic run
    assert again.snapshots == first.snapshots and again.stats == first.stats
    assert again.at >= first.at

    restic_lab.restic("backup", "--host", "testbed", str(restic_lab.source / "modes"), repo=repo)
    third = await repo_reader.read()
    assert len(counting.commands) > ran
    assert len(third.snapshots) == 3


@pytest.mark.parametrize(
    ("name", "what", "says"),
    [
        ("wrongpw", "wrong password", "wrong password or no key found"),
        ("missing", "repository not found", "unable to open config file"),
    ],
)
async def test_bad_repositories_become_clear_faults(
    lab: Lab, name: str, what: str, says: str
) -> None:
    with pytest.raises(ReadError) as err:
        await reader(lab, name).read()
    assert err.value.what == what
    assert says in str(err.value) and f"repo:{name}" in str(err.value)
    store = Store()
    poller = Poller(store, [reader(lab, name)])
    await poller.poll_all()
    entry = store.get(("backup", name))
    assert entry is not None and entry.fault is not None and entry.fault.what == what
    assert PASSWORD not in entry.fault.why and "not the password" not in entry.fault.why


async def test_password_never_on_the_command_line(lab: Lab) -> None:
    restic = Restic(lab, lab.config.backups[0])
    argv, env, stdin = restic.command("snapshots")
    assert PASSWORD not in " ".join(argv) and env["RESTIC_PASSWORD"] == PASSWORD and stdin is None
    # the remote-host mode: the password travels on stdin (--password-file=/dev/stdin)
    remote = Restic(lab, lab.config.backups[0], password_via="stdin")
    argv, env, stdin = remote.command("snapshots")
    assert PASSWORD not in " ".join(argv) and "RESTIC_PASSWORD" not in env
    assert stdin == PASSWORD + "\n"
    assert len(await remote.snapshots()) == 2  # and real restic accepts it


async def test_stale_lock_is_seen_refuses_check_and_unlocks(
    restic_lab: ResticLab, locked_repo: LockedRepo, tmp_path: Path
) -> None:
    locked = BackupConfig(
        name="locked",
        repository=str(locked_repo.repo),
        password=SecretRef("file", str(restic_lab.password_file)),
    )
    lab = Lab(restic_config(restic_lab, tmp_path / "state", extra=(locked,)))
    state = await reader(lab, "locked").read()
    (lock,) = state.locks
    assert lock.pid == locked_repo.pid and lock.process_gone is True and lock.stale
    findings = backup_findings(state, lab.config, ("backup", "locked"), state.at)
    assert any(f.rule == "backup-lock" and str(lock.pid) in f.message for f in findings)

    runner = Runner(lab)
    target = Target("repo", "locked")
    result = await runner.run(await runner.prepare(CheckAction(target, lab)), "y")
    assert not result.ok and "repository is already locked" in result.outcome.message
    assert load_check(lab.config, "locked") is None  # a check that never ran records nothing

    prepared = await runner.prepare(UnlockAction(target, lab))
    assert prepared.plan.confirmation.expect == "locked"
    with pytest.raises(Refused):
        await runner.run(prepared, "y")  # a plain yes is not the typed name
    prepared = await runner.prepare(UnlockAction(target, lab))
    result = await runner.run(prepared, "locked")
    assert result.ok, result.outcome.message
    assert (await reader(lab, "locked").read()).locks == ()
    with pytest.raises(Refused, match="no stale lock"):
        await runner.prepare(UnlockAction(target, lab))


# ---------------------------------------------------------------- restore


def restore(lab: Lab, **params: object) -> RestoreAction:
    action = RestoreAction.create(REPO, lab, params)
    assert isinstance(action, RestoreAction)
    return action


async def test_restore_to_staging_verifies_every_file(
    lab: Lab, restic_lab: ResticLab, tmp_path: Path
) -> None:
    src = restic_lab.source
    target = tmp_path / "staging"
    runner = Runner(lab)
    seen: list[float | None] = []
    action = restore(
        lab, snapshot=restic_lab.snapshots[0][:8], include=[str(src)], target=str(target)
    )
    prepared = await runner.prepare(action)
    plan = prepared.plan
    assert plan.blast_radius is BlastRadius.SINGLE and plan.data.overwritten_count == 0
    assert plan.data.files >= 10 and plan.data.bytes > 3 * (4 << 20)
    result = await runner.run(prepared, "y", lambda f, m: seen.append(f))
    assert result.ok, result.outcome.message
    assert "verified" in result.outcome.message and seen[-1] == 1.0
    out = target / str(src).lstrip("/")
    # the first snapshot: the file changed later is restored as it was then
    assert (out / "dir with space/a file.txt").read_text().startswith("dir with space/a file.txt")
    assert not (out / "added later.txt").exists()
    for rel in restic_lab.large:
        assert sha(out / rel) == sha(src / rel)
    assert (out / "ünïcødé/naïve café.txt").read_text() == (
        src / "ünïcødé/naïve café.txt"
    ).read_text()
    assert os.readlink(out / "links/to-cafe") == "../ünïcødé/naïve café.txt"
    assert (out / "modes/secret.key").stat().st_mode & 0o777 == 0o600
    assert (out / "modes/run.sh").stat().st_mode & 0o777 == 0o755


async def test_restore_selected_awkward_names_reach_no_shell(
    lab: Lab, restic_lab: ResticLab, tmp_path: Path
) -> None:
    src = restic_lab.source
    picks = [str(src / "x; touch pwned"), str(src / "$(id)"), str(src / "[brackets]")]
    target = tmp_path / "picked"
    runner = Runner(lab)
    result = await runner.run(
        await runner.prepare(restore(lab, snapshot="latest", include=picks, target=str(target))),
        "y",
    )
    assert result.ok, result.outcome.message
    out = target / str(src).lstrip("/")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["x; touch pwned", "$(id)", "[brackets]"]
    )
    assert (out / "$(id)/`uname`.txt").exists() and (out / "[brackets]/star*q?.txt").exists()
    assert not Path("pwned").exists() and not (tmp_path / "pwned").exists()


async def test_an_include_with_glob_characters_means_only_that_file(
    lab: Lab, restic_lab: ResticLab, tmp_path: Path
) -> None:
    exact = restic_lab.source / "[brackets]/star*q?.txt"
    target = tmp_path / "glob"
    runner = Runner(lab)
    prepared = await runner.prepare(
        restore(lab, snapshot="latest", include=[str(exact)], target=str(target))
    )
    assert prepared.plan.data.files == 1
    assert (await runner.run(prepared, "y")).ok
    out = target / str(exact.parent).lstrip("/")
    assert [p.name for p in out.iterdir()] == ["star*q?.txt"]  # not starXq1.txt


async def test_restore_refuses_a_non_empty_target_without_overwrite(
    lab: Lab, restic_lab: ResticLab, tmp_path: Path
) -> None:
    src = restic_lab.source
    target = tmp_path / "busy"
    keep = target / str(src).lstrip("/") / "dir with space/a file.txt"
    keep.parent.mkdir(parents=True)
    keep.write_text("mine\n")
    runner = Runner(lab)
    include = [str(src / "dir with space")]
    with pytest.raises(Refused, match="not empty"):
        await runner.prepare(restore(lab, snapshot="latest", include=include, target=str(target)))
    assert keep.read_text() == "mine\n"
    prepared = await runner.prepare(
        restore(lab, snapshot="latest", include=include, target=str(target), overwrite=True)
    )
    assert prepared.plan.blast_radius is BlastRadius.DISRUPTIVE
    assert list(prepared.plan.data.overwritten) == [str(keep)]
    assert prepared.plan.confirmation.expect == str(target)
    with pytest.raises(Refused, match="confirmation did not match"):
        await runner.run(prepared, "y")
    assert keep.read_text() == "mine\n"


async def test_in_place_restore_demands_the_typed_path(lab: Lab, restic_lab: ResticLab) -> None:
    src = restic_lab.source
    victim = src / "modes/run.sh"
    original = victim.read_text()
    victim.write_text("damaged\n")
    try:
        runner = Runner(lab)
        prepared = await runner.prepare(
            restore(lab, snapshot="latest", include=[str(victim)], in_place=True)
        )
        assert prepared.plan.blast_radius is BlastRadius.DISRUPTIVE
        assert prepared.plan.confirmation.expect == str(victim)
        assert list(prepared.plan.data.overwritten) == [str(victim)]
        with pytest.raises(Refused):
            await runner.run(prepared, "yes")
        assert victim.read_text() == "damaged\n"
        prepared = await runner.prepare(
            restore(lab, snapshot="latest", include=[str(victim)], in_place=True)
        )
        result = await runner.run(prepared, str(victim))
        assert result.ok, result.outcome.message
        assert victim.read_text() == original
    finally:
        victim.write_text(original)


@pytest.fixture
def tiny_mounts(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A 1 MB tmpfs (no room) and a read-only tmpfs (not writable)."""
    require(is_root(), "root (to mount a tmpfs)")
    small, ro = tmp_path / "small", tmp_path / "ro"
    small.mkdir()
    ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], check=True)
    try:
        yield small, ro
    finally:
        subprocess.run(["umount", str(small)], check=False)
        subprocess.run(["umount", str(ro)], check=False)


async def test_restore_refused_without_room_or_when_not_writable(
    lab: Lab, restic_lab: ResticLab, tiny_mounts: tuple[Path, Path]
) -> None:
    small, ro = tiny_mounts
    include = [str(restic_lab.source / "big")]
    runner = Runner(lab)
    with pytest.raises(Refused, match="not enough room"):
        await runner.prepare(
            restore(lab, snapshot="latest", include=include, target=str(small / "x"))
        )
    with pytest.raises(Refused, match="cannot write"):
        await runner.prepare(restore(lab, snapshot="latest", include=include, target=str(ro / "x")))
    assert list(small.iterdir()) == [] and list(ro.iterdir()) == []


async def test_cancel_mid_restore_reports_partial_files_and_touches_nothing_else(
    lab: Lab, restic_lab: ResticLab, tmp_path: Path
) -> None:
    target = tmp_path / "cancelled"
    runner = Runner(lab)
    big = str(restic_lab.source / "big")
    action = restore(lab, snapshot="latest", include=[big], target=str(target))
    prepared = await runner.prepare(action)
    task = asyncio.create_task(runner.run(prepared, "y"))
    landed = target / big.lstrip("/")
    while not (landed.exists() and any(landed.iterdir())):  # restic has begun writing files
        assert not task.done(), "the restore ended before it could be cancelled"
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert action.partial, "the files restic had begun are reported"
    # the killed restic's lock is gone again (a cancel must not lock the repository)
    assert action.lock_note in ("", "removed the lock the cancelled restore left")
    assert restic_lab.restic("list", "locks", "--no-lock").stdout.strip() == ""
    expected = prepared.plan.data.expected
    assert {p["path"] for p in action.partial} <= set(expected)
    assert all(p["size"] <= p["expected"] for p in action.partial)
    # nothing outside the selection was created: every path is selected or an ancestor of one
    ancestors = {str(a) for k in expected for a in Path(k).parents}
    assert {str(p) for p in target.rglob("*")} <= set(expected) | ancestors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cancelled", "state"]
    records = [r.phase for r in runner.audit.records() if r.ref == prepared.seq]
    assert records[-2:] == ["outcome", "rollback"] or records[-1] == "outcome"


def test_bad_restore_parameters_are_clear_errors(lab: Lab) -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({}, "needs --snapshot"),
        ({"snapshot": "x; rm -rf /"}, "snapshot id"),
        ({"snapshot": "latest", "include": ["relative/path"]}, "absolute"),
        ({"snapshot": "latest", "include": ["/a\nb"]}, "control characters"),
        ({"snapshot": "latest", "target": "/", "include": ["/x"]}, "--in-place"),
        ({"snapshot": "latest", "target": "/tmp/x", "in_place": True}, "drop --target"),
        ({"snapshot": "latest", "target": "/tmp/x", "overwrite": "maybe"}, "true or false"),
    ]
    for params, says in cases:
        with pytest.raises(ValueError, match=says):
            RestoreAction.create(REPO, lab, params)
    off = RestoreAction.create(REPO, lab, {"snapshot": "latest", "overwrite": "0"})
    assert isinstance(off, RestoreAction) and not off.overwrite  # --param overwrite=0
    with pytest.raises(ValueError, match="no repository named"):
        RestoreAction.create(Target("repo", "nope"), lab, {"snapshot": "latest"})


async def test_restore_of_a_missing_snapshot_or_path_is_refused(
    lab: Lab, restic_lab: ResticLab
) -> None:
    runner = Runner(lab)
    with pytest.raises(Refused, match="snapshot deadbeef not found"):
        await runner.prepare(restore(lab, snapshot="deadbeef", target="/tmp/x-never"))
    with pytest.raises(Refused, match="is not in snapshot"):
        await runner.prepare(
            restore(
                lab,
                snapshot="latest",
                include=[str(restic_lab.source / "nope")],
                target="/tmp/x-never",
            )
        )
    for name, says in (("wrongpw", "wrong password"), ("missing", "unable to open config file")):
        action = RestoreAction.create(
            Target("repo", name), lab, {"snapshot": "latest", "target": "/tmp/x-never"}
        )
        with pytest.raises(Refused, match=says) as err:
            await runner.prepare(action)
        assert PASSWORD not in str(err.value)
    assert not Path("/tmp/x-never").exists()
    assert isinstance(RestoreRefused("x"), Exception)


# ---------------------------------------------------------------- check, backup now


async def test_check_records_its_result_for_the_health_rule(lab: Lab) -> None:
    runner = Runner(lab)
    result = await runner.run(await runner.prepare(CheckAction(REPO, lab)), "y")
    assert result.ok, result.outcome.message
    record = load_check(lab.config, "main")
    assert record is not None and record.ok and record.message == "no errors were found"
    state = await reader(lab, "main").read()
    assert state.last_check == record
    assert backup_findings(state, lab.config, ("backup", "main"), state.at) == []


async def test_backup_now_makes_a_snapshot(
    restic_lab: ResticLab, locked_repo: LockedRepo, tmp_path: Path
) -> None:
    # into a copy, so the session repository keeps its two snapshots
    copy = BackupConfig(
        name="copy",
        repository=str(locked_repo.repo),
        password=SecretRef("file", str(restic_lab.password_file)),
        paths=(str(restic_lab.source / "modes"),),
    )
    lab = Lab(restic_config(restic_lab, tmp_path / "state", extra=(copy,)))
    runner = Runner(lab)
    result = await runner.run(
        await runner.prepare(BackupNowAction(Target("repo", "copy"), lab)), "y"
    )
    assert result.ok, result.outcome.message
    state = await reader(lab, "copy").read()
    assert len(state.snapshots) == 3
    assert state.snapshots[-1].paths == (str(restic_lab.source / "modes"),)
    with pytest.raises(ValueError, match="no `paths`"):
        BackupNowAction(Target("repo", "wrongpw"), lab)


async def test_backup_now_runs_the_confirmed_step(
    restic_lab: ResticLab, locked_repo: LockedRepo, tmp_path: Path
) -> None:
    """What was confirmed is what runs: execute runs the plan's own restic step, not a second
    copy of its arguments (here the step names another path than the config)."""
    copy = BackupConfig(
        name="copy",
        repository=str(locked_repo.repo),
        password=SecretRef("file", str(restic_lab.password_file)),
        paths=(str(restic_lab.source / "modes"),),
    )
    lab = Lab(restic_config(restic_lab, tmp_path / "state", extra=(copy,)))
    runner = Runner(lab)
    prepared = await runner.prepare(BackupNowAction(Target("repo", "copy"), lab))
    step = prepared.plan.steps[0]
    assert step.argv is not None and step.argv[-1] == str(restic_lab.source / "modes")
    other = dataclasses.replace(step, argv=(*step.argv[:-1], str(restic_lab.source)))
    plan = dataclasses.replace(prepared.plan, steps=(other,))
    result = await runner.run(dataclasses.replace(prepared, plan=plan), "y")
    assert result.ok, result.outcome.message
    state = await reader(lab, "copy").read()
    assert state.snapshots[-1].paths == (str(restic_lab.source),)


# ---------------------------------------------------------------- the CLI


def cli_config(restic_lab: ResticLab, tmp_path: Path) -> Path:
    path = tmp_path / "hlcon.toml"
    path.write_text(
        f"""
[console]
state_dir = "{tmp_path / "cli-state"}"

[[backups]]
name = "main"
repository = "{restic_lab.repo}"
password = "file:{restic_lab.password_file}"
"""
    )
    return path


def test_cli_restore_dry_run_then_restore(
    restic_lab: ResticLab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tui.cli import main

    config = cli_config(restic_lab, tmp_path)
    target = tmp_path / "cli restore"
    include = str(restic_lab.source / "ünïcødé")
    argv = ["--config", str(config), "do", "restore", "repo:main", "--snapshot", "latest"]
    argv += ["--include", include, "--target", str(target)]
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "restic restore --target" in out and "dry run" in out and PASSWORD not in out
    assert not target.exists()
    assert main([*argv, "--yes"]) == 0
    restored = target / include.lstrip("/") / "naïve café.txt"
    assert restored.read_text() == (restic_lab.source / "ünïcødé/naïve café.txt").read_text()
    # in place without a terminal and without --yes: refused, nothing touched
    assert main([*argv[:-2], "--in-place"]) == 2
    assert PASSWORD not in capsys.readouterr().err
    audit = (tmp_path / "cli-state").rglob("*.jsonl")
    assert all(PASSWORD not in p.read_text() for p in audit)


# ---------------------------------------------------------------- restic on a host over SSH


async def test_repository_on_an_ssh_host_password_on_stdin(
    restic_lab: ResticLab, sshd_hosts: Any, tmp_path: Path
) -> None:
    """restic runs on h0 as the test user: the password crosses SSH on stdin, never argv/env."""
    h = sshd_hosts.hosts[0]
    user = pwd.getpwnam(sshd_hosts.user)
    with sshd_testbed.testbed_dir("restic") as work:
        repo = work / "remote repo"
        shutil.copytree(restic_lab.repo, repo)
        restore_to = work / "restored here"
        for p in [work, *work.rglob("*")]:
            os.chown(p, user.pw_uid, user.pw_gid)
        host = HostConfig(
            name=h.name,
            address=h.address,
            port=h.port,
            user=sshd_hosts.user,
            identity=sshd_hosts.identity,
            known_hosts=sshd_hosts.known_hosts,
            connect_timeout=5.0,
        )
        remote = BackupConfig(
            name="remote",
            repository=str(repo),
            password=SecretRef("file", str(restic_lab.password_file)),
            host=h.name,
        )
        lab = Lab(
            Config(
                console=ConsoleConfig(state_dir=tmp_path / "state"),
                hosts=(host,),
                backups=(remote,),
            )
        )
        try:
            state = await reader(lab, "remote").read()
            assert state.host == h.name and len(state.snapshots) == 2
            runner = Runner(lab)
            include = str(restic_lab.source / "modes")
            prepared = await runner.prepare(
                RestoreAction.create(
                    Target("repo", "remote"),
                    lab,
                    {"snapshot": "latest", "include": [include], "target": str(restore_to)},
                )
            )
            argv = prepared.plan.steps[0].argv
            assert argv is not None and "/dev/stdin" in argv and PASSWORD not in " ".join(argv)
            result = await runner.run(prepared, "y")
            assert result.ok, result.outcome.message
            got = restore_to / include.lstrip("/") / "run.sh"
            assert got.read_text() == (restic_lab.source / "modes/run.sh").read_text()
            assert got.stat().st_uid == user.pw_uid  # written by restic on the host, as its user
        finally:
            await lab.close()
