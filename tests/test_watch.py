"""`hlcon watch` against real parts: a certificate file that expires soon (made with
cryptography) read by the real cert reader, Apprise delivering to a real HTTP receiver (JSON
webhook and the ntfy protocol), a real Alertmanager, a real Prometheus scraping the watch.

The watch runs in-process with the lab's real clock plus a shift (`Shifted`), so a test moves
past a channel's `hold` without sleeping; every reading is real.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from actions.audit import Who
from actions.maintenance import Maintenance
from lab.config import Config, parse_config
from lab.model import utcnow
from lab.secrets import forget_cached
from tests.testbed.acme import TestCA, make_cert
from tests.testbed.alertmanager import Alertmanager, free_port
from tests.testbed.prometheus import prometheus_server
from tests.testbed.receiver import Receiver
from watch.service import STATE_FILE, Watch, audit_log_of
from watch.status import STATUS_FILE

pytestmark = pytest.mark.testbed

NTFY_TOKEN = "tk_w4tchT0kenNeverShown42"
HOOK_TOKEN = "hookS3cretPathPart77"
ROOT = Path(__file__).resolve().parents[1]


class Shifted:
    """The real clock, plus a shift a test moves forward (past a `hold`)."""

    def __init__(self) -> None:
        self.shift = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return utcnow() + self.shift

    def advance(self, seconds: float) -> None:
        self.shift += dt.timedelta(seconds=seconds)


CA = TestCA()


def write_cert(path: Path, days: float) -> None:
    """A certificate file signed by CA (the config trusts it: ca_file), `days` from now."""
    cert, _key = make_cert(
        "soon",
        ("soon",),
        not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=days),
        ca=CA,
    )
    path.write_bytes(cert)
    (path.parent / "ca.pem").write_bytes(CA.pem())


def make_config(tmp_path: Path, channels: str, *, watch: str = "", listen: str = "none") -> Config:
    text = f"""
[console]
state_dir = "{tmp_path}/state"
refresh = "1s"

[local]
enabled = false
containers = "none"
wireguard = false

[watch]
listen = "{listen}"
{watch}

[[certs]]
name = "soon"
file = "{tmp_path}/soon.pem"
ca_file = "{tmp_path}/ca.pem"

{channels}
"""
    (tmp_path / "config.toml").write_text(text)  # for the hlcon commands a test runs
    return parse_config(text, str(tmp_path / "config.toml"))


def apprise_channels(receiver: Receiver, hold: str = "2m", extra: str = "") -> str:
    return f"""
[[notify]]
name = "hook"
url = "env:HLCON_TEST_HOOK_URL"
hold = "{hold}"
domains = ["cert"]
{extra}

[[notify]]
name = "phone"
url = "env:HLCON_TEST_NTFY_URL"
hold = "{hold}"
domains = ["cert"]
{extra}
"""


@pytest.fixture
def receiver(notify_receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    notify_receiver.reset()
    forget_cached()  # a secret is resolved once per process: each test sets its own URLs
    port = notify_receiver.port
    monkeypatch.setenv("HLCON_TEST_HOOK_URL", f"json://127.0.0.1:{port}/{HOOK_TOKEN}")
    monkeypatch.setenv("HLCON_TEST_NTFY_URL", f"ntfy://{NTFY_TOKEN}@127.0.0.1:{port}/homelab")
    return notify_receiver


async def one_pass(watch: Watch) -> None:
    await watch.poller.poll_all()
    await watch.run_pass()
    for ch in watch.channels.values():
        assert await ch.drain(20), f"{ch.name} did not deliver: {ch.status}"


@pytest.fixture
def caplog_all(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level("DEBUG")
    return caplog


def everything_written(tmp_path: Path, caplog: pytest.LogCaptureFixture, *more: str) -> str:
    """Every log line, state file and audit record of the test, as one text."""
    files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    texts = [p.read_text(errors="replace") for p in files]
    return "\n".join([caplog.text, *texts, *more])


# ---------------------------------------------------------------- Apprise


async def test_a_held_finding_reaches_webhook_and_ntfy_once_and_its_clear_once(
    tmp_path: Path, receiver: Receiver, caplog_all: pytest.LogCaptureFixture
) -> None:
    write_cert(tmp_path / "soon.pem", days=3)
    clock = Shifted()
    watch = Watch(make_config(tmp_path, apprise_channels(receiver)), clock=clock)
    await watch.start()
    try:
        await one_pass(watch)
        assert receiver.requests == []  # seen, not yet held for 2m
        clock.advance(121)
        await one_pass(watch)
        got = receiver.wait_for(lambda rs: len(rs) >= 2)
        hook = next(r for r in got if r.path == f"/{HOOK_TOKEN}")
        ntfy = next(r for r in got if r.path != f"/{HOOK_TOKEN}")
        for body in (hook.json()["message"], ntfy.json()["message"]):
            assert "certificate soon expires in 2 days" in body
            assert "Where: cert:soon on local" in body and "Since: " in body
            assert "hlcon status, or key 6" in body
        # the ntfy protocol with its token: it did reach the server
        assert ntfy.json()["topic"] == "homelab"
        assert ntfy.headers.get("Authorization") == f"Bearer {NTFY_TOKEN}"
        assert len(got) == 2  # cert-critical only: the hook and the phone, one each

        # more passes: nothing resent
        clock.advance(300)
        await one_pass(watch)
        assert len(receiver.requests) == 2

        # the cause is fixed: the clear is sent once, after it held
        write_cert(tmp_path / "soon.pem", days=90)
        await one_pass(watch)
        assert len(receiver.requests) == 2
        clock.advance(121)
        await one_pass(watch)
        await one_pass(watch)
        cleared = receiver.requests[2:]
        assert len(cleared) == 2
        assert all("cleared: soon" in r.json()["title"] for r in cleared)
    finally:
        await watch.stop()
    state = json.loads((tmp_path / "state" / STATE_FILE).read_text())
    assert state["sent"] == {"hook": {}, "phone": {}}
    # the tokens of both URLs: in no log line, state or status file
    written = everything_written(tmp_path, caplog_all)
    assert "notify hook: appear critical cert|soon|cert-critical|soon" in written
    assert NTFY_TOKEN not in written and HOOK_TOKEN not in written


async def test_a_restarted_watch_does_not_resend_and_announces_the_clear_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    write_cert(tmp_path / "soon.pem", days=3)
    config = make_config(tmp_path, apprise_channels(receiver, hold="1m"))
    clock = Shifted()
    first = Watch(config, clock=clock)
    await first.start()
    try:
        await one_pass(first)
        clock.advance(61)
        await one_pass(first)
        receiver.wait_for(lambda rs: len(rs) == 2)
    finally:
        await first.stop()

    second = Watch(config, clock=clock)  # a restart: only the state file carries over
    await second.start()
    try:
        await one_pass(second)
        clock.advance(600)
        await one_pass(second)
        assert len(receiver.requests) == 2
        write_cert(tmp_path / "soon.pem", days=90)
        await one_pass(second)
        clock.advance(61)
        await one_pass(second)
    finally:
        await second.stop()
    third = Watch(config, clock=clock)
    await third.start()
    try:
        await one_pass(third)
        clock.advance(61)
        await one_pass(third)
    finally:
        await third.stop()
    titles = [r.json()["title"] for r in receiver.requests]
    assert len(titles) == 4 and sum("cleared" in t for t in titles) == 2, titles


async def test_maintenance_silences_the_host_and_says_when_it_ends(
    tmp_path: Path, receiver: Receiver
) -> None:
    write_cert(tmp_path / "soon.pem", days=3)
    config = make_config(tmp_path, apprise_channels(receiver, hold="1m"))
    maintenance = Maintenance(tmp_path / "state")
    maintenance.set("local", True, who=Who.current())
    clock = Shifted()
    watch = Watch(config, clock=clock)
    await watch.start()
    try:
        await one_pass(watch)
        clock.advance(3600)
        await one_pass(watch)
        assert receiver.requests == []  # held for an hour, but its host is in maintenance
        maintenance.set("local", False, who=Who.current())
        await one_pass(watch)
        got = receiver.wait_for(lambda rs: len(rs) == 4)
    finally:
        await watch.stop()
    hook = [r.json()["title"] for r in got if r.path == f"/{HOOK_TOKEN}"]
    assert hook[0] == "maintenance of local ended"
    assert "certificate soon expires in 2 days" in hook[1]


async def test_quiet_hours_hold_a_warning_until_they_end(
    tmp_path: Path, receiver: Receiver
) -> None:
    write_cert(tmp_path / "soon.pem", days=14)  # a warning: inside warn_days, not critical_days
    config = make_config(
        tmp_path, apprise_channels(receiver, hold="1m", extra='quiet_hours = "22:00-07:00"')
    )
    clock = Shifted()
    local = {"hour": 23}
    watch = Watch(
        config,
        clock=clock,
        local_time=lambda now: now.replace(hour=local["hour"], minute=30),
    )
    await watch.start()
    try:
        await one_pass(watch)
        clock.advance(61)
        await one_pass(watch)
        assert receiver.requests == []  # a warning in quiet hours waits
        local["hour"] = 7
        await one_pass(watch)
        got = receiver.wait_for(lambda rs: len(rs) == 2)
    finally:
        await watch.stop()
    assert all("expires in 13 days" in r.json()["title"] for r in got), got


async def test_a_failing_channel_is_a_fault_and_polling_keeps_its_grid(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One channel's server answers 503, the other's accepts and never answers: both are shown
    failing (status file, metrics), retried, and the passes and polls go on meanwhile."""
    write_cert(tmp_path / "soon.pem", days=3)
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)  # accepts (the kernel's backlog) and never answers
    monkeypatch.setenv(
        "HLCON_TEST_NTFY_URL", f"ntfy://{NTFY_TOKEN}@127.0.0.1:{hang.getsockname()[1]}/homelab"
    )
    receiver.fail_with = 503
    config = make_config(
        tmp_path,
        apprise_channels(receiver, hold="1s", extra='timeout = "1s"'),
        watch='retry_max = "1s"',
    )
    watch = Watch(config)
    run = asyncio.create_task(watch.run(passes=1000))
    try:
        for _ in range(600):  # until both fail twice (the hang times out after 1 s)
            await asyncio.sleep(0.1)
            sts = [ch.status for ch in watch.channels.values()]
            if all(st.failures >= 2 for st in sts):
                break
        passes_then = watch.passes
        metrics = watch.metrics.text().decode()
        status = await asyncio.to_thread(hlcon, tmp_path / "config.toml", "status")
        for _ in range(100):  # and the passes go on
            if watch.passes >= passes_then + 2:
                break
            await asyncio.sleep(0.1)
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        hang.close()
    hook, phone = watch.channels["hook"].status, watch.channels["phone"].status
    assert hook.failing and "503" in hook.last_error and hook.failures >= 2
    assert phone.failing and phone.failures >= 2
    # the polls and passes went on while both channels failed
    assert watch.passes >= passes_then + 2 and len(receiver.requests) >= 2
    assert 'hlcon_notify_channel_failing{channel="hook",kind="apprise"} 1.0' in metrics
    # hlcon status shows each failing channel as a fault, without the tokens (the exit is the
    # cert's CRITICAL: worse than the faults' UNKNOWN)
    assert status.returncode == 2, status.stdout + status.stderr
    lines = [ln for ln in status.stdout.splitlines() if ln.strip().startswith("notify:")]
    assert len(lines) == 2 and all("FAULT notify channel failing" in ln for ln in lines), lines
    assert "503" in next(ln for ln in lines if "notify:hook" in ln)
    assert NTFY_TOKEN not in status.stdout + status.stderr
    assert HOOK_TOKEN not in status.stdout + status.stderr
    # stopped: the status file no longer claims a running watch
    assert json.loads((tmp_path / "state" / STATUS_FILE).read_text())["pid"] is None


async def test_failed_action_in_the_audit_log_is_notified(
    tmp_path: Path, receiver: Receiver
) -> None:
    write_cert(tmp_path / "soon.pem", days=90)
    config = make_config(tmp_path, apprise_channels(receiver))
    audit = audit_log_of(config)
    audit.append("planned", who=Who.current(), action="container.restart", target="container:x")
    watch = Watch(config)
    await watch.start()  # what was in the log before the first start is history
    try:
        await one_pass(watch)
        assert receiver.requests == []
        audit.append(
            "outcome",
            who=Who.current(),
            action="container.restart",
            target="container:x",
            ref=1,
            result={"ok": False, "message": "verify failed: container x is not running"},
        )
        await one_pass(watch)
        got = receiver.wait_for(lambda rs: len(rs) == 2)
    finally:
        await watch.stop()
    assert all("action failed: container.restart container:x" in r.json()["title"] for r in got)
    assert "not running" in got[0].json()["message"]


async def test_an_action_a_dead_process_left_is_notified_once_at_start(
    tmp_path: Path, receiver: Receiver
) -> None:
    write_cert(tmp_path / "soon.pem", days=90)
    config = make_config(tmp_path, apprise_channels(receiver))
    audit = audit_log_of(config)
    who = Who.current()
    planned = audit.append("planned", who=who, action="service.restart", target="service:x")
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that is gone: the process that wrote the intent died mid-action
    audit.append(
        "intent",
        who=who,
        action="service.restart",
        target="service:x",
        ref=planned.seq,
        result={"pid": dead.pid, "locks": ["service:x"]},
    )
    for _ in range(2):  # started twice: told once
        watch = Watch(config)
        await watch.start()
        try:
            await one_pass(watch)
        finally:
            await watch.stop()
    assert len(receiver.requests) == 2
    assert all(
        r.json()["title"] == "[hlcon] interrupted: service.restart service:x"
        for r in receiver.requests
    )
    assert "hlcon audit ack" in receiver.requests[0].json()["message"]


# ---------------------------------------------------------------- Alertmanager


async def test_alertmanager_gets_the_finding_with_labels_and_it_resolves(
    tmp_path: Path, alertmanager: Alertmanager
) -> None:
    write_cert(tmp_path / "soon.pem", days=3)
    channels = f"""
[[notify]]
name = "am"
kind = "alertmanager"
url = "{alertmanager.url}"
hold = "1m"
"""
    clock = Shifted()
    watch = Watch(make_config(tmp_path, channels, watch='repost = "1s"'), clock=clock)
    await watch.start()
    try:
        await one_pass(watch)
        assert alertmanager.alerts(target="soon") == []
        clock.advance(61)
        await one_pass(watch)
        (alert,) = alertmanager.wait_alerts(1, target="soon", rule="cert-critical")
        assert alert["labels"] == {
            "alertname": "hlcon",
            "domain": "cert",
            "target": "soon",
            "host": "local",
            "subject": "soon",
            "severity": "critical",
            "rule": "cert-critical",
        }
        assert "expires in 2 days" in alert["annotations"]["summary"]
        assert alert["annotations"]["see"] == "hlcon status, or key 6 in the console"
        # re-posted while open ([watch] repost = 1s): its endsAt moves on
        await asyncio.sleep(1.1)
        await one_pass(watch)
        (again,) = alertmanager.wait_alerts(1, target="soon", rule="cert-critical")
        assert again["endsAt"] > alert["endsAt"]
        write_cert(tmp_path / "soon.pem", days=90)
        await one_pass(watch)
        clock.advance(61)
        await one_pass(watch)
        alertmanager.wait_alerts(0, target="soon", rule="cert-critical")
    finally:
        await watch.stop()


async def test_alertmanager_gets_a_failed_action_as_its_own_alert(
    tmp_path: Path, alertmanager: Alertmanager
) -> None:
    write_cert(tmp_path / "soon.pem", days=90)
    channels = f'''
[[notify]]
name = "am"
kind = "alertmanager"
url = "{alertmanager.url}"
'''
    config = make_config(tmp_path, channels)
    audit = audit_log_of(config)
    watch = Watch(config)
    await watch.start()
    try:
        await one_pass(watch)
        for target in ("container:a", "container:b"):
            audit.append(
                "outcome",
                who=Who.current(),
                action="container.restart",
                target=target,
                ref=1,
                result={"ok": False, "message": "verify failed"},
            )
        await one_pass(watch)
        alerts = alertmanager.wait_alerts(2, rule="action-failed", action="container.restart")
    finally:
        await watch.stop()
    assert sorted(a["labels"]["target"] for a in alerts) == ["container:a", "container:b"]
    assert all(a["labels"]["severity"] == "critical" for a in alerts)


# ---------------------------------------------------------------- Prometheus


async def test_prometheus_scrapes_the_watch_and_finds_the_finding(
    tmp_path: Path, prometheus_tool: None
) -> None:
    write_cert(tmp_path / "soon.pem", days=3)
    port = free_port()
    config = make_config(
        tmp_path,
        "",
        listen=f"127.0.0.1:{port}",
        watch=f'textfile = "{tmp_path}/textfile/hlcon.prom"',
    )
    watch = Watch(config)
    await watch.start()
    try:
        await one_pass(watch)
        assert watch.listening == ("127.0.0.1", port)
        with prometheus_server([f"127.0.0.1:{port}"]) as prom:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                None, prom.wait_query, 'hlcon_finding{domain="cert",rule="cert-critical"}'
            )
            (series,) = result
            assert series["metric"]["target"] == "soon" and series["metric"]["host"] == "local"
            assert series["metric"]["severity"] == "critical" and series["value"][1] == "1"
            expiry = await loop.run_in_executor(
                None, prom.wait_query, 'hlcon_cert_expiry_seconds{cert="soon"}'
            )
            assert 2 * 86400 < float(expiry[0]["value"][1]) < 3 * 86400
    finally:
        await watch.stop()
    textfile = (tmp_path / "textfile" / "hlcon.prom").read_text()
    assert 'hlcon_finding{domain="cert",host="local",rule="cert-critical"' in textfile
    assert 'hlcon_source_faulted{domain="cert",target="soon"} 0.0' in textfile


# ---------------------------------------------------------------- the CLI


def hlcon(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_cli_notify_test_and_watch_once_never_show_the_token(
    tmp_path: Path, receiver: Receiver
) -> None:
    write_cert(tmp_path / "soon.pem", days=3)
    make_config(tmp_path, apprise_channels(receiver, hold="1s"))  # validates the text
    text = (
        f'[console]\nstate_dir = "{tmp_path}/state"\n'
        '[local]\nenabled = false\ncontainers = "none"\nwireguard = false\n'
        f'[watch]\nlisten = "none"\n[[certs]]\nname = "soon"\nfile = "{tmp_path}/soon.pem"\n'
        f'ca_file = "{tmp_path}/ca.pem"\n' + apprise_channels(receiver, hold="1s")
    )
    config = tmp_path / "config.toml"
    config.write_text(text)
    test = hlcon(config, "notify", "test", "phone")
    assert test.returncode == 0, test.stderr
    assert test.stdout.strip() == "phone (apprise): sent"
    (msg,) = receiver.wait_for(lambda rs: len(rs) == 1)
    assert msg.json()["title"] == "[hlcon] test message to phone"
    unknown = hlcon(config, "notify", "test", "pager")
    assert unknown.returncode == 2 and 'no channel named "pager"' in unknown.stderr

    first = hlcon(config, "watch", "--once")  # seen: held from now
    second = hlcon(config, "watch", "--once")  # a second later or more: held, sent
    assert (first.returncode, second.returncode) == (0, 0), second.stderr
    assert "appear" not in first.stderr
    assert second.stderr.count("notify phone: appear critical cert|soon|cert-critical") == 1
    assert len(receiver.requests) == 3
    out = "".join(p.stdout + p.stderr for p in (test, unknown, first, second))
    audit = tmp_path / "state" / "audit.jsonl"
    out += audit.read_text() if audit.exists() else ""
    for f in (tmp_path / "state").rglob("*"):
        out += f.read_text(errors="replace") if f.is_file() else ""
    assert NTFY_TOKEN not in out and HOOK_TOKEN not in out


def test_cli_watch_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    write_cert(tmp_path / "soon.pem", days=90)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[console]\nstate_dir = "{tmp_path}/state"\nrefresh = "1s"\n'
        '[local]\nenabled = false\ncontainers = "none"\nwireguard = false\n'
        f'[watch]\nlisten = "none"\n[[certs]]\nname = "soon"\nfile = "{tmp_path}/soon.pem"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--config", str(config), "watch", "-v"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stderr is not None
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "channels: none" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert started.wait(60), lines
    proc.terminate()
    assert proc.wait(30) == 0, lines
    reader.join(10)
    assert any("stopped (SIGTERM)" in line for line in lines), lines
    assert (tmp_path / "state" / STATE_FILE).exists()


async def test_a_source_failing_longer_than_fault_after_is_notified(
    tmp_path: Path, receiver: Receiver
) -> None:
    write_cert(tmp_path / "soon.pem", days=90)
    config = make_config(
        tmp_path, apprise_channels(receiver, hold="1m"), watch='fault_after = "5m"'
    )
    clock = Shifted()
    watch = Watch(config, clock=clock)
    await watch.start()
    try:
        await one_pass(watch)
        (tmp_path / "soon.pem").unlink()  # the cert file is gone: the reader faults
        await one_pass(watch)
        entry = watch.store.get(("cert", "soon"))
        assert entry is not None and entry.fault is not None
        clock.advance(120)  # past the hold, not past fault_after
        await one_pass(watch)
        assert receiver.requests == []
        clock.advance(200)
        await one_pass(watch)
        got = receiver.wait_for(lambda rs: len(rs) == 2)
    finally:
        await watch.stop()
    body = got[0].json()["message"]
    assert body.startswith("UNKNOWN: ") and "cert:soon" in body, body
