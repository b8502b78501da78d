"""FramedModal: the frame every modal of the console shares — centred over the pane, one
container with class "frame" (a thick accent border on the surface colour; "-warning" for a
question before something changes). A subclass sets only what differs: its size, its keys."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen

ResultT = TypeVar("ResultT")


class FramedModal(ModalScreen[ResultT]):
    DEFAULT_CSS = """
    FramedModal { align: center middle; }
    FramedModal > .frame { border: thick $accent; background: $surface; padding: 0 1; }
    FramedModal > .frame.-warning { border: thick $warning; }
    """
