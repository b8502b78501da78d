"""A changed SSH host key is audited here, above the lab layer: lab.ssh only reports it (through
`Lab.host_key_listeners`) and refuses to talk to the host; this module records one "refused"
record per change. Every hlcon process that opens a Lab attaches it (the runner, `hlcon status`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from actions.audit import AuditLog, Who
from lab.config import audit_log_path

if TYPE_CHECKING:
    from lab.ssh import HostKeyChanged
    from lab.wiring import Lab


class KeyChangeAudit:
    """The listener: appends to the audit log at `path`, fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, err: HostKeyChanged) -> None:
        AuditLog(self.path).append(
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
        lab.host_key_listeners.append(KeyChangeAudit(audit_log_path(lab.config)))
