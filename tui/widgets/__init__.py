"""Small widgets and renderables of the console."""

from tui.widgets.panebar import PaneBar
from tui.widgets.progress import ActionProgress
from tui.widgets.spark import spark

__all__ = ["ActionProgress", "PaneBar", "spark"]
