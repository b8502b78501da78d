"""`hlcon mcp`: a Model Context Protocol server over stdio (the official `mcp` SDK) — the door
an AI assistant uses. It reads, and it proposes; it never approves.

Read tools (annotated read-only): `status` (findings and entries, as `hlcon status --json`),
`audit_tail`, `plan` (a dry run: the plan as text and data, nothing changes). Change tools only
propose: `propose` queues a request (watch.approvals) that a person approves with `hlcon
approve ID` at a terminal; `request_status` says where it stands and, once run, the outcome. No
tool approves, denies, grants, acknowledges, changes policy or reads a secret — the server has
no code path to any of them. The client's name (its MCP client info) is recorded as a claim next
to the real uid of this process.

Stdout is the protocol: nothing else is printed there.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mcp.server.fastmcp import Context, FastMCP
from mcp.types import ToolAnnotations

from actions import registry
from actions.audit import AuditError, audit_log_for
from actions.runner import Refused, Runner
from lab.config import Config
from lab.health import evaluate
from lab.jsonview import entry_to_json, finding_to_json
from lab.model import utcnow
from lab.units import parse_duration
from lab.wiring import Lab
from tui.commands.approvals import render_request
from tui.commands.do import config_or_exit, render_plan
from tui.commands.status import collect
from watch.approvals import Queue, QueueError, Request

READ = ToolAnnotations(readOnlyHint=True, destructiveHint=False, openWorldHint=False)
PROPOSE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False)
MAX_WAIT = 300.0  # request_status(wait=…) longer than this is cut to it


def register(sub: Any) -> None:
    p = sub.add_parser(
        "mcp",
        help="serve the MCP protocol on stdio: reads and proposals for an AI assistant",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=run)


def _client_name(ctx: Context[Any, Any, Any]) -> str:
    try:
        params = ctx.session.client_params
        info = params.clientInfo if params is not None else None
        return f"mcp:{info.name} {info.version}" if info is not None else "mcp:unknown"
    except Exception:  # no session data: still a proposal, named as unknown
        return "mcp:unknown"


def _request_json(request: Request) -> dict[str, Any]:
    return {
        "id": request.id,
        "state": request.state,
        "verb": request.verb,
        "target": request.target,
        "reason": request.reason,
        "client": request.client,
        "created": request.created,
        "expires": request.expires,
        "plan": dict(request.plan),
        "plan_hash": request.plan_hash,
        "blast_radius": request.plan.get("blast_radius"),
        "drift": dict(request.drift) if request.drift else None,
        "outcome": dict(request.outcome) if request.outcome else None,
        "note": request.note,
        "text": render_request(request),
    }


def build_server(config: Config) -> FastMCP[Any]:
    server: FastMCP[Any] = FastMCP(
        "hlcon",
        instructions=(
            "Read the homelab's status and audit; propose actions. A person approves every "
            "proposal at their terminal; you cannot approve, and nothing runs until they do."
        ),
        log_level="WARNING",
    )
    expiry = config.approvals.expiry

    @server.tool(annotations=READ)
    async def status() -> dict[str, Any]:
        """The lab's findings and entries: one collection pass, as `hlcon status --json`."""
        store, _ = await collect(config)
        now = utcnow()
        findings = evaluate(store, config, now)
        return {
            "at": now.isoformat(),
            "findings": [finding_to_json(f) for f in findings],
            "entries": [entry_to_json(e) for e in store],
        }

    @server.tool(annotations=READ)
    async def audit_tail(n: int = 20) -> list[dict[str, Any]]:
        """The last n records of the audit log (secrets are masked in it)."""
        try:
            return [r.to_json() for r in audit_log_for(config).tail(max(1, min(n, 500)))]
        except (OSError, AuditError) as exc:
            raise ValueError(f"cannot read the audit log: {exc}") from None

    @server.tool(annotations=READ)
    async def plan(verb: str, target: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """A dry run: what `verb` on `target` would do, as text and data. Nothing changes."""
        lab = Lab(config)
        try:
            action = registry.build(verb, target, lab, dict(params or {}))
            prepared = await Runner(lab).prepare(action, dry_run=True)
        except (Refused, ValueError) as exc:
            return {"refused": str(exc)}
        finally:
            await lab.close()
        return {"text": render_plan(prepared.plan), "plan": prepared.plan.to_record()}

    @server.tool(annotations=PROPOSE)
    async def propose(
        verb: str,
        target: str,
        reason: str,
        ctx: Context[Any, Any, Any],
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Propose an action: it is policy-checked and planned now, and waits for a person to
        approve it (`hlcon approve ID` at their terminal) until it expires. Returns the request
        id, the plan, its hash, the blast radius and the expiry."""
        lab = Lab(config)
        try:
            request = await Queue(lab).propose(
                verb,
                target,
                dict(params or {}),
                reason=reason,
                client=_client_name(ctx),
                expiry=expiry,
            )
        except (Refused, ValueError) as exc:
            return {"state": "refused", "refused": str(exc)}
        finally:
            await lab.close()
        return _request_json(request)

    @server.tool(annotations=READ)
    async def request_status(id: str, wait: str = "0s") -> dict[str, Any]:
        """Where a request stands (waiting, running, done, failed, denied, expired, refused)
        and, once run, its outcome. `wait` (e.g. "30s", at most 5m): wait that long for it to
        be decided and run."""
        try:
            seconds = min(parse_duration(wait), MAX_WAIT) if wait not in ("", "0") else 0.0
        except ValueError as exc:
            raise ValueError(f"wait: {exc}") from None
        lab = Lab(config)
        try:
            return _request_json(await Queue(lab).wait(id, seconds))
        except QueueError as exc:
            raise ValueError(str(exc)) from None
        finally:
            await lab.close()

    del status, audit_tail, plan, propose, request_status  # registered on the server
    return server


def run(args: argparse.Namespace) -> int:
    config = config_or_exit(args, "mcp")
    if isinstance(config, int):
        return config
    if sys.stdin.isatty():
        print(
            "hlcon mcp: serving MCP on stdio (an MCP client starts this; Ctrl-D ends)",
            file=sys.stderr,
        )
    build_server(config).run("stdio")
    return 0
