"""Service restart / start / stop through systemctl, on a host's configured services only.

Targets: service:UNIT@HOST (HOST a [[hosts]] name, or local). The allow-list is the host's
`services = [...]`; anything else is refused by `allowed()`, saying where to add it.
Verification reads `systemctl show`: restart must bring the unit back active with a new
InvocationID (and says the new MainPID); start must leave it active; stop inactive.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import ClassVar

from actions.base import (
    Action,
    ActionFailed,
    BlastRadius,
    Confirmation,
    Identity,
    Outcome,
    Plan,
    Progress,
    Step,
)
from actions.maintenance import canonical_host
from actions.registry import register
from lab.execute import Executor
from lab.hosts import parse_unit_properties, unit_name

parse_show = parse_unit_properties  # verify reads the reader's own systemctl show parser

PROPS = "Id,LoadState,ActiveState,SubState,MainPID,InvocationID"
VERIFY_WITHIN = 30.0
READ_TIMEOUT = 15.0


@dataclass(frozen=True)
class UnitBefore:
    """The unit as planned: what verify compares against (a new run has a new InvocationID or
    MainPID) and rollback reads (a stop restarts only a unit that was active)."""

    active_state: str
    main_pid: str
    invocation_id: str


@dataclass(frozen=True)
class ServiceChange:
    unit: str
    before: UnitBefore


class ServiceAction(Action[ServiceChange]):
    """Shared by restart, start and stop."""

    kind: ClassVar[str] = "service"
    systemctl_verb: ClassVar[str]
    want_active: ClassVar[bool] = True

    @property
    def unit(self) -> str:
        return unit_name(self.target.name)

    async def identity(self, plan: Plan[ServiceChange]) -> Identity:
        # nginx and nginx.service, @local and @<this machine's name>: one unit on one host
        host = canonical_host(self.lab.config, self.host)
        return Identity((f"service:{self.unit}@{host}",), (host,))

    def _configured(self) -> tuple[tuple[str, ...], str]:
        """(the host's services, where they are configured) — for the allow-list."""
        config = self.lab.config
        if self.lab.is_local(self.host):
            return config.local.services, f"[local] in {config.source}"
        for host in config.hosts:
            if host.name == self.host:
                return host.services, f"[[hosts]] {host.name} in {config.source}"
        return (), f"[[hosts]] (no host named {self.host!r}) in {config.source}"

    def allowed(self) -> str | None:
        services, where = self._configured()
        if any(unit_name(s) == self.unit for s in services):
            return self._blocked()
        return (
            f"{self.unit} is not among {self.host}'s configured services; to allow it, add "
            f'"{self.target.name}" to services = [...] in {where}'
        )

    def _blocked(self) -> str | None:
        """A host whose SSH key changed takes no actions until a human has looked."""
        if self.lab.is_local(self.host):
            return None
        from lab import ssh

        blocked = ssh.ssh_host(self.lab, self.host).blocked
        return str(blocked) if blocked is not None else None

    def _executor(self) -> Executor:
        return self.lab.executor(self.host)

    async def read_unit(self) -> dict[str, str]:
        result = await self._executor().run(
            ["systemctl", "show", "--no-pager", "-p", PROPS, "--", self.unit],
            timeout=READ_TIMEOUT,
        )
        if not result.ok:
            raise ActionFailed(f"systemctl show {self.unit} on {self.host}: {result.brief()}")
        try:
            return parse_show(result.stdout)
        except ValueError as exc:
            raise ActionFailed(str(exc)) from None

    def _argv(self) -> tuple[str, ...]:
        return ("systemctl", self.systemctl_verb, "--", self.unit)

    def _confirmation(self) -> Confirmation:
        return Confirmation(f"{self.verb.capitalize()} {self.unit} on {self.host}?")

    def _radius(self) -> BlastRadius:
        return BlastRadius.SINGLE

    async def plan(self) -> Plan[ServiceChange]:
        before = await self.read_unit()
        if before.get("LoadState") == "not-found":
            raise ActionFailed(f"{self.unit} does not exist on {self.host}")
        pid = before.get("MainPID", "0")
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"{self.verb.capitalize()} {self.unit} on {self.host} "
            f"(now {before['ActiveState']}/{before.get('SubState', '?')}, MainPID {pid})",
            steps=(
                Step(
                    f"systemctl {self.systemctl_verb} {self.unit} on {self.host}",
                    self.host,
                    self._argv(),
                ),
            ),
            blast_radius=self._radius(),
            confirmation=self._confirmation(),
            reversible=False,
            cost="the service is down while it restarts" if self.verb != "start" else "",
            data=ServiceChange(
                self.unit,
                UnitBefore(
                    before.get("ActiveState", ""),
                    before.get("MainPID", ""),
                    before.get("InvocationID", ""),
                ),
            ),
        )

    async def execute(self, plan: Plan[ServiceChange], progress: Progress) -> Outcome:
        progress(None, f"systemctl {self.systemctl_verb} {self.unit}")
        result = await self._executor().run(list(plan.steps[0].argv or ()), timeout=VERIFY_WITHIN)
        if not result.ok:
            raise ActionFailed(
                f"systemctl {self.systemctl_verb} {self.unit} on {self.host} failed: "
                f"{result.brief()}",
                {"returncode": result.returncode},
            )
        return Outcome(True, f"systemctl {self.systemctl_verb} {self.unit} exited 0")

    def _settled(self, before: UnitBefore, now: dict[str, str]) -> bool:
        active = now.get("ActiveState") == "active"
        return active if self.want_active else now.get("ActiveState") in ("inactive", "failed")

    async def verify(self, plan: Plan[ServiceChange], outcome: Outcome) -> Outcome:
        before = plan.data.before
        deadline = time.monotonic() + VERIFY_WITHIN
        now = await self.read_unit()
        while not self._settled(before, now) and time.monotonic() < deadline:
            await asyncio.sleep(0.25)  # activating / deactivating: look again
            now = await self.read_unit()
        state = f"{now.get('ActiveState')}/{now.get('SubState')}"
        if not self._settled(before, now):
            raise ActionFailed(
                f"{self.unit} on {self.host} is {state} after {self.verb}",
                {"state": state, "main_pid": now.get("MainPID")},
            )
        return Outcome(
            True,
            f"{self.unit} on {self.host} is {state}, MainPID {now.get('MainPID')}",
            {"state": state, "main_pid": int(now.get("MainPID") or 0)},
        )


@register
class ServiceRestart(ServiceAction):
    family = "service.restart"
    verb = "restart"
    systemctl_verb = "restart"

    def _settled(self, before: UnitBefore, now: dict[str, str]) -> bool:
        # A new InvocationID proves a new run even for units whose MainPID is reused or 0.
        return now.get("ActiveState") == "active" and (
            now.get("InvocationID") != before.invocation_id or now.get("MainPID") != before.main_pid
        )

    async def verify(self, plan: Plan[ServiceChange], outcome: Outcome) -> Outcome:
        done = await super().verify(plan, outcome)
        old = plan.data.before.main_pid
        return Outcome(True, f"{done.message} (was {old})", {**done.details, "old_pid": int(old)})


@register
class ServiceStart(ServiceAction):
    family = "service.start"
    verb = "start"
    systemctl_verb = "start"


@register
class ServiceStop(ServiceAction):
    family = "service.stop"
    verb = "stop"
    systemctl_verb = "stop"
    want_active = False

    def _radius(self) -> BlastRadius:
        return BlastRadius.DISRUPTIVE

    def _confirmation(self) -> Confirmation:
        return Confirmation(
            f"Stop {self.unit} on {self.host}? It stays down. Type {self.target.name} to confirm.",
            expect=self.target.name,
        )

    async def rollback(self, plan: Plan[ServiceChange]) -> Outcome | None:
        if plan.data.before.active_state != "active":
            return None
        result = await self._executor().run(
            ["systemctl", "start", "--", self.unit], timeout=VERIFY_WITHIN
        )
        return Outcome(result.ok, f"systemctl start {self.unit}: exit {result.returncode}")
