"""Snapshots of every screen at 80x24 (the smallest terminal hlcon promises), from the frozen
fixtures in tests/tui/catalog.py. Update after an intended change:
`.venv/bin/pytest tests/tui/test_snapshots.py --snapshot-update`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tui.catalog import SHOTS, Shot


@pytest.mark.parametrize("shot", SHOTS, ids=[s.name for s in SHOTS])
def test_screen_at_80x24(shot: Shot, snap_compare: Any) -> None:
    assert snap_compare(
        shot.make_app(),
        press=list(shot.press),
        terminal_size=(80, 24),
        run_before=shot.run_before,
    )
