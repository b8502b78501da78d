"""The host parsers on output captured from real machines, and the reader against this one."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.config import Config, HealthConfig
from lab.execute import CommandResult, LineSink, LocalExecutor
from lab.health import host_findings
from lab.hosts import (
    CpuTimes,
    HostReader,
    cpu_percent,
    disk_filesystems,
    host_script,
    local_host_output,
    parse_df,
    parse_host_output,
    parse_loadavg,
    parse_meminfo,
    parse_proc_stat,
    split_sections,
)
from lab.model import Filesystem, Severity
from lab.poller import ReadError

DATA = Path(__file__).parent.parent / "data" / "hosts"


def test_parse_captured_debian_output() -> None:
    facts = parse_host_output((DATA / "debian12-container.host-script.txt").read_text())
    assert facts.hostname == "vm"
    assert facts.kernel.startswith("Linux ")
    assert facts.cpus == 2
    assert facts.meminfo["MemTotal"] == 24684084 * 1024
    assert facts.first_cpu is not None and facts.cpu.total >= facts.first_cpu.total
    # tmpfs, devtmpfs and the cgroup mount are not disks; "/" on ext4 is.
    assert [fs.mount for fs in facts.filesystems] == ["/"]
    root = facts.filesystems[0]
    assert root.fstype == "ext4" and root.device == "/dev/vda"
    assert 0 < root.percent < 100


def test_gnu_and_busybox_df_agree_on_root() -> None:
    gnu = {fs.mount: fs for fs in parse_df((DATA / "debian12-container.df").read_text())}
    bb = {fs.mount: fs for fs in parse_df((DATA / "busybox.df").read_text())}
    assert gnu["/"].size == bb["/"].size
    assert gnu["/"].fstype == "ext4" and bb["/"].fstype == ""
    # busybox has no Type column: the device name tells tmpfs apart
    assert [fs.mount for fs in disk_filesystems(bb.values())] == ["/"]


def test_df_mount_point_with_spaces() -> None:
    text = (
        "Filesystem Type 1024-blocks Used Available Capacity Mounted on\n"
        "/dev/sdb1 ext4 1000 930 70 93% /mnt/my photos\n"
    )
    (fs,) = parse_df(text)
    assert fs.mount == "/mnt/my photos"
    assert fs.percent == pytest.approx(93.0)


def test_meminfo_without_memavailable_falls_back() -> None:
    info = parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n")
    from lab.hosts import mem_available

    assert mem_available(info) == 400 * 1024


def test_cpu_percent_from_two_samples() -> None:
    assert cpu_percent(None, CpuTimes(10, 100)) is None
    assert cpu_percent(CpuTimes(10, 100), CpuTimes(60, 200)) == pytest.approx(50.0)
    assert cpu_percent(CpuTimes(10, 100), CpuTimes(10, 100)) is None  # no time passed


def test_proc_stat_counts_cpus_and_ignores_guest() -> None:
    times, cpus = parse_proc_stat(
        "cpu  100 0 100 700 100 0 0 0 50 0\ncpu0 50 0 50 350 50 0 0 0 25 0\n"
        "cpu1 50 0 50 350 50 0 0 0 25 0\n"
    )
    assert cpus == 2
    assert times == CpuTimes(busy=200, total=1000)


@given(st.text(max_size=400))
def test_parsers_fail_cleanly_on_garbage(text: str) -> None:
    for parser in (parse_loadavg, parse_meminfo, parse_proc_stat, parse_df, parse_host_output):
        with contextlib.suppress(ValueError):
            parser(text)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["@@stat", "@@loadavg", "@@meminfo", "@@uptime", "@@df", "@@x"]),
            st.text(alphabet=st.characters(codec="utf-8"), max_size=80),
        ),
        max_size=8,
    )
)
def test_host_output_fuzzed_sections(parts: list[tuple[str, str]]) -> None:
    text = "\n".join(f"{marker}\n{body}" for marker, body in parts)
    try:
        facts = parse_host_output(text)
    except ValueError as exc:
        assert str(exc).startswith("unexpected host output")
    else:
        assert facts.cpus >= 1


def test_script_sections_round_trip() -> None:
    names = [ln[8:-1] for ln in host_script(first=True).split("; ") if ln.startswith("echo '@@")]
    assert names[0] == "stat0" and "df" in names
    assert split_sections("@@a\n1\n2\n@@b\n3") == {"a": "1\n2", "b": "3"}


async def test_reader_reads_this_machine() -> None:
    reader = HostReader("here", LocalExecutor(), interval=5, timeout=10)
    first = await reader.read()
    assert first.host == "here"
    assert first.mem_total > 0 and 0 <= first.mem_percent <= 100
    assert first.cpu_percent is not None  # the first poll samples twice
    assert any(fs.mount == "/" for fs in first.filesystems)
    second = await reader.read()
    assert second.uptime >= first.uptime


async def test_native_local_read_says_what_the_script_says() -> None:
    """This machine is read from /proc in-process plus one `df`; the shell script is what SSH
    hosts run. Both go through one parser and must agree."""
    executor = LocalExecutor()
    native = parse_host_output(await local_host_output(executor, first=True, timeout=10))
    result = await executor.run(["sh", "-c", host_script(first=True)], timeout=10)
    script = parse_host_output(result.stdout)
    assert (native.hostname, native.kernel, native.cpus) == (
        script.hostname,
        script.kernel,
        script.cpus,
    )
    assert native.meminfo["MemTotal"] == script.meminfo["MemTotal"]
    assert [fs.mount for fs in native.filesystems] == [fs.mount for fs in script.filesystems]
    assert native.first_cpu is not None and native.cpu.total >= native.first_cpu.total
    assert abs(native.uptime - script.uptime) < 60


class _BrokenExecutor(LocalExecutor):
    """A host whose shell answers with nothing useful: a real command, a useless output."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        on_line: LineSink | None = None,
    ) -> CommandResult:
        return await super().run(
            ["sh", "-c", "echo 'not a host'"],
            timeout=timeout,
            input=input,
            env=env,
            on_line=on_line,
        )


async def test_reader_turns_garbage_into_read_error() -> None:
    reader = HostReader("odd", _BrokenExecutor(), interval=5, timeout=10)
    with pytest.raises(ReadError) as info:
        await reader.read()
    assert info.value.what == "host read failed"


def test_disk_and_memory_rules() -> None:
    from datetime import UTC, datetime

    from lab.model import HostState

    now = datetime(2026, 1, 1, tzinfo=UTC)
    state = HostState(
        at=now,
        host="h",
        hostname="h",
        kernel="",
        uptime=1,
        load=(0.1, 0, 0),
        cpus=2,
        cpu_percent=1.0,
        mem_total=100,
        mem_available=5,
        swap_total=0,
        swap_free=0,
        filesystems=(
            Filesystem("/", "/dev/a", "ext4", 100, 96, 4),
            Filesystem("/srv", "/dev/b", "ext4", 100, 86, 14),
            Filesystem("/home", "/dev/c", "ext4", 100, 10, 90),
        ),
    )
    findings = host_findings(state, Config(health=HealthConfig()), ("host", "h"), now)
    by_subject = {f.subject: f.severity for f in findings}
    assert by_subject == {
        "/": Severity.CRITICAL,
        "/srv": Severity.WARNING,
        "memory": Severity.WARNING,
    }


def test_container_overlays_are_not_disks() -> None:
    text = (
        "Filesystem Type 1024-blocks Used Available Capacity Mounted on\n"
        "overlay overlay 1000 200 800 20% /\n"
        "/dev/vda ext4 1000 200 800 20% /srv\n"
        "overlay overlay 1000 200 800 20% /var/lib/containers/storage/overlay/abc/merged\n"
        "overlay overlay 1000 200 800 20% /tmp/x/storage/overlay/def/merged\n"
        "shm tmpfs 64 0 64 0% /var/lib/containers/storage/overlay-containers/abc/userdata/shm\n"
    )
    assert [fs.mount for fs in disk_filesystems(parse_df(text))] == ["/", "/srv"]


def test_ago_is_compact_and_steps_when_asked() -> None:
    from datetime import UTC, datetime, timedelta

    from lab.health import ago

    t = datetime(2026, 1, 1, tzinfo=UTC)
    assert [ago(t + timedelta(seconds=s), t) for s in (0, 4, 119, 120, 7200, 172800)] == [
        "0s",
        "4s",
        "119s",
        "2m",
        "2h",
        "2d",
    ]
    # the pane header's 5 s steps: "<5s", then multiples of 5, then minutes as before
    stepped = [ago(t + timedelta(seconds=s), t, step=5) for s in (0, 4, 5, 9, 10, 119, 180)]
    assert stepped == ["<5s", "<5s", "5s", "5s", "10s", "115s", "3m"]
    assert ago(t - timedelta(seconds=30), t, step=5) == "<5s"  # a clock step back is not negative
