"""watch.notify's decisions on made findings and a frozen clock (the real-parts tests are in
tests/test_watch.py): hold, flapping, escalation, faults, quiet hours, filters, state."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from lab.config import parse_config
from lab.model import Finding, Severity
from tests.tui.fixtures import NOW
from watch.notify import Notifier, NotifyState, StateFile, in_quiet_hours

CHANNELS = """
[watch]
fault_after = "10m"
digest = "08:00"

[[notify]]
name = "all"
url = "env:X"
hold = "2m"

[[notify]]
name = "crit"
url = "env:Y"
hold = "2m"
min_severity = "critical"
domains = ["containers"]
"""


def finding(sev: Severity = Severity.CRITICAL, rule: str = "container-restart-loop") -> Finding:
    return Finding(sev, ("containers", "local"), "web", f"container web@local: {rule}", rule=rule)


def notifier(state: NotifyState | None = None, local_hour: int = 12) -> Notifier:
    config = parse_config(CHANNELS, "n.toml")
    return Notifier(
        config,
        state or NotifyState(),
        lambda f: "local",
        local_time=lambda now: now.replace(hour=local_hour),
    )


def step(n: Notifier, at: datetime, *findings: Finding) -> list[tuple[str, str]]:
    n.observe(findings, at)
    return [(x.channel, x.kind) for x in n.decide(at, set())]


def test_sent_once_after_the_hold_and_never_again() -> None:
    n = notifier()
    assert step(n, NOW, finding()) == []
    assert step(n, NOW + timedelta(seconds=119), finding()) == []
    assert step(n, NOW + timedelta(seconds=120), finding()) == [
        ("all", "appear"),
        ("crit", "appear"),
    ]
    for minutes in range(3, 60, 5):
        assert step(n, NOW + timedelta(minutes=minutes), finding()) == []


def test_a_flapping_finding_sends_nothing() -> None:
    n = notifier()
    for i in range(20):  # present and gone in turns, never 2 minutes in a row
        at = NOW + timedelta(seconds=30 * i)
        assert step(n, at, *([finding()] if i % 2 == 0 else [])) == []
    assert n.state.tracked == {}  # nothing sent, nothing kept once gone


def test_a_gap_shorter_than_the_hold_sends_no_clear_and_no_second_appear() -> None:
    n = notifier()
    step(n, NOW, finding())
    assert step(n, NOW + timedelta(minutes=2), finding()) == [("all", "appear"), ("crit", "appear")]
    assert step(n, NOW + timedelta(minutes=3)) == []  # one slow poll: gone for a minute
    assert step(n, NOW + timedelta(minutes=4), finding()) == []
    assert step(n, NOW + timedelta(minutes=5)) == []
    assert step(n, NOW + timedelta(minutes=7)) == [("all", "clear"), ("crit", "clear")]
    assert step(n, NOW + timedelta(minutes=9)) == []


def test_escalation_is_sent_after_it_held_and_easing_is_not() -> None:
    n = notifier()
    warn = finding(Severity.WARNING, "container-unhealthy")
    crit = finding(Severity.CRITICAL, "container-unhealthy")
    step(n, NOW, warn)
    assert step(n, NOW + timedelta(minutes=2), warn) == [("all", "appear")]  # crit: critical only
    assert step(n, NOW + timedelta(minutes=3), crit) == []
    n.observe([crit], NOW + timedelta(minutes=5))
    notices = n.decide(NOW + timedelta(minutes=5), set())
    kinds = [(x.channel, x.kind, x.previous) for x in notices]
    assert kinds == [("all", "escalate", Severity.WARNING), ("crit", "appear", None)]
    assert step(n, NOW + timedelta(minutes=8), warn) == []
    assert step(n, NOW + timedelta(minutes=10), warn) == []  # eased back: remembered only


def test_a_source_fault_waits_for_fault_after_not_the_hold() -> None:
    n = notifier()
    fault = Finding(Severity.UNKNOWN, ("cert", "x"), "cert:x", "read failed: boom", rule="fault")
    step(n, NOW, fault)
    assert step(n, NOW + timedelta(minutes=9), fault) == []
    assert step(n, NOW + timedelta(minutes=10), fault) == [("all", "appear")]


def test_quiet_hours_hold_all_but_critical(tmp_path: Path) -> None:
    assert in_quiet_hours("22:00-07:00", NOW.replace(hour=23))
    assert in_quiet_hours("22:00-07:00", NOW.replace(hour=6, minute=59))
    assert not in_quiet_hours("22:00-07:00", NOW.replace(hour=7, minute=0))
    assert in_quiet_hours("13:00-14:00", NOW.replace(hour=13, minute=30))
    assert not in_quiet_hours(None, NOW)


def test_maintenance_silences_and_its_end_is_said_once() -> None:
    n = notifier()
    n.observe([finding()], NOW)
    assert n.decide(NOW, {"local"}) == []
    n.observe([finding()], NOW + timedelta(hours=1))
    assert n.decide(NOW + timedelta(hours=1), {"local"}) == []
    n.observe([finding()], NOW + timedelta(hours=2))
    kinds = [(x.channel, x.kind) for x in n.decide(NOW + timedelta(hours=2), set())]
    assert kinds == [
        ("all", "maintenance-ended"),
        ("all", "appear"),
        ("crit", "maintenance-ended"),
        ("crit", "appear"),
    ]
    assert step(n, NOW + timedelta(hours=3), finding()) == []


def test_state_round_trips_through_the_file(tmp_path: Path) -> None:
    n = notifier()
    step(n, NOW, finding())
    step(n, NOW + timedelta(minutes=2), finding())
    file = StateFile(tmp_path / "notify-state.json")
    file.save(n.state)
    again = notifier(file.load())
    assert again.state.to_json() == n.state.to_json()
    assert step(again, NOW + timedelta(minutes=30), finding()) == []
    assert step(again, NOW + timedelta(minutes=31)) == []
    assert step(again, NOW + timedelta(minutes=33)) == [("all", "clear"), ("crit", "clear")]


def test_a_broken_state_file_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "notify-state.json"
    path.write_text("{not json")
    assert StateFile(path).load().to_json() == NotifyState().to_json()


def test_digest_once_a_day_after_its_time() -> None:
    n = notifier(local_hour=7)
    assert not n.digest_due(NOW)
    n.local_time = lambda now: now.replace(hour=8, minute=1)
    step(n, NOW, finding())
    assert n.digest_due(NOW) and not n.digest_due(NOW)
    everyone, _critical_only = n.digest(NOW)
    assert "1 open finding" in everyone.title and "restart-loop" in everyone.body
