"""Container actions: restart, start, stop one container; restart a set of them.

Targets: `container:NAME@ENDPOINT` (ENDPOINT defaults to this machine's name) and, for the bulk
restart, `containers:GLOB@ENDPOINT` or `containers:selection@ENDPOINT` with params
{"names": [...]} (the TUI's filtered rows). Names are looked up exactly among the names the
engine reports; a glob is matched in Python against those names — nothing typed reaches a shell.

The Docker SDK blocks, so every call runs in a thread (lab.containers.DockerEndpoint.call).
Verification re-reads the container: a new StartedAt and State.Running — and, where it has a
healthcheck, a passing check that ran after the new start (waited for, within a bound). An engine
that runs no check at all in that time (podman without a systemd timer: health stays "starting")
has not evaluated it: the restart passes with that note; a check that ran and failed fails it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

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
    Target,
    no_progress,
)
from actions.maintenance import canonical_host
from actions.registry import register
from lab.containers import DockerEndpoint, endpoints, find_container, list_names, match_names
from lab.containers import parse_time as _parse_time
from lab.poller import ReadError

if TYPE_CHECKING:
    from lab.wiring import Lab

JSONDict = dict[str, Any]

STOP_TIMEOUT = 10  # seconds the engine waits after SIGTERM before SIGKILL (Docker's default)
RUNNING_WAIT = 30.0  # how long verify waits for the container to be running again
HEALTH_WAIT = 60.0  # … and for a passing healthcheck after the new start
POLL = 0.25


def _endpoint(action: Action) -> DockerEndpoint:
    where = action.target.where or action.lab.local_name
    try:
        return endpoints(action.lab).get(where)
    except LookupError as exc:
        raise ActionFailed(str(exc)) from None


def container_identity(action: Action, endpoint_name: str, container_ids: list[str]) -> Identity:
    """One key per container: its full ID, however the target was spelled. The ID is the
    engine's 256-bit random name for one container, so every endpoint reaching that engine (an
    alias on the same socket, a tcp:// and a unix:// URL, container:X and containers:X) sees the
    same key. (Asking the engine who it is would not help: podman's /info ID is new on every
    call.)"""
    host = canonical_host(action.lab.config, endpoint_name)
    return Identity(tuple(f"container:{cid}" for cid in container_ids), (host,))


def _stop_timeout(inspect: Mapping[str, Any]) -> int:
    value = (inspect.get("Config") or {}).get("StopTimeout")
    return int(value) if isinstance(value, int) and 0 <= value <= 600 else STOP_TIMEOUT


def _has_healthcheck(inspect: Mapping[str, Any]) -> bool:
    test = (inspect.get("Config") or {}).get("Healthcheck") or {}
    cmd = test.get("Test") if isinstance(test, Mapping) else None
    if isinstance(cmd, list) and cmd and cmd[0] != "NONE":
        return True
    state = inspect.get("State") or {}
    health = state.get("Health") or state.get("Healthcheck") or {}
    return bool(isinstance(health, Mapping) and health.get("Status"))


def _name(inspect: Mapping[str, Any]) -> str:
    return str(inspect.get("Name") or inspect["Id"][:12]).lstrip("/")


def _started(inspect: Mapping[str, Any]) -> str:
    return str((inspect.get("State") or {}).get("StartedAt") or "")


def healthy_since(inspect: Mapping[str, Any], start: datetime | None) -> bool | None:
    """True: the latest healthcheck passed and ran after `start`; False: it failed after start;
    None: no check has run since `start` yet."""
    state = inspect.get("State") or {}
    health = state.get("Health") or state.get("Healthcheck") or {}
    log = health.get("Log") or []
    if not log:
        return None
    last = log[-1]
    ran = _parse_time(last.get("Start"))
    if start is not None and (ran is None or ran < start):
        return None
    return last.get("ExitCode") == 0 and health.get("Status") == "healthy"


async def _inspect(endpoint: DockerEndpoint, cid: str) -> JSONDict:
    try:
        data: JSONDict = await endpoint.call(lambda api: api.inspect_container(cid))
    except ReadError as exc:
        raise ActionFailed(f"cannot read container {cid[:12]} on {endpoint.name}: {exc}") from exc
    return data


NOT_EVALUATED = "not evaluated"  # Outcome.details["health"] when the engine ran no check
_NS = 1e-9


def _health_wait(inspect: Mapping[str, Any]) -> float:
    """How long to wait for the first check after a start: the engine runs one within its
    start period plus an interval; two intervals and a margin, at most HEALTH_WAIT. Docker's
    default interval (30 s) where none is set (0 / absent)."""
    check = (inspect.get("Config") or {}).get("Healthcheck") or {}
    interval = check.get("Interval") if isinstance(check, Mapping) else None
    start = check.get("StartPeriod") if isinstance(check, Mapping) else None
    every = interval * _NS if isinstance(interval, int) and interval > 0 else 30.0
    grace = start * _NS if isinstance(start, int) and start > 0 else 0.0
    return min(HEALTH_WAIT, grace + 2 * every + 5.0)


def _checks_since(inspect: Mapping[str, Any], start: datetime | None) -> int:
    state = inspect.get("State") or {}
    health = state.get("Health") or state.get("Healthcheck") or {}
    count = 0
    for entry in health.get("Log") or ():
        ran = _parse_time(entry.get("Start")) if isinstance(entry, Mapping) else None
        if start is None or (ran is not None and ran >= start):
            count += 1
    return count


SAY_EVERY = 5  # seconds between progress lines while verify waits (`hlcon do` prints each)


class _Waiting:
    """Progress while verify waits: what it waits for and for how long, every SAY_EVERY s,
    with the share of the bound gone (the TUI's bar; the CLI's percentage)."""

    def __init__(self, progress: Progress, what: str, bound: float) -> None:
        self.progress, self.what, self.bound = progress, what, bound
        self.began = time.monotonic()
        self._said = -1

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def expired(self) -> bool:
        return self.elapsed > self.bound

    def say(self) -> None:
        second = int(self.elapsed) // SAY_EVERY * SAY_EVERY
        if second != self._said:
            self._said = second
            fraction = min(1.0, self.elapsed / self.bound) if self.bound > 0 else None
            self.progress(fraction, f"{self.what}, {second} s of {self.bound:g} s")


async def wait_started(
    endpoint: DockerEndpoint,
    cid: str,
    old_started: str,
    healthcheck: bool,
    progress: Progress = no_progress,
) -> tuple[JSONDict, str | None]:
    """Wait (bounded) until the container runs with a StartedAt other than `old_started` and,
    with a healthcheck, a check since that start passed. Returns the last inspect and a note
    (the healthcheck was not evaluated: no check ran in the time the engine should have run
    one — podman without a systemd timer). Raises ActionFailed with what it saw: not running,
    unhealthy, or checks that ran and did not pass."""
    inspect = await _inspect(endpoint, cid)
    waiting = _Waiting(progress, f"waiting for {_name(inspect)} to run again", RUNNING_WAIT)
    while True:
        state = inspect.get("State") or {}
        if state.get("Running") and _started(inspect) != old_started:
            break
        if waiting.expired():
            raise ActionFailed(
                f"{_name(inspect)} is {state.get('Status')!r} "
                f"(StartedAt {_started(inspect) or 'never'}); expected running with a new start",
                {"state": state.get("Status"), "started_at": _started(inspect)},
            )
        waiting.say()
        await asyncio.sleep(POLL)
        inspect = await _inspect(endpoint, cid)
    if not healthcheck:
        return inspect, None
    start = _parse_time(_started(inspect))
    bound = _health_wait(inspect)
    waiting = _Waiting(progress, f"waiting for the healthcheck of {_name(inspect)}", bound)
    while True:
        verdict = healthy_since(inspect, start)
        if verdict:
            return inspect, None
        status = ((inspect.get("State") or {}).get("Health") or {}).get("Status")
        details = {"health": status, "started_at": _started(inspect)}
        if verdict is False and status == "unhealthy":
            raise ActionFailed(
                f"{_name(inspect)} restarted but its healthcheck fails (unhealthy)", details
            )
        if waiting.expired():
            ran = _checks_since(inspect, start)
            if ran == 0:
                # Not a failure of the container: nothing evaluated the check. Say so.
                return inspect, (
                    f"healthcheck not evaluated: the engine ran no check in the {bound:g} s "
                    f"after the start (health still {status!r})"
                )
            raise ActionFailed(
                f"{_name(inspect)} runs but {ran} healthcheck(s) since the start did not pass "
                f"within {bound:g} s (health {status!r})",
                details,
            )
        waiting.say()
        await asyncio.sleep(POLL)
        inspect = await _inspect(endpoint, cid)


@dataclass(frozen=True)
class ContainerRef:
    """One container exactly as planned: its id (what execute acts on, whatever name was typed)
    and what verify compares against (the StartedAt before, whether it has a healthcheck)."""

    id: str
    name: str
    endpoint: str
    started_at: str
    healthcheck: bool
    stop_timeout: int
    state: str


@dataclass(frozen=True)
class BulkRestartSpec:
    endpoint: str
    containers: tuple[ContainerRef, ...]


def _ref(endpoint: str, inspect: Mapping[str, Any]) -> ContainerRef:
    return ContainerRef(
        id=str(inspect["Id"]),
        name=_name(inspect),
        endpoint=endpoint,
        started_at=_started(inspect),
        healthcheck=_has_healthcheck(inspect),
        stop_timeout=_stop_timeout(inspect),
        state=str((inspect.get("State") or {}).get("Status", "?")),
    )


class _OneContainer(Action[ContainerRef]):
    """Shared by the single-container families: look the container up exactly, plan one call."""

    kind: ClassVar[str] = "container"
    api_call: ClassVar[str]  # "POST /containers/{id}/restart"
    blast: ClassVar[BlastRadius] = BlastRadius.SINGLE
    # execute()'s progress sink, kept for verify() (whose contract has none): the wait for the
    # container and its healthcheck is most of a restart's time, and the user sees what it is.
    progress: Progress = staticmethod(no_progress)

    @property
    def endpoint_name(self) -> str:
        return self.target.where or self.lab.local_name

    @property
    def host(self) -> str:
        return self.endpoint_name

    @property
    def lock_keys(self) -> tuple[str, ...]:
        return (f"container:{self.target.name}@{self.endpoint_name}",)

    async def identity(self, plan: Plan[ContainerRef]) -> Identity:
        return container_identity(self, self.endpoint_name, [plan.data.id])

    async def _lookup(self) -> tuple[DockerEndpoint, JSONDict]:
        endpoint = _endpoint(self)
        try:
            inspect = await find_container(endpoint, self.target.name)
        except ReadError as exc:
            raise ActionFailed(str(exc)) from exc
        return endpoint, inspect

    def confirmation(self, name: str) -> Confirmation:
        return Confirmation(f"{self.verb.capitalize()} container {name} on {self.endpoint_name}?")

    def describe(self, name: str, cid: str, stop_timeout: int) -> str:
        call = self.api_call.format(id=cid[:12], t=stop_timeout)
        return f"{self.verb} container {name} ({cid[:12]}) on {self.endpoint_name}: API {call}"

    def notes(self, inspect: Mapping[str, Any]) -> tuple[str, ...]:
        return ()

    def cost(self, stop_timeout: int) -> str:
        return ""

    async def plan(self) -> Plan[ContainerRef]:
        endpoint, inspect = await self._lookup()
        ref = _ref(endpoint.name, inspect)
        cid, name, timeout, state = ref.id, ref.name, ref.stop_timeout, ref.state
        return Plan(
            family=self.family,
            target=Target("container", name, self.endpoint_name),
            summary=f"{self.verb.capitalize()} container {name} on {self.endpoint_name} "
            f"(now {state})",
            steps=(Step(self.describe(name, cid, timeout), self.endpoint_name),),
            blast_radius=self.blast,
            confirmation=self.confirmation(name),
            cost=self.cost(timeout),
            notes=self.notes(inspect),
            data=ref,
        )


async def _start_if_left_down(action: _OneContainer, plan: Plan[ContainerRef]) -> Outcome | None:
    """Rollback of restart and stop: start the container again if it was running when planned
    and is not now. None (nothing to undo) when it was not running or still runs."""
    if plan.data.state != "running":
        return None
    endpoint, cid = _endpoint(action), plan.data.id
    if ((await _inspect(endpoint, cid)).get("State") or {}).get("Running"):
        return None
    await _call(endpoint, lambda api: api.start(cid), f"start {cid[:12]}")
    return Outcome(True, f"{plan.data.name} was left down; started again")


async def _verify_started(action: _OneContainer, plan: Plan[ContainerRef], word: str) -> Outcome:
    """Restart and start both end the same way: running with a new StartedAt (and healthy)."""
    inspect, note = await wait_started(
        _endpoint(action),
        plan.data.id,
        plan.data.started_at,
        plan.data.healthcheck,
        action.progress,
    )
    return _started_outcome(plan.data, inspect, word, note)


@register
class ContainerRestart(_OneContainer):
    family = "container.restart"
    verb = "restart"
    api_call = "POST /containers/{id}/restart?t={t}"

    def cost(self, stop_timeout: int) -> str:
        return f"downtime while it stops (up to {stop_timeout} s) and starts again"

    async def execute(self, plan: Plan[ContainerRef], progress: Progress) -> Outcome:
        endpoint, cid, t = _endpoint(self), plan.data.id, plan.data.stop_timeout
        self.progress = progress
        progress(None, f"restarting {plan.data.name}")
        await _call(endpoint, lambda api: api.restart(cid, timeout=t), f"restart {cid[:12]}")
        return Outcome(True, f"restart of {plan.data.name} requested")

    async def verify(self, plan: Plan[ContainerRef], outcome: Outcome) -> Outcome:
        return await _verify_started(self, plan, "restarted")

    async def rollback(self, plan: Plan[ContainerRef]) -> Outcome | None:
        """A restart is stop + start inside the engine; when the start half fails the container
        is left down. Bring it back if it was running before; a running one is left alone."""
        return await _start_if_left_down(self, plan)


@register
class ContainerStart(_OneContainer):
    family = "container.start"
    verb = "start"
    api_call = "POST /containers/{id}/start"

    def notes(self, inspect: Mapping[str, Any]) -> tuple[str, ...]:
        if (inspect.get("State") or {}).get("Running"):
            return ("it is already running: start changes nothing and verify will fail",)
        return ()

    async def execute(self, plan: Plan[ContainerRef], progress: Progress) -> Outcome:
        endpoint, cid = _endpoint(self), plan.data.id
        self.progress = progress
        progress(None, f"starting {plan.data.name}")
        await _call(endpoint, lambda api: api.start(cid), f"start {cid[:12]}")
        return Outcome(True, f"start of {plan.data.name} requested")

    async def verify(self, plan: Plan[ContainerRef], outcome: Outcome) -> Outcome:
        return await _verify_started(self, plan, "started")


@register
class ContainerStop(_OneContainer):
    family = "container.stop"
    verb = "stop"
    api_call = "POST /containers/{id}/stop?t={t}"
    blast = BlastRadius.DISRUPTIVE

    def confirmation(self, name: str) -> Confirmation:
        return Confirmation(
            f"Stop container {name} on {self.endpoint_name}: type its name to confirm", name
        )

    def cost(self, stop_timeout: int) -> str:
        return "the container stays down until started again"

    async def execute(self, plan: Plan[ContainerRef], progress: Progress) -> Outcome:
        endpoint, cid, t = _endpoint(self), plan.data.id, plan.data.stop_timeout
        progress(None, f"stopping {plan.data.name}")
        await _call(endpoint, lambda api: api.stop(cid, timeout=t), f"stop {cid[:12]}")
        return Outcome(True, f"stop of {plan.data.name} requested")

    async def verify(self, plan: Plan[ContainerRef], outcome: Outcome) -> Outcome:
        endpoint, cid = _endpoint(self), plan.data.id
        deadline = time.monotonic() + RUNNING_WAIT
        while True:
            inspect = await _inspect(endpoint, cid)
            state = inspect.get("State") or {}
            if not state.get("Running") and state.get("Status") in ("exited", "stopped", "dead"):
                return Outcome(
                    True,
                    f"{plan.data.name} stopped (exit code {state.get('ExitCode')})",
                    {"state": state.get("Status"), "exit_code": state.get("ExitCode")},
                )
            if time.monotonic() > deadline:
                raise ActionFailed(f"{plan.data.name} is still {state.get('Status')!r}")
            await asyncio.sleep(POLL)

    async def rollback(self, plan: Plan[ContainerRef]) -> Outcome | None:
        """A stop that did not verify: start it again if it was running before."""
        return await _start_if_left_down(self, plan)


@register
class ContainerBulkRestart(Action[BulkRestartSpec]):
    """Restart several containers of one endpoint: `containers:web-*@local` (a glob over the
    names the engine reports) or params {"names": [...]} (exact names)."""

    family = "containers.restart"
    verb = "restart"
    kind: ClassVar[str] = "containers"
    progress: Progress = staticmethod(no_progress)  # execute()'s sink, for verify()

    def __init__(self, target: Target, lab: Lab, names: tuple[str, ...] | None = None) -> None:
        super().__init__(target, lab)
        self.names = names
        self._planned: tuple[str, ...] = ()

    @classmethod
    def create(cls, target: Target, lab: Lab, params: Mapping[str, Any]) -> Action:
        names = params.get("names")
        if names is None:
            return cls(target, lab)
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise ValueError('params "names" must be a list of container names')
        if not names:
            raise ValueError("no containers selected to restart")
        return cls(target, lab, tuple(dict.fromkeys(names)))

    @property
    def endpoint_name(self) -> str:
        return self.target.where or self.lab.local_name

    @property
    def host(self) -> str:
        return self.endpoint_name

    @property
    def lock_keys(self) -> tuple[str, ...]:
        # Known once planned (the runner plans before it locks): one lock per container, so a
        # single restart of one of them elsewhere waits for this.
        if self._planned:
            return tuple(f"container:{n}@{self.endpoint_name}" for n in self._planned)
        return (str(self.target),)

    async def identity(self, plan: Plan[BulkRestartSpec]) -> Identity:
        # each member's own identity: a bulk restart takes every member's lock and counts
        # against every member's rate limit
        ids = [item.id for item in plan.data.containers]
        return container_identity(self, self.endpoint_name, ids)

    async def plan(self) -> Plan[BulkRestartSpec]:
        endpoint = _endpoint(self)
        try:
            by_name = await list_names(endpoint)
        except ReadError as exc:
            raise ActionFailed(str(exc)) from exc
        if self.names is not None:
            missing = [n for n in self.names if n not in by_name]
            if missing:
                raise ActionFailed(
                    f"no container named {', '.join(map(repr, missing))} on {endpoint.name}"
                )
            chosen = list(self.names)
        else:
            chosen = match_names(by_name, self.target.name)
            if not chosen:
                raise ActionFailed(f"no container on {endpoint.name} matches {self.target.name!r}")
        inspects = [await _inspect(endpoint, by_name[n]) for n in chosen]
        self._planned = tuple(chosen)
        count = len(chosen)
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"Restart {count} container{'s' if count != 1 else ''} on {endpoint.name}: "
            + ", ".join(chosen),
            steps=tuple(
                Step(
                    f"restart container {_name(i)} ({i['Id'][:12]}) on {endpoint.name}: API "
                    f"POST /containers/{i['Id'][:12]}/restart?t={_stop_timeout(i)}",
                    endpoint.name,
                )
                for i in inspects
            ),
            blast_radius=BlastRadius.BULK,
            confirmation=Confirmation(
                f"Restart {count} containers on {endpoint.name}: type {count} to confirm",
                str(count),
            ),
            cost="each is down while it stops and starts; they restart one after another",
            data=BulkRestartSpec(endpoint.name, tuple(_ref(endpoint.name, i) for i in inspects)),
        )

    async def execute(self, plan: Plan[BulkRestartSpec], progress: Progress) -> Outcome:
        endpoint = _endpoint(self)
        self.progress = progress
        items = plan.data.containers
        for n, item in enumerate(items):
            cid, t = item.id, item.stop_timeout
            progress(n / len(items), f"restarting {item.name} ({n + 1}/{len(items)})")
            await _call(
                endpoint,
                lambda api, cid=cid, t=t: api.restart(cid, timeout=t),
                f"restart {cid[:12]}",
            )
        progress(1.0, f"restarted {len(items)} containers")
        return Outcome(True, f"restart of {len(items)} containers requested")

    async def verify(self, plan: Plan[BulkRestartSpec], outcome: Outcome) -> Outcome:
        endpoint = _endpoint(self)
        failed: dict[str, str] = {}
        unevaluated: list[str] = []
        for item in plan.data.containers:
            try:
                _, note = await wait_started(
                    endpoint, item.id, item.started_at, item.healthcheck, self.progress
                )
            except ActionFailed as exc:
                failed[item.name] = str(exc)
            else:
                if note is not None:
                    unevaluated.append(item.name)
        total = len(plan.data.containers)
        if failed:
            raise ActionFailed(f"{len(failed)} of {total} did not come back: {failed}", failed)
        note = (
            f"; healthcheck not evaluated (the engine ran no check): {', '.join(unevaluated)}"
            if unevaluated
            else ""
        )
        return Outcome(
            True,
            f"{total} containers restarted and running{note}",
            {"health_not_evaluated": unevaluated} if unevaluated else {},
        )


async def _call(endpoint: DockerEndpoint, fn: Any, what: str) -> None:
    try:
        await endpoint.call(fn)
    except ReadError as exc:
        raise ActionFailed(f"{what} on {endpoint.name} failed: {exc}") from exc


def _started_outcome(
    ref: ContainerRef, inspect: Mapping[str, Any], done: str, note: str | None = None
) -> Outcome:
    state = inspect.get("State") or {}
    health = (state.get("Health") or {}).get("Status") or None
    details: dict[str, Any] = {
        "started_at": _started(inspect),
        "previous_started_at": ref.started_at,
    }
    if note is not None:
        details["health"] = NOT_EVALUATED
    elif health:
        details["health"] = health
    return Outcome(
        True,
        f"{ref.name} {done}: running since {_started(inspect)}"
        + (f"; {note}" if note else f", {health}" if health else ""),
        details,
    )
