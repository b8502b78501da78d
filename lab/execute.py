"""Run a command on a host: here (subprocess) or over SSH (lab.ssh). Commands are argv lists.

Readers and actions take an Executor, so one parser serves this machine and every SSH host
(pyinfra's facts: a command plus a pure parser).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

LineSink = Callable[[str], None]

# What every child gets from hlcon's own environment: where programs and home are, the locale
# and time zone, the user's agent and proxies (restic's sftp: runs ssh; s3:/rest: may need a
# proxy or a CA bundle), and the runtime hlcon itself runs under (faketime's LD_PRELOAD).
# Nothing else: hlcon's environment holds the values behind `env:` secret references (an SSH
# key's passphrase, another certificate's DNS token), and a child gets only the variables its
# own command is given (`env=`: a repository's password and `env = {…}`, a renew's tokens).
CHILD_ENV_BASE = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR",
        "XDG_RUNTIME_DIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
        "SSH_AUTH_SOCK", "SSL_CERT_FILE", "SSL_CERT_DIR",
        "http_proxy", "https_proxy", "no_proxy", "all_proxy",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
        "LD_PRELOAD", "FAKETIME", "FAKETIME_NO_CACHE", "FAKETIME_DONT_FAKE_MONOTONIC",
    }
)  # fmt: skip
CHILD_ENV_PREFIXES = ("LC_",)


def child_env(
    extra: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment a child process runs with: the safe base of `environ` (default: this
    process's) plus `extra`, what that one command needs."""
    source = os.environ if environ is None else environ
    env = {
        k: v for k, v in source.items() if k in CHILD_ENV_BASE or k.startswith(CHILD_ENV_PREFIXES)
    }
    env.update(extra or {})
    return env


_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):  # not Linux: no parent-death signal
        return None
    return prctl


_prctl = _load_prctl()


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the kernel SIGKILL the child when hlcon dies, however it dies
    (kill -9 included), so no restic or wg outlives it in its own session under PID 1. Linux's
    parent-death signal follows the forking *thread*: children are started on the event loop's
    thread, which lives as long as hlcon does."""
    prctl = _prctl
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # hlcon died before the signal was armed
            os._exit(1)

    return preexec


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
    """This machine. The child runs with `child_env(env)`: a safe base of hlcon's environment
    plus `env` (secrets travel this way, never on a command line that `ps` would show).

    Each command is the leader of its own process group, which is killed on every way out of
    `run` but a normal exit — the timeout, a cancel (Ctrl-C, SIGTERM, SIGHUP, the terminal
    closing: hlcon turns them into a cancel), a failing line sink — and `run` returns only once
    the leader has been reaped. The kernel kills the leader if hlcon dies (die_with_parent)."""

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
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_env(env),
            start_new_session=True,  # a timeout kills the whole group, not just the leader
            preexec_fn=die_with_parent(),
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
                os.killpg(proc.pid, signal.SIGKILL)
            if await _reap(proc):
                raise asyncio.CancelledError from None  # cancelled again while reaping
            raise
        return CommandResult(
            tuple(argv),
            proc.returncode if proc.returncode is not None else -1,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
        )


async def _reap(proc: asyncio.subprocess.Process, within: float = 5.0) -> bool:
    """Wait for a killed leader to end, even if the caller is cancelled again meanwhile (a
    second Ctrl-C): the caller's lock must not be released while the process still runs.
    Returns whether a cancel arrived meanwhile."""
    waiting = asyncio.ensure_future(asyncio.wait_for(proc.wait(), within))
    cancelled = False
    while not waiting.done():
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            cancelled = True
        except Exception:
            break
    if waiting.done() and not waiting.cancelled():
        waiting.exception()  # retrieved: a wait that timed out is not worth a warning
    return cancelled


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
