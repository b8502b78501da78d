"""`hlcon secret check REF | set keyring:SERVICE/USER`: secret references, never their values."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from lab.secrets import SecretError, SecretRef, resolve, store_in_keyring

EXIT_OK = 0
EXIT_UNRESOLVED = 1
EXIT_BAD_REFERENCE = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("secret", help="check or store secret references")
    sub = parser.add_subparsers(dest="secret_command", metavar="ACTION", required=True)

    check = sub.add_parser("check", help="say whether a reference resolves (never the value)")
    check.add_argument("ref", help="keyring:SERVICE/USER, env:NAME, file:/PATH or command:ARGV")
    check.set_defaults(func=run_check)

    store = sub.add_parser("set", help="store a value in the keyring, read from stdin")
    store.add_argument("ref", help="keyring:SERVICE/USER")
    store.set_defaults(func=run_set)


def _parse(text: str) -> SecretRef | None:
    try:
        return SecretRef.parse(text)
    except ValueError as exc:
        print(f"hlcon secret: {exc}", file=sys.stderr)
        return None


def run_check(args: argparse.Namespace) -> int:
    ref = _parse(args.ref)
    if ref is None:
        return EXIT_BAD_REFERENCE
    try:
        resolve(ref)
    except SecretError as exc:
        print(f"{exc}", file=sys.stderr)
        return EXIT_UNRESOLVED
    print(f"{ref}: resolves (value hidden)")
    return EXIT_OK


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
    try:
        backend = store_in_keyring(ref, _read_value())
    except SecretError as exc:
        print(f"{exc}", file=sys.stderr)
        return EXIT_UNRESOLVED
    print(f"stored {ref} in the keyring ({backend})")
    return EXIT_OK
