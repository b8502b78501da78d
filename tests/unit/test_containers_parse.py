"""Pure container parsers and rules, fed JSON captured from real podman 4.3.1
(tests/data/containers/, re-made by tests/data/containers/capture.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.config import Config, ContainerEndpointConfig, HealthConfig, LocalConfig
from lab.containers import (
    LogBuffer,
    StatsSample,
    auto_candidates,
    build_endpoints,
    cpu_percent,
    describe_status,
    match_names,
    parse_container,
    parse_stats,
    parse_time,
    parse_version,
    split_log_lines,
    summary_key,
)
from lab.health import container_findings
from lab.model import Container, ContainerEndpointState, Severity
from lab.wiring import Lab

DATA = Path(__file__).resolve().parents[1] / "data" / "containers"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((DATA / f"podman-4.3.1-{name}.json").read_text())


def libpod_stats(n: int, name: str) -> dict[str, Any]:
    return next(s for s in load(f"libpod-stats-{n}")["Stats"] if s["Name"] == name)


# ---------------------------------------------------------------- inspect → Container


def test_healthy_running_container() -> None:
    c = parse_container(load("inspect-web-healthy"), None, None, now=NOW)
    assert c.name == "web-healthy"
    assert c.image == "localhost/busybox:latest"
    assert c.state == "running"
    assert c.health == "healthy"
    assert c.exit_code is None
    assert c.restart_count == 0
    assert c.started_at is not None and c.started_at.tzinfo is not None
    assert c.finished_at is None  # podman's 0001-01-01 means "never"
    assert c.labels == {"hlcon.demo": "1"}
    assert c.status.startswith("Up ") and c.status.endswith("(healthy)")
    assert len(c.id) == 64 and c.short_id == c.id[:12]


def test_unhealthy_and_plain() -> None:
    assert parse_container(load("inspect-web-unhealthy"), None, None).health == "unhealthy"
    assert parse_container(load("inspect-db-plain"), None, None).health is None


def test_exited_container_keeps_its_exit_code() -> None:
    c = parse_container(load("inspect-job-exited"), None, None, now=NOW)
    assert (c.state, c.exit_code) == ("exited", 3)
    assert c.finished_at is not None
    assert c.status.startswith("Exited (3)")
    assert c.cpu_percent is None and c.mem_usage is None


def test_restart_loop_counts_restarts() -> None:
    c = parse_container(load("inspect-crash-loop"), None, None)
    assert c.restart_count >= 6
    assert c.restart_policy == "always"


def test_ports_from_inspect() -> None:
    c = parse_container(load("inspect-web-ports"), None, None)
    assert [str(p) for p in c.ports] == ["18443->443/tcp", "127.0.0.1:18080->80/tcp"]


def test_engine_status_string_is_used_when_given() -> None:
    c = parse_container(load("inspect-db-plain"), None, None, status="Up 3 minutes")
    assert c.status == "Up 3 minutes"


# ---------------------------------------------------------------- stats


def test_docker_one_shot_stats_and_cpu_from_previous_sample() -> None:
    first = parse_stats(load("stats-busy-1"))
    second = parse_stats(load("stats-busy-2"))
    assert first.mem_usage and first.mem_limit
    assert cpu_percent(first, None) is None  # one sample: unknown, not zero
    pct = cpu_percent(second, first)
    # `busy` runs one busy loop: one core. (podman's system_cpu_usage is not Docker's; the wall
    # clock between the samples is the denominator, so this holds on both engines.)
    assert pct is not None and 90 < pct < 110


def test_libpod_stats_for_every_container_in_one_answer() -> None:
    answer = load("libpod-stats-1")
    assert {s["Name"] for s in answer["Stats"]} >= {"busy", "web-healthy", "job-exited"}
    a, b = parse_stats(libpod_stats(1, "busy")), parse_stats(libpod_stats(2, "busy"))
    pct = cpu_percent(b, a)
    assert pct is not None and 90 < pct < 110


def test_container_with_stats() -> None:
    inspect = load("inspect-busy")
    prev = parse_stats(load("stats-busy-1"))
    c = parse_container(inspect, load("stats-busy-2"), prev)
    assert c.cpu_percent is not None and c.cpu_percent > 50
    assert c.mem_usage is not None and c.mem_limit is not None


def test_counter_reset_after_restart_gives_no_cpu() -> None:
    before = StatsSample(5_000_000_000, 2_000_000_000, None, None)
    after = StatsSample(1_000_000, 3_000_000_000, None, None)
    assert cpu_percent(after, before) is None
    assert cpu_percent(before, before) is None


def test_docker_memory_excludes_page_cache() -> None:
    stats = load("stats-busy-1")
    stats["memory_stats"] = {"usage": 10_000, "limit": 50_000, "stats": {"inactive_file": 4_000}}
    assert parse_stats(stats).mem_usage == 6_000


# ---------------------------------------------------------------- small parsers


def test_version_says_podman() -> None:
    assert parse_version(load("version")) == ("podman 4.3.1", "1.41", True)
    docker_like = {"Version": "24.0.7", "ApiVersion": "1.43", "Components": [{"Name": "Engine"}]}
    assert parse_version(docker_like) == ("docker 24.0.7", "1.43", False)
    with pytest.raises(ValueError, match="not a Docker API"):
        parse_version({"hello": "world"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T11:32:01.74872383Z", datetime(2026, 11, 23, 11, 32, 1, 748723, tzinfo=UTC)),
        ("2026-11-23T11:32:01Z", datetime(2026, 11, 23, 11, 32, 1, tzinfo=UTC)),
        ("2026-11-23T12:32:01.5+01:00", datetime(2026, 11, 23, 11, 32, 1, 500000, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        (1795433522, datetime.fromtimestamp(1795433522, UTC)),
        (-62135596800, None),
        ("", None),
    ],
)
def test_parse_time(text: Any, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_describe_status() -> None:
    started = NOW - timedelta(minutes=3, seconds=5)
    assert (
        describe_status("running", "healthy", started, None, None, NOW) == "Up 3 minutes (healthy)"
    )
    assert describe_status("exited", None, None, NOW - timedelta(hours=2), 3, NOW) == (
        "Exited (3) 2 hours ago"
    )
    assert describe_status("created", None, None, None, None, NOW) == "Created"


def test_libpod_list_summary_key_changes_with_state() -> None:
    entries = {e["Names"][0]: e for e in load("libpod-list")}
    assert summary_key(entries["web-healthy"]) != summary_key(entries["web-unhealthy"])
    restarted = dict(entries["db-plain"], StartedAt=entries["db-plain"]["StartedAt"] + 5)
    assert summary_key(restarted) != summary_key(entries["db-plain"])


def test_glob_matches_only_reported_names() -> None:
    names = ["web-a", "web-b", "db", "x; touch /tmp/pwned", "$(id)"]
    assert match_names(names, "web-*") == ["web-a", "web-b"]
    assert match_names(names, "$(id)") == ["$(id)"]  # a literal name, nothing is run
    assert match_names(names, "nothing*") == []


def test_split_log_lines_keeps_partial_lines() -> None:
    lines, rest = split_log_lines("", "one\ntwo\r\nthr")
    assert (lines, rest) == (["one", "two"], "thr")
    lines, rest = split_log_lines(rest, "ee\n")
    assert (lines, rest) == (["three"], "")


def test_log_buffer_is_bounded_and_filters_plain_text() -> None:
    buf = LogBuffer(maxlen=3)
    buf.extend(f"line {i} [x]" for i in range(10))
    assert list(buf.lines) == ["line 7 [x]", "line 8 [x]", "line 9 [x]"]
    assert buf.matching("LINE 8") == ["line 8 [x]"]
    assert buf.matching("[x]") == list(buf.lines)  # not a regex


# ---------------------------------------------------------------- bad input


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
inspect_like = st.fixed_dictionaries(
    {},
    optional={
        "Id": json_values,
        "State": json_values,
        "Name": json_values,
        "Config": json_values,
        "HostConfig": json_values,
        "NetworkSettings": json_values,
        "RestartCount": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(inspect_like, st.one_of(st.none(), st.dictionaries(st.text(max_size=10), json_values)))
def test_garbage_inspect_is_a_value_error(inspect: dict[str, Any], stats: Any) -> None:
    try:
        parse_container(inspect, stats, None)
    except ValueError as exc:
        assert str(exc)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_garbage_stats_is_a_value_error(stats: Any) -> None:
    try:
        parse_stats(stats)
    except ValueError as exc:
        assert str(exc)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_garbage_time_is_a_value_error(value: Any) -> None:
    try:
        result = parse_time(value)
    except ValueError as exc:
        assert "timestamp" in str(exc)
    else:
        assert result is None or result.tzinfo is not None


# ---------------------------------------------------------------- endpoints from config


def test_endpoints_from_config() -> None:
    config = Config(
        local=LocalConfig(containers="unix:///run/x.sock"),
        containers=(ContainerEndpointConfig("nas", "tcp://127.0.0.1:2375"),),
    )
    made = build_endpoints(Lab(config), environ={})
    assert [(e.name, e.url) for e in made] == [
        ("local", "unix:///run/x.sock"),
        ("nas", "tcp://127.0.0.1:2375"),
    ]
    with pytest.raises(LookupError, match="no container endpoint named 'nope'"):
        made.get("nope")


def test_none_and_auto_without_sockets() -> None:
    assert list(build_endpoints(Lab(Config(local=LocalConfig(containers="none"))))) == []
    env = {"DOCKER_HOST": "unix:///nonexistent/docker.sock", "XDG_RUNTIME_DIR": "/run/user/7"}
    assert auto_candidates(env) == [
        "unix:///nonexistent/docker.sock",
        "unix:///var/run/docker.sock",
        "unix:///run/podman/podman.sock",
        "unix:///run/user/7/podman/podman.sock",
    ]


# ---------------------------------------------------------------- health rules


def reading(*containers: Container) -> ContainerEndpointState:
    return ContainerEndpointState(NOW, "local", "podman 4.3.1", "1.41", tuple(containers))


def demo() -> dict[str, Container]:
    names = ["web-healthy", "web-unhealthy", "job-exited", "crash-loop", "db-plain"]
    return {n: parse_container(load(f"inspect-{n}"), None, None) for n in names}


def test_rules_on_the_demo_set() -> None:
    c = demo()
    key = ("containers", "local")
    findings = container_findings(reading(*c.values()), Config(), key, NOW + timedelta(hours=1))
    by = {(f.subject, f.rule): f for f in findings}
    assert by[("crash-loop", "container-restart-loop")].severity is Severity.CRITICAL
    assert by[("web-unhealthy", "container-unhealthy")].severity is Severity.CRITICAL
    assert by[("job-exited", "container-exited")].severity is Severity.WARNING
    assert "code 3" in by[("job-exited", "container-exited")].message
    assert all(f.row == f"container:{f.subject}@local" for f in findings)
    assert not {"web-healthy", "db-plain"} & {f.subject for f in findings}


def test_unhealthy_just_after_start_is_a_warning() -> None:
    c = demo()["web-unhealthy"]
    assert c.started_at is not None
    found = container_findings(reading(c), Config(), ("containers", "local"), c.started_at)
    assert [f.severity for f in found] == [Severity.WARNING]


def test_restart_loop_threshold_and_clean_stop() -> None:
    from dataclasses import replace

    c = demo()
    loop = c["crash-loop"]
    high = Config(health=HealthConfig(restart_loop=100))
    assert container_findings(reading(loop), high, ("containers", "local"), NOW) == []
    restarting = replace(loop, state="restarting", restart_count=1)
    assert container_findings(reading(restarting), high, ("containers", "local"), NOW)
    stopped = replace(c["job-exited"], exit_code=143)  # SIGTERM from a deliberate stop
    assert container_findings(reading(stopped), Config(), ("containers", "local"), NOW) == []


def test_event_watch_marks_changes() -> None:
    from lab.containers import EventWatch

    watch = EventWatch()
    watch.alive = True
    assert watch.take() == (set(), True)  # nothing known yet: read everything once
    watch.mark({"Type": "container", "Action": "start", "Actor": {"ID": "abc"}})
    watch.mark({"status": "health_status: healthy", "id": "def"})
    assert watch.take() == ({"abc", "def"}, False)
    watch.mark({"Action": "create", "id": "new"})
    assert watch.take()[1] is True
    watch.alive = False  # the stream ended: every refresh reads everything
    assert watch.take() == (set(), True)
