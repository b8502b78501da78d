"""Pilot tests: the console says only what it has read, and its counts and ages agree with what
is on screen (issue 11, parts 2 and 4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from textual.app import App

from lab.containers import DockerEndpoint
from tui.screens.logs import LogsScreen

SIZE = (80, 24)


class LogsApp(App[None]):
    def __init__(self, screen: LogsScreen) -> None:
        super().__init__()
        self.logs = screen

    def on_mount(self) -> None:
        self.push_screen(self.logs)


async def test_logs_header_counts_the_lines_it_shows() -> None:
    more = asyncio.Event()

    async def source(tail: int) -> AsyncGenerator[str, None]:
        for i in range(3):
            yield f"line {i}"
        await more.wait()
        for i in range(3, 5):
            yield f"line {i}"
        await asyncio.Event().wait()  # following, nothing new

    endpoint = DockerEndpoint("local", "unix:///nonexistent/never-connected.sock")
    screen = LogsScreen(endpoint, "web", lines=50, source=source)
    async with LogsApp(screen).run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause()
        header = str(screen.query_one("#logs-header").render())
        assert screen.shown_lines() == ["line 0", "line 1", "line 2"]
        assert "following · 3 lines" in header, header
        more.set()
        await pilot.pause()
        await pilot.pause()
        header = str(screen.query_one("#logs-header").render())
        assert "following · 5 lines" in header, header
