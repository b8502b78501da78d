"""Startup: from launching `hlcon` (the real console script, embedded default config) to its
first frame, in a real tmux pane — beside `python -c "import textual.app"` and a bare Textual
app's first frame, measured the same way in the same run.

    .venv/bin/python bench/startup.py [--runs 10]

How: one tmux session with a plain shell (`sh`, so root's ~/.bashrc and pyenv stay out of it);
each run types `HLCON_EXIT_AFTER_FIRST_FRAME=1 HLCON_FIRST_FRAME_FILE=F hlcon` into it. The app
writes time.time() to F right after its first refresh and exits; the figure is that time minus
the moment send-keys was issued. Also shown: how long each then takes to exit (the shell
touches a file after it). The import baseline is timed as a plain subprocess.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

BARE_APP = """\
import os, time
from textual.app import App
from textual.widgets import Footer, Static

class Bare(App):
    def compose(self):
        yield Static("hello")
        yield Footer()

    def on_mount(self):
        self.call_after_refresh(self.done)

    def done(self):
        with open(os.environ["HLCON_FIRST_FRAME_FILE"], "w") as f:
            f.write(f"{time.time():.6f}\\n")
        self.exit()

Bare().run()
"""


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return statistics.median(ordered), p90


class Tmux:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.name, *args], check=True, capture_output=True, text=True
        ).stdout

    def start(self, cwd: Path) -> None:
        self(
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "30",
            "-c",
            str(cwd),
            "env -i TERM=xterm-256color HOME=/nonexistent PATH=/usr/bin:/bin sh",
        )

    def stop(self) -> None:
        subprocess.run(["tmux", "-L", self.name, "kill-server"], capture_output=True)


def first_frame(
    tmux: Tmux, command: str, marker: Path, timeout: float = 30.0
) -> tuple[float, float]:
    """(seconds from typing `command` into the pane to the app's first frame, seconds from
    that frame until the process has exited — the app exits right after its first frame)."""
    marker.unlink(missing_ok=True)
    done = marker.with_suffix(".exited")
    done.unlink(missing_ok=True)
    line = (
        f"HLCON_EXIT_AFTER_FIRST_FRAME=1 HLCON_FIRST_FRAME_FILE={shlex.quote(str(marker))} "
        f"{command}; touch {shlex.quote(str(done))}"
    )
    t0 = time.time()
    tmux("send-keys", "-l", line)
    tmux("send-keys", "Enter")
    deadline = time.monotonic() + timeout
    frame: float | None = None
    while time.monotonic() < deadline:
        if frame is None:
            text = marker.read_text() if marker.exists() else ""
            if text.endswith("\n"):
                frame = float(text)
        if done.exists():
            if frame is None:
                break  # exited without a frame
            # the shell's touch is a few ms late; that is inside the exit figure
            return frame - t0, done.stat().st_mtime - frame
        time.sleep(0.01)
    raise TimeoutError(f"no first frame within {timeout}s: {command}\n{tmux('capture-pane', '-p')}")


def import_time() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import textual.app"], check=True)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    hlcon = shutil.which("hlcon", path=str(VENV_BIN)) or str(VENV_BIN / "hlcon")
    if shutil.which("tmux") is None:
        print("tmux is not installed", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="hlcon-bench-") as tmp:
        work = Path(tmp)
        bare = work / "bare_app.py"
        bare.write_text(BARE_APP)
        marker = work / "first-frame"
        # hlcon with the embedded default config: no config in XDG, HLCON_CONFIG unset, and
        # its own state dir so the bench never touches a real audit log.
        env = f"XDG_CONFIG_HOME={work}/cfg XDG_STATE_HOME={work}/state"
        cases = {
            "hlcon first frame (tmux)": f"{env} {shlex.quote(hlcon)}",
            "bare Textual app first frame (tmux)": f"{shlex.quote(sys.executable)} {bare}",
        }
        tmux = Tmux(f"hlcon-bench-{os.getpid()}")
        tmux.start(work)
        results: dict[str, list[float]] = {}
        exits: dict[str, list[float]] = {}
        try:
            for name, command in cases.items():
                first_frame(tmux, command, marker)  # warm the page cache
                runs = [first_frame(tmux, command, marker) for _ in range(args.runs)]
                results[name] = [frame for frame, _ in runs]
                exits[name.replace("first frame", "exit after it")] = [q for _, q in runs]
        finally:
            tmux.stop()
        results.update(exits)
        import_time()
        results['python -c "import textual.app"'] = [import_time() for _ in range(args.runs)]
    load = os.getloadavg()[0]
    print(f"startup, {args.runs} runs each, {os.cpu_count()} CPUs, load {load:.2f}")
    for name, samples in results.items():
        median, p90 = quantiles(samples)
        print(f"  {name:40s} median {median * 1000:6.0f} ms   p90 {p90 * 1000:6.0f} ms")
    hl_median, _ = quantiles(results["hlcon first frame (tmux)"])
    print(f"goal: first frame within 600 ms — {'met' if hl_median <= 0.6 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
