"""`hlcon watch` stops on its own SIGTERM, and only on its own. pyroute2 reads a WireGuard
interface in a network namespace through a forked helper process, which it ends with SIGTERM;
a child forked without exec inherits the signal setup, and asyncio's add_signal_handler routes
every signal through a wakeup fd the child shares — the helper's SIGTERM stopped the watch
(found by bench/watch_soak.py on the demo lab: the watch stopped ~8 s after start)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from tui.commands.watch import stop_on_signals


async def _watched(action: str) -> tuple[bool, list[str]]:
    stopped_by: list[str] = []
    restore: list[object] = []

    async def service() -> None:
        restore.append(stop_on_signals(asyncio.current_task(), stopped_by))  # type: ignore[arg-type]
        await asyncio.sleep(3600)

    task = asyncio.create_task(service())
    await asyncio.sleep(0.05)
    if action == "child":
        pid = os.fork()
        if pid == 0:  # the child: as pyroute2's helper, ended by SIGTERM
            os.kill(os.getpid(), signal.SIGTERM)
            os._exit(0)
        os.waitpid(pid, 0)
    else:
        os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(50):
        await asyncio.sleep(0.02)
        if task.done():
            break
    cancelled = task.cancelled() or task.done()
    task.cancel()
    restore[0]()  # type: ignore[operator]
    return cancelled, stopped_by


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() in a threaded process
async def test_a_forked_childs_sigterm_does_not_stop_the_watch() -> None:
    cancelled, stopped_by = await _watched("child")
    assert not cancelled and stopped_by == []


async def test_its_own_sigterm_stops_it() -> None:
    cancelled, stopped_by = await _watched("self")
    assert cancelled and stopped_by == ["SIGTERM"]
