"""A changed SSH host key is audited here, above the lab layer: lab.ssh only reports it (through
`Lab.host_key_listeners`) and refuses to talk to the host; this module records one "refused"
record per change. Every hlcon process that opens a Lab attaches it (the runner, `hlcon status`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actions.audit import Who, audit_log_for

if TYPE_CHECKING:
    from lab.config import Config
    from lab.ssh import HostKeyChanged
    from lab.wiring import Lab


class KeyChangeAudit:
    """The listener: appends to the config's audit log (its journal anchor included), fsynced."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def __call__(self, err: HostKeyChanged) -> None:
        audit_log_for(self.config).append(
            "refused",
            who=Who.current(),
            action="ssh.connect",
            target=f"host:{err.host}",
            reason=str(err),
            result={
                "fingerprint": err.key.fingerprint,
                "algorithm": err.key.algorithm,
                "known_hosts": [str(f) for f in err.files],
            },
            sync=True,
        )


def audit_key_changes(lab: Lab) -> None:
    """Attach the audit listener to `lab` once (idempotent)."""
    if not any(isinstance(listener, KeyChangeAudit) for listener in lab.host_key_listeners):
        lab.host_key_listeners.append(KeyChangeAudit(lab.config))
