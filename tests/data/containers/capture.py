"""Re-capture the JSON in this folder from real podman:
`.venv/bin/python tests/data/containers/capture.py`.

Starts a private podman API service (tests.testbed.podman), makes the demo containers plus one with
ports, and saves what the Docker-compatible and libpod APIs answer.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

import docker  # noqa: E402

from tests.testbed.podman import (  # noqa: E402
    IMAGE,
    HealthTicker,
    create_lab_containers,
    idle_command,
    podman,
    podman_service,
)


def save(name: str, data: object) -> None:
    (HERE / name).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def main() -> None:
    with podman_service("capture") as svc:
        lab = create_lab_containers(svc)
        podman(lab.env, "run", "-d", "--name", "web-ports", "-p", "127.0.0.1:18080:80",
               "-p", "18443:443/tcp", IMAGE, *idle_command())  # fmt: skip
        # Burn a little CPU in one container so the CPU samples differ.
        podman(lab.env, "run", "-d", "--name", "busy", IMAGE, "sh", "-c",
               'trap "exit 0" TERM; while :; do :; done & wait')  # fmt: skip
        HealthTicker(lab.env, lab.healthchecked).tick()
        api = docker.DockerClient(base_url=svc.url).api
        save("podman-4.3.1-version.json", api.version())
        save("podman-4.3.1-list.json", api.containers(all=True))
        for name in [*lab.names, "web-ports", "busy"]:
            save(f"podman-4.3.1-inspect-{name}.json", api.inspect_container(name))
        save("podman-4.3.1-stats-busy-1.json", api.stats("busy", stream=False, one_shot=True))
        base = api.base_url
        libpod_stats = base + "/v4.0.0/libpod/containers/stats"
        save(
            "podman-4.3.1-libpod-stats-1.json",
            api.get(libpod_stats, params={"stream": "false"}).json(),
        )
        time.sleep(1)
        save("podman-4.3.1-stats-busy-2.json", api.stats("busy", stream=False, one_shot=True))
        save(
            "podman-4.3.1-libpod-stats-2.json",
            api.get(libpod_stats, params={"stream": "false"}).json(),
        )
        libpod_list = base + "/v4.0.0/libpod/containers/json"
        save("podman-4.3.1-libpod-list.json", api.get(libpod_list, params={"all": "true"}).json())
        save("podman-4.3.1-stats-twosample-busy.json", api.stats("busy", stream=False))


if __name__ == "__main__":
    main()
