"""The testbed: real lab components started by session fixtures (LAB-NOTES.md says how).

Each component lives in its own module here and registers its fixtures through
tests/conftest.py's pytest_plugins. A component that is missing skips locally and FAILS in CI
(HLCON_TESTBED_STRICT=1, set by dev/test when CI=true): a testbed test must never pass unseen.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

STRICT = os.environ.get("HLCON_TESTBED_STRICT") == "1"


def require(ok: bool, what: str) -> None:
    """Skip (locally) or fail (CI) when a testbed component is missing."""
    if ok:
        return
    message = f"testbed component missing: {what}"
    if STRICT:
        pytest.fail(message + " (HLCON_TESTBED_STRICT=1: dev/test must install it)")
    pytest.skip(message)


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    require(not missing, ", ".join(missing) + " not on PATH")


def is_root() -> bool:
    return os.geteuid() == 0


def end_process(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    """A server the testbed started: SIGTERM, then SIGKILL if it is still there after `grace` s."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
