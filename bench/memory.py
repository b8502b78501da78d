"""Resident memory of hlcon watching 20 hosts and 500 containers, beside Glances.

    .venv/bin/python bench/memory.py [--hosts 20] [--containers 500] [--settle 40]

Starts the demo lab (tests/testbed/demo.py) with 20 sshd hosts and 500 busybox containers on
top of the demo set (podman helpers; its own storage), runs `hlcon --config DEMO/config.toml` and
`glances` (own venv under /tmp) each in a 100x30 tmux pane, lets hlcon poll for `--settle`
seconds (refresh 5 s: several rounds of every reader), switches it to pane 3 (Containers) and
pane 2 (Hosts) so both tables are built, then reads VmRSS of both processes from
/proc/PID/status. Needs root.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.idle_cpu import PaneProcess, ensure_glances, hlcon_command, wait_for


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--containers", type=int, default=500)
    parser.add_argument("--settle", type=float, default=40)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/memory.py needs root (the demo lab: sshd, network namespaces)")
    from tests.testbed.demo import demo_lab

    glances = ensure_glances()
    t0 = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="hlcon-bench-mem-") as tmp,
        demo_lab(
            Path(tmp) / "demo", hosts=args.hosts, containers=args.containers, log=False
        ) as lab,
    ):
        print(f"demo lab up in {time.monotonic() - t0:.0f} s", flush=True)
        panes: dict[str, PaneProcess] = {}
        try:
            panes["hlcon"] = PaneProcess("mem", hlcon_command(lab.config, Path(tmp) / "st"))
            if glances is not None:
                panes["glances"] = PaneProcess("memg", shlex.quote(str(glances)))
            hl = panes["hlcon"]
            wait_for(hl, "1 Overview")
            time.sleep(args.settle / 2)
            hl.tmux("send-keys", "3")
            wait_for(hl, "3 Containers")
            time.sleep(args.settle / 4)
            hl.tmux("send-keys", "2")
            wait_for(hl, "2 Hosts")
            time.sleep(args.settle / 4)
            screen = hl.screen()
            rss = {name: pane.rss_mb() for name, pane in panes.items()}
        finally:
            for pane in panes.values():
                pane.stop()
    load = os.getloadavg()[0]
    print(
        f"resident memory after {args.settle:.0f} s of polling, {args.hosts} hosts + local, "
        f"{len(lab.containers)} containers, tmux 100x30; load {load:.2f}"
    )
    for name, mb in rss.items():
        print(f"  {name:10s} {mb:7.1f} MB RSS")
    if "glances" not in rss:
        print("  glances    not available (pip install failed)")
    print(f"goal: hlcon under 120 MB — {'met' if rss['hlcon'] < 120 else 'NOT met'}")
    peer = f" glances_mb={rss['glances']:.1f}" if "glances" in rss else ""
    print(f"RESULT memory hlcon_mb={rss['hlcon']:.1f}{peer}")
    if "waiting" in screen.lower():
        print("note: the hosts pane still showed 'waiting':\n" + screen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
