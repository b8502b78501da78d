"""Test-only action families that make real changes to files, for the runner's tests.

`file:NAME@local` is the file NAME inside the directory given as the `dir` parameter.

    write   writes `text` to it (rollback restores the old bytes, or removes a new file).
            Knobs, all strings as the CLI's --param gives them:
              fail=execute   execute writes garbage, then raises ActionFailed
              fail=verify    execute writes, verify reports the content wrong
              fail=crash     execute raises a plain RuntimeError (a bug in a family)
              sleep=SECONDS  execute sleeps first (kill -9 and timeout tests)
              marker=PATH    execute touches PATH when it begins (so a test knows it started)
              secret=VALUE   put VALUE into the outcome (redaction tests)
              timeout=SECONDS the plan's timeout
              rollback=fail  rollback raises ActionFailed
    append  appends `text`; a family that cannot roll back.
    badplan plan() raises.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actions.base import (
    Action,
    ActionFailed,
    BlastRadius,
    Confirmation,
    Outcome,
    Plan,
    Progress,
    Step,
    Target,
)
from actions.registry import register
from lab.wiring import Lab


@dataclass(frozen=True)
class FileText:
    """What a file family writes, and (for write) what the file held before (None: absent)."""

    text: str
    old: str | None = None


class _FileAction(Action[FileText]):
    def __init__(self, target: Target, lab: Lab, params: Mapping[str, Any]) -> None:
        super().__init__(target, lab)
        if "dir" not in params:
            raise ValueError(f"{self.verb} {target} needs --param dir=DIR")
        if "/" in target.name or target.name in (".", ".."):
            raise ValueError(f"file name {target.name!r} must be a plain name")
        self.params = dict(params)
        self.path = Path(params["dir"]) / target.name

    @classmethod
    def create(cls, target: Target, lab: Lab, params: Mapping[str, Any]) -> Action:
        return cls(target, lab, params)

    def knob(self, key: str, default: str = "") -> str:
        return str(self.params.get(key, default))


@register
class FileWrite(_FileAction):
    family = "file.write"
    verb = "write"

    async def plan(self) -> Plan[FileText]:
        text = self.knob("text", "hello\n")
        old = self.path.read_text() if self.path.exists() else None
        diff = "".join(
            difflib.unified_diff(
                (old or "").splitlines(True), text.splitlines(True), str(self.path), str(self.path)
            )
        )
        overwrite = old is not None
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"Write {len(text)} bytes to {self.path}",
            steps=(Step(f"write {self.path}", "local", changes=(str(self.path),)),),
            blast_radius=BlastRadius.DISRUPTIVE if overwrite else BlastRadius.SINGLE,
            confirmation=Confirmation(f"This overwrites {self.path}.", expect=self.target.name)
            if overwrite
            else Confirmation(f"Create {self.path}?"),
            reversible=True,
            diff=diff or None,
            data=FileText(text, old),
            timeout=float(self.knob("timeout")) if self.knob("timeout") else None,
        )

    async def execute(self, plan: Plan[FileText], progress: Progress) -> Outcome:
        progress(0.0, f"writing {self.path}")
        if self.knob("marker"):
            Path(self.knob("marker")).write_text("started\n")
        if self.knob("sleep"):
            await asyncio.sleep(float(self.knob("sleep")))
        secret = self.knob("secret")
        if self.knob("fail") == "execute":
            self.path.write_text("GARBAGE\n")
            raise ActionFailed("the disk said no", {"token": secret} if secret else {})
        if self.knob("fail") == "crash":
            raise RuntimeError(f"family bug while writing {self.path}")
        self.path.write_text(plan.data.text)
        progress(1.0, "written")
        details: dict[str, object] = {"bytes": len(plan.data.text)}
        if secret:
            details["password"] = secret
            details["note"] = f"connected with {secret} to the store"
        return Outcome(True, f"wrote {self.path}" + (f" using {secret}" if secret else ""), details)

    async def verify(self, plan: Plan[FileText], outcome: Outcome) -> Outcome:
        if self.knob("fail") == "verify":
            return Outcome(False, f"{self.path} does not hold what was written")
        if self.path.read_text() != plan.data.text:
            raise ActionFailed(f"{self.path} does not hold what was written")
        return Outcome(True, outcome.message, outcome.details)

    async def rollback(self, plan: Plan[FileText]) -> Outcome | None:
        if self.knob("rollback") == "fail":
            raise ActionFailed("rollback could not restore the file")
        old = plan.data.old
        if old is None:
            self.path.unlink(missing_ok=True)
            return Outcome(True, f"removed {self.path}")
        self.path.write_text(str(old))
        return Outcome(True, f"restored {self.path}")


@register
class FileAppend(_FileAction):
    family = "file.append"
    verb = "append"

    async def plan(self) -> Plan[FileText]:
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"Append to {self.path}",
            steps=(Step(f"append to {self.path}", "local", changes=(str(self.path),)),),
            blast_radius=BlastRadius.SINGLE,
            confirmation=Confirmation(f"Append to {self.path}?"),
            data=FileText(self.knob("text", "more\n")),
        )

    async def execute(self, plan: Plan[FileText], progress: Progress) -> Outcome:
        with self.path.open("a") as f:
            f.write(plan.data.text)
        if self.knob("fail") == "execute":
            raise ActionFailed("appended, then the remote end hung up")
        return Outcome(True, f"appended to {self.path}")

    async def verify(self, plan: Plan[FileText], outcome: Outcome) -> Outcome:
        return outcome


@register
class BadPlan(_FileAction):
    family = "file.badplan"
    verb = "badplan"

    async def plan(self) -> Plan[FileText]:
        raise ActionFailed(f"cannot read {self.path}: permission denied")

    async def execute(self, plan: Plan[FileText], progress: Progress) -> Outcome:
        raise AssertionError("never runs")

    async def verify(self, plan: Plan[FileText], outcome: Outcome) -> Outcome:
        raise AssertionError("never runs")
