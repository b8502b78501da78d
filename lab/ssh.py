"""SSH hosts: one asyncssh connection per host, made lazily, reused, reconnected with backoff.

Host keys are verified strictly against the user's ~/.ssh/known_hosts, hlcon's own
STATE_DIR/known_hosts and the host's configured `known_hosts`. asyncssh only says "not
verifiable"; we tell the two cases apart because they mean opposite things:

- unknown key (no key on file for that host): `HostKeyUnknown` — the host shows
  "unverified host key SHA256:…" and the trust action (actions.hostkeys) can add it;
- changed key (a different key on file): `HostKeyChanged` — the host is blocked loudly (every
  read and action fails with it, a CRITICAL finding), audited once per change, and nothing
  else is affected.

Commands are argv lists, run as `shlex.join(argv)` (every argument quoted) by the remote
user's shell. Environment values never travel on the remote command line (where `ps` on the
host would show them): they are sent on stdin ahead of the input and exported by a fixed
`sh -c` preamble, so secrets and non-secrets alike stay off it.

Remote containers: `SshExecutor.docker_url()` forwards the host's Docker/Podman socket over the
same connection to a local unix socket under STATE_DIR/run/ and returns its unix:// URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import shlex
import stat
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import asyncssh
from asyncssh.encryption import get_default_encryption_algs

from lab.config import Config, HostConfig, state_dir
from lab.execute import CommandResult, LineSink
from lab.files import MIB, UnreadableFile, read_regular_file
from lab.poller import ReadError

log = logging.getLogger(__name__)

BACKOFF_MAX = 30.0
# asyncssh's own list, AES-GCM first: with AES in hardware it costs ~20 % less CPU per command
# than chacha20-poly1305 (bench/idle_cpu.py polls every host every 5 s). Same algorithms, so a
# server that offers only chacha20 (or only CTR) still connects.
_ENCRYPTION_ALGS = sorted(
    (alg.decode() for alg in get_default_encryption_algs()),
    key=lambda alg: not alg.startswith(("aes128-gcm", "aes256-gcm")),
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Reads NAME=VALUE lines from stdin up to an empty line, exports them, then runs the argv.
# `export "$kv"` assigns the text literally: a value like $(id) is never evaluated.
_ENV_PREAMBLE = 'while IFS= read -r kv && [ -n "$kv" ]; do export "$kv"; done; exec "$@"'
# Where the Docker/Podman API usually listens, probed in order when docker_socket is unset.
_SOCKET_PROBE = (
    'for s in /run/podman/podman.sock /var/run/docker.sock "/run/user/$(id -u)/podman/podman.sock"'
    '; do [ -S "$s" ] && { echo "$s"; exit 0; }; done; exit 1'
)


# ---------------------------------------------------------------- errors


class SshError(ReadError):
    """A host could not be reached or trusted; `what` is the Fault's headline."""

    def __init__(self, what: str, why: str, host: str) -> None:
        super().__init__(what, why)
        self.host = host


class HostUnreachable(SshError):
    def __init__(self, host: str, why: str, *, port_closed: bool = False) -> None:
        """`port_closed`: nothing took the TCP connection (refused, no route, connection
        lost), as opposed to a port that answered but not with SSH in time."""
        super().__init__("host unreachable", why, host)
        self.port_closed = port_closed


class LoginFailed(SshError):
    def __init__(self, host: str, why: str) -> None:
        super().__init__("ssh login failed", why, host)


@dataclass(frozen=True)
class OfferedKey:
    """The key a host presented: what the trust flow shows and writes."""

    host: str  # the configured name
    address: str
    port: int
    algorithm: str
    fingerprint: str  # SHA256:…
    openssh: str  # "ssh-ed25519 AAAA…"

    @property
    def pattern(self) -> str:
        """The known_hosts host pattern: `addr` on port 22, else `[addr]:port`."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"

    def known_hosts_line(self) -> str:
        return f"{self.pattern} {self.openssh}\n"


class HostKeyUnknown(SshError):
    def __init__(self, key: OfferedKey) -> None:
        super().__init__(
            "unverified host key",
            f"unverified host key {key.fingerprint} ({key.algorithm}) at {key.pattern}; "
            f"check it, then trust it: hlcon do trust host:{key.host}",
            key.host,
        )
        self.key = key


class HostKeyChanged(SshError):
    def __init__(self, key: OfferedKey, files: Sequence[Path]) -> None:
        where = ", ".join(str(f) for f in files)
        super().__init__(
            "host key changed",
            f"HOST KEY CHANGED: {key.pattern} now presents {key.fingerprint} ({key.algorithm}), "
            f"which does not match the key on file in {where}; host blocked (possible "
            "man-in-the-middle). If the host was reinstalled, remove its old line there.",
            key.host,
        )
        self.key = key
        self.files = tuple(files)


# ---------------------------------------------------------------- pure helpers


def remote_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(command line for the remote shell, text to send on stdin before any input).

    Every argument is shlex-quoted. With `env`, the values go on stdin, never on the line.
    """
    if not argv:
        raise ValueError("empty command")
    args = [str(a) for a in argv]
    if any("\0" in a for a in args):
        raise ValueError("NUL byte in a command argument")
    if not env:
        return shlex.join(args), ""
    lines = []
    for name, value in env.items():
        if not _ENV_NAME.match(name):
            raise ValueError(f"not an environment variable name: {name!r}")
        if "\n" in value or "\0" in value:
            raise ValueError(f"environment value of {name} holds a newline or NUL")
        lines.append(f"{name}={value}\n")
    return shlex.join(["sh", "-c", _ENV_PREAMBLE, "hlcon-env", *args]), "".join(lines) + "\n"


def own_known_hosts(config: Config) -> Path:
    """hlcon's own known_hosts (what the trust action appends to)."""
    return state_dir(config) / "known_hosts"


def known_hosts_files(config: Config, host: HostConfig) -> list[Path]:
    files = [Path("~/.ssh/known_hosts").expanduser(), own_known_hosts(config)]
    if host.known_hosts is not None:
        files.append(Path(host.known_hosts).expanduser())
    return files


KEY_FILE_MAX_BYTES = 1 * MIB  # a key or a known_hosts file; more is the wrong file


def key_file_problem(path: Path) -> str | None:
    """Why `path` cannot be a private key file asyncssh may open ("not found", "is not a regular
    file (a FIFO)" …), or None. asyncssh reads it itself, so it is looked at, not read."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "not found"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or type(exc).__name__}"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
        return f"is not a regular file ({kind})"
    if st.st_size > KEY_FILE_MAX_BYTES:
        return "is larger than 1 MiB; not a private key"
    return None


def keys_on_file(files: Sequence[Path], address: str, port: int) -> list[asyncssh.SSHKey]:
    """The trusted host keys the files hold for address:port (unreadable files are skipped)."""
    out: list[asyncssh.SSHKey] = []
    for path in files:
        try:
            # a regular file of a sane size only: a FIFO here would block the console for ever
            text = read_regular_file(path, KEY_FILE_MAX_BYTES).decode("utf-8", "replace")
        except UnreadableFile as exc:
            if exc.kind != "missing":
                log.warning("ignoring known_hosts %s: %s", path, exc.reason)
            continue
        try:
            known = asyncssh.import_known_hosts(text)
        except (ValueError, asyncssh.KeyImportError) as exc:
            log.warning("ignoring unparsable known_hosts %s: %s", path, exc)
            continue
        out.extend(known.match(address, address, port)[0])
    return out


def offered_key(host: str, address: str, port: int, key: asyncssh.SSHKey) -> OfferedKey:
    return OfferedKey(
        host=host,
        address=address,
        port=port,
        algorithm=key.get_algorithm(),
        fingerprint=key.get_fingerprint("sha256"),
        openssh=key.export_public_key("openssh").decode().strip(),
    )


def _short_socket_path(directory: Path, name: str) -> Path:
    """A unix socket path under `directory`, or a short one in /tmp when that would exceed the
    108-byte sun_path limit."""
    digest = hashlib.sha256(f"{directory}\0{name}".encode()).hexdigest()[:12]
    path = directory / f"{name[:40]}-{digest}.sock"
    if len(str(path)) < 100:
        return path
    return Path(tempfile.gettempdir()) / f"hlcon-{os.getuid()}" / f"{digest}.sock"


# ---------------------------------------------------------------- the connection per host


class _Client(asyncssh.SSHClient):
    """Records the key a host offered when it is not among the trusted ones."""

    def __init__(self) -> None:
        self.offered: asyncssh.SSHKey | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.offered = key
        return False


HostKeyListener = Callable[[HostKeyChanged], None]


class Lab(Protocol):
    """What this module needs of lab.wiring.Lab — named here so lab.ssh does not import
    lab.wiring, which imports lab.ssh (no import circle, not even for types)."""

    @property
    def config(self) -> Config: ...

    @property
    def ssh(self) -> SshPool: ...

    @property
    def host_key_listeners(self) -> list[HostKeyListener]: ...


class SshHost:
    """One host's connection, reused by every reader and action; safe to share across tasks."""

    def __init__(
        self,
        config: Config,
        host: HostConfig,
        *,
        on_key_changed: HostKeyListener | None = None,
    ) -> None:
        self.config = config
        self.cfg = host
        self._on_key_changed = on_key_changed
        self._conn: asyncssh.SSHClientConnection | None = None
        self._connecting: asyncio.Task[asyncssh.SSHClientConnection] | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._last_error: SshError | None = None
        self._port_closed = False  # last seen refusing or dropping TCP (see probe)
        self._reported_change: str | None = None  # fingerprint already audited
        self._forward: asyncssh.SSHListener | None = None
        self._forward_conn: asyncssh.SSHClientConnection | None = None
        self._socket_path: Path | None = None
        self._shell: _PollShell | None = None
        self._shell_lock = asyncio.Lock()
        self.connects = 0  # how many connections were made (for tests and the bench)

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def blocked(self) -> HostKeyChanged | None:
        """The changed-key error while this host is blocked."""
        err = self._last_error
        return err if isinstance(err, HostKeyChanged) else None

    def reset_backoff(self) -> None:
        """Connect on the next request (after the trust action, or a manual refresh)."""
        self._failures = 0
        self._retry_at = 0.0

    async def probe(self) -> bool:
        """While unreachable: did the host's SSH port just come back? A bare TCP connect,
        closed at once (no SSH handshake, no login). True only on the change from closed
        (refused, dropped, connection lost) to open; then the connect backoff is dropped, so
        the read the poller makes next dials at once.

        False when a port cannot tell: connected already, the last failure was a login or a
        host key (a fix, not a retry, helps), or the port was open all along (a host that
        accepts TCP and never speaks SSH is left to the backoff)."""
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return False
        if self._last_error is not None and not isinstance(self._last_error, HostUnreachable):
            return False
        cfg = self.cfg
        try:
            async with asyncio.timeout(cfg.connect_timeout):
                _, writer = await asyncio.open_connection(cfg.address, cfg.port)
        except (OSError, TimeoutError):
            self._port_closed = True
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        came_back, self._port_closed = self._port_closed, False
        if came_back:
            self.reset_backoff()
        return came_back

    async def connection(self) -> asyncssh.SSHClientConnection:
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn
        self._conn = None
        if self._connecting is None or self._connecting.done():
            if time.monotonic() < self._retry_at and self._last_error is not None:
                # Backing off: the last error again, nothing dialled.
                raise self._last_error.with_traceback(None)
            self._connecting = asyncio.get_running_loop().create_task(
                self._connect(), name=f"ssh connect {self.name}"
            )
        # Shielded: one caller's timeout must not cancel the connect the others wait for.
        return await asyncio.shield(self._connecting)

    async def _connect(self) -> asyncssh.SSHClientConnection:
        try:
            conn = await self._open()
        except SshError as err:
            self._failures += 1
            self._retry_at = time.monotonic() + min(2.0 ** (self._failures - 1), BACKOFF_MAX)
            self._last_error = err
            if isinstance(err, HostKeyChanged) and self._reported_change != err.key.fingerprint:
                self._reported_change = err.key.fingerprint
                log.critical("%s", err)
                if self._on_key_changed is not None:
                    try:
                        self._on_key_changed(err)
                    except Exception:  # the audit hook must not hide the block itself
                        log.exception("host-key-changed hook failed for %s", self.name)
            if isinstance(err, HostUnreachable) and err.port_closed:
                self._port_closed = True
            raise
        self._failures = 0
        self._retry_at = 0.0
        self._last_error = None
        self._port_closed = False
        self._reported_change = None
        self._conn = conn
        self.connects += 1
        return conn

    async def _connect_options(self) -> dict[str, Any]:
        cfg = self.cfg
        opts: dict[str, Any] = {
            "port": cfg.port,
            "username": cfg.user,
            "connect_timeout": cfg.connect_timeout,
            "login_timeout": cfg.connect_timeout,
            "keepalive_interval": 30,
            "keepalive_count_max": 3,
            "encryption_algs": _ENCRYPTION_ALGS,
        }
        if cfg.identity is not None:
            identity = Path(cfg.identity).expanduser()
            problem = key_file_problem(identity)
            if problem is not None:
                raise LoginFailed(
                    self.name, f"identity file {identity} {problem} (hosts {self.name} identity)"
                )
            opts["client_keys"] = [str(identity)]
        if cfg.passphrase is not None:
            from lab import secrets

            try:
                # Blocking (a command: or keyring: reference): off the event loop.
                secret = await asyncio.to_thread(secrets.resolve, cfg.passphrase)
            except secrets.SecretError as exc:
                raise LoginFailed(self.name, f"identity passphrase: {exc}") from None
            opts["passphrase"] = secret.reveal()
        return opts

    async def _open(self) -> asyncssh.SSHClientConnection:
        cfg = self.cfg
        files = known_hosts_files(self.config, cfg)
        trusted = keys_on_file(files, cfg.address, cfg.port)
        opts = await self._connect_options()
        if trusted:
            # Offer only algorithms we hold keys for, so a host with several keys presents
            # the one on file (what OpenSSH does too).
            opts["server_host_key_algs"] = list(dict.fromkeys(k.get_algorithm() for k in trusted))
        client = _Client()
        where = f"{cfg.address}:{cfg.port}"
        try:
            async with asyncio.timeout(cfg.connect_timeout + 1):
                conn, _ = await asyncssh.create_connection(
                    lambda: client,
                    cfg.address,
                    known_hosts=(trusted, [], []),
                    **opts,
                )
            return conn
        except asyncssh.HostKeyNotVerifiable:
            if client.offered is None:
                raise HostUnreachable(self.name, f"host key at {where} not verifiable") from None
            key = offered_key(self.name, cfg.address, cfg.port, client.offered)
            if trusted:
                raise HostKeyChanged(key, [f for f in files if f.exists()]) from None
            raise HostKeyUnknown(key) from None
        except asyncssh.PermissionDenied:
            how = f"key {cfg.identity}" if cfg.identity else "the agent's and ~/.ssh keys"
            raise LoginFailed(
                self.name, f"{cfg.user}@{where} refused {how} (permission denied)"
            ) from None
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            raise LoginFailed(
                self.name, f"cannot load identity {cfg.identity}: {exc} (wrong passphrase?)"
            ) from None
        except TimeoutError:
            raise HostUnreachable(
                self.name, f"no SSH answer from {where} within {cfg.connect_timeout:g}s"
            ) from None
        except ConnectionRefusedError:
            raise HostUnreachable(
                self.name, f"connection refused at {where}", port_closed=True
            ) from None
        except asyncssh.DisconnectError as exc:
            raise HostUnreachable(self.name, f"{where} disconnected: {exc.reason}") from None
        except OSError as exc:
            raise HostUnreachable(
                self.name, f"{where}: {exc.strerror or exc}", port_closed=True
            ) from None

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        on_line: LineSink | None = None,
    ) -> CommandResult:
        command, preamble = remote_command(argv, env)
        async with asyncio.timeout(timeout):
            conn = await self.connection()
            try:
                proc = await conn.create_process(command, encoding="utf-8", errors="replace")
            except (asyncssh.ChannelOpenError, asyncssh.DisconnectError, OSError) as exc:
                self._conn = None
                self._port_closed = True
                raise HostUnreachable(self.name, f"connection lost: {exc}") from None
            try:
                stdin = preamble + (input or "")
                if stdin:
                    proc.stdin.write(stdin)
                proc.stdin.write_eof()
                if on_line is None:
                    out, err = await asyncio.gather(proc.stdout.read(), proc.stderr.read())
                else:
                    out, err = await asyncio.gather(_pump(proc.stdout, on_line), proc.stderr.read())
                await proc.wait_closed()
            except (asyncssh.DisconnectError, BrokenPipeError, ConnectionError) as exc:
                self._conn = None
                self._port_closed = True
                raise HostUnreachable(self.name, f"connection lost: {exc}") from None
            finally:
                if not proc.is_closing():
                    # timed out or cancelled: stop the remote command, keep the connection
                    with contextlib.suppress(Exception):
                        proc.send_signal("KILL")
                    proc.close()
        code = proc.exit_status
        if code is None or code < 0:
            code = 128 + _signal_number(proc.exit_signal[0] if proc.exit_signal else None)
        return CommandResult(tuple(str(a) for a in argv), code, out, err)

    async def run_polled(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        """`run` for the command a reader repeats every poll: it goes to one long-lived `sh` on
        the connection, as one quoted line, so a poll costs one round trip instead of a channel
        open, an exec request and a close (~2.3 round trips, and a third of the CPU). One
        command at a time; a timeout or a broken channel drops that shell (the next poll starts
        another), never the connection."""
        command, _ = remote_command(argv)
        async with self._shell_lock, asyncio.timeout(timeout):
            conn = await self.connection()
            shell = self._shell
            if shell is None or not shell.usable(conn):
                try:
                    shell = self._shell = await _PollShell.start(conn)
                except (asyncssh.ChannelOpenError, asyncssh.DisconnectError, OSError) as exc:
                    self._conn = None
                    self._port_closed = True
                    raise HostUnreachable(self.name, f"connection lost: {exc}") from None
            try:
                code, out, err = await shell.run(command)
            except BaseException as exc:
                # timed out, cancelled, or the shell died: its state is unknown, start afresh
                self._shell = None
                shell.close()
                if isinstance(exc, asyncio.IncompleteReadError | asyncssh.Error | OSError):
                    raise HostUnreachable(self.name, f"poll shell lost: {exc}") from None
                raise
        return CommandResult(tuple(str(a) for a in argv), code, out, err)

    async def docker_url(self) -> str:
        """unix:// URL of a local socket forwarded to this host's Docker/Podman API socket."""
        conn = await self.connection()
        if self._forward is not None and self._forward_conn is conn and self._socket_path:
            return f"unix://{self._socket_path}"
        remote = self.cfg.docker_socket
        if remote is None:
            probe = await self.run(["sh", "-c", _SOCKET_PROBE], timeout=self.cfg.connect_timeout)
            remote = probe.stdout.strip()
            if not probe.ok or not remote:
                raise ReadError(
                    "no container socket",
                    f"no Docker/Podman socket found on {self.name} (set docker_socket = "
                    f'"/path" in [[hosts]] {self.name})',
                )
        local = _short_socket_path(state_dir(self.config) / "run", f"{self.name}-docker")
        local.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            local.unlink()
        if self._forward is not None:
            self._forward.close()
        self._forward = await conn.forward_local_path(str(local), remote)
        self._forward_conn = conn
        self._socket_path = local
        return f"unix://{local}"

    async def close(self) -> None:
        if self._shell is not None:
            self._shell.close()
            self._shell = None
        if self._forward is not None:
            self._forward.close()
            self._forward = None
        if self._socket_path is not None:
            with contextlib.suppress(OSError):
                self._socket_path.unlink()
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting
        if self._conn is not None:
            self._conn.close()
            with contextlib.suppress(Exception):
                await self._conn.wait_closed()
            self._conn = None


class _PollShell:
    """`sh` reading command lines on stdin, on one channel of one connection. Each command's
    stdin is /dev/null (it must not eat the lines after it); its end is a marker line with a
    random nonce and the exit status. Stderr is drained all the time (an unread stream would
    stall the channel's window) and what arrived during a command is reported with it."""

    def __init__(self, conn: asyncssh.SSHClientConnection, proc: Any) -> None:
        self.conn = conn
        self.proc = proc
        self._err: list[str] = []
        self._drain = asyncio.create_task(self._drain_stderr(), name="ssh poll shell stderr")

    @classmethod
    async def start(cls, conn: asyncssh.SSHClientConnection) -> _PollShell:
        proc = await conn.create_process("sh", encoding="utf-8", errors="replace")
        return cls(conn, proc)

    def usable(self, conn: asyncssh.SSHClientConnection) -> bool:
        return self.conn is conn and not self.proc.is_closing() and not self._drain.done()

    async def _drain_stderr(self) -> None:
        with contextlib.suppress(Exception):
            while chunk := await self.proc.stderr.read(4096):
                self._err.append(chunk)
                if len(self._err) > 64:  # bounded: keep the latest
                    del self._err[:-64]

    async def run(self, command: str) -> tuple[int, str, str]:
        self._err.clear()
        marker = f"@@hlcon-end-{secrets.token_hex(8)} "
        # In a subshell: a builtin (exit, exec, cd) must not end or change the poll shell.
        self.proc.stdin.write(f"( {command} ) </dev/null; printf '\\n{marker}%d\\n' \"$?\"\n")
        data: str = await self.proc.stdout.readuntil("\n" + marker)
        status = (await self.proc.stdout.readline()).strip()
        out = data[: -len(marker) - 1]
        await asyncio.sleep(0)  # let stderr that came with the output be drained
        return int(status) if status.isdigit() else 127, out, "".join(self._err)

    def close(self) -> None:
        self._drain.cancel()
        with contextlib.suppress(Exception):
            self.proc.send_signal("KILL")
        with contextlib.suppress(Exception):
            self.proc.close()


def _signal_number(name: str | None) -> int:
    import signal

    if not name:
        return 127
    with contextlib.suppress(KeyError):
        return int(signal.Signals["SIG" + name])
    return 127


async def _pump(stream: asyncssh.SSHReader[str], on_line: LineSink) -> str:
    out: list[str] = []
    while line := await stream.readline():
        out.append(line)
        on_line(line.rstrip("\n"))
    return "".join(out)


# ---------------------------------------------------------------- executor and pool


class SshExecutor:
    """lab.execute.Executor for one SSH host (shares its SshHost connection)."""

    def __init__(self, ssh: SshHost) -> None:
        self.ssh = ssh

    @property
    def host(self) -> str:
        return self.ssh.name

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        on_line: LineSink | None = None,
    ) -> CommandResult:
        return await self.ssh.run(argv, timeout=timeout, input=input, env=env, on_line=on_line)

    async def run_polled(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        return await self.ssh.run_polled(argv, timeout=timeout)

    async def docker_url(self) -> str:
        return await self.ssh.docker_url()

    async def probe(self) -> bool:
        return await self.ssh.probe()


class SshPool:
    """Every SshHost of a Lab (Lab.ssh, made on first use); Lab.close() calls aclose()."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.hosts: dict[str, SshHost] = {}
        self.key_changed_listeners: list[HostKeyListener] = []

    def get(self, name: str) -> SshHost:
        if name not in self.hosts:
            cfg = next((h for h in self.lab.config.hosts if h.name == name), None)
            if cfg is None:
                raise LookupError(f"no host named {name!r} in the config ([[hosts]] name = …)")
            self.hosts[name] = SshHost(
                self.lab.config,
                cfg,
                on_key_changed=self._key_changed,
            )
        return self.hosts[name]

    def _key_changed(self, err: HostKeyChanged) -> None:
        # The lab only reports; the audit record is written above it (actions.hostkey_audit).
        for listener in [*self.lab.host_key_listeners, *self.key_changed_listeners]:
            listener(err)

    async def aclose(self) -> None:
        await asyncio.gather(*(h.close() for h in self.hosts.values()), return_exceptions=True)


def pool(lab: Lab) -> SshPool:
    return lab.ssh


def ssh_host(lab: Lab, host: str) -> SshHost:
    return pool(lab).get(host)


def executor_for(lab: Lab, host: str) -> SshExecutor:
    return SshExecutor(ssh_host(lab, host))


def docker_url_provider(lab: Lab, host: str) -> Callable[[], Awaitable[str]]:
    """What lab.containers' DockerEndpoint(url_provider=…) calls for hosts with containers =
    "ssh": the forwarded socket's URL, re-forwarded after a reconnect."""
    return ssh_host(lab, host).docker_url


async def docker_url(lab: Lab, host: str) -> str:
    """For the containers reader: the unix:// URL of `host`'s forwarded container socket."""
    return await ssh_host(lab, host).docker_url()


async def fetch_host_key(config: Config, host: HostConfig) -> OfferedKey:
    """The key the host presents now (no login): what the trust action shows and writes."""
    algs: Any = ()
    try:
        async with asyncio.timeout(host.connect_timeout + 1):
            key = await asyncssh.get_server_host_key(
                host.address, host.port, server_host_key_algs=algs
            )
    except TimeoutError:
        raise HostUnreachable(host.name, f"no SSH answer from {host.address}:{host.port}") from None
    except (OSError, asyncssh.Error) as exc:
        raise HostUnreachable(host.name, f"{host.address}:{host.port}: {exc}") from None
    if key is None:
        raise HostUnreachable(host.name, f"{host.address}:{host.port} presented no host key")
    return offered_key(host.name, host.address, host.port, key)
