"""CPU of one read by each reader against the demo lab — where an idle console's CPU goes.

    .venv/bin/python bench/readers.py [--hosts 3] [--containers 10] [--reads 10]

Starts the demo lab (tests/testbed/demo.py, as bench/idle_cpu.py does), builds hlcon's readers
from its config, reads each once to warm up (connections, caches), then times `--reads` reads of
each with time.process_time() — this process's CPU, its threads included (the demo lab's own
threads mostly wait) — and prints CPU per read and, from each reader's interval, its share of one
core when left running. No peer: this splits bench/idle_cpu.py's figure. Needs root.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


async def measure(config: Path, reads: int) -> None:
    from lab.config import load_config
    from lab.wiring import Lab

    lab = Lab(load_config(config))
    readers = lab.readers()
    try:
        for reader in readers:
            try:
                await asyncio.wait_for(reader.read(), 60)
            except Exception as exc:  # a reader that cannot read is reported, not timed
                print(f"  {reader.key[0]}:{reader.key[1]} warm-up failed: {exc}")
        await asyncio.sleep(1)
        total = 0.0
        print(f"{'reader':34s} {'CPU per read':>13s} {'interval':>9s} {'% of a core':>12s}")
        for reader in readers:
            start = time.process_time()
            for _ in range(reads):
                try:
                    await asyncio.wait_for(reader.read(), 60)
                except Exception as exc:
                    print(f"  {reader.key[0]}:{reader.key[1]} failed: {exc}")
            per_read = (time.process_time() - start) / reads
            share = per_read / reader.interval * 100
            total += share
            name = f"{reader.key[0]}:{reader.key[1]}"
            print(f"{name:34s} {per_read * 1000:10.2f} ms {reader.interval:8.0f}s {share:11.3f} %")
        print(f"all readers together, left running: {total:.2f} % of one core")
        print(f"RESULT readers pct={total:.3f}")
    finally:
        for reader in readers:
            await reader.close()
        await lab.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--containers", type=int, default=10)
    parser.add_argument("--reads", type=int, default=10)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/readers.py needs root (the demo lab: sshd, network namespaces)")
    from tests.testbed.demo import demo_lab

    with (
        tempfile.TemporaryDirectory(prefix="hlcon-bench-readers-") as tmp,
        demo_lab(
            Path(tmp) / "demo", hosts=args.hosts, containers=args.containers, log=False
        ) as lab,
    ):
        asyncio.run(measure(lab.config, args.reads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
