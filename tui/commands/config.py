"""`hlcon config check | init | path`: the configuration, headless.

check: the resolved config (every default filled in, durations formatted) with each secret
reference and whether it resolves — never its value. Problems go to stderr, one per line as
FILE:LINE: KEY: message, exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from lab.config import (
    ConfigError,
    default_config_text,
    load_config,
    locate_config,
    render_config,
    xdg_config_path,
)
from lab.secrets import SecretError, SecretRef, describe_backend, keyring_holder, resolve

EXIT_OK = 0
EXIT_EXISTS = 1
EXIT_INVALID = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("config", help="check, create or locate the config file")
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)

    check = sub.add_parser("check", help="validate and print the resolved config")
    check.add_argument(
        "--config", dest="config_file", type=Path, help="the file to check (else as hlcon finds it)"
    )
    check.add_argument("--explain", action="store_true", help="add each key's description")
    check.add_argument(
        "--no-resolve",
        action="store_true",
        help="don't try secret references (command: ones run a program)",
    )
    check.set_defaults(func=run_check)

    init = sub.add_parser("init", help="write a commented starting config (never overwrites)")
    init.add_argument("--path", type=Path, help=f"where (default: {xdg_config_path()})")
    init.set_defaults(func=run_init)

    path = sub.add_parser("path", help="where the config would be read from, and why")
    path.set_defaults(func=run_path)


def _config_arg(args: argparse.Namespace) -> Path | None:
    own: Path | None = getattr(args, "config_file", None)
    root: Path | None = getattr(args, "config", None)
    return own or root


class _SecretNotes:
    """Says, for each reference, whether it resolves; counts the ones that don't."""

    def __init__(self) -> None:
        self.unresolved: list[str] = []

    def __call__(self, ref: SecretRef) -> str:
        try:
            resolve(ref)
        except SecretError as exc:
            self.unresolved.append(str(ref))
            return f"does NOT resolve: {exc.reason}"
        holder = keyring_holder(ref) if ref.scheme == "keyring" else None
        if holder is not None:
            return f"resolves (value hidden); held by {describe_backend(holder)}"
        return "resolves (value hidden)"


def run_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(_config_arg(args), os.environ)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''}; config not loaded", file=sys.stderr)
        return EXIT_INVALID
    notes = None if args.no_resolve else _SecretNotes()
    sys.stdout.write(render_config(config, secret_note=notes, explain=args.explain))
    if notes is not None and notes.unresolved:
        # Still a valid config (exit 0): the secrets may exist only where hlcon runs for real.
        print(
            f"note: {len(notes.unresolved)} secret reference(s) do not resolve here: "
            + ", ".join(dict.fromkeys(notes.unresolved)),
            file=sys.stderr,
        )
    return EXIT_OK


def run_init(args: argparse.Namespace) -> int:
    target: Path = (args.path or xdg_config_path(os.environ)).expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # "x": create, never overwrite — even if the file appears between a check and the write.
        with target.open("x", encoding="utf-8") as out:
            out.write(default_config_text())
    except FileExistsError:
        print(
            f"{target} already exists; not overwritten (check it with: hlcon config check "
            f"--config {target})",
            file=sys.stderr,
        )
        return EXIT_EXISTS
    except OSError as exc:
        print(f"cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_EXISTS
    print(f"wrote {target}; edit it, then: hlcon config check")
    return EXIT_OK


def run_path(args: argparse.Namespace) -> int:
    try:
        location = locate_config(_config_arg(args), os.environ)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    print(location)
    if location.path is not None and not location.path.is_file():
        print(f"warning: {location.path} does not exist", file=sys.stderr)
    return EXIT_OK
