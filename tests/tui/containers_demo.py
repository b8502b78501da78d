"""Frozen container readings for the containers pane's and the logs screen's snapshots
(catalog.py): a homelab podman host with a healthy media server, an unhealthy cloud, a failed
backup job and a crash-looping exporter, plus a NAS endpoint whose socket is gone."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import Any

from textual.pilot import Pilot

from lab.config import Config, ContainerEndpointConfig, LocalConfig
from lab.containers import DockerEndpoint
from lab.model import Container, ContainerEndpointState, PortMapping
from tests.tui.fixtures import NOW, fault, make_context
from tui.app import HlconApp
from tui.screens.logs import LogsScreen

MiB = 1024 * 1024


def container(name: str, image: str, state: str, **kw: Any) -> Container:
    full = hashlib.sha256(name.encode()).hexdigest()
    started = NOW - kw.pop("up", timedelta(days=3))
    return Container(
        id=full,
        name=name,
        image=image,
        state=state,
        status=kw.pop("status", "Up 3 days"),
        health=kw.pop("health", None),
        restart_count=kw.pop("restarts", 0),
        started_at=started,
        finished_at=kw.pop("finished", None),
        exit_code=kw.pop("exit_code", None),
        **kw,
    )


def local_reading() -> ContainerEndpointState:
    return ContainerEndpointState(
        at=NOW - timedelta(seconds=3),
        endpoint="local",
        engine="podman 4.3.1",
        api_version="1.41",
        containers=(
            container(
                "caddy",
                "docker.io/library/caddy:2",
                "running",
                ports=(
                    PortMapping("443/tcp", "", "443"),
                    PortMapping("80/tcp", "", "80"),
                ),
                cpu_percent=0.4,
                mem_usage=38 * MiB,
            ),
            container(
                "jellyfin",
                "docker.io/jellyfin/jellyfin:10.8",
                "running",
                health="healthy",
                ports=(PortMapping("8096/tcp", "127.0.0.1", "8096"),),
                cpu_percent=23.0,
                mem_usage=612 * MiB,
            ),
            container(
                "nextcloud",
                "docker.io/library/nextcloud:28",
                "running",
                health="unhealthy",
                up=timedelta(hours=2),
                cpu_percent=2.1,
                mem_usage=201 * MiB,
            ),
            container(
                "restic-job",
                "localhost/restic-job:latest",
                "exited",
                exit_code=1,
                finished=NOW - timedelta(hours=5),
                status="Exited (1) 5 hours ago",
            ),
            container(
                "node-exporter",
                "quay.io/prometheus/node-exporter:v1.7",
                "running",
                restarts=37,
                up=timedelta(seconds=4),
                restart_policy="always",
                cpu_percent=0.0,
                mem_usage=9 * MiB,
            ),
        ),
    )


def containers_context() -> Any:
    config = Config(
        local=LocalConfig(containers="unix:///run/podman/podman.sock"),
        containers=(ContainerEndpointConfig("nas", "unix:///srv/nas/docker.sock"),),
    )
    return make_context(
        config=config,
        readings=[(("containers", "local"), local_reading())],
        faults=[
            (
                ("containers", "nas"),
                fault(
                    "docker endpoint unreachable",
                    "containers:nas",
                    "socket /srv/nas/docker.sock does not exist",
                ),
            )
        ],
    )


def containers_app() -> HlconApp:
    return HlconApp(containers_context(), initial_pane=3)


LOG = [
    "[Info] Startup complete 0:00:04.1",
    "[Info] WebSocketManager: WS 10.0.0.12 request",
    "[Warn] Slow HTTP response from http://10.0.0.12/Items in 0:00:02.7",
    "[Info] Playback start: The Expanse S01E03 (client 10.0.0.12)",
    "[Error] FFmpeg exited with code 1: Conversion failed!",
    "[Info] Transcoding fell back to direct stream",
    "[Info] ScheduledTasks: Scan Media Library completed",
    "[Error] Failed to fetch image from TheMovieDb: timed out",
]


async def frozen_log(tail: int) -> AsyncGenerator[str, None]:
    for line in LOG[-tail:]:
        yield line
    await asyncio.Event().wait()  # following: no new lines in a frozen picture


async def push_logs(pilot: Pilot[Any]) -> None:
    endpoint = DockerEndpoint("local", "unix:///run/podman/podman.sock")  # never connected
    pilot.app.push_screen(LogsScreen(endpoint, "jellyfin", lines=200, source=frozen_log))
    await pilot.pause()
