"""`hlcon watch [--once]`: the long-running service (watch.service), or one pass for cron.

It logs one line per notification decision to stderr (the journal, under systemd), every
resolved secret cut out. SIGTERM (systemctl stop) ends it cleanly with exit 0, its notification
state saved; `--once` exits 1 when a channel could not deliver.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
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
        # SIGTERM (systemctl stop) and SIGHUP end the loop through its finally: the channels
        # stop, the notification state is saved, the metrics server closes.
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None

        def stop(sig: signal.Signals) -> None:
            stopped_by.append(sig.name)
            task.cancel()

        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                loop.add_signal_handler(sig, stop, sig)
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
