"""hlcon's configuration: TOML → typed, validated, frozen objects.

Found at --config, then $HLCON_CONFIG, then the XDG config dir, else the embedded default (the
repository's config.toml: this machine only). Every error names the file, the line (where one can
be found), the key and what was expected; unknown keys are errors. Durations are strings like
"5s", "3m", "26h", "1h30m", "2d". Secrets are references (lab.secrets.SecretRef), never values.

The dataclasses below ARE the schema: the loader walks their fields, so a field's type, default
and `doc` metadata are the whole definition of a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.secrets import SecretRef


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
    timeout: float = duration("Per-poll timeout; a slower reader becomes a Fault.", 10.0)
    read_only: bool = doc("Refuse every action (also: hlcon --read-only).", default=False)
    theme: str = doc("A Textual theme name (textual-dark, nord, gruvbox …).", default="textual-dark")
    state_dir: Path | None = doc(
        "Where the audit log, locks and maintenance flags live (default: XDG state dir).",
        default=None,
    )
    audit_log: Path | None = doc("The audit log file (default: STATE_DIR/audit.jsonl).", default=None)


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


@dataclass(frozen=True)
class HostConfig:
    name: str = doc("The host's name in hlcon (targets: service:nginx@NAME).")
    address: str = doc("DNS name or IP to SSH to.")
    port: int = doc("SSH port.", default=22)
    user: str = doc("SSH user.", default="root")
    identity: Path | None = doc("Private key file (default: agent and ~/.ssh keys).", default=None)
    passphrase: SecretRef | None = doc("The identity's passphrase, as a secret reference.", default=None)
    known_hosts: Path | None = doc("Extra known_hosts file to trust for this host.", default=None)
    services: tuple[str, ...] = doc("systemd units shown, and the only ones restartable.", default=())
    containers: str = doc('"none", "ssh" (its Docker/Podman socket over SSH) or a URL.', default="none")
    docker_socket: str | None = doc(
        "Remote socket path for containers = \"ssh\" (default: probe podman, then docker).",
        default=None,
    )
    nixos: bool = doc("Declarative host: print Nix snippets instead of editing files.", default=False)
    connect_timeout: float = duration("SSH connect timeout.", 10.0)


@dataclass(frozen=True)
class ContainerEndpointConfig:
    name: str = doc("The endpoint's name (targets: container:NAME@ENDPOINT).")
    url: str = doc("unix:///path/docker.sock or tcp://host:2375.")


@dataclass(frozen=True)
class VpnConfig:
    interface: str = doc("WireGuard interface, e.g. wg0.")
    host: str = doc('The host it lives on ("local" or a [[hosts]] name).', default="local")
    subnet: str | None = doc("Peer address pool, e.g. 10.100.0.0/24 (needed for peer add).", default=None)
    endpoint: str | None = doc("Public host:port clients dial (needed for peer add).", default=None)
    peers_file: Path | None = doc("The wg-quick conf where new peers are persisted.", default=None)
    dns: str | None = doc("DNS server written into client configs.", default=None)
    stale_after: float = duration("A handshake older than this makes a peer stale.", 180.0)
    always_on: tuple[str, ...] = doc("Peer names whose staleness is a finding.", default=())
    peer_names: dict[str, str] = doc("Public key → name, for peers without a # name comment.", default_factory=dict)
    nixos: bool = doc("Print a Nix snippet instead of editing peers_file.", default=False)


@dataclass(frozen=True)
class BackupConfig:
    name: str = doc("The repository's name in hlcon (targets: repo:NAME).")
    repository: str = doc("Anything restic accepts: a path, sftp:, rest:, s3: …")
    password: SecretRef = doc("The repository password, as a secret reference.")
    host: str = doc('Where restic runs ("local" or a [[hosts]] name).', default="local")
    max_age: float = duration("Newest snapshot older than this is a finding.", 26 * 3600.0)
    check_max_age: float = duration("Last `restic check` older than this is a finding.", 8 * 86400.0)
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
    host: str = doc('Where the file, renew and reload commands live ("local" or a host).', default="local")
    renew: str | None = doc("Renew command (lego/certbot/systemctl start acme-…).", default=None)
    reload: str | None = doc("Reload command after renew, e.g. systemctl reload nginx.", default=None)
    warn_days: int = doc("Days left that make a warning.", default=21)
    critical_days: int = doc("Days left that are critical.", default=7)
    renew_timeout: float = duration("Timeout of the renew command.", 300.0)


@dataclass(frozen=True)
class Config:
    source: str = doc("Where this config came from (a path, or <embedded default>).", default="<embedded default>")
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    local: LocalConfig = field(default_factory=LocalConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    actions: ActionsConfig = field(default_factory=ActionsConfig)
    hosts: tuple[HostConfig, ...] = ()
    containers: tuple[ContainerEndpointConfig, ...] = ()
    vpn: tuple[VpnConfig, ...] = ()
    backups: tuple[BackupConfig, ...] = ()
    certs: tuple[CertConfig, ...] = ()
