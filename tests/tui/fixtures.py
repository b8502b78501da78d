"""Builders for TUI tests and screenshots: a ConsoleContext from frozen readings and a frozen
clock, no poller, no runner (unless given) — so Pilot tests and snapshots are stable.

    ctx = make_context(
        config=Config(vpn=(VpnConfig(interface="wg0"),)),
        readings=[(("vpn", "wg0@local"), my_reading)],   # published in order: repeat a key
        faults=[(("host", "nas"), fault("host unreachable", "host:nas", "connection refused"))],
    )
    app = HlconApp(ctx, initial_pane=4)

Readings are published in the order given, so several readings of one key build the history
the sparklines draw. `fault()` makes a Fault that began FAULT_AGE before NOW.

Two clocks, never mixed: `frozen_clock` (NOW, a fixed date) goes only with readings made here
relative to NOW; data a real tool made at the real time (a certificate, a restic snapshot, a
handshake) goes with the lab's own clock or `frozen_now()`, a clock stopped at the wall time. A
context over a real `lab` takes the lab's clock unless told otherwise: a fixed date beside real
data is what broke CI when the calendar moved on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from lab.config import Config
from lab.model import Fault, Filesystem, HostState, Key, Reading
from lab.store import Store
from tui.context import ConsoleContext

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
FAULT_AGE = timedelta(minutes=4)
GiB = 1024**3


def frozen_clock() -> datetime:
    return NOW


def frozen_now() -> Callable[[], datetime]:
    """A clock stopped at this moment of the real time: stable within a test, and agreeing with
    data the testbed's tools make now."""
    moment = datetime.now(UTC)
    return lambda: moment


def make_context(
    *,
    config: Config | None = None,
    readings: Iterable[tuple[Key, Reading]] = (),
    faults: Iterable[tuple[Key, Fault]] = (),
    expect: Iterable[Key] = (),
    runner: Any = None,
    audit: Any = None,
    lab: Any = None,
    poller: Any = None,
    clock: Callable[[], datetime] | None = None,
) -> ConsoleContext:
    """A context over a store pre-filled with `readings` then `faults`; `expect` adds entries
    still waiting for their first reading. The clock is `clock`, else the lab's (real data is
    read at the lab's time), else the frozen NOW."""
    store = Store()
    for key in expect:
        store.expect(key)
    for key, reading in readings:
        store.publish(key, reading)
    for key, f in faults:
        store.publish_fault(key, f)
    return ConsoleContext(
        config=config or Config(),
        lab=lab,
        store=store,
        poller=poller,
        runner=runner,
        clock=clock or (lab.clock if lab is not None else frozen_clock),
        audit=audit,
    )


def fault(what: str, where: str, why: str, *, since: timedelta = FAULT_AGE) -> Fault:
    return Fault(what=what, where=where, since=NOW - since, why=why, at=NOW - timedelta(seconds=5))


def host_state(
    name: str,
    *,
    ago: timedelta = timedelta(seconds=3),
    cpu: float | None = 12.5,
    mem_used_pct: float = 40.0,
    load: tuple[float, float, float] = (0.42, 0.35, 0.30),
    cpus: int = 4,
    disks: Sequence[tuple[str, float]] = (("/", 55.0), ("/var", 71.0)),
    swap_used_pct: float = 5.0,
    uptime: float = 3 * 86400 + 5 * 3600,
) -> HostState:
    """A plausible HostState; `disks` are (mount, use %) on 100 GiB filesystems."""
    total = 16 * GiB
    swap = 2 * GiB
    filesystems = tuple(
        Filesystem(
            mount=mount,
            device=f"/dev/sda{i + 1}",
            fstype="ext4",
            size=100 * GiB,
            used=int(pct * GiB),
            available=int((100 - pct) * GiB),
        )
        for i, (mount, pct) in enumerate(disks)
    )
    return HostState(
        at=NOW - ago,
        host=name,
        hostname=f"{name}.lan",
        kernel="Linux 6.1.0-28-amd64",
        uptime=uptime,
        load=load,
        cpus=cpus,
        cpu_percent=cpu,
        mem_total=total,
        mem_available=int(total * (1 - mem_used_pct / 100)),
        swap_total=swap,
        swap_free=int(swap * (1 - swap_used_pct / 100)),
        filesystems=filesystems,
    )


def host_history(
    name: str, cpus: Sequence[float], mems: Sequence[float]
) -> list[tuple[Key, Reading]]:
    """Several readings of one host, oldest first, so its sparklines have a history."""
    n = len(cpus)
    return [
        (
            ("host", name),
            host_state(name, cpu=c, mem_used_pct=m, ago=timedelta(seconds=5 * (n - i - 1) + 3)),
        )
        for i, (c, m) in enumerate(zip(cpus, mems, strict=True))
    ]


def demo_context(**kw: Any) -> ConsoleContext:
    """The lab the snapshots and screenshots show: three hosts, one of them faulted."""
    readings = [
        *host_history(
            "local",
            [5, 9, 14, 30, 22, 18, 12, 25, 41, 33],
            [38, 39, 40, 41, 41, 42, 43, 43, 44, 45],
        ),
        *host_history(
            "nas", [2, 3, 2, 4, 3, 2, 3, 2, 5, 3], [60, 61, 61, 62, 63, 63, 64, 64, 65, 66]
        ),
        (("host", "nas"), host_state("nas", disks=(("/", 40.0), ("/srv/data", 93.0)), cpu=3.0)),
        (("host", "pi"), host_state("pi", ago=timedelta(minutes=6), cpus=4)),
    ]
    faults = [
        (("host", "pi"), fault("host unreachable", "host:pi", "connect to 10.0.0.9:22: timed out")),
    ]
    kw.setdefault("readings", readings)
    kw.setdefault("faults", faults)
    return make_context(**kw)
