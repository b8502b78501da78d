"""`hlcon watch`: the one long-running service. The console's readers, poller and health rules,
run headless, and the duties that must happen while nobody looks.

Each pass (after the polls of a refresh slot have published, and at least every refresh) the
findings are evaluated once and handed to every registered duty in order: notifications
(watch.notify + watch.channels), the audit log's failed actions, then metrics (watch.metrics).
Later issues add their duties (approvals, history, restore drills) with `Watch.register`.

A duty that raises is logged and the next pass runs: no duty can stop the polling, and no
channel can slow it (deliveries run in their own tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from actions import maintenance as maintenance_flags
from actions.audit import AuditLog, audit_log_for
from actions.hostkey_audit import audit_key_changes
from actions.maintenance import Maintenance, MaintenanceError
from lab.config import Config, parse_listen, state_dir
from lab.health import evaluate
from lab.model import Finding, Key, Severity, utcnow
from lab.poller import Poller, Reader
from lab.store import Store
from lab.wiring import Lab
from watch.channels import Channel, ChannelStatus, make_channel
from watch.metrics import Metrics, Snapshot
from watch.notify import Notice, Notifier, StateFile
from watch.status import STATUS_FILE, write_status

log = logging.getLogger("hlcon.watch")

STATE_FILE = "notify-state.json"
Clock = Callable[[], datetime]


class Duty(Protocol):
    """Something the watch does after every pass. `start` runs once before the first pass."""

    name: str

    async def start(self, watch: Watch) -> None: ...

    async def on_pass(self, watch: Watch, p: Pass) -> None: ...

    async def stop(self, watch: Watch) -> None: ...


@dataclass(frozen=True)
class Pass:
    n: int
    at: datetime
    findings: tuple[Finding, ...]
    maintenance: frozenset[str]


def canonical_host(config: Config, name: str) -> str:
    """The name maintenance flags use for `name` (every name of this machine is "local", an
    endpoint alias is the host it runs on): actions.maintenance's one rule."""
    return maintenance_flags.canonical_host(config, name)


def audit_log_of(config: Config) -> AuditLog:
    """The audit log the config names, with its journal anchor."""
    return audit_log_for(config)


def host_of(config: Config, key: Key) -> str:
    """The host a store entry lives on, by the names maintenance flags use ("local" …)."""
    domain, target = key
    if domain in ("host", "containers"):
        return canonical_host(config, target)
    if domain == "vpn":
        return canonical_host(config, target.rpartition("@")[2] or "local")
    if domain == "backup":
        entry = next((b for b in config.backups if b.name == target), None)
        return canonical_host(config, entry.host) if entry else ""
    if domain == "cert":
        cert = next((c for c in config.certs if c.name == target), None)
        return canonical_host(config, cert.host) if cert else ""
    return ""


class Watch:
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock = utcnow,
        readers: list[Reader] | None = None,
        local_time: Any = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.lab = Lab(config, clock=clock)
        audit_key_changes(self.lab)
        self.store = Store()
        self.poller = Poller(
            self.store, readers if readers is not None else self.lab.readers(by_watch=True)
        )
        self.state_dir = state_dir(config)
        self.state_file = StateFile(self.state_dir / STATE_FILE)
        self.notifier = Notifier(
            config,
            self.state_file.load(),
            lambda f: host_of(config, f.key),
            local_time=local_time,
        )
        self.maintenance = Maintenance(self.state_dir)
        w = config.watch
        self.channels: dict[str, Channel] = {
            c.name: make_channel(c, retry_max=w.retry_max, repost=w.repost) for c in config.notify
        }
        self.metrics = Metrics()
        self.duties: list[Duty] = [NotifyDuty(), AuditDuty(), MetricsDuty()]
        self.passes = 0
        self.listening: tuple[str, int] | None = None
        self._dirty = asyncio.Event()
        self._status_text = ""
        self._maintenance_error: str | None = None

    def register(self, duty: Duty) -> None:
        """Add a duty (before `run`): it is started, called after every pass, stopped."""
        self.duties.append(duty)

    # -- the loop --------------------------------------------------------------------------

    def read_maintenance(self) -> frozenset[str]:
        try:
            hosts = frozenset(self.maintenance.hosts())
        except MaintenanceError as exc:
            if str(exc) != self._maintenance_error:
                log.error("maintenance flags unreadable: %s (notifying as if none)", exc)
            self._maintenance_error = str(exc)
            return frozenset()
        self._maintenance_error = None
        return hosts

    async def run_pass(self) -> Pass:
        now = self.clock()
        self.passes += 1
        findings = tuple(evaluate(self.store, self.config, now))
        p = Pass(self.passes, now, findings, self.read_maintenance())
        for duty in self.duties:
            try:
                await duty.on_pass(self, p)
            except Exception:
                log.exception("watch duty %s failed in pass %d", duty.name, p.n)
        self.write_status(now)
        return p

    async def start(self) -> None:
        listen = self.config.watch.listen
        if listen != "none":
            host, port = parse_listen(listen)
            try:
                self.listening = self.metrics.serve(host, port)
            except OSError as exc:
                # The metrics are one duty; notifications must still run.
                log.error("metrics: cannot listen on %s: %s", listen, exc.strerror or exc)
            else:
                log.info("metrics on http://%s:%d/metrics", *self.listening)
        for ch in self.channels.values():
            ch.start()
        for duty in self.duties:
            await duty.start(self)

    async def stop(self) -> None:
        for duty in reversed(self.duties):
            with contextlib.suppress(Exception):
                await duty.stop(self)
        for ch in self.channels.values():
            await ch.stop()
        self.write_status(self.clock(), running=False)
        await self.poller.stop()
        await self.lab.close()
        self.metrics.close()
        with contextlib.suppress(OSError):
            self.state_file.save(self.notifier.state)

    async def once(self, drain: float = 30.0) -> bool:
        """One poll of every reader, one pass, deliveries waited for (cron). True if every
        channel delivered what it had."""
        try:
            await self.start()
            await self.poller.poll_all()
            await self.run_pass()
            ok = True
            for ch in self.channels.values():
                ok = await ch.drain(drain) and ok
            return ok
        finally:
            await self.stop()

    async def run(self, *, passes: int | None = None) -> None:
        """Poll and pass until cancelled (SIGTERM/Ctrl-C) or `passes` passes have run."""
        unsubscribe = self.store.subscribe(lambda _key: self._dirty.set())
        refresh = self.config.console.refresh
        try:
            await self.start()
            self.poller.start()
            while passes is None or self.passes < passes:
                # After a reading arrives, a short settle so the polls of one grid slot (they
                # start together) make one pass; at least one pass per refresh for the holds.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._dirty.wait(), refresh)
                await asyncio.sleep(min(0.5, refresh / 4))
                self._dirty.clear()
                await self.run_pass()
        finally:
            unsubscribe()
            await self.stop()

    # -- what other processes read ---------------------------------------------------------

    def channel_statuses(self) -> list[ChannelStatus]:
        return [ch.status for ch in self.channels.values()]

    def write_status(self, now: datetime, *, running: bool = True) -> None:
        """STATE_DIR/watch-status.json: which channels fail (watch.status: hlcon status and the
        console show it), and no pid once the watch has stopped. Rewritten when it changes."""
        doc = {
            "pid": os.getpid() if running else None,
            "channels": [s.to_json() for s in self.channel_statuses()],
            "metrics": f"{self.listening[0]}:{self.listening[1]}" if self.listening else None,
        }
        text = json.dumps(doc, sort_keys=True)
        if text == self._status_text:
            return
        with contextlib.suppress(OSError):
            write_status(self.state_dir / STATUS_FILE, {**doc, "at": now.isoformat()})
            self._status_text = text

    def deliver(self, notices: list[Notice]) -> None:
        for notice in notices:
            ch = self.channels.get(notice.channel)
            if ch is not None:
                log.info("%s", notice.log_line())
                ch.put(notice)


# ---------------------------------------------------------------- duties


class NotifyDuty:
    name = "notify"

    async def start(self, watch: Watch) -> None:
        pass

    async def stop(self, watch: Watch) -> None:
        pass

    async def on_pass(self, watch: Watch, p: Pass) -> None:
        n = watch.notifier
        n.observe(p.findings, p.at)
        notices = n.decide(p.at, set(p.maintenance))
        if n.digest_due(p.at):
            notices += n.digest(p.at)
        watch.deliver(notices)
        for name, ch in watch.channels.items():
            sent = n.state.sent.get(name, {})
            open_alerts = [
                (t, sent[fid].severity)
                for fid, t in n.state.tracked.items()
                if fid in sent and t.absent_since is None and t.host not in p.maintenance
            ]
            await ch.sync(open_alerts, p.at)
        try:
            watch.state_file.save(n.state)
        except OSError as exc:
            log.error("notify state: cannot write %s: %s", watch.state_file.path, exc.strerror)


class AuditDuty:
    """Failed and rolled-back actions from the audit log, and intents a dead process left
    (interrupted actions) found at start: one notice each, to every channel."""

    name = "audit"

    def __init__(self) -> None:
        self._stamp: tuple[int, int] | None = None
        self._audit: Any = None

    async def start(self, watch: Watch) -> None:
        self._audit = audit_log_of(watch.config)
        state = watch.notifier.state
        if state.audit_seq is None:
            # First start: what happened before is history, not news.
            last = await asyncio.to_thread(self._last_seq)
            state.audit_seq = last
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._pending, watch)

    def _last_seq(self) -> int:
        with contextlib.suppress(Exception):
            tail = self._audit.tail(1)
            return int(tail[-1].seq) if tail else 0
        return 0

    def _pending(self, watch: Watch) -> None:
        from actions.runner import Runner

        runner = Runner(watch.lab, audit=self._audit, read_only=True)
        state = watch.notifier.state
        for rec in runner.pending():
            if rec.seq in state.announced_pending:
                continue
            state.announced_pending.add(rec.seq)
            watch.deliver(
                watch.notifier.broadcast(
                    "action",
                    Severity.CRITICAL,
                    f"[hlcon] interrupted: {rec.action} {rec.target}",
                    f"An action was interrupted: {rec.action} on {rec.target} (intent seq "
                    f"{rec.seq}, {rec.time}) has no outcome; its process is gone.\n"
                    f"See: hlcon audit pending, then hlcon audit ack {rec.seq}",
                    _action_labels("action-interrupted", rec),
                )
            )

    async def stop(self, watch: Watch) -> None:
        pass

    async def on_pass(self, watch: Watch, p: Pass) -> None:
        if self._audit is None or not watch.config.notify:
            return
        try:
            st = os.stat(self._audit.path)
        except OSError:
            return
        stamp = (st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            return  # unchanged since the last pass: not read again
        self._stamp = stamp
        notices = await asyncio.to_thread(self._news, watch)
        watch.deliver(notices)

    def _news(self, watch: Watch) -> list[Notice]:
        state = watch.notifier.state
        after = state.audit_seq or 0
        out: list[Notice] = []
        recs = []
        for rec in self._audit.reversed_records():  # newest first: stop at what was seen
            if rec.seq <= after:
                break
            recs.append(rec)
        for rec in reversed(recs):
            state.audit_seq = max(state.audit_seq or 0, rec.seq)
            result = rec.result or {}
            if rec.phase == "outcome" and result.get("ok") is False:
                if result.get("status") == "abandoned":
                    continue
                message = str(result.get("message") or rec.reason or "failed")
                out += watch.notifier.broadcast(
                    "action",
                    Severity.CRITICAL,
                    f"[hlcon] action failed: {rec.action} {rec.target}",
                    f"{rec.action} on {rec.target} failed: {message}\nWhen: {rec.time}\n"
                    f"Who: {(rec.who or {}).get('user', '?')}\nSee: hlcon audit tail, or key 7",
                    _action_labels("action-failed", rec),
                )
            elif rec.phase == "rollback" and result.get("status") in ("done", "failed"):
                done = result.get("status") == "done"
                out += watch.notifier.broadcast(
                    "action",
                    Severity.WARNING if done else Severity.CRITICAL,
                    f"[hlcon] {'rolled back' if done else 'rollback failed'}: "
                    f"{rec.action} {rec.target}",
                    f"{rec.action} on {rec.target}: rollback "
                    f"{'done' if done else 'failed: ' + str(result.get('message', ''))}\n"
                    f"When: {rec.time}\nSee: hlcon audit tail, or key 7",
                    _action_labels("rollback-done" if done else "rollback-failed", rec),
                )
        return out


def _action_labels(rule: str, rec: Any) -> dict[str, str]:
    """Alertmanager labels of an action notice: one alert per action record."""
    return {"rule": rule, "action": str(rec.action), "target": str(rec.target), "seq": str(rec.seq)}


class MetricsDuty:
    name = "metrics"

    async def start(self, watch: Watch) -> None:
        pass

    async def stop(self, watch: Watch) -> None:
        pass

    async def on_pass(self, watch: Watch, p: Pass) -> None:
        entries = tuple(watch.store)
        hosts = {e.key: host_of(watch.config, e.key) for e in entries}
        watch.metrics.update(
            Snapshot(
                p.at,
                entries,
                p.findings,
                hosts,
                tuple(watch.channel_statuses()),
                p.maintenance,
                p.n,
            )
        )
        path = watch.config.watch.textfile
        if path is not None:
            try:
                await asyncio.to_thread(watch.metrics.write_textfile, Path(path))
            except OSError as exc:
                log.error("metrics: cannot write %s: %s", path, exc.strerror or exc)
