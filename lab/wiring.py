"""The lab assembled from a Config: executors per host, readers per domain, shared clients.

One `Lab` per process. Readers (lab.<domain>.readers) and actions (actions.<family>) reach hosts
only through it, so SSH connections and Docker clients are made once and reused.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from lab.config import Config
from lab.domains import DOMAINS
from lab.execute import Executor, LocalExecutor
from lab.model import utcnow

if TYPE_CHECKING:
    from lab.containers.endpoint import ContainerEndpoints
    from lab.poller import Reader
    from lab.ssh import HostKeyListener, SshPool

Clock = Callable[[], datetime]


class UnknownHost(LookupError):
    pass


class Lab:
    def __init__(self, config: Config, *, clock: Clock = utcnow) -> None:
        self.config = config
        self.clock = clock
        self._local = LocalExecutor(config.local.name)
        self._executors: dict[str, Executor] = {}
        self._ssh: SshPool | None = None
        self._container_endpoints: ContainerEndpoints | None = None
        # Told of every changed SSH host key (lab.ssh); the audit record is the action layer's
        # (actions.hostkey_audit), so the lab never imports actions.
        self.host_key_listeners: list[HostKeyListener] = []

    @property
    def ssh(self) -> SshPool:
        """Every SSH connection of this lab, made on first use (asyncssh is imported only then:
        a lab without [[hosts]] never pays for it)."""
        if self._ssh is None:
            from lab.ssh import SshPool

            self._ssh = SshPool(self)
        return self._ssh

    @property
    def container_endpoints(self) -> ContainerEndpoints:
        """Every Docker/Podman endpoint of this lab by name, made on first use."""
        if self._container_endpoints is None:
            from lab.containers.endpoint import build_endpoints

            self._container_endpoints = build_endpoints(self)
        return self._container_endpoints

    @property
    def local_name(self) -> str:
        return self.config.local.name

    def is_local(self, host: str) -> bool:
        return host in ("local", self.config.local.name)

    def executor(self, host: str) -> Executor:
        """Where commands for `host` run: this machine, or over SSH (lab.ssh)."""
        if self.is_local(host):
            return self._local
        if host not in self._executors:
            if not any(h.name == host for h in self.config.hosts):
                raise UnknownHost(f"no host named {host!r} in the config ([[hosts]] name = …)")
            from lab import ssh

            self._executors[host] = ssh.executor_for(self, host)
        return self._executors[host]

    def readers(self, *, by_watch: bool = False) -> list[Reader]:
        """Every reader the config asks for, one per (domain, target), from each registered
        domain (lab.domains). `by_watch`: only those hlcon watch polls itself."""
        out: list[Reader] = []
        for domain in DOMAINS.values():
            if by_watch and not domain.polled_by_watch:
                continue
            # backups and certs read only what their sections list; not importing them when
            # empty keeps cryptography & co. off the start-up path of the default config.
            if domain.configured(self.config):
                out.extend(domain.make_readers(self))
        return out

    async def close(self) -> None:
        # The endpoints first: those of hosts with containers = "ssh" ride on SSH forwards.
        if self._container_endpoints is not None:
            await self._container_endpoints.aclose()
        if self._ssh is not None:
            await self._ssh.aclose()
