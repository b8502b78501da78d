"""`hlcon request VERB TARGET --reason TEXT [--param K=V] [--wait DURATION]`: what a script or a
cron job does instead of `hlcon do --yes` — it proposes; a person approves (`hlcon approve ID`).

The request is policy-checked and planned at once (a refusal is audited and ends it), then waits
in the state directory until a person approves or denies it, or it expires. `--wait` waits that
long for the outcome. Exit codes: 0 done and verified, 1 failed (rolled back where possible), 2
refused, denied or expired (and bad usage), 3 still pending (the id is printed: `hlcon approvals`
shows it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from actions.runner import Refused
from lab.units import parse_duration
from lab.wiring import Lab
from tui.commands.approvals import render_request
from tui.commands.do import config_or_exit
from watch.approvals import DONE, FAILED, Queue, Request

EXIT_DONE, EXIT_FAILED, EXIT_REFUSED, EXIT_PENDING = 0, 1, 2, 3


def register(sub: Any) -> None:
    p = sub.add_parser(
        "request",
        help="propose an action for a person to approve (scripts, cron, assistants)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("verb", help="restart, start, stop, renew …")
    p.add_argument("target", help="KIND:NAME[@WHERE], e.g. container:web@local")
    p.add_argument("--reason", required=True, help="why (shown to the approver, audited)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", default=[], help="a parameter")
    p.add_argument("--wait", metavar="DURATION", help="wait this long for the outcome (5m, 1h)")
    p.add_argument("--client", default="hlcon request", help="the name the approver sees (a claim)")
    p.set_defaults(func=run)


def exit_code(request: Request) -> int:
    if request.state == DONE:
        return EXIT_DONE
    if request.state == FAILED:
        return EXIT_FAILED
    if request.final:
        return EXIT_REFUSED
    return EXIT_PENDING


def _params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param {item!r}: expected KEY=VALUE")
        params[key.strip()] = value
    return params


def run(args: argparse.Namespace) -> int:
    config = config_or_exit(args, "request")
    if isinstance(config, int):
        return config
    try:
        params = _params(args.param)
        wait = parse_duration(args.wait) if args.wait else 0.0
    except ValueError as exc:
        print(f"hlcon request: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return asyncio.run(_request(args, Lab(config), params, wait))


async def _request(args: argparse.Namespace, lab: Lab, params: dict[str, Any], wait: float) -> int:
    try:
        queue = Queue(lab)
        try:
            request = await queue.propose(
                args.verb,
                args.target,
                params,
                reason=args.reason,
                client=args.client,
                expiry=lab.config.approvals.expiry,
            )
        except (Refused, ValueError) as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        print(render_request(request), flush=True)
        if wait > 0:
            request = await queue.wait(request.id, wait)
            print(render_request(request), flush=True)
    finally:
        await lab.close()
    code = exit_code(request)
    if code == EXIT_PENDING:
        print(f"pending: a person approves with `hlcon approve {request.id}`", file=sys.stderr)
    return code
