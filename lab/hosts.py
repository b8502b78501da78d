"""Host reader: load, CPU %, memory, swap, filesystems, uptime — for this machine and SSH hosts.

One shell command gathers everything in one round trip (pyinfra's facts: a command plus pure
parsers). The same parsers serve this machine (LocalExecutor) and every SSH host (lab.ssh), so
what the local pane shows is exactly what a remote host would show.

This machine without [local] services is read without the shell: the same sections come from
/proc in-process and one `df` (local_host_output), so a poll costs one process instead of eight
(bench/idle_cpu.py) — and still goes through the same parser.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from lab.execute import Executor, LocalExecutor
from lab.model import Fail2banJail, Filesystem, HostState, Key, Unit, utcnow
from lab.poller import ReadError

if TYPE_CHECKING:
    from lab.poller import Reader
    from lab.wiring import Clock, Lab

# Sections are marked so one output carries every fact; each `cat` is allowed to fail alone.
# `df -PT -k` is GNU; busybox/BSD df lack -T, hence the fallback (the parser takes both shapes).
_SECTIONS = (
    ("hostname", "cat /proc/sys/kernel/hostname 2>/dev/null || hostname"),
    ("kernel", "uname -sr"),
    ("loadavg", "cat /proc/loadavg"),
    ("meminfo", "cat /proc/meminfo"),
    ("uptime", "cat /proc/uptime"),
    ("stat", "grep -E '^cpu[0-9]* ' /proc/stat"),
    ("df", "df -PT -k 2>/dev/null || df -P -k"),
)
# systemd and fail2ban, asked of SSH hosts (and of this machine when it has [local] services).
# The configured services arrive as the script's positional parameters ("$@"), never in its
# text, so a unit name cannot inject anything.
_UNIT_SECTIONS = (
    ("systemd", "[ -d /run/systemd/system ] && echo yes || echo no"),
    (
        "failed",
        "[ -d /run/systemd/system ] && "
        "systemctl list-units --state=failed --no-legend --plain --no-pager 2>/dev/null",
    ),
    (
        "services",
        '[ -d /run/systemd/system ] && [ "$#" -gt 0 ] && systemctl show --no-pager '
        "-p Id,Description,LoadState,ActiveState,SubState,MainPID,ActiveEnterTimestampMonotonic "
        '-- "$@" 2>/dev/null',
    ),
    (
        "fail2ban",
        "if command -v fail2ban-client >/dev/null 2>&1; then echo present; "
        "for j in $(fail2ban-client status 2>&1 | sed -n 's/.*Jail list:[[:space:]]*//p' "
        "| tr ',' ' '); do fail2ban-client status \"$j\" 2>&1; done; else echo absent; fi",
    ),
)
# The first poll samples /proc/stat twice so even a one-shot `hlcon status` has a CPU %.
_FIRST_SAMPLE = ("stat0", "grep -E '^cpu ' /proc/stat; sleep 0.25")

# Filesystems that say nothing about disk space.
PSEUDO_FS = frozenset(
    {
        "tmpfs",
        "devtmpfs",
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "devpts",
        "mqueue",
        "squashfs",
        "nsfs",
        "efivarfs",
        "overlayfs-meta",
        "autofs",
        "fusectl",
        "tracefs",
        "debugfs",
        "securityfs",
        "pstore",
        "bpf",
        "configfs",
        "hugetlbfs",
        "ramfs",
        "none",
    }
)


def host_script(first: bool = False, units: bool = False) -> str:
    """The shell text run on the host. Fixed text: nothing from config or input goes in it
    (configured services are passed as positional parameters)."""
    sections = ((_FIRST_SAMPLE,) if first else ()) + _SECTIONS + (_UNIT_SECTIONS if units else ())
    return "; ".join(f"echo '@@{name}'; {{ {cmd}; }}" for name, cmd in sections)


def _proc_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""  # the parser names the missing section


def _cpu_lines(stat: str, total_only: bool = False) -> str:
    pattern = re.compile(r"^cpu " if total_only else r"^cpu[0-9]* ")
    return "\n".join(line for line in stat.splitlines() if pattern.match(line))


async def local_host_output(executor: Executor, *, first: bool, timeout: float) -> str:
    """host_script()'s output for this machine, read from /proc in-process plus one `df` run
    through `executor` (a hung network mount then hangs a child, never a thread of ours)."""
    sections: list[tuple[str, str]] = []
    if first:
        sections.append(("stat0", _cpu_lines(_proc_text("/proc/stat"), total_only=True)))
        await asyncio.sleep(0.25)
    uname = os.uname()
    df = await executor.run(["df", "-PT", "-k"], timeout=timeout)
    if not df.stdout.strip():  # busybox/BSD df: no -T
        df = await executor.run(["df", "-P", "-k"], timeout=timeout)
    sections += [
        ("hostname", _proc_text("/proc/sys/kernel/hostname").strip() or uname.nodename),
        ("kernel", f"{uname.sysname} {uname.release}"),
        ("loadavg", _proc_text("/proc/loadavg")),
        ("meminfo", _proc_text("/proc/meminfo")),
        ("uptime", _proc_text("/proc/uptime")),
        ("stat", _cpu_lines(_proc_text("/proc/stat"))),
        ("df", df.stdout),
    ]
    return "\n".join(f"@@{name}\n{text.rstrip()}" for name, text in sections) + "\n"


def split_sections(text: str) -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("@@") and line[2:].isidentifier():
            current = sections.setdefault(line[2:], [])
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v) for k, v in sections.items()}


# ---------------------------------------------------------------- pure parsers


def parse_loadavg(text: str) -> tuple[float, float, float]:
    """/proc/loadavg: "0.52 0.58 0.59 1/467 12345"."""
    fields = text.split()
    try:
        return float(fields[0]), float(fields[1]), float(fields[2])
    except (IndexError, ValueError):
        raise ValueError(f"not /proc/loadavg: {text[:60]!r}") from None


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo → bytes by field name ("MemTotal": 25258168320 …)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts:
            continue
        try:
            value = int(parts[0])
        except ValueError:
            continue
        out[name.strip()] = value * 1024 if len(parts) > 1 and parts[1] == "kB" else value
    if "MemTotal" not in out:
        raise ValueError("not /proc/meminfo: no MemTotal")
    return out


def mem_available(meminfo: Mapping[str, int]) -> int:
    """MemAvailable where the kernel gives it (3.14+), else free + buffers + cache."""
    if "MemAvailable" in meminfo:
        return meminfo["MemAvailable"]
    return sum(meminfo.get(k, 0) for k in ("MemFree", "Buffers", "Cached", "SReclaimable"))


def parse_uptime(text: str) -> float:
    try:
        return float(text.split()[0])
    except (IndexError, ValueError):
        raise ValueError(f"not /proc/uptime: {text[:60]!r}") from None


@dataclass(frozen=True)
class CpuTimes:
    busy: int
    total: int


def parse_proc_stat(text: str) -> tuple[CpuTimes, int]:
    """The aggregate `cpu` line of /proc/stat → (times, number of cpuN lines)."""
    total_line: CpuTimes | None = None
    cpus = 0
    for line in text.splitlines():
        fields = line.split()
        if not fields or not fields[0].startswith("cpu"):
            continue
        if fields[0] != "cpu":
            cpus += 1
            continue
        try:
            values = [int(v) for v in fields[1:]]
        except ValueError:
            raise ValueError(f"not /proc/stat: {line[:60]!r}") from None
        if len(values) < 4:
            raise ValueError(f"not /proc/stat: {line[:60]!r}")
        # user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is
        # already counted in user, so only the first eight fields make the total.
        values = values[:8]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        total_line = CpuTimes(busy=sum(values) - idle, total=sum(values))
    if total_line is None:
        raise ValueError("not /proc/stat: no aggregate cpu line")
    return total_line, cpus


def cpu_percent(prev: CpuTimes | None, cur: CpuTimes) -> float | None:
    if prev is None or cur.total <= prev.total:
        return None
    busy = max(0, cur.busy - prev.busy)
    return min(100.0, 100.0 * busy / (cur.total - prev.total))


def parse_df(text: str, *, block_size: int = 1024) -> list[Filesystem]:
    """`df -PT -k` (GNU, with a Type column) or `df -P -k` (busybox, BSD) → filesystems; with
    `block_size=1`, `df -P -B1 PATH` (the restore's free-space probe, actions.backups).

    Mount points may hold spaces: they are everything after the Capacity column.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not lines[0].startswith("Filesystem"):
        raise ValueError("not df -P output: no header")
    typed = " Type " in f" {lines[0]} "
    out: list[Filesystem] = []
    for line in lines[1:]:
        fields = line.split()
        # A capacity field like "22%" anchors the row even if a device name has spaces.
        cap = next((i for i, f in enumerate(fields) if f.endswith("%") and f[:-1].isdigit()), None)
        if cap is None or cap < (5 if typed else 4) or cap + 1 >= len(fields):
            continue
        try:
            blocks, used, avail = (int(fields[cap - 3]), int(fields[cap - 2]), int(fields[cap - 1]))
        except ValueError:
            continue
        fstype = fields[cap - 4] if typed else ""
        device = " ".join(fields[: cap - (4 if typed else 3)])
        mount = line.split(fields[cap], 1)[1].strip()
        out.append(
            Filesystem(
                mount, device, fstype, blocks * block_size, used * block_size, avail * block_size
            )
        )
    return out


# Container engines mount every container's root here; they are the engine's disk, not new ones.
ENGINE_MOUNTS = ("/var/lib/docker/", "/var/lib/containers/", "/run/containers/", "/run/docker/")


def disk_filesystems(filesystems: Iterable[Filesystem]) -> tuple[Filesystem, ...]:
    """Real disks only: no pseudo filesystems, no zero-size mounts, no container root overlays
    (a container's own "/" stays), each mount once."""
    seen: set[str] = set()
    out = []
    for fs in filesystems:
        if fs.fstype in PSEUDO_FS or fs.size == 0 or fs.mount in seen:
            continue
        if fs.fstype == "overlay" and fs.mount != "/":
            continue
        if fs.mount.startswith(ENGINE_MOUNTS) or "/storage/overlay/" in fs.mount:
            continue
        if not fs.fstype and fs.device in ("tmpfs", "devtmpfs", "none", "udev", "shm"):
            continue  # busybox df has no Type column: judge by the device name
        seen.add(fs.mount)
        out.append(fs)
    return tuple(out)


@dataclass(frozen=True)
class HostFacts:
    """The parsed output of one host_script() run, before CPU deltas."""

    hostname: str
    kernel: str
    load: tuple[float, float, float]
    meminfo: Mapping[str, int]
    uptime: float
    cpu: CpuTimes
    cpus: int
    first_cpu: CpuTimes | None
    filesystems: tuple[Filesystem, ...]


def parse_host_output(text: str) -> HostFacts:
    """Every section of host_script()'s output; a missing or garbled section is a ValueError
    naming it."""
    sections = split_sections(text)

    def need(name: str) -> str:
        value = sections.get(name, "").strip()
        if not value:
            raise ValueError(f"no {name} in the host's output")
        return value

    try:
        cpu, cpus = parse_proc_stat(need("stat"))
        first = parse_proc_stat(sections["stat0"])[0] if sections.get("stat0") else None
        return HostFacts(
            hostname=sections.get("hostname", "").strip() or "?",
            kernel=sections.get("kernel", "").strip(),
            load=parse_loadavg(need("loadavg")),
            meminfo=parse_meminfo(need("meminfo")),
            uptime=parse_uptime(need("uptime")),
            cpu=cpu,
            cpus=cpus or 1,
            first_cpu=first,
            filesystems=disk_filesystems(parse_df(sections.get("df", "") or "Filesystem")),
        )
    except ValueError as exc:
        raise ValueError(f"unexpected host output: {exc}") from None


# ---------------------------------------------------------------- systemd and fail2ban


def systemctl_show_blocks(text: str) -> list[dict[str, str]]:
    """`systemctl show [-p PROPS] -- UNIT…` → one {property: value} per unit (blank-line-separated
    blocks). The one parser of systemctl show: the hosts reader and the service actions' verify
    (parse_unit_properties) both read through it."""
    blocks: list[dict[str, str]] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        props: dict[str, str] = {}
        for line in block.splitlines():
            name, sep, value = line.partition("=")
            if not sep or not name.isidentifier():
                raise ValueError(f"not systemctl show output: {line[:60]!r}")
            props[name] = value
        if props:
            blocks.append(props)
    return blocks


def parse_unit_properties(text: str) -> dict[str, str]:
    """`systemctl show -p … -- UNIT` of one unit → its properties (ValueError: no ActiveState)."""
    blocks = systemctl_show_blocks(text)
    if len(blocks) != 1 or "ActiveState" not in blocks[0]:
        raise ValueError(f"no ActiveState in systemctl show output: {text[:80]!r}")
    return blocks[0]


def parse_systemctl_show(text: str, boot: datetime | None = None) -> tuple[Unit, ...]:
    """`systemctl show -p Id,Description,LoadState,ActiveState,SubState,MainPID,
    ActiveEnterTimestampMonotonic -- UNIT…`: one blank-line-separated block per unit.

    `since` comes from the monotonic timestamp plus the boot time (`boot`), which avoids
    parsing a wall-clock time in the host's own time zone. A unit that does not exist shows
    as active="not-found".
    """
    units: list[Unit] = []
    for props in systemctl_show_blocks(text):
        if "Id" not in props or "ActiveState" not in props:
            raise ValueError("systemctl show block without Id or ActiveState")
        try:
            pid = int(props.get("MainPID") or 0)
            mono = int(props.get("ActiveEnterTimestampMonotonic") or 0)
        except ValueError:
            raise ValueError(f"bad MainPID or timestamp for {props['Id']!r}") from None
        not_found = props.get("LoadState") == "not-found"
        units.append(
            Unit(
                name=props["Id"],
                active="not-found" if not_found else props["ActiveState"],
                sub=props.get("SubState", ""),
                since=boot + timedelta(microseconds=mono) if boot is not None and mono else None,
                main_pid=pid or None,
                description=props.get("Description", ""),
            )
        )
    return tuple(units)


def parse_failed_units(text: str) -> tuple[str, ...]:
    """`systemctl list-units --state=failed --no-legend --plain`: the first column."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        name = fields[0].lstrip("●*").strip() or (fields[1] if len(fields) > 1 else "")
        if "." not in name:
            raise ValueError(f"not a unit line: {line[:60]!r}")
        out.append(name)
    return tuple(out)


def parse_fail2ban(text: str) -> tuple[Fail2banJail, ...] | None:
    """The fail2ban section: "absent", or "present" then `fail2ban-client status JAIL` blocks."""
    lines = text.strip().splitlines()
    if not lines or lines[0].strip() == "absent":
        return None
    if lines[0].strip() != "present":
        raise ValueError(f"not the fail2ban section: {lines[0][:60]!r}")
    jails: list[Fail2banJail] = []
    name: str | None = None
    banned = total = 0
    for line in lines[1:]:
        if line.startswith("Status for the jail:"):
            if name is not None:
                jails.append(Fail2banJail(name, banned, total))
            name, banned, total = line.split(":", 1)[1].strip(), 0, 0
            continue
        label, sep, value = line.partition(":")
        label = label.strip(" |`-\t")
        if not sep or name is None:
            continue
        if label in ("Currently banned", "Total banned"):
            try:
                number = int(value.strip())
            except ValueError:
                raise ValueError(f"bad fail2ban count: {line[:60]!r}") from None
            if label == "Currently banned":
                banned = number
            else:
                total = number
    if name is not None:
        jails.append(Fail2banJail(name, banned, total))
    return tuple(jails)


def unit_name(name: str) -> str:
    """`nginx` → `nginx.service`; names with a unit type suffix stay as they are."""
    return name if re.search(r"\.[a-z]+$", name) else f"{name}.service"


@dataclass(frozen=True)
class UnitFacts:
    systemd: bool | None
    services: tuple[Unit, ...] = ()
    failed: tuple[str, ...] = ()
    fail2ban: tuple[Fail2banJail, ...] | None = None


def parse_unit_sections(sections: Mapping[str, str], boot: datetime | None) -> UnitFacts:
    """The systemd and fail2ban sections of host_script(units=True)'s output."""
    flag = sections.get("systemd", "").strip()
    if flag not in ("yes", "no"):
        return UnitFacts(systemd=None)
    if flag == "no":
        return UnitFacts(False, fail2ban=parse_fail2ban(sections.get("fail2ban", "")))
    return UnitFacts(
        True,
        services=parse_systemctl_show(sections.get("services", ""), boot),
        failed=parse_failed_units(sections.get("failed", "")),
        fail2ban=parse_fail2ban(sections.get("fail2ban", "")),
    )


# ---------------------------------------------------------------- the journal


def journal_argv(unit: str, lines: int = 200, follow: bool = False) -> list[str]:
    """journalctl for one unit; the unit is an argument (quoted over SSH), never shell text."""
    argv = ["journalctl", "--no-pager", "-o", "short-iso", "-n", str(max(0, int(lines)))]
    return [*argv, *(["-f"] if follow else []), "-u", unit]


async def journal_tail(executor: Executor, unit: str, lines: int = 200) -> list[str]:
    """The last `lines` journal lines of `unit` on the executor's host."""
    result = await executor.run(journal_argv(unit, lines), timeout=30)
    if not result.ok:
        raise ReadError("journal unreadable", f"journalctl -u {unit}: {result.brief()}")
    return [ln for ln in result.stdout.splitlines() if ln and not ln.startswith("-- ")]


async def journal_follow(
    executor: Executor,
    unit: str,
    on_line: Callable[[str], None],
    lines: int = 50,
    timeout: float = 24 * 3600.0,
) -> None:
    """Stream `unit`'s journal into on_line until cancelled (the remote journalctl is killed)."""

    def forward(line: str) -> None:
        if line and not line.startswith("-- "):
            on_line(line)

    await executor.run(journal_argv(unit, lines, follow=True), timeout=timeout, on_line=forward)


# ---------------------------------------------------------------- the reader


class HostReader:
    """Polls one host through an Executor. Keeps the previous CPU counters for CPU %."""

    def __init__(
        self,
        name: str,
        executor: Executor,
        *,
        interval: float,
        timeout: float,
        clock: Clock = utcnow,
        units: bool = False,
        services: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.units = units or bool(services)
        self.services = services
        self.executor = executor
        self._interval = interval
        self._timeout = timeout
        self._clock = clock
        self._prev_cpu: CpuTimes | None = None

    @property
    def key(self) -> Key:
        return ("host", self.name)

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def timeout(self) -> float:
        return self._timeout

    async def probe(self) -> bool:
        """While backing off: True when the host answers again (an SSH host's port came back:
        lab.ssh.SshHost.probe); this machine has nothing to probe."""
        probe = getattr(self.executor, "probe", None)
        return bool(await probe()) if probe is not None else False

    async def read(self) -> HostState:
        first = self._prev_cpu is None
        if isinstance(self.executor, LocalExecutor) and not self.units:
            output = await local_host_output(self.executor, first=first, timeout=self._timeout)
        else:
            argv = ["sh", "-c", host_script(first=first, units=self.units)]
            if self.units:
                argv += ["hlcon-host", *self.services]  # "$0", then the services as "$@"
            # SSH hosts run it in their long-lived poll shell: one round trip a poll
            run_polled = getattr(self.executor, "run_polled", None)
            if run_polled is not None:
                result = await run_polled(argv, timeout=self._timeout)
            else:
                result = await self.executor.run(argv, timeout=self._timeout)
            if not result.stdout.strip():
                raise ReadError("host read failed", f"no output ({result.brief()})")
            output = result.stdout
        try:
            facts = parse_host_output(output)
        except ValueError as exc:
            raise ReadError("host read failed", str(exc)) from None
        prev = self._prev_cpu if self._prev_cpu is not None else facts.first_cpu
        self._prev_cpu = facts.cpu
        now = self._clock()
        state = self.state_from(facts, cpu_percent(prev, facts.cpu), now)
        if not self.units:
            return state
        try:
            unit_facts = parse_unit_sections(
                split_sections(output), now - timedelta(seconds=facts.uptime)
            )
        except ValueError as exc:
            raise ReadError(
                "host read failed", f"unexpected systemd/fail2ban output: {exc}"
            ) from None
        services = unit_facts.services
        if unit_facts.systemd:
            # systemctl says nothing about a name it rejects: show it as not found.
            seen = {u.name for u in services}
            services += tuple(
                Unit(unit_name(s), "not-found", "", description="unknown unit")
                for s in self.services
                if unit_name(s) not in seen
            )
        return replace(
            state,
            systemd=unit_facts.systemd,
            services=services,
            failed_units=unit_facts.failed,
            fail2ban=unit_facts.fail2ban,
        )

    def state_from(self, facts: HostFacts, cpu: float | None, at: datetime) -> HostState:
        mem = facts.meminfo
        return HostState(
            at=at,
            host=self.name,
            hostname=facts.hostname,
            kernel=facts.kernel,
            uptime=facts.uptime,
            load=facts.load,
            cpus=facts.cpus,
            cpu_percent=cpu,
            mem_total=mem["MemTotal"],
            mem_available=mem_available(mem),
            swap_total=mem.get("SwapTotal", 0),
            swap_free=mem.get("SwapFree", 0),
            filesystems=facts.filesystems,
        )

    async def close(self) -> None:
        return None


def readers(lab: Lab) -> list[Reader]:
    console = lab.config.console
    out: list[Reader] = []
    if lab.config.local.enabled:
        out.append(
            HostReader(
                lab.local_name,
                lab.executor("local"),
                interval=console.refresh,
                timeout=console.timeout,
                clock=lab.clock,
                services=lab.config.local.services,
            )
        )
    for host in lab.config.hosts:
        out.append(
            HostReader(
                host.name,
                lab.executor(host.name),
                interval=console.refresh,
                timeout=console.timeout,
                clock=lab.clock,
                units=True,
                services=host.services,
            )
        )
    return out
