"""Keystroke to repaint for the `/` filter of the containers pane with 2,000 containers.

    .venv/bin/python bench/filter_latency.py [--containers 2000] [--keys 200] [--seed 8]

A Pilot run (App.run_test, 100x30) of the real HlconApp over a store holding one frozen
ContainerEndpointState of N containers (tests/tui/containers_demo.py's builder, names and
images from a fixed seed). After `/`, it types words drawn from the container names (a
character at a time, then backspaces them away), so each keystroke narrows or widens the table.

Per keystroke: the clock starts just before the key is sent and stops at the first frame the
app writes to its (headless) terminal after the pane's filter holds the new text — App._display
is wrapped to stamp every frame. That includes Textual's own key handling and the frame it
waits for, so it is what a user would feel, less the terminal's own drawing. p50/p95 printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.config import Config, LocalConfig
from lab.model import ContainerEndpointState
from tests.tui.containers_demo import container
from tests.tui.fixtures import NOW, make_context
from tui.app import HlconApp
from tui.panes.base import TablePane

IMAGES = ("nginx:1.25", "postgres:16", "redis:7", "grafana/grafana:10", "busybox:latest")
ROLES = ("web", "db", "cache", "worker", "api", "cron", "proxy", "exporter")


def make_reading(count: int, seed: int) -> ContainerEndpointState:
    rng = random.Random(seed)
    items = []
    for i in range(count):
        role = rng.choice(ROLES)
        state = "running" if rng.random() < 0.9 else "exited"
        items.append(
            container(
                f"{role}-{i:04d}",
                f"docker.io/library/{rng.choice(IMAGES)}",
                state,
                cpu_percent=round(rng.random() * 20, 1) if state == "running" else None,
                mem_usage=rng.randint(5, 900) << 20,
                health=rng.choice((None, "healthy", "unhealthy")),
                restarts=rng.choice((0, 0, 0, 1, 7)),
                exit_code=1 if state == "exited" else None,
                status="Up 3 days" if state == "running" else "Exited (1) 5 hours ago",
            )
        )
    return ContainerEndpointState(
        at=NOW - timedelta(seconds=3),
        endpoint="local",
        engine="podman 4.3.1",
        api_version="1.41",
        containers=tuple(items),
    )


def keystrokes(count: int, seed: int, names: list[str]) -> list[str]:
    """Typed words (a prefix of a name: role, digits) each followed by its backspaces."""
    rng = random.Random(seed)
    keys: list[str] = []
    while len(keys) < count:
        name = rng.choice(names)
        word = (
            name[: rng.randint(2, len(name))] if rng.random() < 0.6 else name[-rng.randint(1, 3) :]
        )
        keys += list(word) + ["backspace"] * len(word)
    return keys[:count] if keys[count - 1] == "backspace" else keys


class TimedApp(HlconApp):
    """HlconApp whose every frame written to the terminal is time-stamped."""

    frames: list[tuple[float, str]]  # (when, the filter the visible pane held)

    def _display(self, screen: Any, renderable: Any) -> None:
        super()._display(screen, renderable)
        pane = self.pane() if self.panes else None
        self.frames.append((time.perf_counter(), getattr(pane, "_filter", "")))


async def measure(count: int, n_keys: int, seed: int) -> tuple[list[float], int]:
    reading = make_reading(count, seed)
    ctx = make_context(
        config=Config(local=LocalConfig(containers="unix:///nonexistent/podman.sock")),
        readings=[(("containers", "local"), reading)],
    )
    app = TimedApp(ctx, initial_pane=3)
    app.frames = []
    keys = keystrokes(n_keys, seed, [c.name for c in reading.containers])
    latencies: list[float] = []
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        pane = app.pane()
        assert isinstance(pane, TablePane)
        assert pane.table.row_count == count, pane.table.row_count
        await pilot.press("slash")
        await pilot.pause()
        text = ""
        for key in keys:
            text = text[:-1] if key == "backspace" else text + key
            seen = len(app.frames)
            t0 = time.perf_counter()
            await pilot.press(key)
            # the first frame drawn after the pane took the new filter text
            while not any(f == text for _, f in app.frames[seen:]):
                await asyncio.sleep(0.0005)
            frame = next(t for t, f in app.frames[seen:] if f == text)
            latencies.append(frame - t0)
        shown = len(pane.filtered_rows())
    return latencies, shown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=2000)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    latencies, _ = asyncio.run(measure(args.containers, args.keys, args.seed))
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    p50 = statistics.median(ordered)
    load = os.getloadavg()[0]
    print(
        f"filter keystroke → repaint, {args.containers} containers, {len(latencies)} keystrokes, "
        f"load {load:.2f}"
    )
    print(
        f"  p50 {p50 * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms   max {ordered[-1] * 1000:6.1f} ms"
    )
    print(f"goal: p95 under 50 ms — {'met' if p95 < 0.050 else 'NOT met'}")
    print(f"RESULT filter_latency p50_ms={p50 * 1000:.1f} p95_ms={p95 * 1000:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
