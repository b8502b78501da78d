"""Every use of Textual's private APIs, in one place; tests/tui/test_textual_private.py pins
what each relies on, so a Textual upgrade fails loudly there (Textual is pinned in
pyproject.toml: PINNED_TEXTUAL).

- binding_chain: `Screen._binding_chain`, the chain Textual dispatches keys along, per node —
  the `?` help lists a key at each level it is bound (`Screen.active_bindings` merges them).
- RowTable: DataTable's row bookkeeping (`_row_locations`, `_data`, `_new_rows`,
  `_update_dimensions` …) and `textual.widgets._data_table.default_cell_formatter`, to add
  thousands of rows without Textual's per-row costs.
- QuietLinuxDriver: Textual's LinuxDriver input loop (`textual._xterm_parser`, `textual._time`,
  `textual._loop`) with a select timeout that follows the parser's deadline
  (`XTermParser._timeout_time`).
"""

from __future__ import annotations

import contextlib
import os
import selectors
from codecs import getincrementaldecoder
from collections.abc import Iterable, Sequence
from itertools import zip_longest
from typing import Any

from rich.console import RenderableType
from textual._loop import loop_last
from textual._time import get_time  # the parser's clock
from textual._xterm_parser import XTermParser
from textual.binding import BindingsMap
from textual.dom import DOMNode
from textual.drivers.linux_driver import LinuxDriver
from textual.render import measure
from textual.screen import Screen
from textual.widgets._data_table import default_cell_formatter
from textual.widgets.data_table import DuplicateKey, RowKey
from textual.widgets.data_table import Row as TableRow

from tui.widgets.table import CursorTable

__all__ = [
    "PINNED_TEXTUAL",
    "QuietLinuxDriver",
    "RowTable",
    "XTermParser",
    "binding_chain",
    "get_time",
    "parser_deadline",
]

PINNED_TEXTUAL = "8.2.8"  # what everything below was written against


def binding_chain(screen: Screen[Any]) -> list[tuple[DOMNode, BindingsMap]]:
    """The nodes a key is offered to on `screen`, focused widget first, each with its bindings."""
    return screen._binding_chain


def parser_deadline(parser: XTermParser) -> float | None:
    """When the parser gives up waiting for the rest of an escape sequence (None: not waiting)."""
    deadline: float | None = parser._timeout_time
    return deadline


# ------------------------------------------------------------ DataTable


class RowTable(CursorTable):
    """A DataTable that, for new one-line rows, measures only its auto-width columns.

    Textual measures every cell of every new row to size columns, fixed-width ones included;
    with 2,000 rows re-added per `/` keystroke that was most of the keystroke's cost
    (bench/filter_latency.py). Rows of auto height or with labels take Textual's own path."""

    _widths: dict[int, tuple[object, int, int]]

    _made: dict[str, tuple[object, object, RowKey, dict[Any, Any], TableRow]]
    _columns: tuple[tuple[int, ...], object] = ((), object())

    def _columns_id(self, columns: list[Any]) -> object:
        """One object per column set: made rows are reused only under the same columns."""
        ids = tuple(id(c) for c in columns)
        if ids != self._columns[0]:
            self._columns = (ids, object())
        return self._columns[1]

    def on_mount(self) -> None:
        self._widths = {}
        self._made = {}

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        keys = [k for k in new_rows if k in self.rows]
        if any(self.rows[k].auto_height or self.rows[k].label is not None for k in keys):
            super()._update_dimensions(keys)
            return
        console = self.app.console
        auto = [c for c in self.ordered_columns if c.auto_width]
        # The same cell objects come back on every keystroke (the pane's rows change only with
        # the store): measure each once. Keyed by id, holding the cell so the id stays its own.
        widths = self._widths
        if len(widths) > 4 * len(self.rows) + 1000:
            widths.clear()
        for key in keys:
            data = self._data[key]
            height = self.rows[key].height
            for column in auto:
                value = data[column.key]
                known = widths.get(id(value))
                if known is not None and known[0] is value and known[1] == height:
                    width = known[2]
                else:
                    cell = default_cell_formatter(value, wrap=height != 1, height=height)
                    width = measure(console, cell, 1)
                    widths[id(value)] = (value, height, width)
                column.content_width = max(column.content_width, width)
        super()._update_dimensions(())  # the virtual size, from the widths just found

    def add_rows_at_once(
        self, rows: Iterable[tuple[str, Sequence[RenderableType]]], *, height: int | None = 1
    ) -> None:
        """`add_row(*cells, key=key, height=height)` for each (key, cells), in one go.

        DataTable.add_row re-sorts the columns and re-validates the cursor for every row; for
        2,000 rows that alone cost ~40 ms a keystroke. This is the same bookkeeping
        (textual 8.2.8, pinned), with the per-table parts done once at the end."""
        columns = self.ordered_columns
        columns_id = self._columns_id(columns)
        was_empty = self.row_count == 0
        # A row shown again with the same cells (the filter widened) reuses its key, cell dict
        # and Row: 2,000 fresh ones per keystroke made the cyclic GC's full collections (≈100 ms
        # each) run every few keystrokes. Only one-line rows: Textual sets an auto row's height.
        old, self._made = self._made, {}
        for key, cells in rows:
            made = old.get(key) if height == 1 else None
            if made is not None and made[0] is cells and made[1] is columns_id:
                _, _, row_key, data, row = made
            else:
                row_key = RowKey(key)
                if len(cells) > len(columns):
                    raise ValueError("More values provided than there are columns.")
                data = {column.key: cell for column, cell in zip_longest(columns, cells)}
                row = TableRow(row_key, height or 0, None, height is None)
            if row_key in self._row_locations:
                raise DuplicateKey(f"The row key {row_key!r} already exists.")
            self._row_locations[row_key] = len(self.rows)
            self._data[row_key] = data
            self.rows[row_key] = row
            self._new_rows.add(row_key)
            self._made[key] = (cells, columns_id, row_key, data, row)
        for key, made in old.items():  # rows filtered out now are kept for when they return
            if key not in self._made and len(self._made) < 2 * len(old) + 1000:
                self._made[key] = made
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        visible_cursor = self.show_cursor and self.cursor_type != "none"
        if was_empty and self.row_count and columns and visible_cursor:
            self._highlight_cursor()
        self._update_count += 1
        self.check_idle()


# ------------------------------------------------------------ the Linux driver
#
# Textual's LinuxDriver reads keys in a thread that wakes every 0.1 s (`select(0.1)`) to give its
# escape-sequence parser a chance to time out. Left in a tmux pane for weeks, those ten wake-ups a
# second were about 0.2 % of a core — a third of hlcon's whole idle budget (bench/idle_cpu.py).
# This driver blocks until the terminal has input, or until the parser's own deadline when it is
# holding a lone ESC, and a pipe wakes it when the app disables input (quit, suspend). Only
# `run_input_thread` and `disable_input` differ from Textual's; the loop body is Textual's.

IDLE_WAIT = 5.0  # seconds between wake-ups with no input and no pending escape (a safety net)


class QuietLinuxDriver(LinuxDriver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)

    def disable_input(self) -> None:
        # Wake the input thread so it sees exit_event at once instead of at its next timeout.
        if self._wake_write >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_write, b"x")
        super().disable_input()

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._wake_read, 512):
                pass

    def run_input_thread(self) -> None:
        """Textual's loop, with a select timeout that follows the parser's deadline."""
        self._drain_wake()
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        selector.register(self._wake_read, selectors.EVENT_READ)

        fileno = self.fileno
        parser = XTermParser(self._debug)
        feed = parser.feed
        tick = parser.tick
        decode = getincrementaldecoder("utf-8")().decode
        read = os.read

        def timeout() -> float:
            deadline = parser_deadline(parser)
            if deadline is None:
                return IDLE_WAIT  # nothing half-read: only input (or the wake pipe) matters
            return max(0.0, min(0.1, deadline - get_time()))

        def process(events: list[tuple[selectors.SelectorKey, int]], final: bool = False) -> None:
            keyed = [(key, mask) for key, mask in events if key.fd == fileno]
            for last, (_key, mask) in loop_last(keyed):
                if mask & selectors.EVENT_READ:
                    data = decode(read(fileno, 1024 * 4), final=final and last)
                    if not data:
                        break  # stdin piped and closed
                    for event in feed(data):
                        self.process_message(event)
            for event in tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                process(selector.select(timeout()))
            selector.unregister(self.fileno)
            selector.unregister(self._wake_read)
            self._drain_wake()
            process(selector.select(0.1), final=True)
        finally:
            selector.close()
            with contextlib.suppress(Exception):
                for _ in feed(""):
                    pass

    def close(self) -> None:
        super().close()
        fds, (self._wake_read, self._wake_write) = (self._wake_read, self._wake_write), (-1, -1)
        for fd in fds:  # -1 from now on: a closed number may be reused by another file
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
