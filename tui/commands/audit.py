"""`hlcon audit tail|verify|pending|ack`: read and check the audit log."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from actions.audit import AuditError, AuditLog, AuditRecord, Who, audit_log_for, describe_who
from actions.runner import Runner
from lab.wiring import Lab
from tui.commands.do import config_or_exit

EXIT_ERROR = 2  # the log could not be read at all (1: it was read and is bad)


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="the audit log: tail, verify, pending, ack")
    cmds = p.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    tail = cmds.add_parser("tail", help="the newest records")
    tail.add_argument("-n", type=int, default=20, metavar="N", help="how many (default 20)")
    tail.add_argument("--json", action="store_true", help="the stored JSON lines")
    tail.set_defaults(func=run_tail)
    verify = cmds.add_parser(
        "verify", help="walk the hash chain, the MACs and the head; optionally the journal"
    )
    verify.add_argument(
        "--against-journal",
        action="store_true",
        help="also compare with the heads hlcon sent to the systemd journal",
    )
    verify.add_argument(
        "--journal-dir",
        type=Path,
        metavar="DIR",
        help="read journal files from DIR (journalctl -D) instead of the system journal",
    )
    verify.add_argument(
        "--journal-since",
        metavar="TIME",
        help="only anchors from TIME on (journalctl --since), for a log started anew",
    )
    verify.set_defaults(func=run_verify)
    cmds.add_parser(
        "pending", help="intents with no outcome: a process died mid-action"
    ).set_defaults(func=run_pending)
    cmds.add_parser(
        "repair", help="remove a last line cut short by a failed write, and record that"
    ).set_defaults(func=run_repair)
    ack = cmds.add_parser("ack", help="close a pending intent as abandoned")
    ack.add_argument("seq", type=int, help="the intent's seq (from `hlcon audit pending`)")
    ack.add_argument("--note", default="", help="what you found")
    ack.set_defaults(func=run_ack)


def format_record(rec: AuditRecord) -> str:
    who = describe_who(rec.who)
    what = " ".join(x for x in (rec.action, rec.target) if x)
    detail = ""
    if rec.result is not None:
        if "ok" in rec.result and "message" in rec.result:
            detail = ("ok: " if rec.result["ok"] else "FAILED: ") + str(rec.result["message"])
        elif "status" in rec.result:
            detail = str(rec.result["status"])
        elif "on" in rec.result:
            detail = "on" if rec.result["on"] else "off"
    elif rec.plan is not None:
        detail = str(rec.plan.get("summary", ""))
    if rec.reason:
        detail = f"{detail}; {rec.reason}" if detail else rec.reason
    ref = f" ref={rec.ref}" if rec.ref is not None else ""
    return f"{rec.seq:>6}  {rec.time}  {rec.phase:<11} {who}  {what}{ref}  {detail}".rstrip()


def _log(args: argparse.Namespace) -> AuditLog | int:
    config = config_or_exit(args, "audit")
    if isinstance(config, int):
        return config
    return audit_log_for(config)


def _unreadable(command: str, path: Path, exc: OSError | AuditError) -> int:
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    print(f"hlcon audit {command}: cannot read the audit log {path}: {why}", file=sys.stderr)
    return EXIT_ERROR


def run_tail(args: argparse.Namespace) -> int:
    log = _log(args)
    if isinstance(log, int):
        return log
    try:
        records = log.tail(args.n)
    except (OSError, AuditError) as exc:
        return _unreadable("tail", log.path, exc)
    for rec in records:
        print(json.dumps(rec.to_json(), ensure_ascii=False) if args.json else format_record(rec))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    log = _log(args)
    if isinstance(log, int):
        return log
    anchors = None
    if args.against_journal:
        try:
            anchors = log.journal_anchors(args.journal_dir, args.journal_since)
        except AuditError as exc:
            print(f"hlcon audit verify: {exc}", file=sys.stderr)
            return EXIT_ERROR
    result = log.verify(anchors)
    if not result.readable:
        print(f"hlcon audit verify: {result.reason}", file=sys.stderr)
        return EXIT_ERROR
    if result.ok:
        print(f"{log.path}: {result.reason}")
        return 0
    if result.first_bad_line:
        print(
            f"{log.path}: line {result.first_bad_line} is bad: {result.reason} "
            f"({result.records} records before it verified)",
            file=sys.stderr,
        )
    else:
        print(f"{log.path}: the log is bad: {result.reason}", file=sys.stderr)
    return 1


def _runner(args: argparse.Namespace) -> Runner | int:
    config = config_or_exit(args, "audit")
    if isinstance(config, int):
        return config
    return Runner(Lab(config))


def run_pending(args: argparse.Namespace) -> int:
    try:
        runner = _runner(args)
    except (OSError, AuditError) as exc:
        return _unreadable("pending", getattr(exc, "filename", None) or Path("?"), exc)
    if isinstance(runner, int):
        return runner
    try:
        pending = runner.pending()
    except (OSError, AuditError) as exc:
        return _unreadable("pending", runner.audit.path, exc)
    if not pending:
        print("no pending actions")
        return 0
    print(f"{len(pending)} action(s) started and never finished (the process died):")
    for rec in pending:
        print(format_record(rec))
    print("check each target, then `hlcon audit ack SEQ --note '…'`")
    return 1


def run_ack(args: argparse.Namespace) -> int:
    runner = _runner(args)
    if isinstance(runner, int):
        return runner
    try:
        rec = runner.acknowledge(args.seq, args.note)
    except (ValueError, AuditError) as exc:
        print(f"hlcon audit ack: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        return _unreadable("ack", runner.audit.path, exc)
    print(f"recorded seq {rec.seq}: intent {args.seq} abandoned")
    return 0


def run_repair(args: argparse.Namespace) -> int:
    log = _log(args)
    if isinstance(log, int):
        return log
    try:
        rec = log.repair(Who.current())
    except AuditError as exc:
        print(f"hlcon audit repair: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if rec is None:
        result = log.verify()
        if result.ok or not result.readable:
            print(f"{log.path}: nothing to repair (it ends in a whole line)")
            return 0
        where = f"line {result.first_bad_line}" if result.first_bad_line else "the log"
        print(
            f"hlcon audit repair: {log.path}: {where} is bad ({result.reason}), and that is "
            "not a cut write: repair removes only a last line cut short",
            file=sys.stderr,
        )
        return 1
    cut = (rec.result or {}).get("cut_bytes")
    print(f"{log.path}: cut {cut} bytes of a line cut short; recorded as seq {rec.seq}")
    return 0
