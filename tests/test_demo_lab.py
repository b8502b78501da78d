"""The demo lab (tests/testbed/demo.py) as a newcomer runs it: `up` in its own process,
`hlcon status --json` against the config it wrote, then `down` — and nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.testbed import is_root, require, require_tools
from tests.testbed.podman import podman_available
from tests.testbed.sshd import sshd_available

pytestmark = pytest.mark.go_tools  # the demo lab runs podman, restic, wireguard-go, pebble, lego

ROOT = Path(__file__).resolve().parents[1]
HLCON = Path(sys.executable).parent / "hlcon"
DOMAINS = {"host", "containers", "vpn", "backup", "cert"}


def _cmdlines() -> list[str]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                out.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue
    return out


@pytest.mark.testbed
def test_demo_lab_up_status_down(tmp_path: Path) -> None:
    require(is_root(), "root (a test user, sshd on 127.0.0.x, network namespaces)")
    require(podman_available(), "podman and busybox-static")
    require(sshd_available(), "openssh-server")
    require_tools("wireguard-go", "wg", "restic", "pebble", "lego", "ip")
    directory = tmp_path / "demo"
    log = (tmp_path / "demo.log").open("w")
    up = subprocess.Popen(
        [sys.executable, "-m", "tests.testbed.demo", "up", "--dir", str(directory),
         "--hosts", "2", "--containers", "2"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    manifest_file = directory / "demo.json"
    try:
        deadline = time.monotonic() + 180
        while not manifest_file.exists():
            assert up.poll() is None, (tmp_path / "demo.log").read_text()
            assert time.monotonic() < deadline, "demo lab not up within 180 s"
            time.sleep(0.2)
        manifest = json.loads(manifest_file.read_text())
        config = directory / "config.toml"
        assert f"hlcon --config {config}" in (tmp_path / "demo.log").read_text()

        status = subprocess.run(
            [str(HLCON), "--config", str(config), "status", "--json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        doc = json.loads(status.stdout)
        entries = doc["entries"]
        faults = {f"{e['domain']}:{e['target']}": e["fault"] for e in entries if e["fault"]}
        assert faults == {}
        missing = {f"{e['domain']}:{e['target']}" for e in entries if e["reading"] is None}
        assert missing == set()
        assert {e["domain"] for e in entries} == DOMAINS
        hosts = {e["target"] for e in entries if e["domain"] == "host"}
        assert hosts == {"local", "demo-h0", "demo-h1"}
        containers = next(e for e in entries if e["domain"] == "containers")["reading"]
        assert len(containers["containers"]) == 5 + 2  # the demo set + --containers 2
        vpn = next(e for e in entries if e["domain"] == "vpn")["reading"]
        laptop = next(p for p in vpn["peers"] if p["name"] == "laptop")
        assert laptop["latest_handshake"] is not None  # a real handshake happened
        backup = next(e for e in entries if e["domain"] == "backup")["reading"]
        assert len(backup["snapshots"]) == 1
        # The findings the demo is built to show are there (a 5-day cert, the crash loop).
        rules = {f["rule"] for f in doc["findings"]}
        assert len(rules) >= 3, doc["findings"]
    finally:
        if up.poll() is None:
            down = subprocess.run(
                [sys.executable, "-m", "tests.testbed.demo", "down", "--dir", str(directory)],
                cwd=ROOT, capture_output=True, text=True, timeout=240,
            )  # fmt: skip
            assert down.returncode == 0, down.stderr + (tmp_path / "demo.log").read_text()
        up.wait(60)
        log.close()
    assert up.returncode == 0, (tmp_path / "demo.log").read_text()
    assert not directory.exists()
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [ns for ns in manifest["namespaces"] if ns in netns]
    leftovers = [c for c in _cmdlines() if any(t in c for t in manifest["tokens"])]
    assert leftovers == []
