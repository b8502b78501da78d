"""How fast is `hlcon audit verify`? Builds an audit log of N records (default 100,000) through
AuditLog.append, then times verify() beside `sha256sum` of the same file (the floor: hashing
every byte once, with no JSON parsing) and a few other reads.

    .venv/bin/python bench/audit_verify.py [N]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actions.audit import AuditLog, Who


def best_of(n: int, fn: object) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    tmp = Path(tempfile.mkdtemp(prefix="hlcon-bench-"))
    try:
        log = AuditLog(tmp / "audit.jsonl", secret_values=frozenset)
        who = Who("alice", 1000, (("SSH_CLIENT", "127.0.0.1 50000 22"),))
        plan = {
            "family": "container.restart",
            "target": "container:jellyfin@skylab",
            "summary": "Restart container jellyfin on skylab",
            "steps": [
                {
                    "description": "restart container jellyfin (Docker API POST "
                    "/containers/3f2a/restart)",
                    "host": "skylab",
                }
            ],
            "blast_radius": "single",
            "reversible": False,
            "cost": "≈5 s downtime",
        }
        t = time.perf_counter()
        for i in range(n):
            phase = ("planned", "intent", "outcome")[i % 3]
            log.append(
                phase,
                who=who,
                action="container.restart",
                target="container:jellyfin@skylab",
                ref=i - i % 3 + 1,
                plan=plan if phase == "planned" else None,
                result={"ok": True, "message": "running again"} if phase == "outcome" else None,
                duration=4.2 if phase == "outcome" else None,
            )
        append_s = time.perf_counter() - t
        size = log.path.stat().st_size

        result = log.verify()
        assert result.ok, result
        verify_s = best_of(3, log.verify)
        sha_s = best_of(
            3, lambda: subprocess.run(["sha256sum", str(log.path)], check=True, capture_output=True)
        )
        stream_s = best_of(3, lambda: sum(1 for _ in log.records()))
        tail_s = best_of(3, lambda: log.tail(20))
        fsync_n = 200
        t = time.perf_counter()
        for _ in range(fsync_n):
            log.append("intent", who=who, target="container:x@local", sync=True)
        fsync_ms = (time.perf_counter() - t) / fsync_n * 1000

        print(f"records                  {n:,} ({size / 1e6:.1f} MB, {size / n:.0f} B/record)")
        print(f"append (no fsync)        {n / append_s:,.0f} records/s")
        print(f"append intent (fsync)    {fsync_ms:.2f} ms each")
        print(f"verify()                 {verify_s:.3f} s  ({n / verify_s:,.0f} records/s)")
        print(f"sha256sum (same file)    {sha_s:.3f} s  (hashing alone, no parsing)")
        print(f"records() stream         {stream_s:.3f} s")
        print(f"tail(20)                 {tail_s * 1000:.2f} ms")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
