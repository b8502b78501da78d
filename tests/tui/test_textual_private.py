"""Textual's private APIs hlcon relies on, fenced in tui/textual_private.py and pinned here, so a
Textual upgrade that moves one fails in this file (not as a wrong screen somewhere else)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import textual
from textual.app import App, ComposeResult
from textual.binding import BindingsMap
from textual.dom import DOMNode
from textual.widgets import DataTable

from tui import textual_private
from tui.textual_private import RowTable, binding_chain, parser_deadline

ROOT = Path(__file__).resolve().parents[2]
FENCE = ROOT / "tui" / "textual_private.py"


def test_the_installed_textual_is_the_pinned_one() -> None:
    pin = re.search(r'"textual==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin is not None
    assert textual.__version__ == pin.group(1) == textual_private.PINNED_TEXTUAL


def _private_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module
            if module and module.startswith("textual") and "._" in module:
                found.append(f"{path.name}:{node.lineno} from {module}")
        if isinstance(node, ast.Attribute) and node.attr == "_binding_chain":
            found.append(f"{path.name}:{node.lineno} ._binding_chain")
    return found


def test_only_the_fence_module_reaches_into_textual_privates() -> None:
    uses = [
        use
        for path in sorted((ROOT / "tui").rglob("*.py"))
        if path != FENCE
        for use in _private_uses(path)
    ]
    assert uses == []
    assert _private_uses(FENCE)  # the fence is where they are


class TwoTables(App[None]):
    def compose(self) -> ComposeResult:
        yield DataTable(id="plain")
        yield RowTable(id="fast")


async def test_row_table_adds_rows_as_data_table_does() -> None:
    rows = [(f"r{i}", (f"name {i}", str(i) * (i % 7 + 1))) for i in range(40)]
    app = TwoTables()
    async with app.run_test() as pilot:
        plain = app.query_one("#plain", DataTable)
        fast = app.query_one("#fast", RowTable)
        for table in (plain, fast):
            table.add_columns("name", "value")
        for key, cells in rows:
            plain.add_row(*cells, key=key)
        fast.add_rows_at_once(rows)
        await pilot.pause()
        assert [k.value for k in fast.rows] == [k.value for k in plain.rows]
        assert fast.get_row_at(17) == plain.get_row_at(17)
        assert fast.get_row_index("r33") == plain.get_row_index("r33") == 33
        widths = [c.content_width for c in fast.ordered_columns]
        assert widths == [c.content_width for c in plain.ordered_columns]
        assert fast.virtual_size == plain.virtual_size


async def test_the_binding_chain_is_nodes_with_their_bindings() -> None:
    app = TwoTables()
    async with app.run_test():
        chain = binding_chain(app.screen)
        assert chain and all(isinstance(node, DOMNode) for node, _ in chain)
        assert all(isinstance(bindings, BindingsMap) for _, bindings in chain)
        assert chain[-1][0] is app
        assert "ctrl+q" in chain[-1][1].key_to_bindings


def test_the_parser_deadline_follows_a_lone_escape() -> None:
    parser = textual_private.XTermParser(False)
    assert parser_deadline(parser) is None  # nothing half-read
    list(parser.feed("\x1b"))
    deadline = parser_deadline(parser)
    assert isinstance(deadline, float)
    assert deadline > textual_private.get_time() - 1
