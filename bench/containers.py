"""Benchmark: a full hlcon container refresh (with stats) of N containers, beside the podman CLI.

    .venv/bin/python bench/containers.py [--count 200] [--rounds 5]

Starts a private podman API service (tests.testbed.podman, its own storage), creates N busy-box
containers with fixed names (bench-000 …; reused if present), then times, in the same run:

- hlcon cold: a new endpoint, first read (connect, list, every inspect, stats of all);
- hlcon warm: the poller's steady state (ContainersReader.read again: the libpod stats of all
  containers in one call, inspects only of containers the event stream says changed);
- hlcon warm without the event stream: the list is read every time as well;
- hlcon via the Docker route: list + inspects + one `stats(one_shot=True)` per running
  container, what a Docker engine gets;
- `podman stats --no-stream --all` and `podman ps -a`.

It prints medians and the ratio hlcon warm / podman stats. Everything is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.containers import ContainersReader, DockerEndpoint
from lab.model import ContainerEndpointState
from lab.poller import Poller
from lab.store import Store
from tests.testbed.demo import create_idle_containers
from tests.testbed.podman import podman_service


def create_containers(env: dict[str, str], count: int) -> list[str]:
    return create_idle_containers(env, count, prefix="bench")


def timed_cli(env: dict[str, str], argv: list[str], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        out.append(time.perf_counter() - t)
    return out


async def timed_hlcon(
    url: str, rounds: int, docker_route: bool, events: bool = True
) -> tuple[float, list[float], int]:
    endpoint = DockerEndpoint("bench", url)
    reader = ContainersReader(endpoint, timeout=120, use_events=events)
    store = Store()
    poller = Poller(store, [reader])  # the poller's own path: poll() → read() → publish
    try:
        if docker_route:
            await endpoint.client()
            endpoint.is_podman = False
        t = time.perf_counter()
        assert await poller.poll(reader), store.get(reader.key)
        cold = time.perf_counter() - t
        warm = []
        for _ in range(rounds):
            t = time.perf_counter()
            assert await poller.poll(reader), store.get(reader.key)
            warm.append(time.perf_counter() - t)
        entry = store.get(reader.key)
        assert entry is not None and isinstance(entry.reading, ContainerEndpointState)
        with_cpu = sum(1 for c in entry.reading.containers if c.cpu_percent is not None)
        return cold, warm, with_cpu
    finally:
        await endpoint.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    med = statistics.median

    with podman_service("bench") as svc:
        env = svc.env
        t = time.perf_counter()
        names = create_containers(env, args.count)
        print(f"{len(names)} running containers ready in {time.perf_counter() - t:.1f} s")

        cold, warm, with_cpu = asyncio.run(timed_hlcon(svc.url, args.rounds, docker_route=False))
        d_cold, d_warm, _ = asyncio.run(timed_hlcon(svc.url, args.rounds, docker_route=True))
        _, n_warm, _ = asyncio.run(
            timed_hlcon(svc.url, args.rounds, docker_route=False, events=False)
        )
        stats = timed_cli(env, ["podman", "stats", "--no-stream", "--all"], args.rounds)
        ps = timed_cli(env, ["podman", "ps", "-a"], args.rounds)

        print(f"\n{args.count} containers, median of {args.rounds} rounds (seconds):")
        print(f"  hlcon refresh, warm (libpod route)      {med(warm):7.3f}")
        print(f"  hlcon refresh, cold (connect + inspects) {cold:7.3f}")
        print(f"  hlcon refresh, warm, no events (list)   {med(n_warm):7.3f}")
        print(f"  hlcon refresh, warm (Docker route)      {med(d_warm):7.3f}")
        print(f"  hlcon refresh, cold (Docker route)      {d_cold:7.3f}")
        print(f"  podman stats --no-stream --all          {med(stats):7.3f}")
        print(f"  podman ps -a                            {med(ps):7.3f}")
        print(f"  containers with CPU % after warm-up      {with_cpu}/{args.count}")
        print(f"\n  ratio hlcon warm / podman stats: {med(warm) / med(stats):.3f}")
        print(f"  ratio hlcon Docker-route warm / podman stats: {med(d_warm) / med(stats):.3f}")
    print("cleaned up (containers, storage and the API service removed)")


if __name__ == "__main__":
    main()
