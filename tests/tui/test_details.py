"""Every detail a pane opens is one DetailModal: the same frame, the same close keys; every
modal of the console has its frame from FramedModal, whose CSS is the only copy of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui.catalog import audit_app
from tui.panes.audit import AckModal, RecordDetail
from tui.panes.backups import RepoDetail
from tui.panes.certs import CertDetail
from tui.panes.containers import ContainerDetail
from tui.panes.vpn import PeerDetail
from tui.screens.confirm import ConfirmModal
from tui.screens.detail import DetailModal, TextDetail
from tui.screens.help import HelpScreen
from tui.screens.host_detail import HostDetailScreen
from tui.screens.modal import FramedModal

SIZE = (100, 30)
TUI = Path(__file__).resolve().parents[2] / "tui"


@pytest.mark.parametrize(
    "detail", [RepoDetail, CertDetail, ContainerDetail, PeerDetail, RecordDetail, HostDetailScreen]
)
def test_each_detail_is_a_detail_modal(detail: type[DetailModal]) -> None:
    assert issubclass(detail, DetailModal)


@pytest.mark.parametrize("modal", [DetailModal, ConfirmModal, AckModal, HelpScreen])
def test_each_modal_is_framed(modal: type[FramedModal[object]]) -> None:
    assert issubclass(modal, FramedModal)


def test_the_frame_css_is_written_once() -> None:
    copies = [
        f"{path.relative_to(TUI)}: {rule}"
        for path in sorted(TUI.rglob("*.py"))
        for rule in ("align: center middle", "border: thick")
        if rule in path.read_text()
    ]
    assert copies == ["screens/modal.py: align: center middle", "screens/modal.py: border: thick"]


@pytest.mark.parametrize("key", ["escape", "q", "enter"])
async def test_the_audit_record_detail_has_the_frame_and_closes(key: str) -> None:
    app = audit_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, RecordDetail) and not isinstance(detail, TextDetail)
        frame = detail.query_one(".frame")
        assert frame.region.width == 95 and frame.region.height == 27  # 95% x 90% of 100x30
        assert frame.styles.border.top[0] == "thick"
        await pilot.press(key)
        assert not isinstance(app.screen, DetailModal)
