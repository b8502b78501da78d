"""Trust an unknown SSH host key: show the fingerprint, typed confirm, append to hlcon's own
known_hosts (STATE_DIR/known_hosts), audited by the runner.

Target host:NAME. Only for a host whose key is UNKNOWN: a host whose key CHANGED is refused —
that could be a man-in-the-middle, and the old line must be removed by a human who checked.
Execute fetches the key again and refuses if it differs from the one the user confirmed.
Rollback restores the file byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from actions.base import (
    Action,
    ActionFailed,
    BlastRadius,
    Confirmation,
    Outcome,
    Plan,
    Progress,
    Step,
)
from actions.registry import register
from lab.config import HostConfig
from lab.ssh import (
    fetch_host_key,
    keys_on_file,
    known_hosts_files,
    own_known_hosts,
    ssh_host,
)


@dataclass(frozen=True)
class TrustSpec:
    """The key the user confirmed (execute writes nothing if the host now presents another),
    its known_hosts line and the file it is appended to."""

    fingerprint: str
    line: str
    path: str


@register(kind="host")
class HostKeyTrust(Action[TrustSpec]):
    family = "hostkey.trust"
    verb = "trust"

    def _host(self) -> HostConfig:
        for host in self.lab.config.hosts:
            if host.name == self.target.name:
                return host
        raise ActionFailed(
            f"no [[hosts]] entry named {self.target.name!r} in {self.lab.config.source}"
        )

    @property
    def host(self) -> str:
        return self.target.name

    def allowed(self) -> str | None:
        if not any(h.name == self.target.name for h in self.lab.config.hosts):
            return f"no SSH host named {self.target.name!r} ([[hosts]] in {self.lab.config.source})"
        return None

    async def plan(self) -> Plan[TrustSpec]:
        host = self._host()
        key = await fetch_host_key(self.lab.config, host)
        files = known_hosts_files(self.lab.config, host)
        on_file = keys_on_file(files, host.address, host.port)
        if any(k.export_public_key("openssh").decode().strip() == key.openssh for k in on_file):
            raise ActionFailed(f"{host.name}'s key {key.fingerprint} is already trusted")
        if on_file:
            raise ActionFailed(
                f"{host.name} ({key.pattern}) presents {key.fingerprint}, but a DIFFERENT key is "
                f"on file in {', '.join(str(f) for f in files if f.exists())}: refusing to trust "
                "it here. If the host was reinstalled, remove the old line yourself."
            )
        path = own_known_hosts(self.lab.config)
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"Trust {host.name}'s host key {key.fingerprint} ({key.algorithm})",
            steps=(
                Step(
                    f"append '{key.pattern} {key.algorithm} …' to {path}",
                    "local",
                    changes=(str(path),),
                ),
            ),
            blast_radius=BlastRadius.DISRUPTIVE,
            confirmation=Confirmation(
                f"Host {host.name} at {key.pattern} presents {key.algorithm} key\n"
                f"  {key.fingerprint}\n"
                "Compare it with the host's own (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub). "
                f"Type {host.name} to trust it.",
                expect=host.name,
            ),
            reversible=True,
            data=TrustSpec(key.fingerprint, key.known_hosts_line(), str(path)),
        )

    async def execute(self, plan: Plan[TrustSpec], progress: Progress) -> Outcome:
        host = self._host()
        key = await fetch_host_key(self.lab.config, host)
        if key.fingerprint != plan.data.fingerprint:
            raise ActionFailed(
                f"{host.name} now presents {key.fingerprint}, not the {plan.data.fingerprint} "
                "you confirmed: nothing written"
            )
        path = Path(plan.data.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        before = path.read_bytes() if path.exists() else None
        text = (before or b"").decode()
        if text and not text.endswith("\n"):
            text += "\n"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text + plan.data.line)
        tmp.replace(path)
        self._written = (before,)
        ssh_host(self.lab, host.name).reset_backoff()
        return Outcome(True, f"{key.fingerprint} added to {path}")

    async def verify(self, plan: Plan[TrustSpec], outcome: Outcome) -> Outcome:
        host = self._host()
        files = known_hosts_files(self.lab.config, host)
        fps = {k.get_fingerprint("sha256") for k in keys_on_file(files, host.address, host.port)}
        if plan.data.fingerprint not in fps:
            raise ActionFailed(f"{plan.data.fingerprint} not found in {plan.data.path}")
        return Outcome(True, f"{host.name}'s key {plan.data.fingerprint} is trusted")

    async def rollback(self, plan: Plan[TrustSpec]) -> Outcome | None:
        written: tuple[bytes | None] | None = getattr(self, "_written", None)
        if written is None:
            return Outcome(True, "nothing was written")
        path = Path(plan.data.path)
        before = written[0]
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(before)
        return Outcome(True, f"{path} restored")
