"""hlcon's configuration: TOML → typed, validated, frozen objects.

Found at --config, then $HLCON_CONFIG, then the XDG config dir, else the embedded default (the
repository's config.toml: this machine only). Every error names the file, the line (where one can
be found), the key and what was expected; unknown keys are errors. Durations are strings like
"5s", "3m", "26h", "1h30m", "2d". Secrets are references (lab.secrets.SecretRef), never values.

The dataclasses below ARE the schema: the loader walks their fields, so a field's type, default
and `doc` metadata are the whole definition of a key.
"""

# ruff: noqa: RUF009  (doc() and duration() are field specifiers: they return dataclasses.field)
from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import math
import os
import re
import sys
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.domains import DOMAINS
from lab.files import MIB, UnreadableFile, expand_user, read_regular_file
from lab.secrets import SCHEMES, SecretRef, set_command_timeout
from lab.units import format_duration as format_duration
from lab.units import parse_duration as parse_duration

CONFIG_MAX_BYTES = 1 * MIB  # a config is a few KiB; more is the wrong file (or /dev/zero)


def doc(text: str, **kw: Any) -> Any:
    """A field with its documentation (shown by `hlcon config check --explain`)."""
    return field(metadata={"doc": text}, **kw)


# NOTE (for the loader): `float` fields whose name ends in a duration word are durations; the
# loader uses the `duration` metadata flag below to know which.
def duration(text: str, default: float) -> Any:
    return field(default=default, metadata={"doc": text, "duration": True})


@dataclass(frozen=True)
class ConsoleConfig:
    refresh: float = duration("How often readers poll (each target on its own schedule).", 5.0)
    timeout: float = duration(
        "Per-poll timeout of every reader (restic's included) and of a command: secret; "
        "a slower one becomes a Fault.",
        10.0,
    )
    read_only: bool = doc("Refuse every action (also: hlcon --read-only).", default=False)
    theme: str = doc(
        "A Textual theme name (textual-dark, nord, gruvbox …).", default="textual-dark"
    )
    state_dir: Path | None = doc(
        "Where the audit log, locks and maintenance flags live (default: XDG state dir).",
        default=None,
    )
    audit_log: Path | None = doc(
        "The audit log file (default: STATE_DIR/audit.jsonl).", default=None
    )
    audit_journal: str = doc(
        'Where each audit head is also sent, an anchor outside the log\'s trust domain: "auto" '
        '(journald\'s socket, skipped when absent), "none", or a journald socket path.',
        default="auto",
    )


@dataclass(frozen=True)
class LocalConfig:
    """This machine, read without SSH."""

    enabled: bool = doc("Show this machine as a host.", default=True)
    name: str = doc("Its name in hlcon (targets: container:NAME@local).", default="local")
    containers: str = doc(
        '"auto" finds a local Docker or Podman socket; "none"; or a URL (unix://…, tcp://…).',
        default="auto",
    )
    wireguard: bool = doc("Show local WireGuard interfaces if present.", default=True)
    services: tuple[str, ...] = doc(
        "systemd services shown, and the only ones restartable here.", default=()
    )


@dataclass(frozen=True)
class HealthConfig:
    disk_warn: float = doc("Filesystem use % that is a warning.", default=85.0)
    disk_critical: float = doc("Filesystem use % that is critical.", default=95.0)
    memory_warn: float = doc("Memory use % that is a warning.", default=90.0)
    memory_critical: float = doc("Memory use % that is critical.", default=97.0)
    swap_warn: float = doc("Swap use % that is a warning.", default=80.0)
    load_warn: float = doc("1-minute load per CPU that is a warning.", default=2.0)
    fail2ban_bans_warn: int = doc("Banned IPs in one jail that make a warning.", default=50)
    restart_loop: int = doc("Container restart count that counts as a loop.", default=5)
    ignore_mounts: tuple[str, ...] = doc(
        "Mount points never reported (prefix match).",
        default=("/proc", "/sys", "/dev", "/run/user", "/snap"),
    )


@dataclass(frozen=True)
class ActionsConfig:
    timeout: float = duration("Default execute timeout of an action.", 120.0)
    rate_limit: int = doc("Actions allowed per target within rate_window.", default=5)
    rate_window: float = duration("The rate-limit window.", 600.0)
    timeouts: dict[str, float] = field(
        default_factory=dict,
        metadata={
            "doc": 'Execute timeout per action family ("backup.restore" = "6h"); a family not '
            "listed keeps its default (restore and backup-now 6h, check 3h, others timeout).",
            "durations": True,
        },
    )


@dataclass(frozen=True)
class HostConfig:
    name: str = doc("The host's name in hlcon (targets: service:nginx@NAME).")
    address: str = doc("DNS name or IP to SSH to.")
    port: int = doc("SSH port.", default=22)
    user: str = doc("SSH user.", default="root")
    identity: Path | None = doc("Private key file (default: agent and ~/.ssh keys).", default=None)
    passphrase: SecretRef | None = doc(
        "The identity's passphrase, as a secret reference.", default=None
    )
    known_hosts: Path | None = doc("Extra known_hosts file to trust for this host.", default=None)
    services: tuple[str, ...] = doc(
        "systemd units shown, and the only ones restartable.", default=()
    )
    containers: str = doc(
        '"none", "ssh" (its Docker/Podman socket over SSH) or a URL.', default="none"
    )
    docker_socket: str | None = doc(
        'Remote socket path for containers = "ssh" (default: probe podman, then docker).',
        default=None,
    )
    nixos: bool = doc(
        "Declarative host: print Nix snippets instead of editing files.", default=False
    )
    connect_timeout: float = duration("SSH connect timeout.", 10.0)


@dataclass(frozen=True)
class ContainerEndpointConfig:
    name: str = doc("The endpoint's name (targets: container:NAME@ENDPOINT).")
    url: str = doc("unix:///path/docker.sock or tcp://host:2375.")


@dataclass(frozen=True)
class VpnConfig:
    interface: str = doc("WireGuard interface, e.g. wg0.")
    host: str = doc('The host it lives on ("local" or a [[hosts]] name).', default="local")
    subnet: str | None = doc(
        "Peer address pool, e.g. 10.100.0.0/24 (needed for peer add).", default=None
    )
    endpoint: str | None = doc("Public host:port clients dial (needed for peer add).", default=None)
    peers_file: Path | None = doc("The wg-quick conf where new peers are persisted.", default=None)
    dns: str | None = doc("DNS server written into client configs.", default=None)
    stale_after: float = duration("A handshake older than this makes a peer stale.", 180.0)
    always_on: tuple[str, ...] = doc(
        "Peer names (or keys) that must always be up: never seen or 10× stale is critical.",
        default=(),
    )
    expected_offline: tuple[str, ...] = doc(
        "Peer names (or keys) expected to be offline at times (a roaming phone): not a finding"
        " when stale. Every other enabled peer is.",
        default=(),
    )
    peer_names: dict[str, str] = doc(
        "Public key → name, for peers without a # name comment.", default_factory=dict
    )
    nixos: bool = doc("Print a Nix snippet instead of editing peers_file.", default=False)
    netns: str | None = doc(
        "Network namespace the interface lives in (local only; for addresses and MTU).",
        default=None,
    )


@dataclass(frozen=True)
class BackupConfig:
    name: str = doc("The repository's name in hlcon (targets: repo:NAME).")
    repository: str = doc("Anything restic accepts: a path, sftp:, rest:, s3: …")
    password: SecretRef = doc("The repository password, as a secret reference.")
    host: str = doc('Where restic runs ("local" or a [[hosts]] name).', default="local")
    max_age: float = duration("Newest snapshot older than this is a finding.", 26 * 3600.0)
    check_max_age: float = duration(
        "Last `restic check` older than this is a finding.", 8 * 86400.0
    )
    paths: tuple[str, ...] = doc("Paths for 'backup now'.", default=())
    env: dict[str, SecretRef] = doc(
        "Extra environment for restic (AWS_SECRET_ACCESS_KEY …), as secret references.",
        default_factory=dict,
    )


@dataclass(frozen=True)
class CertConfig:
    name: str = doc("The certificate's name in hlcon (targets: cert:NAME).")
    endpoint: str | None = doc("host:port serving it (or give file).", default=None)
    file: Path | None = doc("A PEM file holding it (on `host`).", default=None)
    sni: str | None = doc("Server name to send (default: the endpoint's host).", default=None)
    starttls: str | None = doc('"smtp" or "imap" for STARTTLS endpoints.', default=None)
    host: str = doc(
        'Where the file, renew and reload commands live ("local" or a host).', default="local"
    )
    renew: str | None = doc("Renew command (lego/certbot/systemctl start acme-…).", default=None)
    reload: str | None = doc(
        "Reload command after renew, e.g. systemctl reload nginx.", default=None
    )
    warn_days: int = doc("Days left that make a warning.", default=21)
    critical_days: int = doc("Days left that are critical.", default=7)
    renew_timeout: float = duration("Timeout of the renew command.", 300.0)
    ca_file: Path | None = doc(
        "Extra CA bundle (PEM, on this machine) trusted besides the system store: a private CA.",
        default=None,
    )
    env: dict[str, SecretRef] = doc(
        "Environment for the renew command (a DNS-01 provider's token …), as secret references.",
        default_factory=dict,
    )


@dataclass(frozen=True)
class ApprovalsConfig:
    """Requests automation makes (`hlcon request`, `hlcon mcp`), waiting for a person."""

    expiry: float = duration(
        "How long a request waits for a person to approve it; then it is denied (expired).",
        3600.0,
    )


@dataclass(frozen=True)
class WatchConfig:
    """`hlcon watch`, the long-running service: notifications and metrics."""

    listen: str = doc(
        'host:port where `hlcon watch` serves Prometheus metrics (/metrics), or "none".',
        default="127.0.0.1:9877",
    )
    textfile: Path | None = doc(
        "A node_exporter textfile (DIR/hlcon.prom) rewritten after every pass.", default=None
    )
    fault_after: float = duration(
        "A source failing for longer than this is notified (a single slow poll is not).", 300.0
    )
    digest: str | None = doc(
        'Daily digest of every open finding at this local time ("08:00"), to every channel.',
        default=None,
    )
    repost: float = duration(
        "How often open alerts are re-posted to Alertmanager (they expire after 3× this).", 300.0
    )
    retry_max: float = duration(
        "Longest wait between retries of a failing channel (backoff doubles up to it).", 600.0
    )


@dataclass(frozen=True)
class NotifyConfig:
    """One notification channel of `hlcon watch`."""

    name: str = doc("The channel's name (hlcon notify test NAME).")
    url: str = doc(
        "apprise: the Apprise URL as a secret reference (it carries tokens); alertmanager: "
        "its base URL (http://127.0.0.1:9093) or a secret reference to it."
    )
    kind: str = doc(
        '"apprise" (ntfy, Gotify, Matrix, mail …) or "alertmanager".', default="apprise"
    )
    min_severity: str = doc(
        'Least severity sent: "info", "warning", "unknown" or "critical".', default="warning"
    )
    domains: tuple[str, ...] = doc(
        "Only findings of these domains (host, containers, vpn, backup, cert; none = all).",
        default=(),
    )
    quiet_hours: str | None = doc(
        'Local hours ("22:00-07:00") in which only critical notifications are sent; the rest'
        " wait for the end.",
        default=None,
    )
    hold: float = duration(
        "How long a finding must hold (appear, escalate or clear) before it is sent.", 120.0
    )
    timeout: float = duration("Timeout of one delivery.", 10.0)


@dataclass(frozen=True)
class Config:
    source: str = doc(
        "Where this config came from (a path, or <embedded default>).", default="<embedded default>"
    )
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    local: LocalConfig = field(default_factory=LocalConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    actions: ActionsConfig = field(default_factory=ActionsConfig)
    hosts: tuple[HostConfig, ...] = ()
    containers: tuple[ContainerEndpointConfig, ...] = ()
    vpn: tuple[VpnConfig, ...] = ()
    backups: tuple[BackupConfig, ...] = ()
    certs: tuple[CertConfig, ...] = ()
    watch: WatchConfig = field(default_factory=WatchConfig)
    approvals: ApprovalsConfig = field(default_factory=ApprovalsConfig)
    notify: tuple[NotifyConfig, ...] = ()


# ─────────────────────────────────────────────────────────────────────────────── the loader

EMBEDDED = "<embedded default>"
ENV_VAR = "HLCON_CONFIG"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config file: where (file, line), which key, and what."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """Every problem found in a config file, one per line of str()."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


# ── durations: lab.units (parse_duration, format_duration), re-exported here for the loader
# and the callers that have always imported them from lab.config.


_ENDPOINT = re.compile(r"\[([0-9A-Fa-f:.]+)\]:([0-9]{1,5})|([^\s:\[\]/@]+):([0-9]{1,5})")


def parse_endpoint(text: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' → (host, port). ValueError otherwise."""
    m = _ENDPOINT.fullmatch(text)
    if m is None:
        raise ValueError(f"expected host:port (e.g. vpn.example.org:51820), got {_quote(text)}")
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port} is out of range 1–65535")
    return host, int(port)


# ── where the config comes from


@dataclass(frozen=True)
class ConfigLocation:
    """Where the config is read from (path None: the embedded default) and why."""

    path: Path | None
    reason: str

    def __str__(self) -> str:
        return f"{self.path if self.path else EMBEDDED} ({self.reason})"


def xdg_config_path(env: Mapping[str, str] | None = None) -> Path:
    """The XDG config file: $XDG_CONFIG_HOME/hlcon/config.toml (platformdirs)."""
    if env is not None and env.get("XDG_CONFIG_HOME", "").startswith("/"):
        return Path(env["XDG_CONFIG_HOME"]) / "hlcon" / "config.toml"
    import platformdirs

    return platformdirs.user_config_path("hlcon") / "config.toml"


def locate_config(path: Path | None = None, env: Mapping[str, str] = os.environ) -> ConfigLocation:
    """Raises ConfigError for a path that cannot be expanded (~nosuchuser/…)."""
    if path is not None:
        reason = "given with --config"
        return ConfigLocation(_expand_config_path(path, reason), reason)
    if env.get(ENV_VAR):
        reason = f"from ${ENV_VAR}"
        return ConfigLocation(_expand_config_path(env[ENV_VAR], reason), reason)
    xdg = xdg_config_path(env)
    if xdg.exists():  # not only is_file(): a FIFO or directory there is reported, not skipped
        return ConfigLocation(xdg, "the XDG config file")
    return ConfigLocation(
        None,
        f"no --config, no ${ENV_VAR} and no file at {xdg}; `hlcon config init` writes one there",
    )


def _expand_config_path(path: str | Path, reason: str) -> Path:
    try:
        return expand_user(path)
    except ValueError as exc:
        raise ConfigError([Problem(str(path), None, "", f"{exc} ({reason})")]) from None


def default_config_text() -> str:
    """The embedded default: the repository's config.toml in a source checkout, else the copy
    the wheel carries as lab/default-config.toml."""
    repo = Path(__file__).resolve().parent.parent
    checkout = repo / "config.toml"
    if checkout.is_file() and (repo / "pyproject.toml").is_file():
        return checkout.read_text(encoding="utf-8")
    from importlib import resources

    return resources.files("lab").joinpath("default-config.toml").read_text(encoding="utf-8")


def load_config(path: Path | None = None, env: Mapping[str, str] = os.environ) -> Config:
    """--config, then $HLCON_CONFIG, then the XDG file, else the embedded default.

    A file named explicitly (--config, $HLCON_CONFIG) that does not exist is an error.
    Raises ConfigError.
    """
    location = locate_config(path, env)
    if location.path is None:
        config = parse_config(default_config_text(), EMBEDDED)
    else:
        config = parse_config(_read_config_file(location), str(location.path))
    # command: secrets run for at most the configured per-poll timeout, wherever resolved
    set_command_timeout(config.console.timeout)
    return config


def _read_config_file(location: ConfigLocation) -> str:
    assert location.path is not None
    name = str(location.path)
    try:
        data = read_regular_file(location.path, CONFIG_MAX_BYTES)
    except UnreadableFile as exc:
        message = {
            "missing": f"no such file ({location.reason})",
            "directory": "is a directory, not a config file",
            "special": f"{exc.reason}; a config is a file",
            "too-large": f"{exc.reason}; not a config file",
        }.get(exc.kind, exc.reason)
        raise ConfigError([Problem(name, None, "", message)]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [Problem(name, line, "", "not UTF-8 text (TOML files are UTF-8)")]
        ) from None


def state_dir(config: Config) -> Path:
    """Where the audit log, locks and maintenance flags live."""
    if config.console.state_dir is not None:
        return config.console.state_dir
    import platformdirs

    return platformdirs.user_state_path("hlcon")


def audit_log_path(config: Config) -> Path:
    return config.console.audit_log or state_dir(config) / "audit.jsonl"


# ── parsing


def parse_config(text: str, source: str) -> Config:
    """TOML text → Config, or ConfigError listing every problem with file, line and key."""
    locator = _Locator(text)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_syntax_problems(str(exc), text, source, locator)) from None
    except RecursionError:
        raise ConfigError([Problem(source, None, "", "TOML nested too deeply")]) from None
    checker = _Checker(source, locator)
    config = checker.section(Config, raw, "")
    _cross_checks(checker, raw)
    if checker.problems or not isinstance(config, Config):
        problems = sorted(checker.problems, key=lambda p: (p.line is None, p.line or 0))
        raise ConfigError(problems)
    return dataclasses.replace(config, source=source)


_TOML_AT = re.compile(r"\s*\(at (?:line (\d+), column \d+|end of document)\)\s*$")


def _syntax_problems(message: str, text: str, source: str, locator: _Locator) -> list[Problem]:
    m = _TOML_AT.search(message)
    what = message[: m.start()] if m else message
    line: int | None = None
    if m is not None:
        line = (
            int(m.group(1))
            if m.group(1)
            else max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
        )
    if (
        what.startswith(("Cannot overwrite", "Cannot declare", "Cannot mutate"))
        and locator.duplicates
    ):
        return [
            Problem(source, dup_line, key, f"defined twice (first on line {locator.keys[key]})")
            for key, dup_line in locator.duplicates
        ]
    key = locator.context.get(line, "") if line is not None else ""
    return [Problem(source, line, key, f"invalid TOML: {what}")]


# ── finding the line of a key (tomllib gives values, not positions)

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _parent_path(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rfind("[")]
    dot = path.rfind(".")
    return path[:dot] if dot >= 0 else ""


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _skip_ws(line: str, i: int) -> int:
    while i < len(line) and line[i] in " \t\r":
        i += 1
    return i


def _read_key(line: str, i: int) -> tuple[list[str] | None, int]:
    """A (dotted, maybe quoted) key starting at i → its parts and where it ends."""
    parts: list[str] = []
    while True:
        i = _skip_ws(line, i)
        if i >= len(line):
            return None, i
        c = line[i]
        if c == '"':
            j = i + 1
            while j < len(line) and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            if j >= len(line):
                return None, j
            parts.append(line[i + 1 : j])
            i = j + 1
        elif c == "'":
            j = line.find("'", i + 1)
            if j < 0:
                return None, len(line)
            parts.append(line[i + 1 : j])
            i = j + 1
        else:
            m = _BARE_KEY.match(line, i)
            if m is None:
                return None, i
            parts.append(m.group())
            i = m.end()
        i = _skip_ws(line, i)
        if line.startswith(".", i):
            i += 1
            continue
        return parts, i


class _ValueScan:
    """Tracks multi-line strings and open brackets across lines, so that only lines that start a
    statement are read as keys."""

    def __init__(self) -> None:
        self.multiline: str | None = None
        self.depth = 0

    @property
    def busy(self) -> bool:
        return self.multiline is not None or self.depth > 0

    def feed(self, line: str, i: int) -> None:
        n = len(line)
        while i < n:
            if self.multiline is not None:
                delim = self.multiline
                while i < n and not line.startswith(delim, i):
                    i += 2 if (delim == '"""' and line[i] == "\\") else 1
                if i >= n:
                    return
                i += 3
                while i < n and line[i] == delim[0]:  # up to two quotes may end the string
                    i += 1
                self.multiline = None
                continue
            c = line[i]
            if c == "#":
                return
            if line.startswith('"""', i) or line.startswith("'''", i):
                self.multiline = line[i : i + 3]
                i += 3
            elif c == '"':
                i += 1
                while i < n and line[i] != '"':
                    i += 2 if line[i] == "\\" else 1
                i += 1
            elif c == "'":
                j = line.find("'", i + 1)
                i = n if j < 0 else j + 1
            else:
                if c in "[{":
                    self.depth += 1
                elif c in "]}":
                    self.depth = max(0, self.depth - 1)
                i += 1


class _Locator:
    """Key path (`hosts[1].port`) → line, by scanning the text; best effort, never raises."""

    def __init__(self, text: str) -> None:
        self.keys: dict[str, int] = {}
        self.context: dict[int, str] = {}  # line → the key (or table) being defined there
        self.duplicates: list[tuple[str, int]] = []
        self._scan(text)

    def line_of(self, path: str) -> int | None:
        while path:
            if path in self.keys:
                return self.keys[path]
            path = _parent_path(path)
        return None

    def _record(self, path: str, lineno: int) -> None:
        if path in self.keys:
            self.duplicates.append((path, lineno))
        else:
            self.keys[path] = lineno
        self.context[lineno] = path

    def _scan(self, text: str) -> None:
        prefix = ""
        statement = ""
        arrays: dict[str, int] = {}  # dotted name of an array of tables → entries so far
        value = _ValueScan()
        for lineno, line in enumerate(text.split("\n"), start=1):
            if value.busy:
                value.feed(line, 0)
                self.context[lineno] = statement
                continue
            i = _skip_ws(line, 0)
            self.context[lineno] = prefix
            if i >= len(line) or line[i] == "#":
                continue
            if line.startswith("[[", i) or line[i] == "[":
                is_array = line.startswith("[[", i)
                parts, _ = _read_key(line, i + (2 if is_array else 1))
                if parts is None:
                    self.context[lineno] = ""  # a broken header belongs to no table
                    continue
                name = ".".join(parts)
                if is_array:
                    arrays[name] = arrays.get(name, 0) + 1
                    for sub in [k for k in arrays if k.startswith(name + ".")]:
                        del arrays[sub]
                prefix = self._display(parts, arrays)
                if is_array or prefix not in self.keys:
                    self.keys[prefix] = lineno
                else:
                    self.duplicates.append((prefix, lineno))
                self.context[lineno] = prefix
                continue
            parts, j = _read_key(line, i)
            j = _skip_ws(line, j)
            if parts is None or not line.startswith("=", j):
                continue
            for depth in range(1, len(parts)):  # a.b.c = … also defines a and a.b here
                self.keys.setdefault(_join(prefix, ".".join(parts[:depth])), lineno)
            statement = _join(prefix, ".".join(parts))
            self._record(statement, lineno)
            value.feed(line, j + 1)

    @staticmethod
    def _display(parts: list[str], arrays: dict[str, int]) -> str:
        out = ""
        name = ""
        for part in parts:
            name = _join(name, part)
            out = _join(out, part)
            if name in arrays:
                out += f"[{arrays[name] - 1}]"
        return out


# ── validation, driven by the dataclasses above


class _Invalid:
    pass


_INVALID = _Invalid()

_WHAT: dict[Any, str] = {
    bool: "a boolean (true or false)",
    int: "an integer",
    float: "a number",
    str: "a string",
    Path: "a path (a string)",
}


def _quote(text: str, limit: int = 40) -> str:
    shown = text if len(text) <= limit else text[:limit] + "…"
    return json.dumps(shown, ensure_ascii=False)


def _describe(value: object) -> str:
    """What was found, for messages: '"22a" (a string)', '22 (an integer)', 'a table'."""
    if isinstance(value, bool):
        return f"{'true' if value else 'false'} (a boolean)"
    if isinstance(value, int):
        shown = str(value) if abs(value) < 10**30 else "a huge number"
        return f"{shown} (an integer)"
    if isinstance(value, float):
        return f"{value!r} (a float)"
    if isinstance(value, str):
        return f"{_quote(value)} (a string)" if value else "an empty string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return f"{isoformat()} (a date/time)"
    return type(value).__name__


def _kind(value: object) -> str:
    """Like _describe, without the value (for secret fields)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


_hints_cache: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _hints_cache:
        _hints_cache[cls] = typing.get_type_hints(cls, vars(sys.modules[__name__]))
    return _hints_cache[cls]


def _schema_fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {
        f.name: f
        for f in dataclasses.fields(cls)
        if f.init and not (cls is Config and f.name == "source")
    }


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"schema: unsupported union {tp}")
        return args[0]
    return tp


def _is_schema_class(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _did_you_mean(key: str, known: list[str], noun: str) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f'unknown {noun} "{key}"; did you mean "{close[0]}"?'
    return f'unknown {noun} "{key}"; known: {", ".join(known)}'


class _Checker:
    def __init__(self, source: str, locator: _Locator) -> None:
        self.source = source
        self.locator = locator
        self.problems: list[Problem] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.source, self.locator.line_of(key), key, message))

    def section(self, cls: type, raw: object, path: str) -> Any:
        if not isinstance(raw, dict):
            header = f"[{path}]" if path and not path.endswith("]") else "a table"
            self.add(path, f"expected {header}, got {_describe(raw)}")
            return _INVALID
        fields = _schema_fields(cls)
        hints = _hints(cls)
        before = len(self.problems)
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            key_path = _join(path, key)
            f = fields.get(key)
            if f is None:
                noun = "section" if cls is Config else "key"
                self.add(key_path, _did_you_mean(key, list(fields), noun))
                continue
            converted = self.value(hints[key], value, key_path, f)
            if converted is _INVALID:
                continue
            field_check = _FIELD_CHECKS.get((cls, key))
            message = field_check(converted) if field_check and converted is not None else None
            if message is not None:
                self.add(key_path, message)
            else:
                kwargs[key] = converted
        for name, f in fields.items():
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required and name not in raw:
                self.add(_join(path, name), f'missing required key "{name}"')
        if len(self.problems) > before:
            return _INVALID
        obj = cls(**kwargs)
        check = _ITEM_CHECKS.get(cls)
        if check is not None:
            check(self, obj, path)
        return obj

    def value(self, tp: Any, raw: object, path: str, f: dataclasses.Field[Any] | None) -> Any:
        tp = _unwrap_optional(tp)
        if f is not None and f.metadata.get("duration"):
            return self.duration(raw, path)
        if tp is SecretRef:
            return self.secret_ref(raw, path)
        if _is_schema_class(tp):
            return self.section(tp, raw, path)
        origin = typing.get_origin(tp)
        if origin is tuple:
            return self.array(typing.get_args(tp)[0], raw, path)
        if origin is dict:
            if f is not None and f.metadata.get("durations"):  # a table of durations
                return self.table(float, raw, path, durations=True)
            return self.table(typing.get_args(tp)[1], raw, path)
        ok = (
            (tp is bool and isinstance(raw, bool))
            or (tp is int and isinstance(raw, int) and not isinstance(raw, bool))
            or (tp is float and isinstance(raw, int | float) and not isinstance(raw, bool))
            or (tp in (str, Path) and isinstance(raw, str))
        )
        if not ok:
            self.add(path, f"expected {_WHAT[tp]}, got {_describe(raw)}")
            return _INVALID
        if tp is float:
            assert isinstance(raw, int | float)
            number = float(raw) if abs(raw) < 1e300 else math.inf
            if not math.isfinite(number):
                self.add(path, f"expected a finite number, got {_describe(raw)}")
                return _INVALID
            return number
        if tp is Path:
            assert isinstance(raw, str)
            if not raw or "\x00" in raw:
                self.add(path, f"expected a path, got {_describe(raw)}")
                return _INVALID
            try:
                return expand_user(raw)
            except ValueError as exc:
                self.add(path, str(exc))
                return _INVALID
        if isinstance(raw, str) and "\x00" in raw:
            # no name, address or command can hold one: it fails later, far from the config
            self.add(path, f"contains a NUL character, got {_describe(raw)}")
            return _INVALID
        return raw

    def duration(self, raw: object, path: str) -> Any:
        if not isinstance(raw, str):
            self.add(path, f'expected a duration like "30s" (a string), got {_describe(raw)}')
            return _INVALID
        try:
            seconds = parse_duration(raw)
        except ValueError as exc:
            self.add(path, str(exc))
            return _INVALID
        if seconds <= 0:
            self.add(path, f"a duration here must be more than zero, got {_quote(raw)}")
            return _INVALID
        return seconds

    def secret_ref(self, raw: object, path: str) -> Any:
        # Never quote the value back: a plain value here is most likely the secret itself.
        if not isinstance(raw, str):
            self.add(path, f"expected a secret reference (a string), got {_kind(raw)}")
            return _INVALID
        scheme = raw.partition(":")[0]
        if ":" not in raw or scheme not in SCHEMES:
            self.add(
                path,
                "must be a secret reference (keyring:, env:, file:, command:), not the secret",
            )
            return _INVALID
        try:
            return SecretRef.parse(raw)
        except ValueError as exc:
            self.add(path, str(exc))
            return _INVALID

    def array(self, element: Any, raw: object, path: str) -> Any:
        if not isinstance(raw, list):
            name = path.rsplit(".", 1)[-1]
            what = (
                f"an array of tables ([[{name}]])"
                if _is_schema_class(element)
                else "an array of strings"
            )
            hint = f" (write [[{name}]], not [{name}])" if isinstance(raw, dict) else ""
            self.add(path, f"expected {what}, got {_describe(raw)}{hint}")
            return _INVALID
        out = [self.value(element, item, f"{path}[{i}]", None) for i, item in enumerate(raw)]
        if any(item is _INVALID for item in out):
            return _INVALID
        return tuple(out)

    def table(self, element: Any, raw: object, path: str, durations: bool = False) -> Any:
        if not isinstance(raw, dict):
            self.add(path, f"expected a table (KEY = VALUE pairs), got {_describe(raw)}")
            return _INVALID
        if durations:
            out = {key: self.duration(item, _join(path, key)) for key, item in raw.items()}
        else:
            out = {
                key: self.value(element, item, _join(path, key), None) for key, item in raw.items()
            }
        if any(item is _INVALID for item in out.values()):
            return _INVALID
        return out


# ── checks of one value, of one entry, then across sections

_NAME_BAD = re.compile(r"[\s@]|[\x00-\x1f\x7f]")
_CONTAINER_URL = re.compile(r"(unix|tcp|ssh|http|https)://\S+")

FieldCheck = Callable[[Any], str | None]  # the value → a message, or None when it is fine


def _name(value: str) -> str | None:
    if value and not _NAME_BAD.search(value):
        return None
    return (
        "a name must be non-empty, without spaces or @ (it is used in targets like "
        f"service:nginx@NAME), got {_quote(value)}"
    )


_DNS_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
# systemd's unit name characters; not starting with "-" (systemctl would read an option)
_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\@][A-Za-z0-9:_.\\@-]{0,254}")
# Linux interface names: at most 15 bytes, no "/" or spaces (they name /sys and /proc paths)
_INTERFACE_NAME = re.compile(r"[A-Za-z0-9_=+.][A-Za-z0-9_=+.-]{0,14}")
_NETNS_NAME = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,254}")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _address(value: str) -> str | None:
    if _is_ip(value):
        return None
    if value.startswith("[") and value.endswith("]") and _is_ip(value[1:-1]):
        return f"write an IPv6 address without brackets: {_quote(value[1:-1])}"
    host, colon, port = value.rpartition(":")
    if colon and port.isdigit() and host and ":" not in host:
        return f"the port goes in port = {port}; address is only the name or IP"
    labels = value.removesuffix(".").split(".")
    if len(value) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in labels):
        return None
    return (
        "expected a DNS name or IP address (a name is letters, digits, - and _ between dots), "
        f"got {_quote(value)}"
    )


def _unit_names(values: tuple[str, ...]) -> str | None:
    for value in values:
        if not _UNIT_NAME.fullmatch(value):
            return (
                "expected a systemd unit name (letters, digits and :_.@\\-, not starting "
                f"with -; e.g. nginx or nginx.service), got {_quote(value)}"
            )
    return None


_ENV_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _env_names(values: dict[str, Any]) -> str | None:
    for name in values:
        if not _ENV_VAR_NAME.fullmatch(name):
            return (
                "expected environment variable names (letters, digits and _, not starting "
                f"with a digit) as keys, got {_quote(name)}"
            )
    return None


def _labels(values: tuple[str, ...] | dict[str, str]) -> str | None:
    """Peer names: shown on screen and written into wg-quick confs as # comments."""
    for value in values.values() if isinstance(values, dict) else values:
        if not value.strip() or _CONTROL.search(value):
            return f"expected a name on one line, without control characters, got {_quote(value)}"
    return None


def _remote_socket(value: str) -> str | None:
    if value.startswith("/") and not _CONTROL.search(value):
        return None
    return f"expected an absolute socket path (e.g. /run/podman/podman.sock), got {_quote(value)}"


def _interface_name(value: str) -> str | None:
    if _INTERFACE_NAME.fullmatch(value) and value not in (".", ".."):
        return None
    return (
        "expected an interface name (1–15 letters, digits or _=+.-, no / or spaces; "
        f"e.g. wg0), got {_quote(value)}"
    )


def _netns_name(value: str) -> str | None:
    if _NETNS_NAME.fullmatch(value) and value not in (".", ".."):
        return None
    return (
        "expected a network namespace name (letters, digits or _.-, no /; as ip netns "
        f"list shows), got {_quote(value)}"
    )


def _containers_setting(*words: str) -> FieldCheck:
    def check(value: str) -> str | None:
        if value in words or _CONTAINER_URL.fullmatch(value):
            return None
        options = ", ".join(f'"{w}"' for w in words)
        return (
            f"expected {options} or a URL (unix:///run/podman/podman.sock, tcp://host:2375), "
            f"got {_quote(value)}"
        )

    return check


def _container_url(value: str) -> str | None:
    if _CONTAINER_URL.fullmatch(value):
        return None
    return f"expected unix:///path/docker.sock or tcp://host:2375, got {_quote(value)}"


def _in_range(low: float, high: float | None = None, what: str = "") -> FieldCheck:
    def check(value: float) -> str | None:
        if value >= low and (high is None or value <= high):
            return None
        span = f"{what or 'a number'} {low:g}–{high:g}" if high is not None else f"{low:g} or more"
        return f"expected {span}, got {value:g}"

    return check


def _more_than_zero(value: float) -> str | None:
    return None if value > 0 else f"expected more than 0, got {value:g}"


def _subnet(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        return f"expected a network like 10.100.0.0/24: {exc}"
    return None


def _endpoint(value: str) -> str | None:
    try:
        parse_endpoint(value)
    except ValueError as exc:
        return str(exc)
    return None


def _starttls(value: str) -> str | None:
    return None if value in ("smtp", "imap") else f'expected "smtp" or "imap", got {_quote(value)}'


ACTION_FAMILIES = (
    # every action family (actions.registry; tests/unit/test_policy.py keeps the two in step),
    # so a misspelt key in [actions.timeouts] is an error instead of a timeout that never applies
    "backup.check", "backup.now", "backup.restore", "backup.unlock", "cert.renew",
    "container.restart", "container.start", "container.stop", "containers.restart",
    "hostkey.trust", "service.restart", "service.start", "service.stop", "vpn.peer-add",
    "vpn.peer-disable", "vpn.peer-enable", "vpn.peer-remove",
)  # fmt: skip


def _action_families(value: dict[str, float]) -> str | None:
    unknown = [k for k in value if k not in ACTION_FAMILIES]
    if not unknown:
        return None
    return _did_you_mean(unknown[0], list(ACTION_FAMILIES), "action family")


_PERCENT = _in_range(0, 100, "a percentage")
_FIELD_CHECKS: dict[tuple[type, str], FieldCheck] = {
    (LocalConfig, "name"): _name,
    (LocalConfig, "containers"): _containers_setting("auto", "none"),
    (LocalConfig, "services"): _unit_names,
    (HostConfig, "services"): _unit_names,
    (VpnConfig, "interface"): _interface_name,
    (VpnConfig, "netns"): _netns_name,
    (VpnConfig, "always_on"): _labels,
    (VpnConfig, "expected_offline"): _labels,
    (VpnConfig, "peer_names"): _labels,
    (HostConfig, "docker_socket"): _remote_socket,
    (BackupConfig, "env"): _env_names,
    (CertConfig, "env"): _env_names,
    (HostConfig, "name"): _name,
    (HostConfig, "address"): _address,
    (HostConfig, "port"): _in_range(1, 65535, "a port"),
    (HostConfig, "containers"): _containers_setting("none", "ssh"),
    (ContainerEndpointConfig, "name"): _name,
    (ContainerEndpointConfig, "url"): _container_url,
    (VpnConfig, "subnet"): _subnet,
    (VpnConfig, "endpoint"): _endpoint,
    (BackupConfig, "name"): _name,
    (CertConfig, "name"): _name,
    (CertConfig, "endpoint"): _endpoint,
    (CertConfig, "starttls"): _starttls,
    (CertConfig, "critical_days"): _in_range(0),
    (HealthConfig, "disk_warn"): _PERCENT,
    (HealthConfig, "disk_critical"): _PERCENT,
    (HealthConfig, "memory_warn"): _PERCENT,
    (HealthConfig, "memory_critical"): _PERCENT,
    (HealthConfig, "swap_warn"): _PERCENT,
    (HealthConfig, "load_warn"): _more_than_zero,
    (HealthConfig, "fail2ban_bans_warn"): _in_range(1),
    (HealthConfig, "restart_loop"): _in_range(1),
    (ActionsConfig, "rate_limit"): _in_range(1),
    (ActionsConfig, "timeouts"): _action_families,
}


def _check_cert(c: _Checker, obj: Any, path: str) -> None:
    if (obj.endpoint is None) == (obj.file is None):
        both = "both" if obj.endpoint is not None else "neither"
        c.add(path, f"a cert needs exactly one of endpoint or file, got {both}")
    if obj.starttls is not None and obj.endpoint is None:
        c.add(_join(path, "starttls"), "starttls needs an endpoint")
    if obj.warn_days <= obj.critical_days:
        c.add(
            _join(path, "warn_days"),
            f"warn_days ({obj.warn_days}) must be more than critical_days ({obj.critical_days})",
        )


def _check_health(c: _Checker, obj: Any, path: str) -> None:
    for what in ("disk", "memory"):
        warn, critical = getattr(obj, f"{what}_warn"), getattr(obj, f"{what}_critical")
        if warn >= critical:
            c.add(
                _join(path, f"{what}_warn"),
                f"{what}_warn ({warn:g}) must be less than {what}_critical ({critical:g})",
            )


# Checks between fields of one entry: run once the entry is otherwise valid.
_ITEM_CHECKS: dict[type, Callable[[_Checker, Any, str], None]] = {
    CertConfig: _check_cert,
    HealthConfig: _check_health,
}


# ── [watch] and [[notify]] (hlcon watch)

SEVERITY_NAMES = ("info", "warning", "unknown", "critical")
NOTIFY_KINDS = ("apprise", "alertmanager")
_CLOCK_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def parse_clock_time(text: str) -> tuple[int, int] | None:
    """ "07:30" → (7, 30); None when not HH:MM."""
    m = _CLOCK_TIME.fullmatch(text.strip())
    return (int(m[1]), int(m[2])) if m else None


def parse_quiet_hours(text: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """ "22:00-07:00" → ((22, 0), (7, 0)); None when not HH:MM-HH:MM or empty (start = end)."""
    start, dash, end = text.partition("-")
    a, b = parse_clock_time(start), parse_clock_time(end)
    return (a, b) if dash and a is not None and b is not None and a != b else None


def parse_listen(value: str) -> tuple[str, int]:
    """[watch] listen → (host, port); port 0 picks a free one. Raises ValueError."""
    if value.endswith(":0"):
        host, _ = parse_endpoint(value[:-2] + ":1")
        return host, 0
    return parse_endpoint(value)


def _listen(value: str) -> str | None:
    if value == "none":
        return None
    try:
        parse_listen(value)
    except ValueError:
        return f'expected host:port (127.0.0.1:9877) or "none", got {_quote(value)}'
    return None


def _one_of(*words: str) -> FieldCheck:
    def check(value: str) -> str | None:
        names = ", ".join(f'"{w}"' for w in words)
        return None if value in words else f"expected one of {names}, got {_quote(value)}"

    return check


def notify_domains() -> tuple[str, ...]:
    """The store keys [[notify]] domains may name: every registered domain the watch reads."""
    return tuple(d.key for d in DOMAINS.values() if d.polled_by_watch)


def _notify_domains(values: tuple[str, ...]) -> str | None:
    known = notify_domains()
    bad = [v for v in values if v not in known]
    names = ", ".join(known)
    return f"unknown domain {_quote(bad[0])} (domains: {names})" if bad else None


def _digest_time(value: str) -> str | None:
    return (
        None if parse_clock_time(value) else f'expected a local time "HH:MM", got {_quote(value)}'
    )


def _quiet_hours(value: str) -> str | None:
    if parse_quiet_hours(value):
        return None
    return f'expected local hours "HH:MM-HH:MM" (e.g. "22:00-07:00"), got {_quote(value)}'


def _check_notify(c: _Checker, obj: Any, path: str) -> None:
    url = obj.url
    scheme = url.partition(":")[0]
    if obj.kind == "apprise":
        # Never quote the value back: an Apprise URL carries its token.
        if ":" not in url or scheme not in SCHEMES:
            c.add(
                _join(path, "url"),
                "an Apprise URL carries tokens: give a secret reference (keyring:, env:, file:, "
                "command:) to it, not the URL itself",
            )
            return
    elif scheme in SCHEMES:
        pass
    elif not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        c.add(
            _join(path, "url"),
            "expected Alertmanager's base URL (http://127.0.0.1:9093) or a secret reference",
        )
        return
    if scheme in SCHEMES:
        try:
            SecretRef.parse(url)
        except ValueError as exc:
            c.add(_join(path, "url"), str(exc))


_FIELD_CHECKS.update(
    {
        (WatchConfig, "listen"): _listen,
        (WatchConfig, "digest"): _digest_time,
        (NotifyConfig, "name"): _name,
        (NotifyConfig, "kind"): _one_of(*NOTIFY_KINDS),
        (NotifyConfig, "min_severity"): _one_of(*SEVERITY_NAMES),
        (NotifyConfig, "domains"): _notify_domains,
        (NotifyConfig, "quiet_hours"): _quiet_hours,
    }
)
_ITEM_CHECKS[NotifyConfig] = _check_notify


def _entries(raw: dict[str, Any], section: str) -> Iterator[tuple[int, dict[str, Any]]]:
    items = raw.get(section)
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, dict):
                yield i, item


def _cross_checks(c: _Checker, raw: dict[str, Any]) -> None:
    """Checks between entries, on the raw tables, so one bad entry doesn't hide the others."""
    local = raw.get("local")
    local_name = local.get("name") if isinstance(local, dict) else None
    local_names = {"local", local_name if isinstance(local_name, str) else "local"}
    for section in ("hosts", "containers", "backups", "certs", "notify"):
        seen: dict[str, int] = {}
        for i, item in _entries(raw, section):
            name = item.get("name")
            if not isinstance(name, str):
                continue
            if name in seen:
                first = c.locator.line_of(f"{section}[{seen[name]}].name")
                also = f"{section}[{seen[name]}]" + (f", line {first}" if first else "")
                c.add(f"{section}[{i}].name", f'duplicate name "{name}" (also {also})')
            else:
                seen[name] = i
            if section == "hosts" and name in local_names:
                c.add(
                    f"hosts[{i}].name",
                    f'"{name}" is this machine\'s name ([local] name); give the host another name',
                )
    host_names = [
        item["name"] for _, item in _entries(raw, "hosts") if isinstance(item.get("name"), str)
    ]
    valid_hosts = list(dict.fromkeys(sorted(local_names) + host_names))
    vpn_seen: dict[tuple[str, str], int] = {}
    for i, item in _entries(raw, "vpn"):
        host, interface = item.get("host", "local"), item.get("interface")
        if isinstance(host, str) and isinstance(interface, str):
            pair = ("local" if host in local_names else host, interface)
            if pair in vpn_seen:
                c.add(
                    f"vpn[{i}].interface", f"{interface} on {host} is already vpn[{vpn_seen[pair]}]"
                )
            else:
                vpn_seen[pair] = i
    for section in ("vpn", "backups", "certs"):
        for i, item in _entries(raw, section):
            host = item.get("host", "local")
            if isinstance(host, str) and host not in valid_hosts:
                close = difflib.get_close_matches(host, valid_hosts, n=1, cutoff=0.6)
                hint = f'; did you mean "{close[0]}"?' if close else ""
                names = ", ".join(f'"{h}"' for h in valid_hosts)
                c.add(
                    f"{section}[{i}].host",
                    f'no host named "{host}": expected one of {names} (a [[hosts]] name){hint}',
                )


# ── rendering (hlcon config check): a config back to TOML, defaults filled in


def _toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_value(value: Any, is_duration: bool) -> str:
    if is_duration:
        return _toml_string(format_duration(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path | SecretRef):
        return _toml_string(str(value))
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v, False) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v, False)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot render {type(value).__name__}")


SecretNote = Callable[[SecretRef], str]


def render_config(
    config: Config, *, secret_note: SecretNote | None = None, explain: bool = False
) -> str:
    """The config as TOML, every default filled in and durations formatted. `secret_note(ref)`
    adds a comment after each secret reference (whether it resolves); `explain` adds each key's
    doc. parse_config reads the output back to an equal Config."""
    lines = [f"# hlcon config, from {config.source}"]

    def entry(obj: Any, header: str) -> None:
        lines.append("")
        lines.append(header)
        hints = _hints(type(obj))
        for name, f in _schema_fields(type(obj)).items():
            value = getattr(obj, name)
            doc_text = f.metadata.get("doc", "")
            comment = f"  # {doc_text}" if explain and doc_text else ""
            if value is None:
                lines.append(f"# {name} = (not set){comment}")
                continue
            text = f"{_toml_key(name)} = {_toml_value(value, bool(f.metadata.get('duration')))}"
            refs: list[SecretRef] = []
            if _unwrap_optional(hints[name]) is SecretRef:
                refs = [value]
            elif isinstance(value, dict):
                refs = [v for v in value.values() if isinstance(v, SecretRef)]
            if secret_note is not None and refs:
                notes = "; ".join(
                    f"{ref}: {secret_note(ref)}" if len(refs) > 1 else secret_note(ref)
                    for ref in refs
                )
                comment = f"  # {notes}" + comment
            lines.append(text + comment)

    for name in _schema_fields(Config):
        value = getattr(config, name)
        if isinstance(value, tuple):
            if not value:
                lines.append("")
                lines.append(f"# [[{name}]]: none")
            for item in value:
                entry(item, f"[[{name}]]")
        else:
            entry(value, f"[{name}]")
    return "\n".join(lines) + "\n"
