"""The approval queue: automation proposes, a person approves, the runner executes.

A request is a prepared action (Runner.prepare: policy checked, plan made) kept with the hash
of its plan, who asked, why and until when. It waits in the state directory (one JSON file per
request, written atomically) so every hlcon process of the user sees it. Approving plans again:
a plan whose hash differs (the lab moved) sends the request back to waiting with the
difference; the same plan runs through the ordinary Runner.run (policy, lock, intent, execute,
verify, rollback). Failing closed is the rule: a request nobody approves expires, denied.

Audit: "proposed" (ref: the planned record), then "approved" / "denied" / "expired" /
"drifted" (ref: the proposed record), and the runner's own records of the run, whose ref is the
"planned" seq the "approved" record names. This module has no notion of a channel that may
approve: the callers (the CLI at a TTY, the console) are the only ones that call approve();
nothing automation can reach (hlcon mcp, hlcon request) does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import fcntl
import hashlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from actions import registry
from actions.audit import AuditError, Who
from actions.base import Plan, Progress, no_progress
from actions.runner import Prepared, Refused, Runner, RunResult
from lab.wiring import Lab

DEFAULT_EXPIRY = 3600.0  # seconds a request waits for a person before it is denied
WAITING, RUNNING, DONE, FAILED, DENIED, EXPIRED, REFUSED = (
    "waiting",
    "running",
    "done",
    "failed",
    "denied",
    "expired",
    "refused",
)
FINAL = frozenset({DONE, FAILED, DENIED, EXPIRED, REFUSED})
_ID = re.compile(r"^r-[0-9a-f]{8}$")


def plan_hash(plan: Plan) -> str:
    """sha256 of the canonical JSON of the plan's audit record: what the person approves."""
    text = json.dumps(plan.to_record(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _plan_lines(record: Mapping[str, Any]) -> list[str]:
    return json.dumps(record, indent=2, sort_keys=True, default=str).splitlines()


@dataclass(frozen=True)
class Request:
    id: str
    verb: str
    target: str
    params: Mapping[str, Any]
    reason: str
    who: Mapping[str, Any]  # the requester's real uid and account, and its claims
    client: str  # the client's own name (MCP client info, "hlcon request"): a claim
    created: str  # ISO 8601, the lab's clock
    expires: str
    plan: Mapping[str, Any]  # Plan.to_record()
    plan_hash: str
    confirmation: Mapping[str, Any]  # {"prompt": …, "expect": … | None}
    proposed_seq: int  # its "proposed" audit record
    state: str = WAITING
    decided_by: Mapping[str, Any] | None = None
    channel: str | None = None
    note: str | None = None
    drift: Mapping[str, Any] | None = None  # the last re-plan that did not match
    outcome: Mapping[str, Any] | None = None
    history: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["history"] = list(self.history)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Request:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["history"] = tuple(values.get("history") or ())
        return cls(**values)

    @property
    def final(self) -> bool:
        return self.state in FINAL


@dataclass(frozen=True)
class Decision:
    """What approve() came to: the request as it now stands, and the run if there was one."""

    request: Request
    result: RunResult | None = None
    message: str = ""


class QueueError(Exception):
    """A request that does not exist, or is not waiting; str() says which."""


class Queue:
    """The requests of one state directory. `clock`: the lab's clock unless given."""

    def __init__(self, lab: Lab, *, clock: Callable[[], datetime] | None = None) -> None:
        self.lab = lab
        self.clock = clock or lab.clock
        runner = Runner(lab)
        self.audit = runner.audit
        self.dir = runner.state_dir / "approvals"

    # -- files --------------------------------------------------------------------------------

    def _path(self, request_id: str) -> Path:
        if not _ID.match(request_id):
            raise QueueError(f"not a request id: {request_id!r} (expected r-XXXXXXXX)")
        return self.dir / f"{request_id}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time over the whole queue (state changes are read-modify-write)."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.dir / ".lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _write(self, request: Request) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{request.id}.")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(request.to_json(), f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._path(request.id))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _read(self, request_id: str) -> Request:
        path = self._path(request_id)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise QueueError(f"no request {request_id} (see `hlcon approvals`)") from None
        except (OSError, ValueError) as exc:
            raise QueueError(f"request {request_id} unreadable ({path}): {exc}") from None
        return Request.from_json(data)

    def _audit(self, phase: str, request: Request, who: Who, **fields: Any) -> int:
        rec = self.audit.append(
            phase,
            who=who,
            action=str(request.plan.get("family") or request.verb),
            target=request.target,
            **fields,
        )
        return rec.seq

    def _expire(self, request: Request) -> Request:
        """A waiting request past its expiry is denied (audited) — caller holds the lock."""
        if request.state != WAITING or self.clock() < datetime.fromisoformat(request.expires):
            return request
        seq = self._audit(
            "expired",
            request,
            Who.current(),
            ref=request.proposed_seq,
            result={"request": request.id},
            reason=f"nobody approved it before {request.expires}: denied",
        )
        expired = dataclasses.replace(
            request,
            state=EXPIRED,
            note="expired: nobody approved it in time",
            history=(*request.history, {"state": EXPIRED, "seq": seq}),
        )
        self._write(expired)
        return expired

    # -- reading ------------------------------------------------------------------------------

    def get(self, request_id: str) -> Request:
        with self._locked():
            return self._expire(self._read(request_id))

    def list(self) -> list[Request]:
        """Every request, oldest first; waiting ones past their expiry become expired."""
        if not self.dir.is_dir():
            return []
        out = []
        with self._locked():
            for path in sorted(self.dir.glob("r-*.json")):
                with contextlib.suppress(QueueError):
                    out.append(self._expire(self._read(path.stem)))
        return sorted(out, key=lambda r: (r.created, r.id))

    async def wait(self, request_id: str, timeout: float, poll: float = 0.5) -> Request:
        """The request once final, or as it stands after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + max(0.0, timeout)
        while True:
            request = self.get(request_id)
            if request.final or loop.time() >= end:
                return request
            await asyncio.sleep(min(poll, max(0.0, end - loop.time())))

    # -- proposing ----------------------------------------------------------------------------

    async def propose(
        self,
        verb: str,
        target: str,
        params: Mapping[str, Any],
        *,
        reason: str,
        client: str,
        expiry: float = DEFAULT_EXPIRY,
    ) -> Request:
        """Policy-check and plan at once; raises Refused (audited by the runner) or ValueError
        (an unknown verb or a bad target). The request waits for a person."""
        if not reason.strip():
            raise ValueError("a request needs a reason (--reason TEXT)")
        action = registry.build(verb, target, self.lab, dict(params))
        who = Who.current()
        requester = dataclasses.replace(who, claimed=(*who.claimed, ("CLIENT", client)))
        runner = Runner(self.lab, who=requester)
        prepared = await runner.prepare(action)
        now = self.clock()
        request_id = f"r-{secrets.token_hex(4)}"
        plan = prepared.plan
        draft = Request(
            id=request_id,
            verb=verb,
            target=target,
            params=dict(params),
            reason=reason,
            who=requester.to_record(),
            client=client,
            created=now.isoformat(),
            expires=(now + timedelta(seconds=expiry)).isoformat(),
            plan=plan.to_record(),
            plan_hash=plan_hash(plan),
            confirmation={
                "prompt": plan.confirmation.prompt,
                "expect": plan.confirmation.expect,
            },
            proposed_seq=0,
        )
        try:
            seq = self._audit(
                "proposed",
                draft,
                requester,
                ref=prepared.seq,
                result={
                    "request": request_id,
                    "plan_hash": draft.plan_hash,
                    "client": client,
                    "expires": draft.expires,
                },
                reason=reason,
            )
        except AuditError as exc:
            runner.cancel(prepared, "the proposal could not be audited")
            raise Refused(f"{exc}; refusing to queue a request without an audit record") from None
        # The proposal's plan is never run itself: approving plans again.
        runner.cancel(prepared, f"queued as request {request_id} for a person to approve")
        request = dataclasses.replace(
            draft, proposed_seq=seq, history=({"state": WAITING, "seq": seq},)
        )
        with self._locked():
            self._write(request)
        return request

    # -- deciding (a person only: see the module docstring) -----------------------------------

    def deny(self, request_id: str, *, note: str, channel: str) -> Request:
        approver = Who.current()
        with self._locked():
            request = self._expire(self._read(request_id))
            if request.state != WAITING:
                raise QueueError(f"request {request_id} is {request.state}, not waiting")
            seq = self._audit(
                "denied",
                request,
                approver,
                ref=request.proposed_seq,
                result={"request": request.id, "channel": channel},
                reason=note or "denied",
            )
            denied = dataclasses.replace(
                request,
                state=DENIED,
                decided_by=approver.to_record(),
                channel=channel,
                note=note,
                history=(*request.history, {"state": DENIED, "seq": seq}),
            )
            self._write(denied)
        return denied

    async def approve(
        self,
        request_id: str,
        *,
        answer: str | None,
        channel: str,
        progress: Progress = no_progress,
    ) -> Decision:
        """Plan again; the same plan (by hash) runs through Runner.run with `answer` as the
        person's confirmation. Raises QueueError when the request is not waiting."""
        approver = Who.current()
        with self._locked():
            request = self._expire(self._read(request_id))
            if request.state != WAITING:
                raise QueueError(f"request {request_id} is {request.state}, not waiting")
            running = dataclasses.replace(request, state=RUNNING)
            self._write(running)  # claimed: a second approver sees it is taken
        runner = Runner(self.lab, who=approver)
        try:
            action = registry.build(request.verb, request.target, self.lab, dict(request.params))
            prepared = await runner.prepare(action)
        except (Refused, ValueError) as exc:
            return self._drifted(request, approver, channel, None, str(exc))
        except BaseException:  # cancelled while planning: nothing ran, so it waits again
            with self._locked():
                self._write(request)
            raise
        new_hash = plan_hash(prepared.plan)
        if new_hash != request.plan_hash:
            runner.cancel(prepared, f"request {request.id}: the plan changed since it was proposed")
            return self._drifted(request, approver, channel, prepared, None)
        seq = self._audit(
            "approved",
            request,
            approver,
            ref=request.proposed_seq,
            result={
                "request": request.id,
                "channel": channel,
                "planned": prepared.seq,
                "plan_hash": new_hash,
            },
        )
        decided = dataclasses.replace(
            running,
            decided_by=approver.to_record(),
            channel=channel,
            history=(*request.history, {"state": RUNNING, "seq": seq, "planned": prepared.seq}),
        )
        with self._locked():
            self._write(decided)
        return await self._run(decided, runner, prepared, answer, progress)

    async def _run(
        self,
        request: Request,
        runner: Runner,
        prepared: Prepared,
        answer: str | None,
        progress: Progress,
    ) -> Decision:
        try:
            result = await runner.run(prepared, answer, progress)
        except Refused as exc:
            outcome: dict[str, Any] = {"ok": False, "refused": exc.reason, "seq": exc.seq}
            final = dataclasses.replace(request, state=REFUSED, outcome=outcome)
            with self._locked():
                self._write(final)
            return Decision(final, None, f"refused: {exc.reason}")
        except asyncio.CancelledError:
            final = dataclasses.replace(
                request, state=FAILED, outcome={"ok": False, "message": "cancelled"}
            )
            with self._locked():
                self._write(final)
            raise
        outcome = {
            "ok": result.ok,
            "message": result.outcome.message,
            "seq": result.seq,
            "intent": result.intent_seq,
            **(
                {"rollback": {"ok": result.rollback.ok, "message": result.rollback.message}}
                if result.rollback is not None
                else {}
            ),
        }
        state = DONE if result.ok else FAILED
        final = dataclasses.replace(
            request,
            state=state,
            outcome=outcome,
            history=(*request.history, {"state": state, "seq": result.seq}),
        )
        with self._locked():
            self._write(final)
        return Decision(final, result, result.outcome.message)

    def _drifted(
        self,
        request: Request,
        approver: Who,
        channel: str,
        prepared: Prepared | None,
        refused: str | None,
    ) -> Decision:
        """Back to waiting, with the difference: the new plan (which a next approval checks
        against) or why it could not be planned at all."""
        if prepared is not None:
            new_record = prepared.plan.to_record()
            diff = "\n".join(
                difflib.unified_diff(
                    _plan_lines(request.plan),
                    _plan_lines(new_record),
                    "proposed plan",
                    "plan now",
                    lineterm="",
                )
            )
            drift: dict[str, Any] = {
                "previous_hash": request.plan_hash,
                "plan_hash": plan_hash(prepared.plan),
                "diff": diff,
            }
            message = "the plan changed since it was proposed; approve again to run the new one"
        else:
            drift = {"previous_hash": request.plan_hash, "refused": refused}
            message = f"the target cannot be planned now: {refused}"
        seq = self._audit(
            "drifted",
            request,
            approver,
            ref=request.proposed_seq,
            result={"request": request.id, "channel": channel, **drift},
            reason=message,
        )
        waiting = dataclasses.replace(
            request,
            state=WAITING,
            drift=drift,
            history=(*request.history, {"state": "drifted", "seq": seq}),
        )
        if prepared is not None:
            waiting = dataclasses.replace(
                waiting,
                plan=prepared.plan.to_record(),
                plan_hash=plan_hash(prepared.plan),
                confirmation={
                    "prompt": prepared.plan.confirmation.prompt,
                    "expect": prepared.plan.confirmation.expect,
                },
            )
        with self._locked():
            self._write(waiting)
        return Decision(waiting, None, message)
