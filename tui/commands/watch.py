"""`hlcon watch [--once]`: the long-running service (watch.service), or one pass for cron.

It logs one line per notification decision to stderr (the journal, under systemd), every
resolved secret cut out. SIGTERM (systemctl stop) ends it cleanly with exit 0, its notification
state saved; `--once` exits 1 when a channel could not deliver.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from lab.config import ConfigError, load_config


def register(sub: Any) -> None:
    p = sub.add_parser(
        "watch", help="the long-running service: notifications (Apprise, Alertmanager), metrics"
    )
    p.add_argument(
        "--once", action="store_true", help="poll once, notify what is due, exit (for cron)"
    )
    p.add_argument("--verbose", "-v", action="store_true", help="log every pass too")
    p.set_defaults(func=run)


def setup_logging(verbose: bool) -> None:
    from watch.channels import RedactSecrets

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("hlcon.watch", "watch"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def stop_on_signals(task: asyncio.Task[Any], stopped_by: list[str]) -> Callable[[], None]:
    """SIGTERM (systemctl stop), SIGHUP and Ctrl-C cancel `task`, so the loop ends through its
    finally: the channels stop, the notification state is saved, the metrics server closes.
    Returns what puts the previous handlers back.

    Plain signal handlers, not loop.add_signal_handler: that routes signals through a wakeup fd
    a forked child shares (pyroute2's network-namespace helper, ended with SIGTERM), and the
    child's SIGTERM stopped the watch. A handler run in such a child does nothing."""
    loop = asyncio.get_running_loop()
    pid = os.getpid()

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != pid:
            return  # a forked child got it, not the watch
        stopped_by.append(signal.Signals(signum).name)
        loop.call_soon_threadsafe(task.cancel)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging(args.verbose)
    from watch.service import Watch

    log = logging.getLogger("hlcon.watch")

    stopped_by: list[str] = []

    async def main() -> bool:
        task = asyncio.current_task()
        assert task is not None
        stop_on_signals(task, stopped_by)
        watch = Watch(config)
        if args.once:
            return await watch.once()
        channels = ", ".join(f"{c.name} ({c.kind})" for c in config.notify) or "none"
        log.info("hlcon watch: config %s; channels: %s", config.source, channels)
        await watch.run()
        return True

    try:
        ok = asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        log.info("hlcon watch stopped (%s)", ", ".join(stopped_by) or "interrupted")
        return 0
    return 0 if ok else 1
