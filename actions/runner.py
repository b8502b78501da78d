"""The runner: the one way anything in the lab changes.

    prepare(action)  policy → plan → identity → policy on the identity (audited: refused | planned)
    run(prepared)    confirm → lock → intent (fsynced) → execute → verify (one timeout)
                     → outcome → rollback on any failure              (audited at every step)
    cancel(prepared) the user said no                                  (audited: cancelled)

Every record of one run carries `ref` = the seq of its "planned" record. An intent with no
outcome is what a process killed mid-action leaves: `pending()` finds those, `acknowledge()`
closes them with an "abandoned" outcome. Until then the target is blocked: a new action whose
identity overlaps a pending intent's is refused, naming `hlcon audit ack SEQ` and what to check.

Locks, rate limits, maintenance and pending checks all key on the action's canonical Identity
(actions.base), resolved once the plan is known — never on the string the user typed.

`run()` raises nothing but Refused — failures are RunResults. A cancelled task is a failure too:
the rollback still runs (shielded from further cancellation), is audited, and then the
CancelledError goes on up, as asyncio requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actions import policy
from actions.audit import AuditError, AuditLog, AuditRecord, Who, audit_log_for
from actions.base import (
    Action,
    ActionFailed,
    Identity,
    Outcome,
    Plan,
    Progress,
    keys_overlap,
    no_progress,
)
from actions.hostkey_audit import audit_key_changes
from actions.locks import LockHeld, TargetLocks, lock_path
from actions.maintenance import Maintenance, canonical_host
from lab import inflight

if TYPE_CHECKING:
    from lab.wiring import Lab

log = logging.getLogger("hlcon.actions")


class Refused(Exception):
    """The runner would not run the action; str() is the reason, saying how to change it."""

    def __init__(self, reason: str, seq: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.seq = seq  # the "refused" record, when it could be written


@dataclass(frozen=True)
class Prepared:
    """A planned action awaiting the user's answer. `seq` is its "planned" record."""

    action: Action
    plan: Plan
    seq: int
    identity: Identity | None = None  # what it acts on, canonically (None: the typed target)


@dataclass(frozen=True)
class RunResult:
    ok: bool  # executed AND verified
    outcome: Outcome
    rollback: Outcome | None  # None: nothing failed, or the family cannot roll back
    seq: int  # the "outcome" record (0 if it could not be written)
    intent_seq: int = 0
    cancelled: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rolled_back(self) -> bool:
        return self.rollback is not None and self.rollback.ok


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return text if isinstance(exc, ActionFailed) and text else f"{type(exc).__name__}: {text}"


class Runner:
    def __init__(
        self,
        lab: Lab,
        *,
        audit: AuditLog | None = None,
        read_only: bool | None = None,
        who: Who | None = None,
    ) -> None:
        """`read_only`: True forces read-only mode (the --read-only flag); None or False leaves
        it to console.read_only — a flag can only make hlcon stricter."""
        self.lab = lab
        self.config = lab.config
        audit_key_changes(lab)  # a changed SSH host key is audited in every acting process
        self.state_dir: Path = policy.state_dir(self.config)
        self.audit = audit or audit_log_for(self.config, clock=lab.clock)
        self.read_only = read_only
        self.who = who or Who.current()
        self.maintenance = Maintenance(self.state_dir)
        self._closed: set[int] = set()  # prepared seqs already run, refused or cancelled
        self._active_runs: set[asyncio.Task[Any]] = set()  # inside _execute, for interrupt()
        self._interrupted: str | None = None  # why interrupt() was called

    def host_of(self, action: Action) -> str:
        """The host name maintenance flags use: "local" for every name of this machine, the
        host a container endpoint runs on for an endpoint's name."""
        return canonical_host(self.config, action.host)

    def refuse(self, prepared: Prepared, reason: str) -> Refused:
        """Close a prepared action as refused by the caller (e.g. the CLI without a TTY);
        returns the Refused to raise or report."""
        return self._refuse(prepared.action, reason, prepared.seq)

    # -- audit helpers ------------------------------------------------------------------------

    def _record(
        self, phase: str, action: Action, *, sync: bool = False, **fields: Any
    ) -> AuditRecord:
        return self.audit.append(
            phase,
            who=self.who,
            action=action.family,
            target=str(action.target),
            sync=sync,
            **fields,
        )

    def _refuse(self, action: Action, reason: str, ref: int | None = None) -> Refused:
        if ref is not None:
            self._closed.add(ref)
        try:
            rec = self._record("refused", action, ref=ref, reason=reason)
        except AuditError as exc:
            return Refused(f"{reason} (and the refusal could not be audited: {exc})")
        return Refused(reason, rec.seq)

    def _policy(
        self, action: Action, identity: Identity | None = None, *, dry_run: bool = False
    ) -> str | None:
        """The first reason not to act. A dry run only plans, which changes nothing: read-only
        mode and a pending intent do not refuse it."""
        try:
            reason = policy.check(
                action,
                config=self.config,
                read_only=self.read_only,
                maintenance=self.maintenance,
                audit=self.audit,
                now=self.lab.clock(),
                host=self.host_of(action),
                identity=identity,
                plan_only=dry_run,
            )
            if reason or identity is None or dry_run:
                return reason
            blocking = self.blocking_intent(identity)
        except OSError as exc:
            return (
                f"audit log {self.audit.path} unreadable, refusing to act: {exc.strerror} "
                "(console.audit_log)"
            )
        return None if blocking is None else interrupted_reason(blocking, str(action.target))

    def blocking_intent(self, identity: Identity) -> AuditRecord | None:
        """The first pending intent (its process died mid-action) on anything this identity
        covers — the same container, interface, repository, or an overlapping path."""
        for rec in self.pending():
            theirs = policy.record_keys(rec)
            if any(keys_overlap(a, b) for a in theirs for b in identity.all_keys):
                return rec
        return None

    def _with_timeout(self, plan: Plan) -> Plan:
        """The timeout the config gives this family (actions.timeouts), else its own default."""
        seconds, source = policy.timeout_for(self.config, plan.family, plan.timeout)
        if plan.timeout is None and plan.family not in self.config.actions.timeouts:
            return dataclasses.replace(plan, timeout_from=source)  # actions.timeout, as before
        return dataclasses.replace(plan, timeout=seconds, timeout_from=source)

    # -- the steps ----------------------------------------------------------------------------

    async def prepare(self, action: Action, *, dry_run: bool = False) -> Prepared:
        """Policy, then the plan, then policy again on what the plan showed the target to be
        (its canonical identity). Raises Refused (audited). `dry_run`: the plan will only be
        shown, so read-only mode and a pending intent do not refuse it (a note says so)."""
        reason = self._policy(action, dry_run=dry_run)
        if reason:
            raise self._refuse(action, reason)
        try:
            plan = self._with_timeout(await action.plan())
            identity = await action.identity(plan)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._refuse(
                action, f"could not plan {action.target}: {_describe(exc)}"
            ) from None
        reason = self._policy(action, identity, dry_run=dry_run)
        if reason:
            raise self._refuse(action, reason)
        if dry_run:
            with contextlib.suppress(OSError):
                blocking = self.blocking_intent(identity)
                if blocking is not None:
                    note = interrupted_reason(blocking, str(action.target))
                    note += " — it would be refused"
                    plan = dataclasses.replace(plan, notes=(*plan.notes, note))
        try:
            rec = self._record("planned", action, plan=plan.to_record())
        except AuditError as exc:
            raise Refused(f"{exc}; refusing to act without an audit record") from None
        return Prepared(action, plan, rec.seq, identity)

    def cancel(self, prepared: Prepared, why: str = "cancelled by user") -> None:
        if prepared.seq in self._closed:
            return
        self._closed.add(prepared.seq)
        try:
            self._record("cancelled", prepared.action, ref=prepared.seq, reason=why)
        except AuditError as exc:
            log.error("%s", exc)

    async def run(
        self, prepared: Prepared, answer: str | None, progress: Progress = no_progress
    ) -> RunResult:
        action, plan, ref = prepared.action, prepared.plan, prepared.seq
        if ref in self._closed:
            raise Refused("this plan was already run, refused or cancelled; plan it again")
        if not plan.confirmation.accepts(answer):
            expected = (
                f"typing {plan.confirmation.expect!r} (hlcon do: --confirm "
                f"{shlex.quote(plan.confirmation.expect)})"
                if plan.confirmation.expect
                else "a yes (hlcon do: --yes)"
            )
            raise self._refuse(
                action,
                f"confirmation did not match: {plan.confirmation.prompt} needs {expected}",
                ref,
            )
        # Time passed while the user read the plan: maintenance may have begun, another
        # console may have used up the rate limit, or died mid-action on the same target.
        identity = prepared.identity or Identity((str(action.target),), (self.host_of(action),))
        reason = self._policy(action, identity)
        if reason:
            raise self._refuse(action, reason, ref)
        locks = TargetLocks(self.state_dir, identity.keys, identity.shared)
        try:
            locks.acquire()
        except LockHeld as exc:
            raise self._refuse(action, str(exc), ref) from None
        except OSError as exc:
            raise self._refuse(
                action,
                f"cannot take a lock in {self.state_dir / 'locks'}: {exc.strerror} "
                "(console.state_dir)",
                ref,
            ) from None
        try:
            self._closed.add(ref)
            try:
                intent = self._record(
                    "intent",
                    action,
                    ref=ref,
                    result={
                        "pid": os.getpid(),
                        "locks": list(identity.all_keys),  # exclusive ones first
                        "identity": list(identity.all_keys),
                    },
                    sync=True,
                )
            except AuditError as exc:
                raise Refused(f"{exc}; refusing to act without an audit record") from None
            return await self._execute(action, plan, ref, intent.seq, progress)
        finally:
            locks.release()

    async def _execute(
        self, action: Action, plan: Plan, ref: int, intent_seq: int, progress: Progress
    ) -> RunResult:
        """Execute, verify, audit the outcome, roll back on failure — and return (or re-raise a
        cancel) only once every process and engine call the action started has ended, so the
        caller's lock outlives the work. Commands kill their process group on a cancel and reap
        it (lab.execute); a docker SDK call cannot be stopped, so a timeout waits for its thread
        (lab.inflight) before the outcome, the rollback and the unlock."""
        timeout = plan.timeout or self.config.actions.timeout
        started = time.monotonic()
        stage = "execute"
        cancelled = False
        outcome: Outcome
        safe = _safe_progress(progress)
        task = asyncio.current_task()
        if task is not None:
            self._active_runs.add(task)
        try:
            with inflight.track() as calls:
                try:
                    async with asyncio.timeout(timeout) as deadline:
                        executed = await action.execute(plan, safe)
                        stage = "verify"
                        outcome = await action.verify(plan, executed)
                    if not outcome.ok:
                        outcome = Outcome(
                            False, f"verify failed: {outcome.message}", outcome.details
                        )
                except asyncio.CancelledError as exc:
                    cancelled = True
                    why = _cancel_reason(exc) or self._interrupted
                    outcome = Outcome(
                        False, f"cancelled during {stage}" + (f": {why}" if why else "")
                    )
                except TimeoutError as exc:
                    if deadline.expired():
                        source = (
                            "the plan's timeout"
                            if plan.timeout
                            else (f"actions.timeout in {self.config.source}")
                        )
                        outcome = Outcome(
                            False,
                            f"timed out during {stage} after {policy.human_duration(timeout)} "
                            f"({source})",
                        )
                    else:
                        outcome = Outcome(False, f"{stage} failed: {_describe(exc)}")
                except ActionFailed as exc:
                    outcome = Outcome(False, f"{stage} failed: {exc}", exc.details)
                except Exception as exc:
                    log.exception("%s %s raised", action.family, action.target)
                    outcome = Outcome(False, f"{stage} failed: {_describe(exc)}")
                waited = await _settle(calls, safe)
                if waited is not None:
                    outcome = Outcome(
                        outcome.ok,
                        f"{outcome.message}; the engine call it was waiting for "
                        f"ended {policy.human_duration(waited)} later",
                        outcome.details,
                    )
                duration = time.monotonic() - started
                seq = self._audit_safely(
                    "outcome",
                    action,
                    ref=ref,
                    result={
                        "ok": outcome.ok,
                        "message": outcome.message,
                        **({"details": dict(outcome.details)} if outcome.details else {}),
                    },
                    duration=duration,
                    sync=True,
                )
                rollback: Outcome | None = None
                if not outcome.ok:
                    rollback = await _shielded(self._rollback(action, plan, ref, timeout))
                    await _settle(calls, safe)  # a rollback that timed out leaves one too
        finally:
            if task is not None:
                self._active_runs.discard(task)
        result = RunResult(outcome.ok, outcome, rollback, seq, intent_seq, cancelled)
        if cancelled:
            raise asyncio.CancelledError
        return result

    def interrupt(self, why: str) -> list[asyncio.Task[Any]]:
        """Cancel every run of this runner in progress, e.g. on SIGTERM: each audits its
        outcome ("cancelled during execute: {why}") and rollback, then ends. Returns their tasks,
        for the caller to await before it exits."""
        self._interrupted = why
        tasks = [t for t in self._active_runs if not t.done()]
        for task in tasks:
            task.cancel(why)
        return tasks

    async def _rollback(
        self, action: Action, plan: Plan, ref: int, timeout: float
    ) -> Outcome | None:
        started = time.monotonic()
        rolled: Outcome | None
        try:
            async with asyncio.timeout(timeout):
                rolled = await action.rollback(plan)
        except TimeoutError:
            rolled = Outcome(False, f"rollback timed out after {policy.human_duration(timeout)}")
        except ActionFailed as exc:
            rolled = Outcome(False, f"rollback failed: {exc}", exc.details)
        except Exception as exc:
            log.exception("%s %s rollback raised", action.family, action.target)
            rolled = Outcome(False, f"rollback failed: {_describe(exc)}")
        if rolled is None:
            result: dict[str, Any] = {"ok": False, "status": "none"}
            reason: str | None = f"{action.family} cannot roll back: nothing was undone"
        else:
            result = {
                "ok": rolled.ok,
                "status": "done" if rolled.ok else "failed",
                "message": rolled.message,
                **({"details": dict(rolled.details)} if rolled.details else {}),
            }
            reason = None
        self._audit_safely(
            "rollback",
            action,
            ref=ref,
            result=result,
            reason=reason,
            duration=time.monotonic() - started,
            sync=True,
        )
        return rolled

    def _audit_safely(self, phase: str, action: Action, **fields: Any) -> int:
        """After the intent, the action has happened: a failed write must not hide the result.
        The intent then stays pending, which is the truth."""
        try:
            return self._record(phase, action, **fields).seq
        except AuditError as exc:
            log.error("%s (the %s of seq %s is not recorded)", exc, phase, fields.get("ref"))
            return 0

    # -- after a crash --------------------------------------------------------------------------

    def pending(self) -> list[AuditRecord]:
        """Intents with no outcome or rollback whose process is gone: a process died mid-action.
        Intents of actions still running in another live process are left out."""
        intents: dict[int, AuditRecord] = {}
        for rec in self.audit.records():
            if rec.ref is None:
                continue
            if rec.phase == "intent":
                intents[rec.ref] = rec
            elif rec.phase in ("outcome", "rollback"):
                intents.pop(rec.ref, None)
        return [r for r in sorted(intents.values(), key=lambda r: r.seq) if not self._alive(r)]

    def _alive(self, intent: AuditRecord) -> bool:
        info = intent.result or {}
        pid = info.get("pid")
        keys = info.get("locks") or ([intent.target] if intent.target else [])
        if not isinstance(pid, int) or not keys:
            return False
        if pid != os.getpid():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                pass  # alive, someone else's
        # Alive; is it still holding the lock it took for this intent? (pids get reused)
        with contextlib.suppress(OSError, ValueError):
            import json

            held = json.loads(lock_path(self.state_dir, str(keys[0])).read_bytes() or b"{}")
            return isinstance(held, dict) and held.get("pid") == pid
        return False

    def acknowledge(self, seq: int, note: str = "") -> AuditRecord:
        """Close a pending intent (by its seq) with an "abandoned" outcome. ValueError if `seq`
        is not a pending intent."""
        for rec in self.pending():
            if rec.seq == seq:
                return self.audit.append(
                    "outcome",
                    who=self.who,
                    action=rec.action,
                    target=rec.target,
                    ref=rec.ref,
                    result={"ok": False, "status": "abandoned", "intent": seq},
                    reason=note or "acknowledged: the process running it died mid-action",
                )
        raise ValueError(f"seq {seq} is not a pending intent (see `hlcon audit pending`)")


CHECK_FIRST: dict[str, str] = {
    "container": "whether the container runs (`hlcon status`, the containers pane): the engine "
    "may have stopped it and not started it again",
    "containers": "whether each container runs (`hlcon status`, the containers pane)",
    "service": "the unit's state (`systemctl status UNIT` on its host)",
    "vpn": "the interface's peers (`wg show`) against its peers_file: a half-done change may be "
    "live and not saved, or saved and not live",
    "backup.restore": "the partly restored files in the target, and stale restic locks "
    "(`hlcon do unlock repo:NAME`)",
    "backup": "stale restic locks on the repository (`hlcon do unlock repo:NAME`)",
    "cert": "the certificate served and the renew tool's files",
}


def interrupted_reason(intent: AuditRecord, asked: str | None = None) -> str:
    """Why a target with a pending intent refuses: what died, what to check, how to close it.
    `asked`: the target as the refused action spelled it."""
    family = intent.action or "an action"
    check = CHECK_FIRST.get(family) or CHECK_FIRST.get(family.split(".", 1)[0], "its state")
    pid = (intent.result or {}).get("pid")
    died = f" (pid {pid} died mid-action)" if isinstance(pid, int) else ""
    same = "" if asked in (None, intent.target) else f" — the same target as {asked}"
    return (
        f"{family} on {intent.target} never finished: its intent (seq {intent.seq}, "
        f"{intent.time}) has no outcome{died}{same}. Check first {check}; then "
        f"`hlcon audit ack {intent.seq}` closes it (the audit pane offers the same)"
    )


def _cancel_reason(exc: asyncio.CancelledError) -> str | None:
    """The message a cancel carries (`task.cancel("interrupted by SIGTERM")`), if any."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], str) and exc.args[0] else None


async def _settle(calls: inflight.Scope, progress: Progress) -> float | None:
    """Wait until the blocking calls the action started have ended; None if none was running,
    else how long that took (a cancel does not cut this wait short)."""
    running = calls.running
    if not running:
        return None
    began = time.monotonic()
    progress(
        None,
        f"waiting for {running} engine call{'s' if running != 1 else ''} still running to end "
        "(the target stays locked until then)",
    )
    await calls.settle()
    return time.monotonic() - began


def _safe_progress(progress: Progress) -> Progress:
    """A progress sink that cannot fail the action (a broken UI callback is logged, not raised)."""

    def call(fraction: float | None, message: str) -> None:
        try:
            progress(fraction, message)
        except Exception:
            log.exception("progress callback raised")

    return call


async def _shielded(coro: Any) -> Outcome | None:
    """Run `coro` to the end even if the caller is cancelled (again) meanwhile."""
    task: asyncio.Task[Outcome | None] = asyncio.ensure_future(coro)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                return task.result()
            continue
