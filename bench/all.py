"""Every bench, one after the other, and one table: figure, peer, goal, met?

    .venv/bin/python bench/all.py [--quick] [--only startup,idle_cpu,…] [--log DIR]

Runs bench/startup.py, idle_cpu.py, memory.py, filter_latency.py, audit_verify.py,
containers.py, hosts.py and restore.py as subprocesses with this interpreter (each prints its
own figures; their full output is kept under --log), reads the figures from their output and
prints a Markdown table the README copies. --quick shortens the slow ones (fewer rounds, a
smaller restore, no ansible) for a smoke run; the README's figures come from a full run.
Run it on a quiet machine: before each bench it waits (up to 2 min) for the CPUs to be 90 %
idle for 3 s, and prints that and the load average. Needs root (sshd,
network namespaces) and the system packages dev/test installs.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH_TIMEOUT = 3600  # seconds per bench; the slowest (hosts with ansible, restore) take ~10 min


@dataclass
class Row:
    bench: str
    figure: str
    peer: str
    goal: str
    met: str


def cpu_idle_fraction(seconds: float = 1.0) -> float:
    """Share of all CPUs' time spent idle over the next `seconds` (/proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return (idle1 - idle0) / max(1, total1 - total0)


def settle(limit: float = 120.0, idle: float = 0.9, quiet_seconds: int = 3) -> float:
    """Wait (up to `limit` s) until the CPUs are `idle` for `quiet_seconds` in a row — the last
    bench's demo lab takes a while to wind down. Returns the idle share of the last second."""
    deadline = time.monotonic() + limit
    streak, last = 0, 0.0
    while time.monotonic() < deadline and streak < quiet_seconds:
        last = cpu_idle_fraction()
        streak = streak + 1 if last >= idle else 0
    return last


def find(pattern: str, text: str, group: int = 1) -> str | None:
    m = re.search(pattern, text, re.MULTILINE)
    return m.group(group) if m else None


def num(pattern: str, text: str) -> float | None:
    value = find(pattern, text)
    return float(value) if value is not None else None


def verdict(ok: bool | None, miss: str = "") -> str:
    if ok is None:
        return "?"
    return "yes" if ok else f"no{(' — ' + miss) if miss else ''}"


def parse_startup(out: str) -> Row:
    hl = num(r"hlcon first frame \(tmux\)\s+median\s+([\d.]+) ms", out)
    imp = num(r'python -c "import textual.app"\s+median\s+([\d.]+) ms', out)
    bare = num(r"bare Textual app first frame \(tmux\)\s+median\s+([\d.]+) ms", out)
    return Row(
        "startup",
        f"first frame {hl:.0f} ms (median)" if hl is not None else "?",
        f"`import textual.app` {imp:.0f} ms; bare Textual app {bare:.0f} ms"
        if imp is not None and bare is not None
        else "?",
        "≤ 600 ms",
        verdict(None if hl is None else hl <= 600, f"{hl:.0f} ms" if hl else ""),
    )


def parse_idle(out: str) -> Row:
    hl = num(r"RESULT idle_cpu hlcon_pct=([\d.]+)", out)
    gl = num(r"glances_pct=([\d.]+)", out)
    kids = num(r"^\s+hlcon\s+[\d.]+ % of one core \(\+ ([\d.]+) %", out)
    figure = f"{hl:.2f} % of a core" if hl is not None else "?"
    if kids is not None:
        figure += f" (+ {kids:.2f} % in restic/wg/ssh it runs)"
    miss = f"{hl / 0.5:.1f}× the goal" if hl is not None else ""
    return Row(
        "idle CPU, 60 s, tmux 100x30",
        figure,
        f"Glances {gl:.2f} %" if gl is not None else "Glances n/a",
        "< 0.5 %",
        verdict(None if hl is None else hl < 0.5, miss),
    )


def parse_memory(out: str) -> Row:
    hl = num(r"RESULT memory hlcon_mb=([\d.]+)", out)
    gl = num(r"glances_mb=([\d.]+)", out)
    return Row(
        "memory, 20 hosts + 500 containers",
        f"{hl:.0f} MB RSS" if hl is not None else "?",
        f"Glances {gl:.0f} MB" if gl is not None else "Glances n/a",
        "< 120 MB",
        verdict(None if hl is None else hl < 120, f"{hl:.0f} MB" if hl else ""),
    )


def parse_filter(out: str) -> Row:
    p50 = num(r"p50_ms=([\d.]+)", out)
    p95 = num(r"p95_ms=([\d.]+)", out)
    return Row(
        "`/` filter, 2,000 containers",
        f"p50 {p50:.0f} ms, p95 {p95:.0f} ms" if p50 is not None and p95 is not None else "?",
        "—",
        "p95 < 50 ms",
        verdict(None if p95 is None else p95 < 50, f"p95 {p95:.0f} ms" if p95 else ""),
    )


def parse_audit(out: str) -> Row:
    v = num(r"^verify\(\)\s+([\d.]+) s", out)
    sha = num(r"^sha256sum \(same file\)\s+([\d.]+) s", out)
    n = find(r"^records\s+([\d,]+)", out)
    return Row(
        f"`hlcon audit verify`, {n or '?'} records",
        f"{v:.2f} s" if v is not None else "?",
        f"sha256sum of the file {sha:.2f} s" if sha is not None else "?",
        "< 1 s",
        verdict(None if v is None else v < 1, f"{v:.2f} s" if v else ""),
    )


def parse_containers(out: str) -> Row:
    warm = num(r"hlcon refresh, warm \(libpod route\)\s+([\d.]+)", out)
    stats = num(r"podman stats --no-stream --all\s+([\d.]+)", out)
    n = find(r"^(\d+) containers, median", out)
    return Row(
        f"container refresh, {n or '?'} containers",
        f"{warm * 1000:.0f} ms (warm)" if warm is not None else "?",
        f"`podman stats --no-stream --all` {stats * 1000:.0f} ms" if stats is not None else "?",
        "faster than the podman CLI",
        verdict(None if warm is None or stats is None else warm < stats),
    )


def parse_hosts(out: str) -> Row:
    loop = out.split("==")[2] if out.count("==") >= 2 else out
    warm = num(r"hlcon warm \(open connections\)\s+([\d.]+) ms", loop)
    par = num(r"OpenSSH parallel \(\d+ ssh at once\)\s+([\d.]+) ms", loop)
    ans = num(r"ansible -m shell -f \d+, pipelining, warm\s+([\d.]+) ms", loop)
    ratio = num(r"warm refresh / one host's read: ([\d.]+)", loop)
    peer = f"parallel OpenSSH {par:.0f} ms" if par is not None else "?"
    if ans is not None:
        peer += f"; ansible (pipelining) {ans:.0f} ms"
    return Row(
        "host refresh, 20 hosts (loopback)",
        f"{warm:.0f} ms (warm); {ratio:.2f}× one host's read"
        if warm is not None and ratio is not None
        else "?",
        peer,
        "≤ 1.5× one host's read",
        verdict(None if ratio is None else ratio <= 1.5, f"{ratio:.2f}×" if ratio else ""),
    )


def parse_restore(out: str) -> Row:
    exe = num(r"hlcon \(execute\+verify\)\s+([\d.]+)s", out)
    ver = num(r"restic restore --verify\s+([\d.]+)s", out)
    over = num(r"([+-][\d.]+) % execute\+verify", out)
    mb = find(r"restore of (\d+) MB", out)
    return Row(
        f"restore, {mb or '?'} MB snapshot",
        f"{exe:.2f} s (execute+verify, {over:+.1f} %)"
        if exe is not None and over is not None
        else "?",
        f"`restic restore --verify` {ver:.2f} s" if ver is not None else "?",
        "within 5 % of restic",
        verdict(None if over is None else over <= 5, f"{over:+.1f} %" if over else ""),
    )


BENCHES: dict[str, tuple[list[str], list[str], Callable[[str], Row]]] = {
    # name: (full args, --quick args, parser)
    "startup": ([], ["--runs", "3"], parse_startup),
    "idle_cpu": ([], ["--seconds", "20", "--warmup", "10"], parse_idle),
    "memory": ([], ["--hosts", "5", "--containers", "50", "--settle", "20"], parse_memory),
    "filter_latency": ([], ["--keys", "100"], parse_filter),
    "audit_verify": ([], ["20000"], parse_audit),
    "containers": ([], ["--count", "50", "--rounds", "3"], parse_containers),
    "hosts": ([], ["--hosts", "5", "--rounds", "3", "--no-ansible"], parse_hosts),
    "restore": ([], ["--mb", "60", "--rounds", "1"], parse_restore),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--only", help="comma-separated bench names")
    parser.add_argument("--log", type=Path, help="keep each bench's output here")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        sys.exit(f"unknown bench {', '.join(unknown)}; known: {', '.join(BENCHES)}")
    log_dir = args.log or Path(tempfile.mkdtemp(prefix="hlcon-bench-all-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    loads: list[str] = []
    for name in names:
        full, quick, parse = BENCHES[name]
        argv = [sys.executable, str(HERE / f"{name}.py"), *(quick if args.quick else full)]
        idle = settle()
        load = os.getloadavg()[0]
        loads.append(f"{name} {load:.2f} ({idle:.0%} idle)")
        state = f"load {load:.2f}, CPUs {idle:.0%} idle"
        print(f"== {name} ({state}): {' '.join(argv[1:])}", flush=True)
        t = time.monotonic()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=BENCH_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            # a hung bench must not hang the table: keep what it printed, say where it stopped
            partial = (exc.stdout or b"") + (exc.stderr or b"")
            text = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
            (log_dir / f"{name}.txt").write_text(text)
            tail = "\n".join(text.splitlines()[-5:])
            print(f"   {name} timed out after {BENCH_TIMEOUT} s; last lines:\n{tail}", flush=True)
            rows.append(Row(name, f"timed out after {BENCH_TIMEOUT} s", "", "", "?"))
            continue
        out = proc.stdout + proc.stderr
        (log_dir / f"{name}.txt").write_text(out)
        shown = [ln for ln in proc.stdout.splitlines() if not ln.startswith("WARNING: Location")]
        print("\n".join(shown[-12:]), flush=True)
        if proc.returncode != 0:
            print(f"   {name} exited {proc.returncode}; see {log_dir / (name + '.txt')}")
            rows.append(Row(name, f"failed (exit {proc.returncode})", "", "", "?"))
        else:
            rows.append(parse(out))
        print(f"   ({time.monotonic() - t:.0f} s)", flush=True)
    print(f"\n{os.cpu_count()} CPUs; load average before each bench: {', '.join(loads)}")
    print(f"outputs: {log_dir}\n")
    if args.quick:
        print("--quick: smaller runs than the row labels say (those name the full run's sizes);")
        print("a smoke test of every bench, not figures to compare with the goals.\n")
    print("| Bench | hlcon | Peer (same run) | Goal | Met? |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.bench} | {r.figure} | {r.peer} | {r.goal} | {r.met} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
