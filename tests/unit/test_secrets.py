"""Secret references: parsing, each scheme resolved for real (environment, files, processes,
keyrings.alt's PlaintextKeyring, gnome-keyring's Secret Service over D-Bus), masking, and that no
value reaches a message."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from hypothesis import given
from hypothesis import strategies as st
from keyring.backend import KeyringBackend
from keyrings.alt.file import PlaintextKeyring  # type: ignore[import-untyped]  # no py.typed

from lab.config import load_config
from lab.secrets import (
    Secret,
    SecretError,
    SecretRef,
    forget_cached,
    keyring_store_refusal,
    redact,
    resolve,
    revealed_values,
    set_command_timeout,
    store_in_keyring,
)
from tests.testbed import require_tools

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    forget_cached()
    yield
    forget_cached()


@pytest.fixture
def plaintext_keyring(tmp_path: Path) -> Iterator[PlaintextKeyring]:
    """keyrings.alt's file backend, in a temporary file (a real backend, not a stand-in)."""
    previous: KeyringBackend = keyring.get_keyring()
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring_pass.cfg")
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


# ── parsing


@pytest.mark.parametrize(
    ("text", "scheme", "value"),
    [
        ("keyring:hlcon/offsite", "keyring", "hlcon/offsite"),
        ("keyring:restic/nas/offsite", "keyring", "restic/nas/offsite"),
        ("env:RESTIC_PASSWORD", "env", "RESTIC_PASSWORD"),
        ("file:/run/secrets/restic", "file", "/run/secrets/restic"),
        ("file:~/secret", "file", "~/secret"),
        ("command:sops -d --extract '[\"x\"]' s", "command", "sops -d --extract '[\"x\"]' s"),
    ],
)  # fmt: skip
def test_parse(text: str, scheme: str, value: str) -> None:
    ref = SecretRef.parse(text)
    assert (ref.scheme, ref.value, str(ref)) == (scheme, value, text)


def test_keyring_reference_splits_at_the_last_slash() -> None:
    assert SecretRef.parse("keyring:restic/nas/offsite").keyring_service_user() == (
        "restic/nas",
        "offsite",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("keyring:hlcon", "keyring:SERVICE/USER"),
        ("keyring:/user", "keyring:SERVICE/USER"),
        ("env:", "env:NAME"),
        ("env:NOT VALID", "env:NAME"),
        ("file:relative/path", "absolute path"),
        ("command:", "no command"),
        ("command:sops 'unclosed", "cannot be split"),
        ("vault:secret/x", "not a secret reference"),
    ],
)
def test_parse_refuses_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SecretRef.parse(text)


def test_parse_never_repeats_text_that_may_be_the_secret() -> None:
    with pytest.raises(ValueError) as info:
        SecretRef.parse("hunter2-correct-horse")
    assert "hunter2" not in str(info.value)


@given(st.text())
def test_parse_returns_a_reference_or_raises_value_error(text: str) -> None:
    try:
        ref = SecretRef.parse(text)
    except ValueError:
        return
    assert SecretRef.parse(str(ref)) == ref


# ── the Secret wrapper


def test_secret_is_masked_everywhere_but_reveal() -> None:
    secret = Secret(SecretRef("env", "X"), "s3cret-value")
    for shown in (
        str(secret),
        repr(secret),
        f"{secret}",
        f"{secret!r}",
        "{}".format(secret),  # noqa: UP032
        f"{[secret]}",
    ):
        assert "s3cret-value" not in shown
        assert "env:X" in shown
    assert secret.reveal() == "s3cret-value"
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)
    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError as exc:
        assert "s3cret-value" not in str(exc)


# ── env:


def test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HLCON_TEST_SECRET", "from-env-81f2")
    secret = resolve("env:HLCON_TEST_SECRET")
    assert secret.reveal() == "from-env-81f2"
    assert "from-env-81f2" in revealed_values()
    assert redact("log: from-env-81f2 used") == "log: ****** used"


def test_env_missing_and_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HLCON_TEST_NOPE", raising=False)
    with pytest.raises(
        SecretError, match="environment variable HLCON_TEST_NOPE is not set"
    ) as info:
        resolve(SecretRef.parse("env:HLCON_TEST_NOPE"))
    assert str(info.value).startswith("env:HLCON_TEST_NOPE: ")
    monkeypatch.setenv("HLCON_TEST_EMPTY", "")
    with pytest.raises(SecretError, match="is empty"):
        resolve("env:HLCON_TEST_EMPTY")


def test_a_bad_reference_string_is_a_secret_error_without_the_text() -> None:
    with pytest.raises(SecretError) as info:
        resolve("my-plain-password")
    assert "my-plain-password" not in str(info.value)


# ── file:


def test_file_drops_one_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "restic"
    path.write_text("pa ss\n")
    assert resolve(f"file:{path}").reveal() == "pa ss"
    path2 = tmp_path / "crlf"
    path2.write_bytes(b"x\r\n\n")
    assert resolve(f"file:{path2}").reveal() == "x\r\n"


def test_file_errors_say_why(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match=r"cannot read .*nope: no such file$"):
        resolve(f"file:{tmp_path / 'nope'}")
    with pytest.raises(SecretError, match="is a directory"):
        resolve(f"file:{tmp_path}")
    (tmp_path / "bin").write_bytes(b"\xff\xfe")
    with pytest.raises(SecretError, match="not UTF-8"):
        resolve(f"file:{tmp_path / 'bin'}")
    (tmp_path / "empty").write_text("")
    with pytest.raises(SecretError, match="is empty"):
        resolve(f"file:{tmp_path / 'empty'}")


def test_resolved_once_and_cached_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "s"
    path.write_text("first")
    ref = SecretRef.parse(f"file:{path}")
    first = resolve(ref)
    path.write_text("second")
    assert resolve(ref) is first and first.reveal() == "first"
    forget_cached()
    assert resolve(ref).reveal() == "second"
    assert {"first", "second"} <= revealed_values()


# ── command:


def test_command_stdout_is_the_secret() -> None:
    assert resolve("command:printf '%s\\n' 'cmd out'").reveal() == "cmd out"


def test_command_runs_without_a_shell(tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    secret = resolve(f"command:echo x; touch {pwned} $(id)")
    assert secret.reveal() == f"x; touch {pwned} $(id)"
    assert not pwned.exists()


def test_command_failure_quotes_stderr_without_the_secret() -> None:
    script = "echo leaked-7e3a; echo 'error: token leaked-7e3a rejected' >&2; exit 3"
    with pytest.raises(SecretError) as info:
        resolve(SecretRef("command", f"sh -c {script!r}"))
    # The reference is the test's own text; what the command said is what must be cut.
    assert info.value.reason == (
        "command exited with status 3; its stderr began: error: token ****** rejected"
    )


def test_command_failure_redacts_values_resolved_earlier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HLCON_TEST_EARLIER", "earlier-9c1d")
    resolve("env:HLCON_TEST_EARLIER")
    with pytest.raises(SecretError) as info:
        resolve(SecretRef("command", "sh -c 'echo bad earlier-9c1d >&2; exit 1'"))
    assert info.value.reason == "command exited with status 1; its stderr began: bad ******"


def test_command_failure_shows_only_the_first_line_of_stderr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A helper's later lines may dump what it read (another token, a config): only the first
    line is quoted, every known value cut out of it, terminal escapes and all."""
    monkeypatch.setenv("HLCON_TEST_KNOWN", "known-51be")
    resolve("env:HLCON_TEST_KNOWN")
    script = (
        "printf '\\033[31mvault: denied for known-51be\\n' >&2; "
        "echo 'debug: token=unknown-c0ffee' >&2; echo 'last: see above' >&2; exit 2"
    )
    with pytest.raises(SecretError) as info:
        resolve(SecretRef("command", f"sh -c {script!r}"))
    assert info.value.reason == (
        "command exited with status 2; its stderr began: vault: denied for ******"
    )
    assert "unknown-c0ffee" not in info.value.reason and "\x1b" not in info.value.reason


def test_command_killed_by_a_signal_says_which() -> None:
    with pytest.raises(SecretError) as info:
        resolve(SecretRef("command", "sh -c 'kill -TERM $$'"))
    assert info.value.reason == "command was killed by SIGTERM (no message on stderr)"


def test_command_timeout_is_the_configured_console_timeout(tmp_path: Path) -> None:
    config = tmp_path / "lab.toml"
    config.write_text('[console]\ntimeout = "500ms"\n')
    load_config(config, {})
    try:
        with pytest.raises(SecretError, match=r"timed out after 0.5s \(console.timeout\)"):
            resolve("command:sleep 60")
    finally:
        set_command_timeout(None)


def test_cli_secret_check_runs_a_command_for_console_timeout(tmp_path: Path) -> None:
    config = tmp_path / "lab.toml"
    config.write_text('[console]\ntimeout = "500ms"\n')
    result = hlcon("secret", "check", "command:sleep 60", "--config", str(config), env={})
    assert result.returncode == 1
    assert "command timed out after 0.5s (console.timeout)" in result.stderr


def _gone(pid: int) -> bool:
    """Exited (a zombie waiting for its new parent counts: it runs no more)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_command_timeout_kills_the_background_children_too(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pid_file}; sleep 300"
    with pytest.raises(SecretError, match=r"timed out after 0\.5s"):
        resolve(SecretRef("command", f"sh -c {script!r}"), timeout=0.5)
    child = int(pid_file.read_text())
    # SIGKILL is sent before resolve returns; the kernel may take a moment to finish the exit.
    for _ in range(200):
        if _gone(child):
            break
        time.sleep(0.05)
    assert _gone(child), f"background child {child} outlived the timeout"


def test_command_not_found_timeout_and_silence() -> None:
    with pytest.raises(SecretError, match="command not found: hlcon-no-such-tool"):
        resolve("command:hlcon-no-such-tool --get x")
    with pytest.raises(SecretError, match=r"timed out after 0.2s"):
        resolve("command:sleep 30", timeout=0.2)
    with pytest.raises(SecretError, match="printed nothing"):
        resolve("command:true")
    with pytest.raises(SecretError, match=r"status 1 \(no message on stderr\)"):
        resolve("command:false")


# ── keyring:


def test_keyring_with_a_real_file_backend(plaintext_keyring: PlaintextKeyring) -> None:
    ref = SecretRef.parse("keyring:hlcon/offsite")
    with pytest.raises(SecretError) as info:
        resolve(ref)
    assert "no entry for service 'hlcon', user 'offsite'" in str(info.value)
    assert "hlcon secret set keyring:hlcon/offsite" in str(info.value)
    stored_in = store_in_keyring(ref, "kr-value-55aa", allow_plaintext=True)
    assert stored_in == (
        f"a PLAINTEXT file, {plaintext_keyring.file_path} (keyrings.alt.file.PlaintextKeyring)"
    )
    assert resolve(ref).reveal() == "kr-value-55aa"
    assert Path(plaintext_keyring.file_path).exists()


def test_a_plaintext_keyring_is_never_used_unless_turned_on(
    plaintext_keyring: PlaintextKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HLCON_PLAINTEXT_KEYRING", raising=False)
    ref = SecretRef.parse("keyring:hlcon/offsite")
    with pytest.raises(SecretError) as info:
        store_in_keyring(ref, "kr-value-77cc")
    reason = info.value.reason
    assert reason.startswith("nothing stored: the only keyring here is a PLAINTEXT file")
    assert "Secret Service" in reason and "file:/PATH" in reason and "command:ARGV" in reason
    assert "HLCON_PLAINTEXT_KEYRING=1" in reason and "kr-value-77cc" not in reason
    assert not Path(plaintext_keyring.file_path).exists()
    # What `secret set` asks before prompting, so nobody types a secret only to see it refused.
    assert keyring_store_refusal(ref) == f"{ref}: {reason}"
    monkeypatch.setenv("HLCON_PLAINTEXT_KEYRING", "1")
    assert keyring_store_refusal(ref) is None
    assert store_in_keyring(ref, "kr-value-77cc").startswith("a PLAINTEXT file")
    assert resolve(ref).reveal() == "kr-value-77cc"


def test_only_keyring_references_can_be_stored(plaintext_keyring: PlaintextKeyring) -> None:
    with pytest.raises(SecretError, match="only keyring:"):
        store_in_keyring(SecretRef.parse("env:X"), "v")
    with pytest.raises(SecretError, match="empty"):
        store_in_keyring(SecretRef.parse("keyring:a/b"), "")


# ── the CLI, as a real process


def hlcon(
    *args: str, env: dict[str, str], stdin: str = "", unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith("HLCON_") and k not in unset
    }
    full_env |= {"PYTHONPATH": str(REPO)} | env
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        cwd=REPO,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_secret_set_refuses_the_fallback_plaintext_keyring(tmp_path: Path) -> None:
    """No Secret Service (no D-Bus session) and keyring's own choice: keyrings.alt's file."""
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    unset = ("DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND")
    stored = hlcon(
        "secret", "set", "keyring:hlcon/cli", env=env, stdin="cli-secret-9a0f\n", unset=unset
    )
    assert stored.returncode == 1, stored.stdout
    assert "nothing stored: the only keyring here is a PLAINTEXT file" in stored.stderr
    assert "HLCON_PLAINTEXT_KEYRING=1" in stored.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(b"cli-secret-9a0f" not in p.read_bytes() for p in files)
    assert not any(p.name == "keyring_pass.cfg" for p in files)


def test_cli_secret_set_and_check_with_the_file_keyring(tmp_path: Path) -> None:
    env = {
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "HLCON_PLAINTEXT_KEYRING": "1",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "HOME": str(tmp_path),
    }
    stored = hlcon("secret", "set", "keyring:hlcon/cli", env=env, stdin="cli-secret-0b9e\n")
    assert stored.returncode == 0, stored.stderr
    cfg = tmp_path / "data" / "python_keyring" / "keyring_pass.cfg"
    where = f"a PLAINTEXT file, {cfg} (keyrings.alt.file.PlaintextKeyring)"
    assert stored.stdout.strip() == f"stored keyring:hlcon/cli in {where}"
    assert "readable by anyone who can read that file" in stored.stderr
    checked = hlcon("secret", "check", "keyring:hlcon/cli", env=env)
    assert (checked.returncode, checked.stdout.strip()) == (
        0,
        f"keyring:hlcon/cli: resolves (value hidden); held by {where}",
    )
    for result in (stored, checked):
        assert "cli-secret-0b9e" not in result.stdout + result.stderr
    missing = hlcon("secret", "check", "keyring:hlcon/other", env=env)
    assert (
        missing.returncode == 1 and "no entry for service 'hlcon', user 'other'" in missing.stderr
    )
    bad = hlcon("secret", "check", "plain-password-value", env=env)
    assert bad.returncode == 2 and "plain-password-value" not in bad.stderr
    not_keyring = hlcon("secret", "set", "env:X", env=env, stdin="v\n")
    assert not_keyring.returncode == 2 and "only keyring: references" in not_keyring.stderr


@pytest.mark.testbed
def test_secret_service_under_dbus(tmp_path: Path) -> None:
    """gnome-keyring's Secret Service on a private D-Bus session: set, check, and config check."""
    require_tools("dbus-run-session", "gnome-keyring-daemon")
    config = tmp_path / "config.toml"
    config.write_text(
        '[[backups]]\nname = "offsite"\nrepository = "/srv/restic"\n'
        'password = "keyring:hlcon/offsite"\n'
    )
    python = sys.executable
    script = (
        "printf %s unlock-pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; "
        f"printf 'ss-secret-d41c\\n' | {python} -m tui.cli secret set keyring:hlcon/offsite && "
        f"{python} -m tui.cli secret check keyring:hlcon/offsite && "
        f"{python} -m tui.cli config check --config {config}"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HLCON_", "DBUS_"))}
    env |= {
        "PYTHONPATH": str(REPO),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_RUNTIME_DIR": str(tmp_path),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring",
    }
    result = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    service = "the Secret Service (keyring.backends.SecretService.Keyring)"
    assert f"stored keyring:hlcon/offsite in {service}" in result.stdout
    assert f"keyring:hlcon/offsite: resolves (value hidden); held by {service}" in result.stdout
    assert (
        f'password = "keyring:hlcon/offsite"  # resolves (value hidden); held by {service}'
        in result.stdout
    )
    assert "ss-secret-d41c" not in result.stdout + result.stderr
    # The keyring daemon kept it, not a file of ours.
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert all(b"ss-secret-d41c" not in p.read_bytes() for p in files)


# ── hostile input (issue 11 §8): a message, never a traceback or a hang


def test_a_file_reference_to_an_unknown_user_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match='no user "nosuchuser-4f1a" on this machine'):
        SecretRef.parse("file:~nosuchuser-4f1a/pw")
    with pytest.raises(SecretError, match='no user "nosuchuser-4f1a" on this machine'):
        resolve(SecretRef("file", "~nosuchuser-4f1a/pw"))


@pytest.mark.timeout(30)  # before the fix: blocked in open() for ever
def test_a_file_secret_that_is_a_fifo_or_a_device_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pw"
    os.mkfifo(fifo)
    with pytest.raises(SecretError) as info:
        resolve(f"file:{fifo}")
    assert info.value.reason == f"cannot read {fifo}: not a regular file (a FIFO)"
    with pytest.raises(SecretError) as info:
        resolve("file:/dev/zero")
    assert info.value.reason == "cannot read /dev/zero: not a regular file (a character device)"
    big = tmp_path / "big"
    big.write_bytes(b"x" * (64 * 1024 + 1))
    with pytest.raises(SecretError) as info:
        resolve(f"file:{big}")
    assert info.value.reason == f"cannot read {big}: larger than 64 KiB"
