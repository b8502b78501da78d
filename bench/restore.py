"""Restore a ≥ 500 MB snapshot through hlcon's RestoreAction (runner: policy, plan, audit, lock,
execute, verify) beside raw `restic restore` in the same run, and print the overhead.

    .venv/bin/python bench/restore.py [--mb 520] [--rounds 3] [--keep]

Data: random bytes from random.Random(SEED) (reproducible, incompressible), a few big files and
many small ones. Each round restores into a fresh folder, alternating the order, and the
median is reported. Peers: `restic restore` plain, and `restic restore --verify` (what hlcon
runs: the same work, so that is the like-for-like comparison). Everything is deleted after.
On 2 shared cores one restore varies by ±30 % from run to run (page-cache writeback), so read
the medians with the per-round figures beside them; `sync` runs between rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actions.backups import RestoreAction
from actions.base import Target
from actions.runner import Runner
from lab.config import BackupConfig, Config, ConsoleConfig
from lab.secrets import SecretRef
from lab.wiring import Lab

SEED = 20261123
CHUNK = 4 << 20


def generate(root: Path, mb: int) -> tuple[int, int]:
    """`mb` MB: 8 big files share 95 %, the rest are 2000 small files in nested folders."""
    rng = random.Random(SEED)
    total = mb * 1_000_000
    big = int(total * 0.95) // 8
    files = 0
    for i in range(8):
        with open(root / f"big file {i}.bin", "wb") as fh:
            left = big
            while left:
                n = min(CHUNK, left)
                fh.write(rng.randbytes(n))
                left -= n
        files += 1
    small_total = total - 8 * big
    per = max(1, small_total // 2000)
    for i in range(2000):
        d = root / f"small/{i % 40:02d}/ü {i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f {i}.dat").write_bytes(rng.randbytes(per))
        files += 1
    return files, 8 * big + 2000 * per


STEP_TIMEOUT = 1800  # seconds for any one step: a hang names its step instead of hanging


def run(argv: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(
        argv,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=STEP_TIMEOUT,
    )
    return time.perf_counter() - t


async def hlcon_restore(lab: Lab, snapshot: str, include: str, target: Path) -> tuple[float, float]:
    """(total, execute+verify) seconds through the runner."""
    runner = Runner(lab)
    t0 = time.perf_counter()
    action = RestoreAction.create(
        Target("repo", "bench"),
        lab,
        {"snapshot": snapshot, "include": [include], "target": str(target)},
    )
    prepared = await asyncio.wait_for(runner.prepare(action), STEP_TIMEOUT)
    t1 = time.perf_counter()
    result = await asyncio.wait_for(runner.run(prepared, "yes"), STEP_TIMEOUT)
    t2 = time.perf_counter()
    if not result.ok:
        raise SystemExit(f"hlcon restore failed: {result.outcome.message}")
    return t2 - t0, t2 - t1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=520, help="snapshot size in MB (default 520)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if shutil.which("restic") is None:
        raise SystemExit("restic is not installed")
    work = Path(tempfile.mkdtemp(prefix="hlcon-bench-restore-", dir="/var/tmp"))
    try:
        src, repo, pw = work / "source", work / "repo", work / "password"
        src.mkdir()
        pw.write_text("bench password\n")
        env = {**os.environ, "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD_FILE": str(pw)}
        t = time.perf_counter()
        files, size = generate(src, args.mb)
        print(
            f"generated {files} files, {size / 1e6:.0f} MB in {time.perf_counter() - t:.1f}s",
            flush=True,
        )
        run(["restic", "init"], env)
        subprocess.run(["sync"], check=False)
        t = run(["restic", "backup", "--host", "bench", str(src)], env)
        print(f"restic backup: {t:.1f}s", flush=True)
        snap = subprocess.run(
            ["restic", "snapshots", "--json", "--latest", "1"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=STEP_TIMEOUT,
        ).stdout
        import json

        snapshot = json.loads(snap)[0]["id"]
        lab = Lab(
            Config(
                console=ConsoleConfig(state_dir=work / "state"),
                backups=(
                    BackupConfig(
                        name="bench", repository=str(repo), password=SecretRef("file", str(pw))
                    ),
                ),
            )
        )
        raw, raw_verify, hl_total, hl_exec = [], [], [], []
        for r in range(args.rounds):
            order = ["raw", "verify", "hlcon"] if r % 2 == 0 else ["hlcon", "verify", "raw"]
            for kind in order:
                print(f"round {r + 1}/{args.rounds}: {kind}", flush=True)  # where a hang stopped
                target = work / f"out-{kind}-{r}"
                if kind == "raw":
                    raw.append(run(["restic", "restore", snapshot, "--target", str(target)], env))
                elif kind == "verify":
                    raw_verify.append(
                        run(
                            ["restic", "restore", snapshot, "--target", str(target), "--verify"],
                            env,
                        )
                    )
                else:
                    total, execute = asyncio.run(hlcon_restore(lab, snapshot, str(src), target))
                    hl_total.append(total)
                    hl_exec.append(execute)
                shutil.rmtree(target)
                # let the kernel write back the last restore's pages before the next one starts
                subprocess.run(["sync"], check=False)
        m_raw, m_ver = statistics.median(raw), statistics.median(raw_verify)
        m_tot, m_exe = statistics.median(hl_total), statistics.median(hl_exec)
        print(f"\nrestore of {size / 1e6:.0f} MB, {files} files, median of {args.rounds} rounds:")
        print(f"  restic restore                 {m_raw:6.2f}s   {[round(x, 2) for x in raw]}")
        print(
            f"  restic restore --verify        {m_ver:6.2f}s   {[round(x, 2) for x in raw_verify]}"
        )
        print(f"  hlcon (execute+verify)         {m_exe:6.2f}s   {[round(x, 2) for x in hl_exec]}")
        print(f"  hlcon (plan+confirm+run total) {m_tot:6.2f}s   {[round(x, 2) for x in hl_total]}")
        print(
            f"overhead vs restic --verify: {100 * (m_tot / m_ver - 1):+.1f} % total, "
            f"{100 * (m_exe / m_ver - 1):+.1f} % execute+verify (goal within 5 %)"
        )
        print(
            f"overhead vs plain restic restore: {100 * (m_tot / m_raw - 1):+.1f} % "
            "(hlcon always verifies)"
        )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
