"""The podman testbed's own isolation: one pytest session's teardown must not disturb another's
containers (each session has its own storage, run root and tmp_dir)."""

from __future__ import annotations

import os

import docker
import pytest

from tests.testbed import require, require_tools
from tests.testbed.podman import BUSYBOX, IMAGE, NO_NETWORK, idle_command, podman, podman_service

pytestmark = pytest.mark.testbed


def test_another_sessions_reset_does_not_break_restarts_here() -> None:
    """With the default tmp_dir (/run/libpod) shared, session B's `system reset` deleted it;
    session A's next podman process took the machine for rebooted, and A's restarts failed
    "runc create failed: container with given ID already exists"."""
    require_tools("podman", "runc", "tar")
    require(BUSYBOX.exists(), f"busybox-static ({BUSYBOX})")
    with podman_service(f"ia{os.getpid()}") as a:
        podman(a.env, "run", "-d", "--name", "survivor", *NO_NETWORK, IMAGE, *idle_command())
        client = docker.DockerClient(base_url=a.url)
        try:
            with podman_service(f"ib{os.getpid()}"):
                pass  # B starts and resets on the way out
            podman(a.env, "ps")  # a new podman process in A, as the health ticker makes
            client.api.restart("survivor", timeout=10)
            assert client.api.inspect_container("survivor")["State"]["Running"] is True
        finally:
            client.close()
