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
]
