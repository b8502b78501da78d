"""Shared fixtures. Testbed components register here; each module owns one component."""

from __future__ import annotations

pytest_plugins: list[str] = [
    # "tests.testbed.podman", "tests.testbed.sshd", … — one line per component
    "tests.testbed.podman",
    "tests.testbed.sshd",
    "tests.testbed.systemd",
    "tests.testbed.restic",
    "tests.testbed.wireguard",
    "tests.testbed.acme",
    "tests.testbed.receiver",
    "tests.testbed.alertmanager",
    "tests.testbed.prometheus",
]


# ---------------------------------------------------------------- a hang says where it hangs

import asyncio  # noqa: E402
import gc  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

HANG_REPORT_AFTER = 240.0  # seconds; pytest-timeout (pyproject) fails the test at 300


def _report_hang(name: str) -> None:
    """What pytest-timeout's thread dump cannot show: every unfinished asyncio task's stack
    (found through the garbage collector, from this timer thread) and the processes this one
    still waits for."""
    out = io.StringIO()
    print(f"\n=== {name} still running after {HANG_REPORT_AFTER:g} s; asyncio tasks:", file=out)
    for obj in gc.get_objects():
        if isinstance(obj, asyncio.Task) and not obj.done():
            try:
                obj.print_stack(limit=12, file=out)
            except Exception as exc:  # a task finishing under our feet
                print(f"({obj!r}: {exc})", file=out)
    children = subprocess.run(
        ["ps", "-o", "pid,etimes,stat,args", "--ppid", str(os.getpid())],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    print(f"=== child processes:\n{children}", file=out)
    sys.stderr.write(out.getvalue())


@pytest.fixture(autouse=True)
def hang_report(request: pytest.FixtureRequest) -> Iterator[None]:
    timer = threading.Timer(HANG_REPORT_AFTER, _report_hang, args=(request.node.nodeid,))
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()


# ---------------------------------------------------------------- the calendar

# Go binaries (podman, restic, wireguard-go, pebble, lego) read the clock without libc, so
# faketime cannot move theirs: a test that uses one is marked `go_tools`, and dev/test-future
# runs every other test with the clock a year ahead, to show that no test depends on the date.
GO_TOOL_FIXTURES = frozenset(
    {
        "podman_service_session",
        "podman_socket",
        "lab_containers",
        "systemd_host",
        "restic_lab",
        "locked_repo",
        "wg_testbed",
        "acme_lab",
        "fresh_acme_lab",
        "alertmanager",
        "prometheus_tool",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "go_tools: uses a Go binary whose clock faketime cannot move (dev/test-future skips it)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if GO_TOOL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.go_tools)
