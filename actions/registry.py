"""Which Action class answers `hlcon do VERB TARGET`: families keyed by (target kind, verb).

A family module decorates its Action subclasses with `@register`. The kind is the class's
`kind` attribute when it has one, else the part of `family` before the dot
("container.restart" → "container"); `@register(kind="repo")` says it explicitly.
Family modules are imported lazily, on the first lookup; one that does not import is a bug and
its error goes up (no family is "not built yet").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from actions.base import Action, Target
from lab.domains import DOMAINS

if TYPE_CHECKING:
    from lab.wiring import Lab

# Each domain's descriptor (lab.domains) names its family modules.
FAMILY_MODULES: tuple[str, ...] = tuple(m for d in DOMAINS.values() for m in d.actions)

A = TypeVar("A", bound=type[Action])

_FAMILIES: dict[tuple[str, str], type[Action]] = {}
_loaded = False


class UnknownAction(ValueError):
    """No family for this (kind, verb); str() lists what exists."""


@overload
def register(cls: A, /) -> A: ...
@overload
def register(*, kind: str) -> Callable[[A], A]: ...
def register(cls: A | None = None, /, *, kind: str | None = None) -> A | Callable[[A], A]:
    def add(c: A) -> A:
        k = kind or getattr(c, "kind", None) or c.family.split(".", 1)[0]
        key = (str(k), c.verb)
        other = _FAMILIES.get(key)
        if other is not None and other is not c and other.__qualname__ != c.__qualname__:
            raise ValueError(
                f"two actions for {key[1]} on {key[0]} targets: {other.__qualname__}, "
                f"{c.__qualname__}"
            )
        _FAMILIES[key] = c
        return c

    return add(cls) if cls is not None else add


def load_families() -> None:
    """Import every family module (they register their classes as they import)."""
    global _loaded
    if _loaded:
        return
    for name in FAMILY_MODULES:
        importlib.import_module(name)
    _loaded = True


def kinds() -> list[str]:
    load_families()
    return sorted({k for k, _ in _FAMILIES})


def verbs_for(kind: str) -> list[str]:
    load_families()
    return sorted(v for k, v in _FAMILIES if k == kind)


def lookup(verb: str, kind: str) -> type[Action]:
    load_families()
    cls = _FAMILIES.get((kind, verb))
    if cls is not None:
        return cls
    verbs = verbs_for(kind)
    if not verbs:
        known = ", ".join(kinds()) or "none yet"
        raise UnknownAction(f"no actions for {kind} targets; target kinds with actions: {known}")
    raise UnknownAction(f"no action {verb!r} for {kind} targets; known: {', '.join(verbs)}")


def build(verb: str, target: str | Target, lab: Lab, params: Mapping[str, Any]) -> Action:
    """The action for `hlcon do VERB TARGET`. Raises ValueError (TargetError, UnknownAction, or
    the family's own for bad parameters) with a message for the user."""
    t = Target.parse(target) if isinstance(target, str) else target
    return lookup(verb, t.kind).create(t, lab, params)
