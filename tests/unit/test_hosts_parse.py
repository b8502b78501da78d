"""systemd and fail2ban parsers on output captured from the testbed's Debian 12 systemd host,
their health rules, and hypothesis for garbage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.config import Config
from lab.health import host_findings
from lab.hosts import (
    host_script,
    parse_fail2ban,
    parse_failed_units,
    parse_systemctl_show,
    parse_unit_sections,
)
from lab.model import Fail2banJail, HostState, Severity, Unit
from lab.ssh import remote_command

DATA = Path(__file__).parent.parent / "data" / "hosts"
BOOT = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


def test_systemctl_show_blocks() -> None:
    units = {u.name: u for u in parse_systemctl_show((DATA / "debian12-systemd.show").read_text())}
    assert units["demo.service"] == Unit(
        "demo.service", "active", "running", None, 39, "hlcon demo service"
    )
    assert units["broken.service"].active == "failed" and units["broken.service"].main_pid is None
    assert units["nosuch.service"].active == "not-found"
    assert units["ssh.service"].main_pid == 44


def test_since_comes_from_the_monotonic_stamp() -> None:
    text = "Id=a.service\nActiveState=active\nSubState=running\nMainPID=5\n"
    text += "ActiveEnterTimestampMonotonic=90000000\n"
    (unit,) = parse_systemctl_show(text, BOOT)
    assert unit.since == BOOT + timedelta(seconds=90)


def test_failed_units() -> None:
    assert parse_failed_units((DATA / "debian12-systemd.failed").read_text()) == ("broken.service",)
    assert parse_failed_units("") == ()
    # older systemctl prefixes a bullet even with --plain in some versions
    assert parse_failed_units("● x.service loaded failed failed X\n") == ("x.service",)


def test_fail2ban_status() -> None:
    text = "present\n" + (DATA / "debian12-fail2ban.sshd").read_text()
    assert parse_fail2ban(text) == (Fail2banJail("sshd", 2, 2),)
    assert parse_fail2ban("absent\n") is None
    assert parse_fail2ban("present\n") == ()


def test_sections_without_systemd() -> None:
    facts = parse_unit_sections({"systemd": "no", "fail2ban": "absent"}, BOOT)
    assert facts.systemd is False and facts.services == () and facts.fail2ban is None


def test_services_are_parameters_not_script_text() -> None:
    script = host_script(units=True)
    assert '"$@"' in script
    command, _ = remote_command(["sh", "-c", script, "hlcon-host", "x; touch /tmp/pwned"])
    assert "'x; touch /tmp/pwned'" in command


@given(st.text(max_size=300))
def test_garbage_is_a_value_error_or_a_reading(text: str) -> None:
    """Any text: a clear ValueError or well-typed values, never another exception."""
    for parse in (parse_systemctl_show, parse_failed_units, parse_fail2ban):
        try:
            result = parse(text)
        except ValueError as exc:
            assert str(exc)
            continue
        assert result is None or isinstance(result, tuple)
        for item in result or ():
            assert isinstance(item, Unit | Fail2banJail | str)


@pytest.mark.parametrize(
    "text",
    ["Id=x\nMainPID=abc\nActiveState=active\n", "not a property line", "present\n"
     "Status for the jail: s\n   |- Currently banned:\tmany\n"],
)  # fmt: skip
def test_bad_input_names_the_problem(text: str) -> None:
    with pytest.raises(ValueError, match=r"systemctl show|fail2ban|MainPID"):
        if text.startswith("present"):
            parse_fail2ban(text)
        else:
            parse_systemctl_show(text)


def _state(**kw: object) -> HostState:
    base: dict[str, object] = dict(
        at=BOOT, host="h", hostname="h", kernel="Linux", uptime=1.0, load=(0.0, 0.0, 0.0),
        cpus=2, cpu_percent=1.0, mem_total=100, mem_available=90, swap_total=0, swap_free=0,
    )  # fmt: skip
    base.update(kw)
    return HostState(**base)  # type: ignore[arg-type]


def test_unit_rules() -> None:
    state = _state(
        systemd=True,
        failed_units=("broken.service",),
        services=(
            Unit("demo.service", "active", "running", main_pid=3),
            Unit("nginx.service", "inactive", "dead"),
            Unit("gone.service", "not-found", "dead"),
            Unit("broken.service", "failed", "failed"),
        ),
        fail2ban=(Fail2banJail("sshd", 60, 70), Fail2banJail("nginx", 1, 1)),
    )
    found = {(f.rule, f.subject): f for f in host_findings(state, Config(), ("host", "h"), BOOT)}
    assert found[("failed-unit", "broken.service")].severity is Severity.WARNING
    assert found[("service-inactive", "nginx.service")].severity is Severity.CRITICAL
    assert found[("service-inactive", "gone.service")].severity is Severity.WARNING
    assert ("service-inactive", "broken.service") not in found  # reported once, as failed
    assert ("service-inactive", "demo.service") not in found
    assert "bans 60" in found[("fail2ban", "fail2ban sshd")].message
    assert ("fail2ban", "fail2ban nginx") not in found


def test_a_changed_host_key_is_a_critical_finding() -> None:
    from lab.health import evaluate
    from lab.model import Fault
    from lab.store import Store

    store = Store()
    store.publish(("host", "h"), _state())
    why = "HOST KEY CHANGED: [10.0.0.5]:22 now presents SHA256:abc …; host blocked"
    store.publish_fault(("host", "h"), Fault("host key changed", "host:h", BOOT, why, BOOT))
    (finding,) = evaluate(store, Config(), BOOT)
    assert finding.severity is Severity.CRITICAL
    assert finding.message.startswith("host key changed: HOST KEY CHANGED")
