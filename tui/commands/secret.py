"""`hlcon secret check REF | set keyring:SERVICE/USER`: secret references, never their values."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
from typing import Any

from lab.config import ConfigError, load_config
from lab.secrets import (
    PLAINTEXT_KEYRING_VAR,
    SecretError,
    SecretRef,
    describe_backend,
    is_plaintext_backend,
    keyring_holder,
    keyring_store_refusal,
    resolve,
    store_in_keyring,
)

EXIT_OK = 0
EXIT_UNRESOLVED = 1
EXIT_BAD_REFERENCE = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("secret", help="check or store secret references")
    sub = parser.add_subparsers(dest="secret_command", metavar="ACTION", required=True)

    check = sub.add_parser("check", help="say whether a reference resolves (never the value)")
    check.add_argument("ref", help="keyring:SERVICE/USER, env:NAME, file:/PATH or command:ARGV")
    check.set_defaults(func=run_check)

    store = sub.add_parser(
        "set",
        help="store a value in the keyring, read from stdin",
        description=(
            "Store a value in the keyring (a Secret Service, KWallet …), read from stdin. "
            "keyrings.alt's plaintext file, keyring's fallback when there is no Secret Service, "
            f"is used only with {PLAINTEXT_KEYRING_VAR}=1 in the environment."
        ),
    )
    store.add_argument("ref", help="keyring:SERVICE/USER")
    store.set_defaults(func=run_set)


def _parse(text: str) -> SecretRef | None:
    try:
        return SecretRef.parse(text)
    except ValueError as exc:
        print(f"hlcon secret: {exc}", file=sys.stderr)
        return None


def _use_the_config_timeout(args: argparse.Namespace) -> None:
    """A command: reference runs for console.timeout, as in the console (load_config sets it);
    a config that does not load leaves the default: checking a secret does not need one."""
    with contextlib.suppress(ConfigError):
        load_config(getattr(args, "config", None), os.environ)


def run_check(args: argparse.Namespace) -> int:
    ref = _parse(args.ref)
    if ref is None:
        return EXIT_BAD_REFERENCE
    if ref.scheme == "command":
        _use_the_config_timeout(args)
    try:
        resolve(ref)
    except SecretError as exc:
        print(f"{exc}", file=sys.stderr)
        return EXIT_UNRESOLVED
    holder = keyring_holder(ref) if ref.scheme == "keyring" else None
    where = f"; held by {describe_backend(holder)}" if holder is not None else ""
    print(f"{ref}: resolves (value hidden){where}")
    if holder is not None and is_plaintext_backend(holder):
        print(_PLAINTEXT_WARNING, file=sys.stderr)
    return EXIT_OK


_PLAINTEXT_WARNING = (
    "warning: a plaintext keyring is readable by anyone who can read that file; a Secret "
    "Service, or a file:/command: reference, keeps it safer"
)


def _read_value() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("secret (not echoed): ")
        again = getpass.getpass("again: ")
        if first != again:
            raise SecretError("<input>", "the two entries differ; nothing stored")
        return first
    # Piped: the first line, without its newline (so `printf %s pw |` and `echo pw |` agree).
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def run_set(args: argparse.Namespace) -> int:
    ref = _parse(args.ref)
    if ref is None:
        return EXIT_BAD_REFERENCE
    if ref.scheme != "keyring":
        print(
            f"hlcon secret set: only keyring: references can be stored; {ref.scheme}: ones are "
            "read from where they point",
            file=sys.stderr,
        )
        return EXIT_BAD_REFERENCE
    refusal = keyring_store_refusal(ref)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return EXIT_UNRESOLVED
    try:
        backend = store_in_keyring(ref, _read_value())
    except SecretError as exc:
        print(f"{exc}", file=sys.stderr)
        return EXIT_UNRESOLVED
    print(f"stored {ref} in {backend}")
    if backend.startswith("a PLAINTEXT"):
        print(_PLAINTEXT_WARNING, file=sys.stderr)
    return EXIT_OK
