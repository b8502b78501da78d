"""The lab assembled from a Config: executors per host, readers per domain, shared clients.

One `Lab` per process. Readers (lab.<domain>.readers) and actions (actions.<family>) reach hosts
only through it, so SSH connections and Docker clients are made once and reused.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lab.config import Config
from lab.domains import DOMAINS
from lab.execute import Executor, LocalExecutor
from lab.model import utcnow

if TYPE_CHECKING:
    from lab.poller import Reader
    from lab.ssh import HostKeyListener

Clock = Callable[[], datetime]


class UnknownHost(LookupError):
    pass


class Lab:
    def __init__(self, config: Config, *, clock: Clock = utcnow) -> None:
        self.config = config
        self.clock = clock
        self._local = LocalExecutor(config.local.name)
        self._executors: dict[str, Executor] = {}
        # Per-domain shared state (docker clients, ssh pool …), keyed by the domain module.
        self.shared: dict[str, Any] = {}
        # Told of every changed SSH host key (lab.ssh); the audit record is the action layer's
        # (actions.hostkey_audit), so the lab never imports actions.
        self.host_key_listeners: list[HostKeyListener] = []

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
        for closer in list(self.shared.values()):
            close = getattr(closer, "aclose", None)
            if close is not None:
                await close()
