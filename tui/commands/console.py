"""`hlcon` without a command: load the config, assemble the lab, run the TUI."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from lab.config import Config


def load(args: argparse.Namespace) -> Config:
    """The config `hlcon` runs with (raises lab.config.ConfigError), --read-only applied."""
    from lab.config import load_config

    config = load_config(getattr(args, "config", None))
    if getattr(args, "read_only", False):
        config = dataclasses.replace(
            config, console=dataclasses.replace(config.console, read_only=True)
        )
    return config


def run_console(args: argparse.Namespace) -> int:
    from lab.config import ConfigError

    try:
        config = load(args)
    except ConfigError as exc:
        print(f"hlcon: the config has problems:\n{exc}", file=sys.stderr)
        return 2

    from actions.runner import Runner
    from lab.poller import Poller
    from lab.store import Store
    from lab.wiring import Lab
    from tui.app import HlconApp
    from tui.context import ConsoleContext

    lab = Lab(config)
    store = Store()
    from watch.status import NOTIFY  # noqa: F401  (registers the notify domain: its channels)

    poller = Poller(store, lab.readers(), clock=lab.clock)
    runner = Runner(lab, read_only=True if args.read_only else None)
    ctx = ConsoleContext(config, lab, store, poller, runner, lab.clock)
    app = HlconApp(ctx)
    app.run()
    return app.return_code or 0  # 128 + the signal after SIGTERM / SIGHUP (tui/app.py)
