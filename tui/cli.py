"""The console script. `hlcon` starts the TUI; its subcommands are the headless twins.

Each subcommand lives in tui/commands/<name>.py and exposes `register(subparsers)`, which adds
its parser and sets `func(args) -> int` (the exit code).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import faulthandler
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab import __version__

COMMANDS = (
    "config",
    "status",
    "audit",
    "do",
    "maintenance",
    "secret",
    "watch",
    "notify",
    "request",
    "approvals",
    "approve",
    "deny",
    "mcp",
)


class _Parser(argparse.ArgumentParser):
    """argparse, saying which commands exist (and the nearest) for an unknown one; plain
    `hlcon WORD` has no commands registered, so argparse alone says "(choose from )"."""

    known_commands: Sequence[str] = ()

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if not isinstance(action, argparse._SubParsersAction) or value in action.choices:
            return super()._check_value(action, value)
        names = list(action.choices or ()) or list(self.known_commands)
        noun = action.metavar.lower() if isinstance(action.metavar, str) else "command"
        close = difflib.get_close_matches(str(value), names, n=1, cutoff=0.6)
        near = f'; did you mean "{close[0]}"?' if close else ""
        raise argparse.ArgumentError(
            None, f'unknown {noun} "{value}"{near} ({noun}s: {", ".join(names)})'
        )


def build_parser(commands: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hlcon",
        description="The operations console for homelabs. Without a command: the TUI.",
    )
    parser.add_argument("--version", action="version", version=f"hlcon {__version__}")
    parser.add_argument(
        "--config", type=Path, help="config file (else $HLCON_CONFIG, XDG, default)"
    )
    parser.add_argument("--read-only", action="store_true", help="refuse every action")
    parser.known_commands = COMMANDS
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands:
        importlib.import_module(f"tui.commands.{name}").register(sub)
    _add_global_options(sub)
    return parser


def _add_global_options(sub: argparse._SubParsersAction[Any]) -> None:
    """The global options work after the subcommand too (`hlcon status --config F`), as people
    type them; SUPPRESS keeps a value given before the subcommand."""
    for name, subparser in sub.choices.items():
        nested = [a for a in subparser._actions if isinstance(a, argparse._SubParsersAction)]
        for inner in nested:
            _add_global_options(inner)
        known = {o for a in subparser._actions for o in a.option_strings}
        if "--config" not in known:
            subparser.add_argument(
                "--config", type=Path, default=argparse.SUPPRESS, help="config file"
            )
        if "--read-only" not in known and name != "config":
            subparser.add_argument(
                "--read-only",
                action="store_true",
                default=argparse.SUPPRESS,
                help="refuse every action",
            )


def main(argv: Sequence[str] | None = None) -> int:
    # `kill -USR1 PID` prints every thread's stack — to $HLCON_STACK_DUMP if set (the screen
    # would paint over it), else stderr: how a console that will not quit says where it is stuck.
    with contextlib.suppress(Exception):  # no usable stderr (captured, closed): no dump
        dump = os.environ.get("HLCON_STACK_DUMP")
        out = open(dump, "a") if dump else sys.stderr  # noqa: SIM115 - open for the process
        faulthandler.register(signal.SIGUSR1, file=out, all_threads=True)
    from tui import interrupt

    interrupt.install()  # SIGTERM and SIGHUP end hlcon like Ctrl-C, never like kill -9
    words = sys.argv[1:] if argv is None else list(argv)
    # Plain `hlcon` starts the TUI: importing every command module first would only delay its
    # first frame (~0.1 s), so the subcommands are registered when one (or help) is asked for.
    wanted = any(w in COMMANDS or w in ("-h", "--help") for w in words)
    parser = build_parser(COMMANDS if wanted else ())
    args = parser.parse_args(words)
    if getattr(args, "func", None) is None:
        from tui.commands.console import run_console

        return run_console(args)
    try:
        code: int = args.func(args)
    except BrokenPipeError:  # `hlcon status --json | head`: the reader left, not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP: a clean exit, 128 + the signal
        with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
            print(f"hlcon {args.command}: {interrupt.describe()}", file=sys.stderr)
        # Interrupted mid-read, a library's objects may be torn down only by the interpreter's
        # exit (pyroute2's per-thread event loop, whose socket is already closed): its
        # "Exception ignored in …" report would be a traceback after the clean line above.
        sys.unraisablehook = _quiet_unraisable
        return interrupt.exit_code()
    return code


def _quiet_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    return None


if __name__ == "__main__":
    sys.exit(main())
