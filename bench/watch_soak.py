"""`hlcon watch` on the demo lab: its idle CPU beside the console's, and a soak (RSS and CPU flat).

    .venv/bin/python bench/watch_soak.py [--seconds 60] [--warmup 20] [--soak 600] [--hosts 3]

Starts the demo lab (tests/testbed/demo.py, refresh 5 s) and, at the same time:

- `hlcon watch` with the demo config plus metrics on a loopback port and one Apprise channel
  (a JSON webhook to a receiver in this process), scraped once a second-ish by this script
  every 15 s (as Prometheus would);
- the console, `hlcon --config DEMO` in a tmux pane 100x30 (as bench/idle_cpu.py runs it).

After the warm-up it reads utime+stime of both from /proc over `--seconds` and prints each as a %
of one core. With `--soak S` it then keeps the watch running for S seconds, sampling its RSS and
CPU every 30 s, and compares the first third of the samples with the last: flat means RSS grew by
under 10 % and CPU stayed within 1.5x. Needs root (the demo lab does).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from idle_cpu import TICKS, VENV_BIN, PaneProcess, hlcon_command, wait_for  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def scrape(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return len(r.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=20)
    parser.add_argument("--soak", type=float, default=0, help="soak seconds after (600: 10 min)")
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--containers", type=int, default=10)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/watch_soak.py needs root (the demo lab: sshd, network namespaces)")
    from tests.testbed.demo import demo_lab
    from tests.testbed.receiver import Receiver

    receiver = Receiver()
    receiver.start()
    with (
        tempfile.TemporaryDirectory(prefix="hlcon-bench-watch-") as tmp,
        demo_lab(
            Path(tmp) / "demo", hosts=args.hosts, containers=args.containers, log=False
        ) as lab,
    ):
        port = free_port()
        config = Path(tmp) / "watch.toml"
        config.write_text(
            lab.config.read_text()
            + f'\n[watch]\nlisten = "127.0.0.1:{port}"\n'
            + '\n[[notify]]\nname = "hook"\nurl = "env:HLCON_BENCH_HOOK"\n'
        )
        env = {
            **os.environ,
            "XDG_STATE_HOME": str(Path(tmp) / "watch-state"),
            "HLCON_BENCH_HOOK": f"json://127.0.0.1:{receiver.port}/hook",
        }
        log = (Path(tmp) / "watch.log").open("w")
        watch = subprocess.Popen(
            [
                *os.environ.get("HLCON_BENCH_WRAP", "").split(),
                str(VENV_BIN / "hlcon"),
                "--config",
                str(config),
                "watch",
            ],
            env=env,
            stderr=log,
        )
        console = PaneProcess("watchbench", hlcon_command(lab.config, Path(tmp) / "st"))
        try:
            wait_for(console, "1 Overview")
            deadline = time.monotonic() + 60
            while True:
                try:
                    scrape(port)
                    break
                except OSError:
                    if time.monotonic() > deadline or watch.poll() is not None:
                        print(f"watch: {watch.poll()}, {time.monotonic() - deadline + 60:.1f}s")
                        subprocess.run(["ss", "-ltnp"], check=False)
                        log.flush()
                        print(Path(log.name).read_text()[-3000:], file=sys.stderr)
                        raise
                    time.sleep(0.5)
            time.sleep(args.warmup)
            w0, c0, t0 = cpu_seconds(watch.pid), console.cpu_seconds()[0], time.monotonic()
            end = t0 + args.seconds
            while time.monotonic() < end:
                scrape(port)
                time.sleep(min(15, max(0.0, end - time.monotonic())))
            elapsed = time.monotonic() - t0
            watch_pct = (cpu_seconds(watch.pid) - w0) / elapsed * 100
            console_pct = (console.cpu_seconds()[0] - c0) / elapsed * 100
            print(
                f"idle CPU over {args.seconds:.0f} s (after {args.warmup:.0f} s warm-up), demo "
                f"lab: {args.hosts} hosts, {len(lab.containers)} containers, refresh 5 s; "
                f"load {os.getloadavg()[0]:.2f}"
            )
            print(f"  hlcon watch  {watch_pct:6.2f} % of one core (scraped every 15 s)")
            print(f"  hlcon (TUI)  {console_pct:6.2f} % of one core (tmux 100x30, same lab)")
            print(f"RESULT watch_idle_cpu watch_pct={watch_pct:.2f} console_pct={console_pct:.2f}")
            console.stop()
            if args.soak > 0:
                samples: list[tuple[float, float, float]] = []  # (t, rss MB, cpu % since last)
                last_cpu, last_t = cpu_seconds(watch.pid), time.monotonic()
                soak_end = last_t + args.soak
                while time.monotonic() < soak_end:
                    for _ in range(2):
                        time.sleep(15)
                        scrape(port)
                    now, cpu = time.monotonic(), cpu_seconds(watch.pid)
                    samples.append(
                        (now - last_t, rss_mb(watch.pid), (cpu - last_cpu) / (now - last_t) * 100)
                    )
                    last_cpu, last_t = cpu, now
                third = max(1, len(samples) // 3)
                first, final = samples[:third], samples[-third:]

                def avg(rows: list[tuple[float, float, float]], i: int) -> float:
                    return sum(r[i] for r in rows) / len(rows)

                rss0, rss1 = avg(first, 1), avg(final, 1)
                cpu0, cpu1 = avg(first, 2), avg(final, 2)
                flat = rss1 < rss0 * 1.10 and cpu1 <= max(cpu0 * 1.5, cpu0 + 0.2)
                print(
                    f"soak {args.soak:.0f} s, {len(samples)} samples: RSS {rss0:.1f} -> "
                    f"{rss1:.1f} MB, CPU {cpu0:.2f} -> {cpu1:.2f} % (first third -> last "
                    f"third): {'flat' if flat else 'NOT flat'}"
                )
                print(
                    f"RESULT watch_soak rss_first_mb={rss0:.1f} rss_last_mb={rss1:.1f} "
                    f"cpu_first_pct={cpu0:.2f} cpu_last_pct={cpu1:.2f} flat={int(flat)}"
                )
            if watch.poll() is not None:
                log.flush()
                print(f"hlcon watch exited {watch.returncode}; its log ends:")
                print(Path(log.name).read_text()[-3000:])
                return 1
            print(f"notifications received by the hook: {len(receiver.requests)}")
        finally:
            console.stop()
            watch.terminate()
            try:
                watch.wait(30)
            except subprocess.TimeoutExpired:
                watch.kill()
            log.close()
            receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
