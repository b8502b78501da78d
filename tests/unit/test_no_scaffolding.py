"""A module named in a registration that does not import is a bug, said loudly: no registry
takes a missing module for "not built yet" (issue 13 §5)."""

from __future__ import annotations

import pytest

from actions import registry
from tui import panes
from tui.cli import build_parser


def test_a_family_module_typo_fails_the_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "FAMILY_MODULES", (*registry.FAMILY_MODULES, "actions.contaners"))
    monkeypatch.setattr(registry, "_loaded", False)
    with pytest.raises(ModuleNotFoundError) as missing:
        registry.lookup("restart", "container")
    assert missing.value.name == "actions.contaners"


def test_a_command_module_typo_fails_the_parser() -> None:
    with pytest.raises(ModuleNotFoundError) as missing:
        build_parser(("stauts",))
    assert missing.value.name == "tui.commands.stauts"


def test_a_pane_module_typo_fails_the_pane_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(panes.PANES, 2, ("hosts", "Hosts", "tui.panes.hsots:HostsPane"))
    with pytest.raises(ModuleNotFoundError) as missing:
        panes.pane_class(2)
    assert missing.value.name == "tui.panes.hsots"
