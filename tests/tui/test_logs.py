"""LogsScreen against a real container on the podman testbed, driven by Pilot."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from textual.app import App

from lab.containers import DockerEndpoint
from tests.testbed.podman import IMAGE, LabContainers, podman
from tui.screens.logs import LogsScreen, highlight

pytestmark = pytest.mark.testbed

TALK = (
    'i=0; while :; do i=$((i+1)); echo "tick $i"; '
    '[ $((i % 5)) = 0 ] && echo "ERROR at $i"; sleep 0.1; done'
)


class LogsApp(App[None]):
    def __init__(self, screen: LogsScreen) -> None:
        super().__init__()
        self.logs = screen

    def on_mount(self) -> None:
        self.push_screen(self.logs)


@pytest.fixture(scope="module")
def talker(lab_containers: LabContainers) -> Iterator[str]:
    env = lab_containers.env
    podman(
        env,
        "run",
        "-d",
        "--name",
        "log-talker",
        IMAGE,
        "sh",
        "-c",
        f'trap "exit 0" TERM; {TALK} & wait',
    )
    yield "log-talker"
    podman(env, "rm", "--force", "--time", "0", "log-talker")


@pytest.fixture
async def endpoint(lab_containers: LabContainers) -> AsyncIterator[DockerEndpoint]:
    ep = DockerEndpoint("local", lab_containers.url)
    yield ep
    await ep.aclose()


async def until(pilot: object, check: Callable[[], bool], limit: float = 20.0) -> None:
    """Wait for a condition the streaming worker will make true (bounded, not timed)."""
    for _ in range(int(limit / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


def log_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("logs ")]


async def test_tail_follow_filter_wrap_and_close(talker: str, endpoint: DockerEndpoint) -> None:
    screen = LogsScreen(endpoint, talker, lines=3, keep=50)
    app = LogsApp(screen)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: len(screen.buffer.lines) >= 3)
        first = list(screen.buffer.lines)
        # following: more lines arrive after the tail
        await until(pilot, lambda: len(screen.buffer.lines) >= 15)
        assert screen.buffer.lines[0] == first[0]
        # bounded: never more than `keep`
        await until(pilot, lambda: len(screen.buffer.lines) == 50)
        assert len(screen.log_view.lines) <= 50

        await pilot.press("slash", *"error")
        await pilot.pause()
        shown = screen.shown_lines()
        assert shown and all(line.startswith("ERROR at") for line in shown)
        assert "filter 'error'" in str(screen.query_one("#logs-header").render())
        await pilot.press("enter")

        await pilot.press("w")
        assert screen.wrap and screen.log_view.wrap
        await pilot.press("f")
        assert not screen.following
        await pilot.pause(0.3)
        paused_at = list(screen.buffer.lines)
        await pilot.pause(0.5)
        assert list(screen.buffer.lines) == paused_at  # paused: nothing more read
        await pilot.press("G")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen
    await until(None, lambda: not log_threads(), 10)


async def test_unknown_container_is_shown_not_raised(endpoint: DockerEndpoint) -> None:
    screen = LogsScreen(endpoint, "$(id)", lines=5)
    async with LogsApp(screen).run_test() as pilot:
        await until(pilot, lambda: screen.problem is not None)
        assert "no container named '$(id)'" in (screen.problem or "")
        assert not screen.following


def test_highlight_marks_plain_text_matches() -> None:
    text = highlight("an Error and an error.*", "error.*")
    assert [text.plain[s.start : s.end] for s in text.spans] == ["error.*"]
