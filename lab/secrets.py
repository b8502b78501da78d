"""Secret references: keyring:SERVICE/USER, env:NAME, file:/PATH, command:ARGV.

The config holds references, never values. A reference is resolved lazily (`resolve`), the value
kept in this process's memory only and wrapped in a `Secret` whose str/repr are masked: printing,
logging or formatting one into an exception shows `Secret(env:X, ******)`, never the value. Only
`.reveal()` gives it, at the last moment (an env var for restic, a password for asyncssh).

`revealed_values()` lists every value resolved in this process, so the audit log (and anything
else that writes text out) can redact them.

Errors (`SecretError`) name the reference and why it could not be resolved, never the value: a
failing `command:` shows its exit status and its stderr's first line, with anything it printed on
stdout and every value resolved so far cut out of it. A `command:` runs in its own process group
for at most console.timeout, and the whole group is killed when that runs out.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from lab.files import KIB, UnreadableFile, expand_user, read_regular_file

SCHEMES = ("keyring", "env", "file", "command")
REFERENCE_FORMS = "keyring:SERVICE/USER, env:NAME, file:/PATH or command:ARGV"
DEFAULT_COMMAND_TIMEOUT = 30.0
SECRET_FILE_MAX_BYTES = 64 * KIB  # a password, a token, a key: never more
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MASK = "******"


@dataclass(frozen=True)
class SecretRef:
    scheme: str  # keyring | env | file | command
    value: str  # what follows the colon; a reference, not the secret

    def __str__(self) -> str:
        return f"{self.scheme}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        """`keyring:hlcon/offsite`, `env:RESTIC_PW`, `file:/run/secrets/x`, `command:sops -d …`.

        Raises ValueError with a message that says which form was expected. Text without a known
        scheme is not quoted back: it may be the secret itself, pasted in by mistake.
        """
        if not isinstance(text, str):
            raise ValueError(f"a secret reference is a string ({REFERENCE_FORMS})")
        scheme, colon, body = text.partition(":")
        if not colon or scheme not in SCHEMES:
            raise ValueError(
                f"not a secret reference: expected {REFERENCE_FORMS} "
                "(the text itself is not repeated here in case it is the secret)"
            )
        if "\x00" in body:
            raise ValueError(f"{scheme}: reference contains a NUL character")
        if scheme == "keyring":
            service, slash, user = body.rpartition("/")
            if not slash or not service.strip() or not user.strip():
                raise ValueError(
                    f"keyring reference must be keyring:SERVICE/USER (e.g. keyring:hlcon/offsite), "
                    f"got keyring:{body}"
                )
        elif scheme == "env":
            if not _ENV_NAME.match(body):
                raise ValueError(
                    "env reference must be env:NAME with a variable name of letters, digits and _ "
                    f"(e.g. env:RESTIC_PASSWORD), got env:{body}"
                )
        elif scheme == "file":
            try:
                expanded = expand_user(body) if body else None
            except ValueError as exc:
                raise ValueError(f"file reference: {exc}") from None
            if expanded is None or not expanded.is_absolute():
                raise ValueError(
                    f"file reference must be an absolute path (file:/run/secrets/x or file:~/x), "
                    f"got file:{body}"
                )
        else:  # command
            try:
                argv = shlex.split(body)
            except ValueError as exc:
                raise ValueError(f"command reference cannot be split into words: {exc}") from None
            if not argv:
                raise ValueError("command reference has no command (e.g. command:pass show restic)")
        return cls(scheme, body)

    def command_argv(self) -> list[str]:
        """The argv of a command: reference (split like a shell would, but run without one)."""
        return shlex.split(self.value)

    def keyring_service_user(self) -> tuple[str, str]:
        service, _, user = self.value.rpartition("/")
        return service, user


class Secret:
    """A resolved secret. str/repr/format are masked; `.reveal()` gives the value."""

    __slots__ = ("_value", "ref")

    def __init__(self, ref: SecretRef, value: str) -> None:
        self.ref = ref
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.ref}, {_MASK})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> NoReturn:
        # Pickling would write the value somewhere; refuse rather than leak.
        raise TypeError("a Secret cannot be pickled")


class SecretError(Exception):
    """A reference that could not be resolved: `str()` is 'REF: why', never the value."""

    def __init__(self, ref: SecretRef | str, reason: str) -> None:
        self.ref = ref
        self.reason = reason
        super().__init__(f"{ref}: {reason}")


_lock = threading.Lock()
_cache: dict[SecretRef, Secret] = {}
_revealed: set[str] = set()
_command_timeout: float | None = None  # console.timeout of the loaded config


def set_command_timeout(seconds: float | None) -> None:
    """How long a command: reference may run (load_config sets console.timeout; None: the
    default of DEFAULT_COMMAND_TIMEOUT)."""
    global _command_timeout
    with _lock:
        _command_timeout = seconds


def command_timeout() -> float:
    with _lock:
        return DEFAULT_COMMAND_TIMEOUT if _command_timeout is None else _command_timeout


def revealed_values() -> frozenset[str]:
    """Every secret value resolved in this process (for redaction)."""
    with _lock:
        return frozenset(_revealed)


def forget_cached() -> None:
    """Drop the cache (a changed keyring entry is read again); revealed_values() keeps them."""
    with _lock:
        _cache.clear()


def resolve(ref: SecretRef | str, *, timeout: float | None = None) -> Secret:
    """The secret a reference names, resolved once per process and cached in memory. A command:
    runs for at most `timeout` seconds (default: console.timeout, see set_command_timeout).

    Raises SecretError (never with the value in it). Blocking: a `command:` runs a process and
    `keyring:` may talk to D-Bus, so async callers use asyncio.to_thread.
    """
    if isinstance(ref, str):
        try:
            ref = SecretRef.parse(ref)
        except ValueError as exc:
            raise SecretError("<reference>", str(exc)) from None
    with _lock:
        cached = _cache.get(ref)
    if cached is not None:
        return cached
    value = _RESOLVERS[ref.scheme](ref, command_timeout() if timeout is None else timeout)
    secret = Secret(ref, value)
    with _lock:
        _cache[ref] = secret
        if value:
            _revealed.add(value)
    return secret


def _resolve_env(ref: SecretRef, timeout: float) -> str:
    value = os.environ.get(ref.value)
    if value is None:
        raise SecretError(ref, f"environment variable {ref.value} is not set")
    if value == "":
        raise SecretError(ref, f"environment variable {ref.value} is empty")
    return value


def _resolve_file(ref: SecretRef, timeout: float) -> str:
    try:
        path = expand_user(ref.value)
    except ValueError as exc:
        raise SecretError(ref, str(exc)) from None
    try:
        data = read_regular_file(path, SECRET_FILE_MAX_BYTES)
    except UnreadableFile as exc:
        # The reason only: the path is already in the reference, it adds nothing secret.
        raise SecretError(ref, f"cannot read {path}: {exc.reason}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(ref, f"{path} is not UTF-8 text") from None
    value = _strip_newline(text)
    if not value:
        raise SecretError(ref, f"{path} is empty")
    return value


def _run_command(argv: list[str], timeout: float) -> tuple[int, bytes, bytes] | None:
    """(status, stdout, stderr), or None when it timed out. In its own process group, killed
    whole on timeout: a helper's background children (an agent it forked, a `sleep &`) would
    otherwise outlive it, and hold the pipes open."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        try:
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a grandchild that left the group holds the pipes
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            proc.wait()
        return None
    except BaseException:  # Ctrl-C while waiting: leave nothing running
        _kill_group(proc.pid)
        proc.wait()
        raise
    return proc.returncode, stdout, stderr


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # all gone already
        os.killpg(pgid, signal.SIGKILL)


def _resolve_command(ref: SecretRef, timeout: float) -> str:
    argv = ref.command_argv()
    try:
        ran = _run_command(argv, timeout)
    except FileNotFoundError:
        raise SecretError(ref, f"command not found: {argv[0]}") from None
    except PermissionError:
        raise SecretError(ref, f"command not executable: {argv[0]}") from None
    except (OSError, ValueError) as exc:
        raise SecretError(ref, f"command could not start: {type(exc).__name__}") from None
    if ran is None:
        raise SecretError(ref, f"command timed out after {timeout:g}s{_timeout_origin(timeout)}")
    returncode, out, err = ran
    stdout = out.decode("utf-8", "replace")
    if returncode != 0:
        # The first line only (later ones may dump what the helper read), with its own stdout
        # and every value resolved so far cut out of it.
        first = _redact(
            _first_line(err.decode("utf-8", "replace")),
            [
                _strip_newline(stdout),
                *stdout.splitlines(),
                *revealed_values(),
            ],
        )
        if returncode < 0:
            why = f"command was killed by {_signal_name(-returncode)}"
        else:
            why = f"command exited with status {returncode}"
        raise SecretError(
            ref, f"{why}; its stderr began: {first}" if first else f"{why} (no message on stderr)"
        )
    value = _strip_newline(stdout)
    if not value:
        raise SecretError(ref, "command printed nothing on stdout")
    return value


PLAINTEXT_KEYRING_VAR = "HLCON_PLAINTEXT_KEYRING"
NO_SECURE_KEYRING_HELP = (
    "for a real keyring run a Secret Service (gnome-keyring or KeePassXC in a desktop session; "
    "headless: dbus-run-session with gnome-keyring-daemon --unlock) or KWallet, or point the "
    "config at file:/PATH (a mode-600 file) or command:ARGV (pass, sops, a vault CLI) instead; "
    f"to store in a plaintext file anyway, set {PLAINTEXT_KEYRING_VAR}=1"
)


def plaintext_keyring_allowed(env: Mapping[str, str] | None = None) -> bool:
    """Whether the user turned plaintext keyring storage on ($HLCON_PLAINTEXT_KEYRING=1)."""
    value = (os.environ if env is None else env).get(PLAINTEXT_KEYRING_VAR, "")
    return value.strip().lower() in ("1", "yes", "true", "on")


def is_plaintext_backend(backend: object) -> bool:
    """keyrings.alt's PlaintextKeyring (base64 in a file) and its kind: readable by anyone who
    can read the file, so never chosen silently."""
    return any("plaintext" in cls.__name__.lower() for cls in type(backend).__mro__)


def _backends() -> list[Any]:
    """The keyring backends keyring would try, in its order (a chainer's members)."""
    import keyring

    chosen = keyring.get_keyring()
    members = (
        getattr(chosen, "backends", None) if type(chosen).__name__ == "ChainerBackend" else None
    )
    return list(members) if members else [chosen]


def describe_backend(backend: object) -> str:
    """A keyring backend, for people: which one, and where a file backend keeps its file."""
    cls = type(backend)
    name = f"{cls.__module__}.{cls.__name__}"
    if cls.__module__.endswith("SecretService"):
        return f"the Secret Service ({name})"
    if cls.__module__.endswith("kwallet"):
        return f"KWallet ({name})"
    path = getattr(backend, "file_path", None)
    if is_plaintext_backend(backend):
        return f"a PLAINTEXT file, {path} ({name})" if path else f"a PLAINTEXT store ({name})"
    return f"{name} (file {path})" if isinstance(path, str) else name


def keyring_holder(ref: SecretRef) -> Any:
    """The backend that holds a keyring: reference's entry, or None."""
    import keyring.errors

    service, user = ref.keyring_service_user()
    for backend in _backends():
        try:
            if backend.get_password(service, user) is not None:
                return backend
        except keyring.errors.KeyringError:
            continue
    return None


def _resolve_keyring(ref: SecretRef, timeout: float) -> str:
    import keyring
    import keyring.errors

    service, user = ref.keyring_service_user()
    try:
        value = keyring.get_password(service, user)
    except keyring.errors.KeyringError as exc:
        raise SecretError(ref, f"keyring unavailable: {_keyring_error(exc)}") from None
    if value is None:
        backend = type(keyring.get_keyring()).__name__
        raise SecretError(
            ref,
            f"no entry for service {service!r}, user {user!r} in the keyring ({backend}); "
            f"store one with: hlcon secret set {ref}",
        )
    return str(value)


_RESOLVERS = {
    "env": _resolve_env,
    "file": _resolve_file,
    "command": _resolve_command,
    "keyring": _resolve_keyring,
}


def store_in_keyring(ref: SecretRef, value: str, *, allow_plaintext: bool | None = None) -> str:
    """Store `value` under a keyring: reference; returns where (describe_backend). Raises
    SecretError. A plaintext backend is used only when allowed (default: $HLCON_PLAINTEXT_KEYRING)
    — keyrings.alt's file is what keyring falls back to when there is no Secret Service."""
    import keyring.errors

    if ref.scheme != "keyring":
        raise SecretError(ref, "only keyring: references can be stored (the others are read-only)")
    if not value:
        raise SecretError(ref, "refusing to store an empty secret")
    if allow_plaintext is None:
        allow_plaintext = plaintext_keyring_allowed()
    service, user = ref.keyring_service_user()
    _, usable, refused = _storage_backends(allow_plaintext)
    failures: list[str] = []
    for backend in usable:
        try:
            backend.set_password(service, user, value)
        except NotImplementedError:
            continue
        except keyring.errors.KeyringError as exc:
            failures.append(f"{describe_backend(backend)}: {_keyring_error(exc)}")
            continue
        with _lock:
            _cache.pop(ref, None)
            _revealed.add(value)
        return describe_backend(backend)
    if refused and not failures:
        why = "the only keyring here is " + ", ".join(refused)
    else:
        why = "; ".join(failures) or "no keyring backend here"
    raise SecretError(ref, f"nothing stored: {why}; {NO_SECURE_KEYRING_HELP}")


def _storage_backends(allow_plaintext: bool) -> tuple[list[Any], list[Any], list[str]]:
    """(every backend, those a value may be stored in, descriptions of the refused ones)."""
    backends = _backends()
    usable = [b for b in backends if allow_plaintext or not is_plaintext_backend(b)]
    refused = [describe_backend(b) for b in backends if b not in usable]
    return backends, usable, refused


def keyring_store_refusal(ref: SecretRef, *, allow_plaintext: bool | None = None) -> str | None:
    """Why store_in_keyring would refuse before trying (only a plaintext backend here), or None:
    asked before the value is typed in, so nobody types a secret only to see it refused."""
    if allow_plaintext is None:
        allow_plaintext = plaintext_keyring_allowed()
    _, usable, refused = _storage_backends(allow_plaintext)
    if usable or not refused:
        return None
    return (
        f"{ref}: nothing stored: the only keyring here is {', '.join(refused)}; "
        f"{NO_SECURE_KEYRING_HELP}"
    )


def keyring_backend_name() -> str:
    import keyring

    return type(keyring.get_keyring()).__name__


def redact(text: str, extra: list[str] | None = None) -> str:
    """`text` with every resolved secret value (and `extra`) replaced by ******."""
    return _redact(text, list(revealed_values()) + (extra or []))


def _redact(text: str, values: list[str]) -> str:
    for value in sorted({v for v in values if v}, key=len, reverse=True):
        text = text.replace(value, _MASK)
    return text


def _keyring_error(exc: Exception) -> str:
    # keyring's messages describe the backend, not the secret; keep the first line, short.
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return _redact(first[:200], list(revealed_values()))


def _strip_newline(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _first_line(text: str) -> str:
    """The first non-blank line, without terminal escapes or control characters, cut short."""
    for line in text.splitlines():
        clean = _CONTROL.sub("", _ANSI_ESCAPE.sub("", line)).strip()
        if clean:
            return clean[:300]
    return ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _timeout_origin(timeout: float) -> str:
    with _lock:
        configured = _command_timeout
    return " (console.timeout)" if configured is not None and timeout == configured else ""
