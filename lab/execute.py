"""Run a command on a host: here (subprocess) or over SSH (lab.ssh). Commands are argv lists.

Readers and actions take an Executor, so one parser serves this machine and every SSH host
(pyinfra's facts: a command plus a pure parser).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

LineSink = Callable[[str], None]


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def brief(self) -> str:
        """The last meaningful stderr (or stdout) line, for a Fault or an outcome."""
        for text in (self.stderr, self.stdout):
            lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
            if lines:
                return lines[-1][:300]
        return f"exit code {self.returncode}"


class CommandError(Exception):
    def __init__(self, result: CommandResult) -> None:
        super().__init__(f"{result.argv[0]} exited {result.returncode}: {result.brief()}")
        self.result = result


class Executor(Protocol):
    """Where commands run. `host` is the configured host name ("local" for this machine)."""

    @property
    def host(self) -> str: ...

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        on_line: LineSink | None = None,
    ) -> CommandResult: ...


class LocalExecutor:
    """This machine. `env` is added to the current environment (secrets travel this way, never
    on a command line that `ps` would show)."""

    def __init__(self, host: str = "local") -> None:
        self._host = host

    @property
    def host(self) -> str:
        return self._host

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        on_line: LineSink | None = None,
    ) -> CommandResult:
        full_env = {**os.environ, **env} if env else None
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=full_env,
            start_new_session=True,  # a timeout kills the whole group, not just the leader
        )
        try:
            if on_line is None:
                out, err = await asyncio.wait_for(
                    proc.communicate(input.encode() if input is not None else None), timeout
                )
            else:
                out, err = await asyncio.wait_for(_stream(proc, input, on_line), timeout)
        except BaseException:  # timeout, cancel, or a line sink that raised: no orphan left
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
            raise
        return CommandResult(
            tuple(argv),
            proc.returncode if proc.returncode is not None else -1,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
        )


async def _stream(
    proc: asyncio.subprocess.Process, input: str | None, on_line: LineSink
) -> tuple[bytes, bytes]:
    assert proc.stdout is not None and proc.stderr is not None
    if input is not None and proc.stdin is not None:
        proc.stdin.write(input.encode())
        await proc.stdin.drain()
        proc.stdin.close()
    out: list[bytes] = []

    async def pump() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            out.append(raw)
            on_line(raw.decode(errors="replace").rstrip("\n"))

    # Together: if the pump fails (a sink raised, a line over the stream limit), stdout is no
    # longer drained, the command blocks on a full pipe and stderr never ends — so the failure
    # must surface at once, not after stderr's EOF.
    err, _ = await asyncio.gather(proc.stderr.read(), pump())
    await proc.wait()
    return b"".join(out), err
