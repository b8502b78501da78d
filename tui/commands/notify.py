"""`hlcon notify test [CHANNEL]`: send a test message to one [[notify]] channel or all."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from lab.config import ConfigError, load_config


def register(sub: Any) -> None:
    p = sub.add_parser("notify", help="notification channels: send a test message")
    cmds = p.add_subparsers(dest="notify_command", metavar="COMMAND", required=True)
    t = cmds.add_parser("test", help="send a test message to a channel (default: every one)")
    t.add_argument("channel", nargs="?", help="a [[notify]] name")
    t.set_defaults(func=run_test)


def run_test(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    from tui.commands.watch import setup_logging

    setup_logging(False)
    names = [c.name for c in config.notify]
    if not names:
        print(f"no [[notify]] channel in {config.source} (see config.toml's examples)")
        return 2
    if args.channel is not None and args.channel not in names:
        print(f'no channel named "{args.channel}" (channels: {", ".join(names)})', file=sys.stderr)
        return 2
    from lab.model import Severity, utcnow
    from watch.channels import DeliveryError, make_channel
    from watch.notify import Notice

    async def main() -> int:
        failed = 0
        for c in config.notify:
            if args.channel is not None and c.name != args.channel:
                continue
            ch = make_channel(c, retry_max=config.watch.retry_max, repost=config.watch.repost)
            notice = Notice(
                c.name,
                "test",
                Severity.INFO,
                f"[hlcon] test message to {c.name}",
                f"A test from hlcon notify test at {utcnow():%Y-%m-%d %H:%M:%S} UTC: the "
                f"channel {c.name} ({c.kind}) works.",
            )
            try:
                await ch.send(notice)
            except DeliveryError as exc:
                failed += 1
                print(f"{c.name} ({c.kind}): FAILED: {exc}")
            else:
                print(f"{c.name} ({c.kind}): sent")
        return 1 if failed else 0

    return asyncio.run(main())
