"""`hlcon approvals`, `hlcon approve ID`, `hlcon deny ID --note …`: a person's side of the
approval queue (watch.approvals).

Approving and denying work at a terminal only, as `hlcon do` asks: a script, a cron job or an
assistant holding a pipe gets a refusal. Approving shows the plan, asks the same confirmation
the blast radius asks of `hlcon do` (Enter, the typed name, the typed count), then plans again:
if the lab moved, the request goes back to waiting with the difference; else it runs. Exit codes:
0 approved and verified (or denied), 1 the run failed, 2 refused (no TTY, not waiting, unknown
id), 3 back to waiting (the plan changed), 130 cancelled at the prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from typing import Any

from actions.audit import describe_who
from lab.wiring import Lab
from tui.commands.do import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, EXIT_REFUSED, config_or_exit
from tui.commands.do import _ask_async as ask_async
from watch.approvals import Queue, QueueError, Request

EXIT_PENDING = 3
CHANNEL = "hlcon approve (tty)"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "approvals",
        help="list the requests automation made, waiting for a person (and past ones)",
        description="The approval queue: who asked what, why, and where it stands.",
    )
    p.add_argument("--all", action="store_true", help="also the decided ones")
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.set_defaults(func=run_list)


def register_approve(sub: Any) -> None:
    p = sub.add_parser(
        "approve",
        help="approve a request (at a terminal only): plan again, confirm, run",
        description="Approve a waiting request at a terminal. " + __doc__.split("\n\n")[1],
    )
    p.add_argument("id", help="the request id (r-XXXXXXXX, see `hlcon approvals`)")
    p.set_defaults(func=run_approve)


def register_deny(sub: Any) -> None:
    p = sub.add_parser(
        "deny",
        help="deny a request (at a terminal only)",
        description="Deny a waiting request at a terminal; the note is audited.",
    )
    p.add_argument("id", help="the request id (r-XXXXXXXX)")
    p.add_argument("--note", required=True, help="why (audited, shown to the requester)")
    p.set_defaults(func=run_deny)


def render_plan_record(plan: Mapping[str, Any]) -> list[str]:
    lines = [str(plan.get("summary", ""))]
    lines.append(f"  target:       {plan.get('target')}  ({plan.get('family')})")
    lines.append(
        f"  blast radius: {plan.get('blast_radius')}    "
        f"reversible: {'yes' if plan.get('reversible') else 'no'}"
    )
    lines.append("  steps:")
    for i, step in enumerate(plan.get("steps") or (), 1):
        lines.append(f"    {i}. {step.get('description')}  (on {step.get('host')})")
    if plan.get("diff"):
        lines.append("  diff:")
        lines.extend(f"    {ln}" for ln in str(plan["diff"]).rstrip("\n").splitlines())
    lines.extend(f"  ! {note}" for note in plan.get("notes") or ())
    return lines


def render_request(request: Request) -> str:
    who = describe_who(request.who)
    lines = [
        f"{request.id}  {request.state:<8} {request.verb} {request.target}",
        f"  asked by:     {who} via {request.client!r} (the client's own name: a claim)",
        f"  reason:       {request.reason}",
        f"  created:      {request.created}   expires: {request.expires}",
        f"  plan hash:    {request.plan_hash}",
    ]
    lines.extend(f"  {ln}" for ln in render_plan_record(request.plan))
    if request.drift:
        if request.drift.get("refused"):
            lines.append(f"  ! the lab moved: cannot plan it now: {request.drift['refused']}")
        else:
            lines.append("  ! the lab moved since it was proposed; the plan is now:")
            lines.extend(f"    {ln}" for ln in str(request.drift.get("diff", "")).splitlines())
    if request.decided_by:
        lines.append(
            f"  decided by:   {describe_who(request.decided_by)} via {request.channel}"
            + (f": {request.note}" if request.note else "")
        )
    elif request.note:
        lines.append(f"  note:         {request.note}")
    if request.outcome:
        ok = request.outcome.get("ok")
        text = request.outcome.get("message") or request.outcome.get("refused")
        lines.append(f"  outcome:      {'ok' if ok else 'FAILED'}: {text}")
    return "\n".join(lines)


def _queue(args: argparse.Namespace, command: str) -> tuple[Queue, Lab] | int:
    config = config_or_exit(args, command)
    if isinstance(config, int):
        return config
    lab = Lab(config)
    return Queue(lab), lab


def run_list(args: argparse.Namespace) -> int:
    made = _queue(args, "approvals")
    if isinstance(made, int):
        return made
    queue, _ = made
    try:
        requests = queue.list()
    except OSError as exc:
        print(f"hlcon approvals: cannot read {queue.dir}: {exc.strerror}", file=sys.stderr)
        return EXIT_REFUSED
    shown = [r for r in requests if args.all or not r.final]
    if args.json:
        print(json.dumps([r.to_json() for r in shown], indent=2))
        return EXIT_OK
    if not shown:
        print("no requests waiting" + ("" if args.all else " (--all shows decided ones)"))
    for request in shown:
        print(render_request(request))
    return EXIT_OK


def _no_tty(command: str) -> int | None:
    if sys.stdin.isatty():
        return None
    print(
        f"hlcon {command}: refused: stdin is not a terminal — a person approves at a terminal "
        "(or in the console); nothing automation can reach may approve",
        file=sys.stderr,
    )
    return EXIT_REFUSED


def run_deny(args: argparse.Namespace) -> int:
    refused = _no_tty("deny")
    if refused is not None:
        return refused
    made = _queue(args, "deny")
    if isinstance(made, int):
        return made
    queue, _ = made
    try:
        request = queue.deny(args.id, note=args.note, channel="hlcon deny (tty)")
    except QueueError as exc:
        print(f"hlcon deny: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"denied: {request.id} ({request.verb} {request.target})")
    return EXIT_OK


def run_approve(args: argparse.Namespace) -> int:
    refused = _no_tty("approve")
    if refused is not None:
        return refused
    made = _queue(args, "approve")
    if isinstance(made, int):
        return made
    queue, lab = made
    try:
        return asyncio.run(_approve(args, queue, lab))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("hlcon approve: cancelled", file=sys.stderr)
        return EXIT_CANCELLED


def _progress(fraction: float | None, message: str) -> None:
    mark = f"{fraction * 100:3.0f}%" if fraction is not None else "   …"
    print(f"  [{mark}] {message}", file=sys.stderr, flush=True)


async def _approve(args: argparse.Namespace, queue: Queue, lab: Lab) -> int:
    err = sys.stderr
    try:
        try:
            request = queue.get(args.id)
        except QueueError as exc:
            print(f"hlcon approve: {exc}", file=err)
            return EXIT_REFUSED
        if request.state != "waiting":
            print(f"hlcon approve: request {request.id} is {request.state}", file=err)
            return EXIT_REFUSED
        print(render_request(request), flush=True)
        expect = request.confirmation.get("expect")
        prompt = str(request.confirmation.get("prompt") or "Approve?")
        question = f"Type '{expect}' to approve: " if expect else "Approve? [y/N] "
        reply = await ask_async(f"{prompt}\n{question}")
        declined = (
            reply is None
            or not reply.strip()
            or (expect is None and reply.strip().lower() not in ("y", "yes"))
            or (expect is not None and reply.strip() != expect)
        )
        if declined:
            print("not approved: the request still waits (hlcon deny ID to deny it)", file=err)
            return EXIT_CANCELLED
        try:
            decision = await queue.approve(
                request.id, answer=reply, channel=CHANNEL, progress=_progress
            )
        except QueueError as exc:
            print(f"hlcon approve: {exc}", file=err)
            return EXIT_REFUSED
    finally:
        await lab.close()
    final = decision.request
    if decision.result is None and final.state == "waiting":
        print(f"back to waiting: {decision.message}", file=err)
        print(render_request(final))
        return EXIT_PENDING
    if final.state == "done":
        print(f"done: {decision.message}", flush=True)
        return EXIT_OK
    if final.state == "refused":
        print(decision.message, file=err)
        return EXIT_REFUSED
    print(f"failed: {decision.message}", file=err)
    return EXIT_FAILED
