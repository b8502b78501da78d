"""Action, Plan, Step, Outcome: the contract every action family fulfils.

An action never runs except through actions.runner.Runner. `plan()` reads and changes nothing;
`execute()` accepts only a Plan (the one the user confirmed); `verify()` proves the change took;
`rollback()` restores what execute changed, where that is possible. Dry-run is "show the plan and
stop" — no action has its own dry-run flag.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Generic

from typing_extensions import TypeVar

if TYPE_CHECKING:
    from lab.wiring import Lab

JSON = Any  # a JSON-serialisable value (plans and outcomes are written to the audit log)

_TARGET = re.compile(r"^(?P<kind>[a-z][a-z0-9-]*):(?P<name>[^@\s]+)(?:@(?P<where>[^@\s]+))?$")


class TargetError(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    """What an action acts on: container:jellyfin@skylab, service:nginx@fufuwuqi, repo:offsite,
    vpn:wg0@fufuwuqi, cert:fufu.land, host:fufuwuqi."""

    kind: str
    name: str
    where: str | None = None  # endpoint or host; None where the kind needs none

    @classmethod
    def parse(cls, text: str) -> Target:
        m = _TARGET.match(text.strip())
        if not m:
            raise TargetError(
                f"not a target: {text!r} (expected KIND:NAME[@WHERE], e.g. container:web@local)"
            )
        return cls(m["kind"], m["name"], m["where"])

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" + (f"@{self.where}" if self.where else "")


@dataclass(frozen=True)
class Identity:
    """What an action really acts on, whatever the user typed: the keys every lock, rate limit
    and pending-intent check uses, and the hosts whose maintenance flag applies.

    `keys` are held exclusively; `shared` keys are held shared (two restores may read one
    repository, a check that locks it exclusively may not run beside them). A key
    `path:REAL@HOST` is a directory that is written: it also excludes every path above and below
    it (an overlap), not only itself. Examples: `container:ENGINE/ID`, `vpn:wg0@local`,
    `repo:/srv/restic@local`, `path:/var/tmp/restore@local`.
    """

    keys: tuple[str, ...]
    hosts: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()

    @property
    def all_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.keys, *self.shared)))


PATH_PREFIX = "path:"


def path_key(real_path: str, host: str) -> str:
    return f"{PATH_PREFIX}{real_path}@{host}"


def split_path_key(key: str) -> tuple[str, str] | None:
    """(real path, host) of a path key, else None. The host cannot hold @; the path may."""
    if not key.startswith(PATH_PREFIX):
        return None
    path, sep, host = key[len(PATH_PREFIX) :].rpartition("@")
    return (path, host) if sep and path.startswith("/") else None


def keys_overlap(a: str, b: str) -> bool:
    """Equal keys, or two paths on one host where one lies inside the other."""
    if a == b:
        return True
    pa, pb = split_path_key(a), split_path_key(b)
    if pa is None or pb is None or pa[1] != pb[1]:
        return False
    x, y = pa[0].rstrip("/") + "/", pb[0].rstrip("/") + "/"
    return x.startswith(y) or y.startswith(x)


class BlastRadius(Enum):
    """How much can go wrong, which decides how the user confirms."""

    SINGLE = "single"  # one thing restarts or starts: Enter
    DISRUPTIVE = "disruptive"  # stops a service, overwrites data, cuts access: type the name
    BULK = "bulk"  # many targets at once: type the count


@dataclass(frozen=True)
class Confirmation:
    """What the user must answer. `expect` is None for a plain yes (Enter / --yes)."""

    prompt: str
    expect: str | None = None

    def accepts(self, answer: str | None) -> bool:
        if self.expect is None:
            return answer is not None
        return answer is not None and answer.strip() == self.expect


@dataclass(frozen=True)
class Step:
    """One thing execute() will do: a command on a host or an API call, described exactly."""

    description: str  # "restart container web (podman API POST /containers/ID/restart)"
    host: str  # where it happens
    argv: tuple[str, ...] | None = None  # the exact command, when it is one
    changes: tuple[str, ...] = ()  # files that change


PayloadT = TypeVar("PayloadT", default=Any)
"""A family's payload: the frozen dataclass execute, verify and rollback read (a container
reference, a restore spec, a peer change …). Bare `Plan` / `Action` (the runner, the TUI) mean
"any family"."""


@dataclass(frozen=True)
class Plan(Generic[PayloadT]):
    family: str  # "container.restart"
    target: Target
    summary: str  # one line: "Restart container web on local"
    steps: tuple[Step, ...]
    blast_radius: BlastRadius
    confirmation: Confirmation
    reversible: bool = False
    cost: str = ""  # "≈5 s downtime", "412 MB to write"
    diff: str | None = None  # for config edits: a unified diff
    notes: tuple[str, ...] = ()  # warnings the user should read before confirming
    timeout: float | None = None  # execute timeout; None = [actions] timeout
    timeout_from: str = ""  # where the timeout came from (a config key, or the family default)
    # What execute needs (ids, paths …), typed per family. Not in to_record(): a payload may
    # hold a secret (a new peer's private key), and the record and its hash stay as they were.
    data: PayloadT = field(kw_only=True)

    def to_record(self) -> dict[str, JSON]:
        """The plan as the audit log stores it (no secrets ever live in a plan)."""
        return {
            "family": self.family,
            "target": str(self.target),
            "summary": self.summary,
            "steps": [
                {
                    "description": s.description,
                    "host": s.host,
                    **({"argv": list(s.argv)} if s.argv is not None else {}),
                    **({"changes": list(s.changes)} if s.changes else {}),
                }
                for s in self.steps
            ],
            "blast_radius": self.blast_radius.value,
            "reversible": self.reversible,
            **({"cost": self.cost} if self.cost else {}),
            **({"diff": self.diff} if self.diff else {}),
            **({"notes": list(self.notes)} if self.notes else {}),
        }


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    details: Mapping[str, JSON] = field(default_factory=dict)


Progress = Callable[[float | None, str], None]
"""progress(fraction 0..1 or None when unknown, message) — streamed to the UI or the CLI."""


def no_progress(fraction: float | None, message: str) -> None:
    return None


class ActionFailed(Exception):
    """execute() or verify() could not do what the plan said; str() says why, for the audit."""

    def __init__(self, why: str, details: Mapping[str, JSON] | None = None) -> None:
        super().__init__(why)
        self.details = dict(details or {})


class Action(ABC, Generic[PayloadT]):
    """One action family on one target. Subclasses set `family` and `verb`, and name their
    payload: `class Restart(Action[ContainerRef])`."""

    family: ClassVar[str]  # "container.restart"
    verb: ClassVar[str]  # "restart" (the CLI's `hlcon do VERB TARGET`)

    def __init__(self, target: Target, lab: Lab) -> None:
        self.target = target
        self.lab = lab

    @classmethod
    def create(cls, target: Target, lab: Lab, params: Mapping[str, Any]) -> Action:
        """Build from a CLI or TUI request; families that take parameters (--name, --snapshot …)
        override this and raise ValueError with a clear message for bad ones."""
        return cls(target, lab)

    @property
    def host(self) -> str:
        """The host the action changes (for maintenance mode and allow-lists)."""
        return self.target.where or "local"

    @property
    def lock_keys(self) -> tuple[str, ...]:
        """Locks to hold while executing; the target by default."""
        return (str(self.target),)

    async def identity(self, plan: Plan[PayloadT]) -> Identity:
        """The canonical identity of what this plan changes (see Identity). The default: the
        target's kind and name on its host, every name of this machine being "local". Families
        whose targets have several spellings (containers, repositories, restore paths) override
        it; it may read the lab (plan() has, already)."""
        from actions.maintenance import canonical_host

        host = canonical_host(self.lab.config, self.host)
        return Identity((f"{self.target.kind}:{self.target.name}@{host}",), (host,))

    def allowed(self) -> str | None:
        """An allow-list check: None if allowed, else the reason with how to allow it."""
        return None

    @abstractmethod
    async def plan(self) -> Plan[PayloadT]:
        """Read what is needed and describe exactly what execute() would do. Changes nothing."""

    @abstractmethod
    async def execute(self, plan: Plan[PayloadT], progress: Progress) -> Outcome:
        """Do what the plan says; raise ActionFailed on failure."""

    @abstractmethod
    async def verify(self, plan: Plan[PayloadT], outcome: Outcome) -> Outcome:
        """Prove the change took (raise ActionFailed if it did not)."""

    async def rollback(self, plan: Plan[PayloadT]) -> Outcome | None:
        """Undo what execute() changed. None: this family cannot roll back."""
        return None
