"""The runner against real files, real locks held by other processes, and a real audit log."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import tests.action_families  # noqa: F401  (registers file.write, file.append, file.badplan)
from actions.audit import AuditLog
from actions.registry import build
from actions.runner import Prepared, Refused, Runner
from lab.config import ActionsConfig, Config, ConsoleConfig
from lab.wiring import Lab

REPO = Path(__file__).resolve().parents[2]
SECRET = "correct-horse-battery-staple-42"


def make_lab(tmp_path: Path, **actions: float) -> Lab:
    return Lab(
        Config(
            source=str(tmp_path / "hlcon.toml"),
            console=ConsoleConfig(state_dir=tmp_path / "state"),
            actions=ActionsConfig(**actions),  # type: ignore[arg-type]
        )
    )


@pytest.fixture
def files(tmp_path: Path) -> Path:
    d = tmp_path / "files"
    d.mkdir()
    return d


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return make_lab(tmp_path)


def runner_for(lab: Lab, **kw: object) -> Runner:
    audit = AuditLog(
        lab.config.console.state_dir / "audit.jsonl",  # type: ignore[operator]
        secret_values=lambda: frozenset({SECRET}),
    )
    return Runner(lab, audit=audit, **kw)  # type: ignore[arg-type]


def phases(runner: Runner) -> list[str]:
    return [r.phase for r in runner.audit.records()]


async def prepare(runner: Runner, lab: Lab, verb: str, name: str, **params: str) -> Prepared:
    return await runner.prepare(build(verb, f"file:{name}@local", lab, params))


async def test_success_writes_audits_and_chains(lab: Lab, files: Path) -> None:
    runner = runner_for(lab)
    prepared = await prepare(runner, lab, "write", "a.txt", dir=str(files), text="one\n")
    assert not (files / "a.txt").exists()  # plan() changes nothing
    seen: list[str] = []
    result = await runner.run(prepared, "y", lambda f, m: seen.append(m))
    assert result.ok and result.rollback is None
    assert (files / "a.txt").read_text() == "one\n"
    assert phases(runner) == ["planned", "intent", "outcome"]
    assert seen == [f"writing {files / 'a.txt'}", "written"]
    refs = {r.ref for r in runner.audit.records() if r.phase != "planned"}
    assert refs == {prepared.seq}
    assert runner.audit.verify().ok
    assert runner.pending() == []


async def test_typed_confirmation_mismatch_is_refused(lab: Lab, files: Path) -> None:
    (files / "b.txt").write_text("precious\n")
    runner = runner_for(lab)
    prepared = await prepare(runner, lab, "write", "b.txt", dir=str(files), text="new\n")
    assert prepared.plan.confirmation.expect == "b.txt"
    with pytest.raises(Refused, match="confirmation did not match"):
        await runner.run(prepared, "y")
    assert (files / "b.txt").read_text() == "precious\n"
    assert phases(runner) == ["planned", "refused"]
    with pytest.raises(Refused, match="already run"):
        await runner.run(prepared, "b.txt")  # a refused plan is closed


async def test_execute_failure_rolls_back(lab: Lab, files: Path) -> None:
    (files / "c.txt").write_text("before\n")
    runner = runner_for(lab)
    prepared = await prepare(runner, lab, "write", "c.txt", dir=str(files), fail="execute")
    result = await runner.run(prepared, "c.txt")
    assert not result.ok
    assert result.outcome.message == "execute failed: the disk said no"
    assert result.rollback is not None and result.rollback.ok
    assert (files / "c.txt").read_text() == "before\n"  # the garbage was undone
    records = list(runner.audit.records())
    assert [r.phase for r in records] == ["planned", "intent", "outcome", "rollback"]
    assert records[-1].result == {
        "ok": True,
        "status": "done",
        "message": f"restored {files}/c.txt",
    }


async def test_family_bug_is_a_failure_not_a_crash(lab: Lab, files: Path) -> None:
    runner = runner_for(lab)
    prepared = await prepare(runner, lab, "write", "bug.txt", dir=str(files), fail="crash")
    result = await runner.run(prepared, "y")
    assert not result.ok and "RuntimeError: family bug" in result.outcome.message
    assert result.rolled_back


async def test_verify_failure_rolls_back(lab: Lab, files: Path) -> None:
    runner = runner_for(lab)
    prepared = await prepare(runner, lab, "write", "d.txt", dir=str(files), fail="verify")
    result = await runner.run(prepared, "y")
    assert not result.ok and result.outcome.message.startswith("verify failed:")
    assert result.rolled_back
    assert not (files / "d.txt").exists()  # new file removed again
    assert phases(runner)[-2:] == ["outcome", "rollback"]


async def test_timeout_rolls_back(lab: Lab, files: Path) -> None:
    runner = runner_for(lab)
    prepared = await prepare(
        runner, lab, "write", "e.txt", dir=str(files), sleep="60", timeout="0.2"
    )
    result = await runner.run(prepared, "y")
    assert not result.ok
    assert result.outcome.message == "timed out during execute after 0.2s (the plan's timeout)"
    assert result.rollback is not None
    assert phases(runner)[-2:] == ["outcome", "rollback"]


async def test_config_timeout_is_named_in_the_message(tmp_path: Path, files: Path) -> None:
    lab = make_lab(tmp_path, timeout=0.2)
    runner = runner_for(lab)
    prepared = await prepare(runner, lab, "write", "t.txt", dir=str(files), sleep="60")
    result = await runner.run(prepared, "y")
    assert "actions.timeout in" in result.outcome.message
    assert str(tmp_path / "hlcon.toml") in result.outcome.message


async def test_cancelled_task_still_rolls_back(lab: Lab, files: Path) -> None:
    (files / "f.txt").write_text("keep\n")
    marker = files.parent / "started"
    runner = runner_for(lab)
    prepared = await prepare(
        runner,
        lab,
        "write",
        "f.txt",
        dir=str(files),
        sleep="60",
        marker=str(marker),
        fail="execute",
    )
    task = asyncio.create_task(runner.run(prepared, "f.txt"))
    while not marker.exists():
        await asyncio.sleep(0.01)
    (files / "f.txt").write_text("half-written\n")  # as if execute had got that far
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (files / "f.txt").read_text() == "keep\n"
    records = list(runner.audit.records())
    assert [r.phase for r in records][-2:] == ["outcome", "rollback"]
    assert records[-2].result is not None
    assert records[-2].result["message"] == "cancelled during execute"
    assert runner.pending() == []


async def test_no_rollback_is_audited_as_such(lab: Lab, files: Path) -> None:
    runner = runner_for(lab)
    prepared = await prepare(runner, lab, "append", "g.txt", dir=str(files), fail="execute")
    result = await runner.run(prepared, "y")
    assert not result.ok and result.rollback is None
    last = list(runner.audit.records())[-1]
    assert last.phase == "rollback"
    assert last.result == {"ok": False, "status": "none"}
    assert last.reason == "file.append cannot roll back: nothing was undone"


async def test_failed_rollback_is_reported(lab: Lab, files: Path) -> None:
    runner = runner_for(lab)
    prepared = await prepare(
        runner, lab, "write", "h.txt", dir=str(files), fail="execute", rollback="fail"
    )
    result = await runner.run(prepared, "y")
    assert result.rollback is not None and not result.rollback.ok
    assert list(runner.audit.records())[-1].result == {
        "ok": False,
        "status": "failed",
        "message": "rollback failed: rollback could not restore the file",
    }


async def test_plan_error_is_refused_and_audited(lab: Lab, files: Path) -> None:
    runner = runner_for(lab)
    with pytest.raises(Refused, match="could not plan file:x@local: cannot read"):
        await prepare(runner, lab, "badplan", "x", dir=str(files))
    assert phases(runner) == ["refused"]


async def test_cancel_is_audited(lab: Lab, files: Path) -> None:
    runner = runner_for(lab)
    prepared = await prepare(runner, lab, "write", "i.txt", dir=str(files))
    runner.cancel(prepared)
    assert phases(runner) == ["planned", "cancelled"]
    with pytest.raises(Refused):
        await runner.run(prepared, "y")
    assert not (files / "i.txt").exists()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from actions.locks import TargetLocks
locks = TargetLocks(Path(sys.argv[1]), (sys.argv[2],))
locks.acquire()
print("held", flush=True)
sys.stdin.read()
"""


async def test_lock_held_by_another_process_refuses(lab: Lab, files: Path) -> None:
    runner = runner_for(lab)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(runner.state_dir), "file:j.txt@local"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        prepared = await prepare(runner, lab, "write", "j.txt", dir=str(files))
        with pytest.raises(Refused) as refused:
            await runner.run(prepared, "y")
        assert f"locked by another hlcon (pid {holder.pid}, since " in str(refused.value)
        assert not (files / "j.txt").exists()
        assert phases(runner) == ["planned", "refused"]
    finally:
        holder.communicate("")  # EOF: it exits, the kernel drops the lock
    prepared = await prepare(runner, lab, "write", "j.txt", dir=str(files))
    assert (await runner.run(prepared, "y")).ok


async def test_intent_not_writable_refuses_and_runs_nothing(tmp_path: Path, files: Path) -> None:
    lab = make_lab(tmp_path, rate_limit=0)
    runner = runner_for(lab)
    marker = tmp_path / "started"
    prepared = await prepare(runner, lab, "write", "k.txt", dir=str(files), marker=str(marker))
    # Root ignores file modes, so make the log path unusable: a directory where the file was.
    # (The log is read before the intent too — a pending intent on the target blocks it — so the
    # refusal may come from that read: fail closed either way.)
    runner.audit.path.unlink()
    runner.audit.path.mkdir()
    with pytest.raises(
        Refused,
        match=r"cannot be written.*refusing to act without an audit|unreadable, refusing to act",
    ):
        await runner.run(prepared, "y")
    assert not marker.exists() and not (files / "k.txt").exists()


async def test_audit_under_a_regular_file_refuses_at_plan(tmp_path: Path, files: Path) -> None:
    (tmp_path / "notadir").write_text("")
    audit = AuditLog(tmp_path / "notadir" / "audit.jsonl")
    lab = make_lab(tmp_path)
    runner = Runner(lab, audit=audit)
    with pytest.raises(Refused, match=r"notadir/audit\.jsonl"):
        await prepare(runner, lab, "write", "l.txt", dir=str(files))
    assert not (files / "l.txt").exists()


async def test_secrets_never_reach_the_file(lab: Lab, files: Path) -> None:
    runner = runner_for(lab)
    prepared = await prepare(runner, lab, "write", "m.txt", dir=str(files), secret=SECRET)
    assert (await runner.run(prepared, "y")).ok
    prepared = await prepare(
        runner, lab, "write", "m.txt", dir=str(files), secret=SECRET, fail="execute"
    )
    assert not (await runner.run(prepared, "m.txt")).ok
    text = runner.audit.path.read_text()
    assert SECRET not in text
    outcome = next(r for r in runner.audit.records() if r.phase == "outcome")
    assert outcome.result is not None
    assert outcome.result["message"] == f"wrote {files}/m.txt using [redacted]"
    assert outcome.result["details"]["password"] == "[redacted]"
    assert outcome.result["details"]["note"] == "connected with [redacted] to the store"
    failed = [r for r in runner.audit.records() if r.phase == "outcome"][1]
    assert failed.result is not None and failed.result["details"] == {"token": "[redacted]"}
    assert runner.audit.verify().ok


async def test_pending_and_acknowledge_in_process(lab: Lab, files: Path) -> None:
    """An intent left behind by a process that is gone (pid of a finished child)."""
    runner = runner_for(lab)
    prepared = await prepare(runner, lab, "write", "n.txt", dir=str(files))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    intent = runner.audit.append(
        "intent",
        who=runner.who,
        action="file.write",
        target="file:n.txt@local",
        ref=prepared.seq,
        result={"pid": int(dead.stdout), "locks": ["file:n.txt@local"]},
    )
    assert [r.seq for r in runner.pending()] == [intent.seq]
    with pytest.raises(ValueError, match="not a pending intent"):
        runner.acknowledge(prepared.seq)
    ack = runner.acknowledge(intent.seq, "checked by hand: file untouched")
    assert ack.phase == "outcome" and ack.ref == prepared.seq
    assert ack.result == {"ok": False, "status": "abandoned", "intent": intent.seq}
    assert runner.pending() == []


async def test_running_action_of_a_live_process_is_not_pending(lab: Lab, files: Path) -> None:
    runner = runner_for(lab)
    marker = files.parent / "go"
    prepared = await prepare(
        runner, lab, "write", "o.txt", dir=str(files), sleep="60", marker=str(marker)
    )
    task = asyncio.create_task(runner.run(prepared, "y"))
    while not marker.exists():
        await asyncio.sleep(0.01)
    assert runner.pending() == []  # this process is alive and holds the lock
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_registry_knows_every_family_and_explains_misses(lab: Lab) -> None:
    from actions import registry

    registry.load_families()  # every family module imports (an error would go up)
    assert registry.verbs_for("file") == ["append", "badplan", "write"]
    with pytest.raises(registry.UnknownAction) as miss:
        build("reboot", "file:x@local", lab, {})
    assert str(miss.value) == "no action 'reboot' for file targets; known: append, badplan, write"
    with pytest.raises(ValueError, match="not a target"):
        build("write", "no target here", lab, {})
