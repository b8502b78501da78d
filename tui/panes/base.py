"""The base classes of every numbered pane: Pane (header with the data's age) and TablePane.

Writing a domain pane (tui/panes/<domain>.py), then adding it under its lab.domains name to
DOMAIN_PANES in tui/panes/__init__.py:

    class VpnPane(TablePane):
        NUMBER = 4
        PANE_ID = "vpn"
        TITLE = "VPN"
        DOMAINS = ("vpn",)                      # store domains shown: the header ages them
        CONFIG_SECTION = "[[vpn]]"              # named by the placeholder when not configured
        COLUMNS = ("Interface", "Peer", ("Handshake", 12), "Rx", "Tx")
        ACTION_KEYS = {"a": "add peer", "d": "remove peer"}   # key -> verb (becomes a binding)

        @classmethod
        def configured(cls, config: Config) -> bool:
            return bool(config.vpn)

        def rows(self) -> Iterable[Row]:        # read self.ctx.store; no I/O here
            for entry in self.entries():
                ...
                yield Row(id=f"{iface}/{peer.public_key}", cells=(...), data=peer)

        def open_detail(self, row: Row) -> None:     # Enter on a row
            self.app.push_screen(PeerDetail(row.data))

        def make_action(self, verb: str, row: Row) -> Action | None:
            if verb == "remove peer":
                return PeerRemove(Target("peer", ..., ...), self.ctx.lab)
            return None                           # None: "nothing to do" is notified

The base launches what make_action returns through `app.launch(action)`: runner.prepare →
ConfirmModal → runner.run with progress → a notification of the outcome. Bulk actions: read
`self.filtered_rows()` (the rows the `/` filter leaves) and launch one Action for all of them.

The app calls `refresh_from_store()` when the store changed (at most ~4×/s, only on the visible
pane and never under a modal) and `tick()` once a second so ages move. Everything a pane shows
comes from `self.ctx.store`; time comes from `self.ctx.clock()` (frozen in snapshot tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.cells import cell_len
from rich.console import RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static
from textual.widgets.data_table import ColumnKey

from lab.config import Config
from lab.health import ago as ago  # the panes import it from here
from lab.health import fault_age
from lab.store import Entry
from tui.context import ConsoleContext, console_app
from tui.messages import LaunchAction
from tui.textual_private import RowTable

if TYPE_CHECKING:
    from actions.base import Action

# The header is redrawn every second, and any change repaints every widget of the pane (Textual
# re-renders each widget whose clip overlaps the dirty region): its ages move in 5 s steps.
HEADER_AGE_STEP = 5


def update_static(widget: Static, content: str | Text) -> None:
    """`Static.update` unless the content is the same: Textual re-lays out the whole screen on
    every update, and a pane refreshed after each poll did that many times a minute for nothing
    (bench/idle_cpu.py)."""
    if widget.content == content:
        return
    widget.update(content)


def cell_text(cell: object) -> str:
    """The plain text of a cell, for filtering."""
    if isinstance(cell, Text):
        return cell.plain
    return str(cell)


def text_width(text: str) -> int:
    """Terminal cells of the widest line of `text`."""
    return max((cell_len(line) for line in text.split("\n")), default=0)


MIN_CUT_WIDTH = 4  # a column squeezed for room keeps at least this many cells


def share_widths(
    avail: int, natural: Sequence[int], minimum: Sequence[int], first: Sequence[bool]
) -> list[int]:
    """Widths for columns that need `natural` cells, given `avail` in all.

    Each starts at its minimum (never more than it needs); the columns marked `first` (those
    that tell rows apart) are then made whole as far as the space goes; what is left goes to the
    columns that need least first, the rest sharing equally (max-min fair) — so short columns
    show whole and long ones (messages, images) split what remains."""
    widths = [min(m, n) for m, n in zip(minimum, natural, strict=True)]
    spare = avail - sum(widths)
    # Not even the minimums fit: the widest other columns give way (a table wider than the
    # terminal scrolls sideways, and what tells rows apart scrolled out of sight with it).
    while spare < 0:
        others = [i for i in range(len(widths)) if not first[i] and widths[i] > MIN_CUT_WIDTH]
        if not others:
            break
        widest = max(others, key=lambda i: widths[i])
        widths[widest] -= 1
        spare += 1
    for i in (i for i, f in enumerate(first) if f):
        give = max(0, min(natural[i] - widths[i], spare))
        widths[i] += give
        spare -= give
    wanting = sorted(
        (i for i in range(len(widths)) if natural[i] > widths[i]),
        key=lambda i: natural[i] - widths[i],
    )
    for k, i in enumerate(wanting):
        if spare <= 0:
            break
        give = min(natural[i] - widths[i], spare // (len(wanting) - k))
        widths[i] += give
        spare -= give
    for i in reversed(wanting):  # the rounding's last cells, to the ones still short
        if spare <= 0:
            break
        if natural[i] > widths[i]:
            widths[i] += 1
            spare -= 1
    return widths


def cut_middle(cell: RenderableType, width: int) -> RenderableType:
    """`cell` cut to `width` cells with "…" in the middle: the end of a path or a name is what
    tells two rows apart ("nas:/srv/…/photos" beside "nas:/srv/…/music")."""
    text = cell if isinstance(cell, Text) else Text(cell) if isinstance(cell, str) else None
    if text is None or "\n" in text.plain or cell_len(text.plain) <= width or width < 3:
        return cell
    head = max(1, (width - 1) // 3)
    tail = width - 1 - head
    return text[:head] + Text("…", "dim") + text[len(text) - tail :]


@dataclass(frozen=True)
class Row:
    """One table row. `id` is its stable key (the cursor follows it across refreshes, and an
    overview Finding.row names it); `cells` match COLUMNS; `data` is whatever the pane needs
    for detail and actions (usually the reading it came from)."""

    id: str
    cells: Sequence[RenderableType]
    data: Any = field(default=None, compare=False)


class PaneHeader(Static):
    """The pane's first line(s): title, age of its data, and any Fault, loudly."""


class Pane(Widget):
    """A numbered pane. Subclasses set the ClassVars and `compose_body()`.

    NUMBER          the key that shows it (1…9)
    PANE_ID         a short id ("hosts"); the widget id is "pane-<PANE_ID>"
    TITLE           shown in the header and the palette
    DOMAINS         store domains this pane shows ("host", "containers" …); the header shows
                    their age and faults. Empty: override `header_status()`.
    CONFIG_SECTION  the config section to add when `configured()` is False ("[[vpn]]")
    """

    NUMBER: ClassVar[int] = 0
    PANE_ID: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    DOMAINS: ClassVar[tuple[str, ...]] = ()
    CONFIG_SECTION: ClassVar[str | None] = None
    MAX_FAULT_LINES: ClassVar[int] = 3
    can_focus = True  # a pane without a table still takes focus (keys reach the app)

    DEFAULT_CSS = """
    Pane { height: 1fr; width: 1fr; }
    Pane > PaneHeader { height: auto; max-height: 5; padding: 0 1; background: $boost; }
    Pane > PaneHeader.-fault { background: $error 25%; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id or f"pane-{self.PANE_ID}", classes=classes)
        self._header_text: Text | None = None
        self._header_shape: list[int] = []

    @classmethod
    def configured(cls, config: Config) -> bool:
        """False when the config has nothing for this pane (the placeholder is shown instead)."""
        return True

    @property
    def ctx(self) -> ConsoleContext:
        return console_app(self).ctx

    def now(self) -> datetime:
        return self.ctx.clock()

    # ------------------------------------------------------------ composition

    def compose(self) -> ComposeResult:
        yield PaneHeader(id="pane-header")
        yield from self.compose_body()

    def compose_body(self) -> ComposeResult:
        """The pane's content below the header."""
        yield from ()

    def on_mount(self) -> None:
        self.refresh_from_store()

    # ------------------------------------------------------------ data

    def entries(self) -> list[Entry]:
        """The store entries this pane shows (every entry of its DOMAINS)."""
        out: list[Entry] = []
        for domain in self.DOMAINS:
            out.extend(self.ctx.store.domain(domain))
        return out

    def refresh_from_store(self) -> None:
        """Re-read the store and redraw. Subclasses extend it (call super)."""
        self.update_header()

    def tick(self) -> None:
        """Once a second: ages move even when no new reading arrived."""
        self.update_header()

    def focus_default(self) -> None:
        """Where focus goes when the pane is shown (TablePane: its table)."""
        self.focus()

    def refresh_now(self) -> None:
        """`r`/F5: ask the poller to read this pane's domains now."""
        poller = self.ctx.poller
        if poller is None:
            return
        for entry in self.entries():
            poller.refresh(entry.key)

    def select_row(self, row_id: str) -> bool:
        """Put the cursor on a row (the overview's Enter-to-jump). False if it isn't there."""
        return False

    # ------------------------------------------------------------ header

    def header_status(self) -> tuple[str, list[str]]:
        """(age text, fault lines) for the header, from `entries()`."""
        entries = self.entries()
        now = self.now()
        if not entries:
            return "no data source", []
        waiting = [e for e in entries if e.reading is None and e.fault is None]
        # The freshest good reading is the pane's age: a faulted host backing off must not make
        # the pane look stale while the others update (its own age is in its fault line).
        times = [e.last_ok for e in entries if e.last_ok is not None]
        if times:
            age = f"updated {ago(now, max(times), step=HEADER_AGE_STEP)} ago"
            if waiting:
                age += f" · {len(waiting)} waiting for first reading"
        elif len(waiting) == len(entries):
            age = "waiting for first reading"
        else:
            age = "no good reading yet"
            if waiting:
                age += f" · {len(waiting)} waiting for first reading"
        faults = [
            f"⚠ {e.fault.what} — {e.fault.where}: {e.fault.why}; {fault_age(e, now)}"
            for e in entries
            if e.fault is not None
        ]
        return age, faults

    def update_header(self) -> None:
        try:
            header = self.query_one("#pane-header", PaneHeader)
        except Exception:  # not composed yet
            return
        age, faults = self.header_status()
        text = Text.assemble((f"{self.NUMBER} {self.TITLE}", "bold"), "  ", (age, "dim"))
        shown = faults[: self.MAX_FAULT_LINES]
        for line in shown:
            text.append("\n")
            text.append(line, "bold")
        if len(faults) > len(shown):
            text.append(f"\n… and {len(faults) - len(shown)} more faults")
        header.set_class(bool(faults), "-fault")
        # Called every second: skip an unchanged header, and re-lay out the screen only when
        # a line's length changed (it may wrap) — a layout pass a second was most of idle CPU.
        shape = [len(line) for line in text.plain.split("\n")]
        if text == self._header_text:
            return
        header.update(text, layout=shape != self._header_shape)
        self._header_text, self._header_shape = text, shape


class TablePane(Pane):
    """A Pane holding one DataTable of `rows()`, with `/` filter, Enter detail, action keys.

    COLUMNS       labels, or (label, minimum width) pairs. Columns share the table's width
                  by what they carry (share_widths): each gets what its widest cell needs when
                  that fits, so they grow with the terminal; at 80 columns a long one is cut
    KEY_COLUMNS   labels of the columns that tell rows apart (a name, a path; default: the
                  first column): made whole before the others; if they still must be cut,
                  they are cut in the middle
    WRAP_COLUMN   optional label of the one column that takes the remaining width and wraps
                  (rows grow taller) — for messages that must be read whole at 80 columns
    ACTION_KEYS   {key: verb}: each becomes a binding (shown in the footer and `?` help) that
                  calls `make_action(verb, selected row)` and launches the result
    """

    COLUMNS: ClassVar[Sequence[str | tuple[str, int]]] = ()
    ACTION_KEYS: ClassVar[Mapping[str, str]] = {}
    FOOTER_HIDDEN: ClassVar[tuple[str, ...]] = ()  # action keys left to `?` (the footer is full)
    WRAP_COLUMN: ClassVar[str | None] = None  # this column takes the width left and wraps
    KEY_COLUMNS: ClassVar[tuple[str, ...]] = ()  # never cut where the width allows
    AUTO_MIN_WIDTH: ClassVar[int] = 10  # the minimum of a column declared without a width

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "start_filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    DEFAULT_CSS = """
    TablePane > #filter { display: none; height: 1; border: none; padding: 0 1; }
    TablePane > #filter.-active { display: block; }
    TablePane > DataTable { height: 1fr; }
    TablePane > #empty { display: none; padding: 1 2; color: $text-muted; }
    TablePane > #empty.-active { display: block; }
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # ACTION_KEYS become real bindings before Textual merges the class's bindings, so the
        # footer, the help screen and key dispatch all see them.
        own = cls.__dict__.get("ACTION_KEYS")
        if own:
            base = list(cls.__dict__.get("BINDINGS", []))
            hidden = cls.__dict__.get("FOOTER_HIDDEN", ())
            cls.BINDINGS = base + [
                Binding(key, f"row_action({verb!r})", verb.capitalize(), show=key not in hidden)
                for key, verb in own.items()
            ]
        super().__init_subclass__(**kwargs)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._all: list[Row] = []
        self._shown: list[Row] = []
        self._by_id: dict[str, Row] = {}
        self._filter = ""
        self._signature: list[tuple[str, tuple[str, ...]]] | None = None
        self._natural: list[int] = []  # each column's widest cell (label included)
        self._rows_seen = 0  # bumped by each refresh_from_store: rows may have changed
        # (table width, natural widths, rows_seen) the widths were shared for, and the widths
        self._fitted: tuple[tuple[int, list[int], int], list[int]] | None = None
        self._display: dict[str, Sequence[RenderableType]] = {}  # rows with a key cell cut
        self._texts: dict[str, tuple[str, ...]] = {}
        self._folded: dict[str, tuple[str, ...]] = {}
        self._age_bucket = -1  # HEADER_AGE_STEP bucket of the last refresh

    # ------------------------------------------------------------ for subclasses

    def rows(self) -> Iterable[Row]:
        """Every row, in display order, read from the store. No I/O."""
        return ()

    def open_detail(self, row: Row) -> None:
        """Enter on a row. Default: nothing."""

    def make_action(self, verb: str, row: Row) -> Action | None:
        """The Action for an ACTION_KEYS verb on a row, or None when it doesn't apply."""
        return None

    def empty_message(self) -> str:
        """Shown instead of the table when there are no rows."""
        return "nothing to show"

    # ------------------------------------------------------------ queries

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#table", DataTable)

    def filtered_rows(self) -> list[Row]:
        """The rows the filter leaves, in display order (bulk actions act on these)."""
        return list(self._shown)

    def selected_row(self) -> Row | None:
        table = self.table
        if not self._shown or table.cursor_row < 0 or table.cursor_row >= len(self._shown):
            return None
        return self._shown[table.cursor_row]

    def select_row(self, row_id: str) -> bool:
        if row_id not in {r.id for r in self._shown}:
            if row_id in self._by_id and self._filter:
                self.set_filter("")
            if row_id not in {r.id for r in self._shown}:
                return False
        index = self.table.get_row_index(row_id)
        self.table.move_cursor(row=index)
        self.table.focus()
        return True

    # ------------------------------------------------------------ composition

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="filter (Esc clears)", id="filter")
        table: DataTable[Any] = RowTable(id="table", cursor_type="row", zebra_stripes=True)
        for column in self.COLUMNS:
            if isinstance(column, tuple):
                table.add_column(column[0], width=column[1], key=column[0])
            else:
                table.add_column(column, key=column)
        yield table
        yield Static(id="empty")

    def on_mount(self) -> None:
        super().on_mount()

    def on_resize(self) -> None:
        self.call_after_refresh(self._refit)

    def _refit(self) -> None:
        """After a resize: _fit_columns sees the new width (unless the pane is gone)."""
        if self.is_attached and self.query("#table"):
            self._apply()

    def _column_specs(self) -> list[tuple[str, int | None]]:
        return [(c, None) if isinstance(c, str) else (c[0], c[1]) for c in self.COLUMNS]

    def _measure_columns(self) -> None:
        """Each column's natural width: its widest cell over every row (not just the filtered
        ones, so widths hold still while typing a filter), or its label."""
        specs = self._column_specs()
        natural = [cell_len(label) for label, _ in specs]
        for texts in self._texts.values():
            for i, text in enumerate(texts[: len(natural)]):
                width = text_width(text)
                if width > natural[i]:
                    natural[i] = width
        self._natural = natural

    def _fit_columns(self) -> bool:
        """Share the table's width among the columns (share_widths). True when the widths
        changed (every row is then added again). Before layout the declared widths stand."""
        table = self.table
        width = table.size.width
        specs = self._column_specs()
        if width == 0 or len(self._natural) != len(specs):
            return False
        prev = self._fitted
        if prev is not None and prev[0][0] == width:
            (_, shared_for, rows_seen), widths = prev
            # Content no wider than what the widths were shared for: keep them (no re-add, no
            # columns jumping between polls); a resize shares again.
            if all(n <= o for n, o in zip(self._natural, shared_for, strict=True)):
                if rows_seen != self._rows_seen:
                    self._fitted = ((width, shared_for, self._rows_seen), widths)
                    self._cut_key_cells(widths)
                return False
        basis = (width, list(self._natural), self._rows_seen)
        pad = 2 * table.cell_padding
        avail = width - pad * len(specs) - 1  # 1: the vertical scrollbar
        natural = list(self._natural)
        minimum = [self.AUTO_MIN_WIDTH if w is None else w for _, w in specs]
        keys = self.KEY_COLUMNS or specs[0][:1]  # by default the first column tells rows apart
        first = [label in keys for label, _ in specs]
        for i, (label, _) in enumerate(specs):
            if label == self.WRAP_COLUMN:
                minimum[i] = 12
            if first[i]:
                natural[i] = min(natural[i], max(minimum[i], avail // 2))
        widths = share_widths(avail, natural, minimum, first)
        if self.WRAP_COLUMN is not None:  # what no column needs, the wrapping one takes
            index = [label for label, _ in specs].index(self.WRAP_COLUMN)
            widths[index] += max(0, avail - sum(widths))
        changed = self._fitted is None or self._fitted[1] != widths
        self._fitted = (basis, widths)
        if changed:
            for (label, _), w in zip(specs, widths, strict=True):
                column = table.columns[ColumnKey(label)]
                column.auto_width = False
                column.width = w
        self._cut_key_cells(widths)
        return changed

    def _cut_key_cells(self, widths: list[int]) -> None:
        """Rows whose key cell is wider than its column, with that cell cut in the middle."""
        self._display = {}
        specs = self._column_specs()
        keys = [
            (i, w)
            for i, ((label, _), w) in enumerate(zip(specs, widths, strict=True))
            if label in (self.KEY_COLUMNS or specs[0][:1]) and w < self._natural[i]
        ]
        if not keys:
            return
        for row in self._all:
            texts = self._texts.get(row.id, ())
            cut = [i for i, w in keys if i < len(texts) and text_width(texts[i]) > w]
            if cut:
                cells = list(row.cells)
                for i in cut:
                    cells[i] = cut_middle(cells[i], dict(keys)[i])
                self._display[row.id] = tuple(cells)

    def display_cells(self, row: Row) -> Sequence[RenderableType]:
        """The cells as the table shows them (a key cell cut in the middle where it must be)."""
        return self._display.get(row.id, row.cells)

    def focus_default(self) -> None:
        self.table.focus()

    def tick(self) -> None:
        super().tick()
        # Rows carry ages too (a faulted host's "(6m)" beside its fault line): while they move,
        # redraw in the header's age steps so row and header agree between polls.
        bucket = int(self.now().timestamp()) // HEADER_AGE_STEP
        if bucket != self._age_bucket and self.ages_move():
            self.refresh_from_store()

    def ages_move(self) -> bool:
        """True when rows show ages that move between polls: a faulted entry's."""
        return any(e.fault is not None for e in self.entries())

    # ------------------------------------------------------------ refresh

    def refresh_from_store(self) -> None:
        super().refresh_from_store()
        self._age_bucket = int(self.now().timestamp()) // HEADER_AGE_STEP
        try:
            self.table  # noqa: B018 - composed?
        except Exception:
            return
        self._all = list(self.rows())
        self._by_id = {r.id: r for r in self._all}
        # each row's cell texts, read once per store change rather than once per keystroke
        self._texts = {r.id: tuple(cell_text(c) for c in r.cells) for r in self._all}
        self._folded = {i: tuple(t.casefold() for t in texts) for i, texts in self._texts.items()}
        self._measure_columns()
        self._rows_seen += 1
        self._apply()

    def _matches(self, row: Row) -> bool:
        needle = self._filter.casefold()
        if not needle:
            return True
        folded = self._folded.get(row.id)
        if folded is None:
            folded = tuple(cell_text(c).casefold() for c in row.cells)
        return any(needle in text for text in folded)

    def _apply(self) -> None:
        table = self.table
        shown = [r for r in self._all if self._matches(r)]
        texts = self._texts
        signature = [(r.id, texts.get(r.id) or tuple(cell_text(c) for c in r.cells)) for r in shown]
        empty = self.query_one("#empty", Static)
        if not shown:
            update_static(
                empty,
                f"no rows match {self._filter!r}"
                if self._filter and self._all
                else self.empty_message(),
            )
        empty.set_class(not shown, "-active")
        if self._fit_columns():
            self._signature = None  # new widths: every row is added again
        if signature == self._signature:
            self._shown = shown
            return
        if self._update_in_place(shown, signature):
            return
        current = self.selected_row()
        keep = current.id if current is not None else None
        scroll_y = table.scroll_y
        table.clear()
        wrap = self.WRAP_COLUMN is not None and self._fitted is not None
        rows = ((row.id, self.display_cells(row)) for row in shown)
        if isinstance(table, RowTable):
            table.add_rows_at_once(rows, height=None if wrap else 1)
        else:
            for key, cells in rows:
                table.add_row(*cells, key=key, height=None if wrap else 1)
        self._shown = shown
        self._signature = signature
        if keep is not None and any(r.id == keep for r in shown):
            table.move_cursor(row=table.get_row_index(keep), scroll=False)
        table.scroll_to(y=scroll_y, animate=False, immediate=True)

    def _update_in_place(self, shown: list[Row], signature: list[tuple[str, Any]]) -> bool:
        """Same rows in the same order, some cells changed (a CPU %, an age): update just those
        cells. Clearing and re-adding every row after each poll cost a full re-layout each
        time, and moved nothing the admin was looking at (bench/idle_cpu.py)."""
        before = self._signature
        if before is None or [i for i, _ in before] != [i for i, _ in signature]:
            return False
        table = self.table
        columns = table.ordered_columns
        for row, (_, old), (_, new) in zip(shown, before, signature, strict=True):
            if old == new:
                continue
            if len(new) > len(columns):
                return False
            cells = self.display_cells(row)
            for column, cell, was, now in zip(columns, cells, old, new, strict=False):
                if was != now:
                    table.update_cell(row.id, column.key, cell, update_width=True)
        self._shown = shown
        self._signature = signature
        return True

    # ------------------------------------------------------------ filter

    def set_filter(self, text: str) -> None:
        self._filter = text
        box = self.query_one("#filter", Input)
        if box.value != text:
            box.value = text
        self._apply()

    def action_start_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-active")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("-active")
        self.set_filter("")
        self.table.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._filter = event.value
        self._apply()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value:
            self.query_one("#filter", Input).remove_class("-active")
        self.table.focus()

    # ------------------------------------------------------------ rows

    @on(DataTable.RowSelected, "#table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self._by_id.get(str(event.row_key.value))
        if row is not None:
            self.open_detail(row)

    def action_row_action(self, verb: str) -> None:
        row = self.selected_row()
        if row is None:
            self.notify(f"no row selected to {verb}", severity="warning", markup=False)
            return
        action = self.make_action(verb, row)
        if action is None:
            self.notify(f"cannot {verb} {row.id}", severity="warning", markup=False)
            return
        self.post_message(LaunchAction(action))
