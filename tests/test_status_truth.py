"""`hlcon status` says what it read: a one-line summary for every entry (a real restic repository,
a real wireguard-go interface), and UNKNOWN while a source has no reading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lab.model import Fault, Severity
from lab.store import Store
from tests.testbed.restic import ResticLab
from tests.testbed.wireguard import WgTestbed
from tests.tui.fixtures import NOW, host_state
from tui.commands.status import overall

HLCON = Path(sys.executable).parent / "hlcon"


@pytest.mark.testbed
def test_plain_status_summarises_backups_and_vpn(
    restic_lab: ResticLab, wg_testbed: WgTestbed, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[console]
state_dir = "{tmp_path / "state"}"

[local]
containers = "none"
wireguard = false

[[backups]]
name = "main"
repository = "{restic_lab.repo}"
password = "file:{restic_lab.password_file}"

[[vpn]]
host = "local"
interface = "{wg_testbed.iface}"
netns = "{wg_testbed.ns_server}"
"""
    )
    done = subprocess.run(
        [str(HLCON), "--config", str(config), "status"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    backup = lines["backup:main"]
    vpn = lines[f"vpn:{wg_testbed.iface}@local"]
    for line in (backup, vpn):
        assert "RepoState" not in line and "WgInterface" not in line, out
        assert "FAULT" not in line, out
    assert f"{len(restic_lab.snapshots)} snapshots" in backup, out
    assert "newest" in backup and "old" in backup, out
    assert "peers" in vpn and "online" in vpn and "up" in vpn, out


def test_a_source_with_no_reading_is_unknown_not_ok() -> None:
    store = Store()
    store.publish(("host", "local"), host_state("local"))
    assert overall(store, []) is Severity.OK
    store.expect(("cert", "web"))  # configured, never read
    assert overall(store, []) is Severity.UNKNOWN
    store.publish_fault(
        ("cert", "web"), Fault("tls failed", "cert:web", NOW, "connection refused", NOW)
    )
    # read and failed: the fault's own finding (lab.health.fault_finding) decides
    assert overall(store, []) is Severity.OK
