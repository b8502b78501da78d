"""The runner never abandons a blocking call: a timeout waits for the thread (lab.inflight)
before the outcome, the rollback and the unlock. A real thread blocked on a real Event stands in
for a docker SDK call that the engine takes long to answer (tests/test_faults_signals.py does it
against real podman)."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import threading
from pathlib import Path

from actions.base import (
    Action,
    BlastRadius,
    Confirmation,
    Outcome,
    Plan,
    Progress,
    Step,
    Target,
)
from actions.runner import Runner
from lab import inflight
from lab.config import ActionsConfig, Config, ConsoleConfig
from lab.wiring import Lab


def lock_held(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)
    return False


class SlowEngineCall(Action):
    family = "test.slow-engine-call"
    verb = "slow"

    def __init__(self, target: Target, lab: Lab) -> None:
        super().__init__(target, lab)
        self.release = threading.Event()  # the "engine" answers when this is set
        self.answered = threading.Event()
        self.rolled_back_after_answer: bool | None = None

    def _engine(self) -> None:
        self.release.wait(60)
        self.answered.set()

    async def plan(self) -> Plan:
        return Plan(
            family=self.family,
            target=self.target,
            summary="a blocking call",
            steps=(Step("block in a thread", "local"),),
            blast_radius=BlastRadius.SINGLE,
            confirmation=Confirmation("go?"),
            data=None,
        )

    async def execute(self, plan: Plan, progress: Progress) -> Outcome:
        await inflight.to_thread(self._engine)
        return Outcome(True, "answered")

    async def verify(self, plan: Plan, outcome: Outcome) -> Outcome:
        return outcome

    async def rollback(self, plan: Plan) -> Outcome | None:
        self.rolled_back_after_answer = self.answered.is_set()
        return Outcome(True, "nothing left to undo")


async def test_a_timeout_waits_for_the_blocking_call_before_rollback_and_unlock(
    tmp_path: Path,
) -> None:
    config = Config(
        console=ConsoleConfig(state_dir=tmp_path / "state"), actions=ActionsConfig(timeout=0.2)
    )
    lab = Lab(config)
    runner = Runner(lab)
    action = SlowEngineCall(Target("test", "slow"), lab)
    prepared = await runner.prepare(action)
    held_while_waiting: list[bool] = []

    def progress(fraction: float | None, message: str) -> None:
        if "engine call" in message:  # the deadline passed; the thread still blocks
            locks = sorted((tmp_path / "state" / "locks").glob("*.lock"))
            held_while_waiting.append(bool(locks) and all(lock_held(p) for p in locks))
            action.release.set()  # now the engine answers

    result = await runner.run(prepared, "y", progress)
    assert not result.ok and "timed out" in result.outcome.message
    assert "the engine call it was waiting for ended" in result.outcome.message
    assert held_while_waiting == [True]
    assert action.rolled_back_after_answer is True
    locks = sorted((tmp_path / "state" / "locks").glob("*.lock"))
    assert not any(lock_held(p) for p in locks)  # released after all


async def test_outside_an_action_a_cancel_does_not_wait() -> None:
    release = threading.Event()
    task = asyncio.ensure_future(inflight.to_thread(release.wait, 60))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()  # a reader's poll is not held up by its thread
    release.set()


async def test_a_scope_settles_only_when_its_threads_have_returned() -> None:
    release = threading.Event()
    with inflight.track() as scope:
        task = asyncio.ensure_future(inflight.to_thread(release.wait, 60))
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled() and scope.running == 1  # the await ended; the thread did not
        settle = asyncio.ensure_future(scope.settle())
        await asyncio.sleep(0.05)
        assert not settle.done()
        release.set()
        await settle
        assert scope.running == 0
