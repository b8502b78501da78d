"""Every screen of the console, built from frozen fixtures: the snapshot tests compare them and
dev/screenshots renders them to screenshots/NAME.svg.

    python -m tests.tui.catalog [--out screenshots] [--size 100x30] [NAME …]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.app import App
from textual.pilot import Pilot

from actions.audit import AuditLog, Who
from actions.base import BlastRadius, Confirmation, Plan, Step, Target
from actions.runner import Runner
from lab.config import Config, ConsoleConfig
from lab.wiring import Lab
from tests.tui.backups_demo import backups_app
from tests.tui.certs_demo import certs_app
from tests.tui.containers_demo import containers_app, push_logs
from tests.tui.fixtures import demo_context, frozen_clock
from tests.tui.vpn_demo import vpn_app
from tui.app import HlconApp
from tui.panes import Pane
from tui.panes.placeholder import PlaceholderPane
from tui.screens.confirm import ConfirmModal

SHOTS_DIR = Path(tempfile.gettempdir()) / "hlcon-shots"  # fixed: the audit pane shows the path
DEAD_PID = 2**22 + 4242  # above any pid_max: the process that wrote the intent is gone


def restart_plan() -> Plan:
    target = Target("container", "jellyfin", "skylab")
    return Plan(
        family="container.restart",
        target=target,
        summary="Restart container jellyfin on skylab",
        steps=(
            Step(
                "restart container jellyfin (Docker API POST /containers/3f2a9c1b/restart)",
                "skylab",
            ),
            Step("wait until it is running and healthy again", "skylab"),
        ),
        blast_radius=BlastRadius.SINGLE,
        confirmation=Confirmation("Restart jellyfin?"),
        reversible=False,
        cost="≈5 s downtime",
        data=None,
    )


def peer_add_plan() -> Plan:
    diff = (
        "--- /etc/wireguard/wg0.conf\n+++ /etc/wireguard/wg0.conf\n@@ -12,3 +12,7 @@\n"
        " [Peer]\n # laptop\n AllowedIPs = 10.100.0.2/32\n+\n+[Peer]\n+# phone\n"
        "+PublicKey = m6d1lPZ0R0b5jqHc2wFQ3XnZc0nq6bqXK6qvYqfYlnc=\n+AllowedIPs = 10.100.0.7/32\n"
    )
    return Plan(
        family="vpn.peer-add",
        target=Target("vpn", "wg0", "fufuwuqi"),
        summary="Add peer phone (10.100.0.7) to wg0 on fufuwuqi",
        steps=(
            Step(
                "add the peer to the running interface",
                "fufuwuqi",
                argv=("wg", "set", "wg0", "peer", "m6d1lPZ0…", "allowed-ips", "10.100.0.7/32"),
            ),
            Step("persist it", "fufuwuqi", changes=("/etc/wireguard/wg0.conf",)),
        ),
        blast_radius=BlastRadius.DISRUPTIVE,
        confirmation=Confirmation("Type the peer's name to add it", expect="phone"),
        reversible=True,
        diff=diff,
        notes=("The client config (with its private key) is shown once, after the add.",),
        data=None,
    )


def _build_audit_log(path: Path) -> None:
    who = Who("admin", 1000, (("SSH_CLIENT", "192.168.1.20 50312 22"),))
    log = AuditLog(path, clock=frozen_clock)
    target = "container:jellyfin@skylab"
    plan = restart_plan().to_record()
    p = log.append("planned", who=who, action="container.restart", target=target, plan=plan)
    log.append("intent", who=who, action="container.restart", target=target, ref=p.seq)
    log.append(
        "outcome",
        who=who,
        action="container.restart",
        target=target,
        ref=p.seq,
        result={"ok": True, "message": "running again, healthy"},
        duration=4.2,
    )
    p = log.append("planned", who=who, action="repo.restore", target="repo:offsite")
    log.append(
        "cancelled",
        who=who,
        action="repo.restore",
        target="repo:offsite",
        ref=p.seq,
        reason="cancelled by user",
    )
    log.append(
        "refused",
        who=who,
        action="vpn.peer-add",
        target="vpn:wg0@fufuwuqi",
        reason="host fufuwuqi is in maintenance (hlcon maintenance off fufuwuqi)",
    )
    p = log.append("planned", who=who, action="service.restart", target="service:nginx@nas")
    log.append(
        "intent",
        who=who,
        action="service.restart",
        target="service:nginx@nas",
        ref=p.seq,
        result={"pid": DEAD_PID, "locks": ["service:nginx@nas"]},
        sync=True,
    )


def demo_audit_log() -> AuditLog:
    """The audit log the audit pane shows: at a fixed path, rebuilt atomically (xdist-safe)."""
    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    path = SHOTS_DIR / "audit.jsonl"
    with (SHOTS_DIR / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with tempfile.TemporaryDirectory(dir=SHOTS_DIR) as tmp:
            staged = Path(tmp) / "audit.jsonl"
            _build_audit_log(staged)
            os.replace(staged.with_name("audit.jsonl.head"), path.with_name("audit.jsonl.head"))
            os.replace(staged, path)
    return AuditLog(path, clock=frozen_clock)


def audit_app() -> HlconApp:
    log = demo_audit_log()
    config = Config(console=ConsoleConfig(state_dir=SHOTS_DIR / "state", audit_log=log.path))
    lab = Lab(config, clock=frozen_clock)
    runner = Runner(lab, audit=log)
    return HlconApp(demo_context(config=config, lab=lab, runner=runner, audit=log), initial_pane=7)


class PlaceholderDemoApp(HlconApp):
    """Pane 4 as an unconfigured domain pane shows it, whatever panes this build has."""

    def build_panes(self) -> Iterable[Pane]:
        for pane in super().build_panes():
            if pane.NUMBER == 4:
                yield PlaceholderPane.not_configured(
                    4, "vpn", "VPN", "[[vpn]]", "~/.config/hlcon/config.toml"
                )
            else:
                yield pane


async def _push(pilot: Pilot[Any], screen: Any) -> None:
    pilot.app.push_screen(screen)
    await pilot.pause()


@dataclass(frozen=True)
class Shot:
    name: str
    make_app: Callable[[], App[Any]]
    press: tuple[str, ...] = ()
    run_before: Callable[[Pilot[Any]], Awaitable[None]] | None = None
    notes: str = field(default="", compare=False)


SHOTS: tuple[Shot, ...] = (
    Shot("overview", lambda: HlconApp(demo_context())),
    Shot("hosts", lambda: HlconApp(demo_context(), initial_pane=2)),
    Shot(
        "hosts-filter", lambda: HlconApp(demo_context(), initial_pane=2), press=("slash", "n", "a")
    ),
    Shot("host-detail", lambda: HlconApp(demo_context(), initial_pane=2), press=("enter",)),
    Shot("audit", audit_app),
    Shot("placeholder", lambda: PlaceholderDemoApp(demo_context(), initial_pane=4)),
    Shot("help", lambda: HlconApp(demo_context(), initial_pane=2), press=("question_mark",)),
    Shot(
        "confirm",
        lambda: HlconApp(demo_context()),
        run_before=lambda pilot: _push(pilot, ConfirmModal(restart_plan())),
    ),
    Shot(
        "confirm-typed",
        lambda: HlconApp(demo_context()),
        run_before=lambda pilot: _push(pilot, ConfirmModal(peer_add_plan())),
        press=("p", "h"),
    ),
    Shot("palette", lambda: HlconApp(demo_context()), press=("ctrl+p", "h", "o")),
    Shot("certs", certs_app),
    Shot("vpn", vpn_app),
    Shot("cert-detail", certs_app, press=("enter",)),
    Shot("backups", backups_app),
    Shot("restore-wizard", backups_app, press=("down", "R")),  # starts at the snapshots
    Shot("containers", containers_app),
    Shot("container-detail", containers_app, press=("down", "enter")),
    Shot("logs", containers_app, run_before=push_logs, press=("slash", "e", "r", "r", "enter")),
)


def shot(name: str) -> Shot:
    return next(s for s in SHOTS if s.name == name)


async def render(s: Shot, size: tuple[int, int]) -> str:
    """The shot as SVG, the way snap_compare takes it: run_before, keys, then a settle."""
    app = s.make_app()
    async with app.run_test(size=size) as pilot:
        if s.run_before is not None:
            await s.run_before(pilot)
        await pilot.press(*s.press)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.3)
        await pilot.wait_for_scheduled_animations()
        return app.export_screenshot(title=f"hlcon — {s.name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render every screen to SVG.")
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--size", default="100x30", help="COLSxROWS (default 100x30)")
    parser.add_argument("names", nargs="*", help="only these shots")
    args = parser.parse_args(argv)
    cols, _, rows = args.size.partition("x")
    size = (int(cols), int(rows))
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in SHOTS if not args.names or s.name in args.names]
    for s in chosen:
        svg = asyncio.run(render(s, size))
        path = args.out / f"{s.name}.svg"
        path.write_text(svg)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
