"""What `hlcon watch` tells people, and when: pure decisions over findings, plus their state.

Every pass, the findings of lab.health (the console's rules) go to `Notifier.decide`, which says,
per channel, what to send:

- a finding that **appears**, **escalates** (warning → critical) or **clears** — once it has held
  that way for the channel's `hold` (a source's own fault for [watch] fault_after instead), so a
  flapping container or one slow poll sends nothing and a restart loop sends one notification;
- nothing for a host in maintenance, and one "maintenance ended" when it leaves; what changed
  meanwhile is sent after that, as if it had just held;
- during a channel's quiet hours only critical ones; the rest wait for the end (still sent then
  if still true);
- only findings of the channel's domains, at or above its min_severity.

What was sent is remembered in STATE_DIR/notify-state.json (temp file, fsync, rename), so a
restarted watch does not resend what is open and announces a clear once. Decisions are made here;
delivery (retries, faults) is watch.channels'.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from lab.config import Config, NotifyConfig, parse_quiet_hours
from lab.model import Finding, Severity

log = logging.getLogger(__name__)

STATE_VERSION = 1

# What shows a finding: the console's pane key, and the headless twin.
PANE_KEYS = {"host": "2", "containers": "3", "vpn": "4", "backup": "5", "cert": "6"}


def finding_id(f: Finding) -> str:
    """A finding's identity across passes: its message changes (ages), these do not."""
    return "|".join((f.key[0], f.key[1], f.rule, f.subject))


def shown_by(domain: str) -> str:
    key = PANE_KEYS.get(domain)
    pane = f"key {key} in the console" if key else "the console's overview"
    return f"hlcon status, or {pane}"


@dataclass
class Tracked:
    """One finding as the watch has seen it over time."""

    id: str
    domain: str
    target: str
    rule: str
    subject: str
    host: str
    severity: Severity
    message: str
    since: datetime  # present without a gap since
    severity_since: datetime  # at this severity since
    absent_since: datetime | None = None  # gone since (None: present now)

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "target": self.target,
            "rule": self.rule,
            "subject": self.subject,
            "host": self.host,
            "severity": self.severity.label,
            "message": self.message,
            "since": self.since.isoformat(),
            "severity_since": self.severity_since.isoformat(),
            "absent_since": self.absent_since.isoformat() if self.absent_since else None,
        }

    @classmethod
    def from_json(cls, fid: str, raw: Mapping[str, Any]) -> Tracked:
        absent = raw.get("absent_since")
        return cls(
            fid,
            str(raw["domain"]),
            str(raw["target"]),
            str(raw["rule"]),
            str(raw["subject"]),
            str(raw.get("host", "")),
            Severity[str(raw["severity"]).upper()],
            str(raw.get("message", "")),
            datetime.fromisoformat(str(raw["since"])),
            datetime.fromisoformat(str(raw.get("severity_since", raw["since"]))),
            datetime.fromisoformat(str(absent)) if absent else None,
        )


@dataclass(frozen=True)
class Sent:
    severity: Severity
    at: datetime


@dataclass(frozen=True)
class Notice:
    """One notification for one channel. `finding` is None for the non-finding kinds."""

    channel: str
    kind: str  # appear | escalate | clear | maintenance-ended | action | digest | test
    severity: Severity
    title: str
    body: str
    finding: Tracked | None = None
    previous: Severity | None = None  # escalate: the severity it was sent at
    payload: Any = field(default=None, compare=False)  # a channel's own data (re-posts)

    def log_line(self) -> str:
        """The one line the watch logs for this decision (never a secret: no URL in it)."""
        what = self.finding.id if self.finding else self.title
        return f"notify {self.channel}: {self.kind} {self.severity.label} {what}"


@dataclass
class NotifyState:
    tracked: dict[str, Tracked] = field(default_factory=dict)
    sent: dict[str, dict[str, Sent]] = field(default_factory=dict)  # channel → id → Sent
    maintenance: set[str] = field(default_factory=set)  # hosts in maintenance at the last pass
    audit_seq: int | None = None  # the last audit record looked at (watch.service)
    digest_day: str | None = None  # the local date of the last digest
    announced_pending: set[int] = field(default_factory=set)  # interrupted intents told of

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "tracked": {fid: t.to_json() for fid, t in sorted(self.tracked.items())},
            "sent": {
                ch: {
                    fid: {"severity": s.severity.label, "at": s.at.isoformat()}
                    for fid, s in sorted(ids.items())
                }
                for ch, ids in sorted(self.sent.items())
            },
            "maintenance": sorted(self.maintenance),
            "audit_seq": self.audit_seq,
            "digest_day": self.digest_day,
            "announced_pending": sorted(self.announced_pending),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> NotifyState:
        state = cls()
        for fid, t in dict(raw.get("tracked") or {}).items():
            state.tracked[fid] = Tracked.from_json(fid, t)
        for ch, ids in dict(raw.get("sent") or {}).items():
            state.sent[ch] = {
                fid: Sent(
                    Severity[str(s["severity"]).upper()], datetime.fromisoformat(str(s["at"]))
                )
                for fid, s in dict(ids).items()
            }
        state.maintenance = {str(h) for h in raw.get("maintenance") or ()}
        seq = raw.get("audit_seq")
        state.audit_seq = seq if isinstance(seq, int) else None
        day = raw.get("digest_day")
        state.digest_day = day if isinstance(day, str) else None
        state.announced_pending = {int(s) for s in raw.get("announced_pending") or ()}
        return state


class StateFile:
    """STATE_DIR/notify-state.json: read at start, rewritten atomically after a change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last: str | None = None

    def load(self) -> NotifyState:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            state = NotifyState.from_json(raw)
        except FileNotFoundError:
            return NotifyState()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # A broken file must not stop the watch: start afresh, and say so.
            log.warning("notify state %s unreadable (%s); starting with none", self.path, exc)
            return NotifyState()
        self._last = json.dumps(state.to_json(), sort_keys=True)
        return state

    def save(self, state: NotifyState) -> None:
        text = json.dumps(state.to_json(), sort_keys=True)
        if text == self._last:
            return  # nothing changed: no write (the state dir may be on an SD card)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".notify-state.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(state.to_json(), indent=1, sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._last = text


def in_quiet_hours(spec: str | None, local: datetime) -> bool:
    """Is the local time `local` inside "HH:MM-HH:MM" (which may wrap past midnight)?"""
    hours = parse_quiet_hours(spec) if spec else None
    if hours is None:
        return False
    (sh, sm), (eh, em) = hours
    now, start, end = local.hour * 60 + local.minute, sh * 60 + sm, eh * 60 + em
    return start <= now < end if start < end else now >= start or now < end


def _severity_named(name: str) -> Severity:
    return Severity[name.upper()]


class Notifier:
    """The decisions. `host_of(finding)` names the host a finding lives on (for maintenance)."""

    def __init__(
        self,
        config: Config,
        state: NotifyState,
        host_of: Any,
        *,
        local_time: Any = None,
    ) -> None:
        self.config = config
        self.state = state
        self.host_of = host_of
        # The local wall clock for quiet hours and the digest (tests pass a fixed one).
        self.local_time = local_time or (lambda now: now.astimezone())

    # -- tracking --------------------------------------------------------------------------

    def observe(self, findings: Iterable[Finding], now: datetime) -> None:
        """Fold one pass's findings into what is tracked."""
        present: set[str] = set()
        for f in findings:
            fid = finding_id(f)
            if fid in present:
                # two findings of one identity in one pass: keep the worse
                same = self.state.tracked[fid]
                if f.severity > same.severity:
                    same.severity, same.message = f.severity, f.message
                continue
            present.add(fid)
            t = self.state.tracked.get(fid)
            if t is None or (t.absent_since is not None and not self._ever_sent(fid)):
                # new, or back after a gap before anything was sent: it holds from now
                self.state.tracked[fid] = Tracked(
                    fid, f.key[0], f.key[1], f.rule, f.subject, self.host_of(f),
                    f.severity, f.message, now, now,
                )  # fmt: skip
                continue
            if t.severity != f.severity:
                t.severity, t.severity_since = f.severity, now
            t.message, t.absent_since = f.message, None
        for fid, t in list(self.state.tracked.items()):
            if fid in present:
                continue
            if t.absent_since is None:
                t.absent_since = now
            if not self._ever_sent(fid):
                del self.state.tracked[fid]  # gone before anyone was told: forget it

    def _ever_sent(self, fid: str) -> bool:
        return any(fid in ids for ids in self.state.sent.values())

    def _hold(self, channel: NotifyConfig, t: Tracked) -> float:
        return self.config.watch.fault_after if t.rule == "fault" else channel.hold

    def _wants(self, channel: NotifyConfig, t: Tracked, severity: Severity) -> bool:
        if channel.domains and t.domain not in channel.domains:
            return False
        return severity >= _severity_named(channel.min_severity)

    # -- decisions -------------------------------------------------------------------------

    def decide(self, now: datetime, maintenance: set[str]) -> list[Notice]:
        """What each channel is to be sent now. Marks it sent (delivery retries on its own)."""
        notices: list[Notice] = []
        ended = sorted(self.state.maintenance - maintenance)
        local = self.local_time(now)
        for channel in self.config.notify:
            sent = self.state.sent.setdefault(channel.name, {})
            quiet = in_quiet_hours(channel.quiet_hours, local)
            for host in ended:
                notices.append(
                    Notice(
                        channel.name,
                        "maintenance-ended",
                        Severity.INFO,
                        f"maintenance of {host} ended",
                        f"Host {host} left maintenance: its notifications are sent again "
                        f"(what is open there follows once it has held).",
                    )
                )
            for fid, t in sorted(self.state.tracked.items()):
                if t.host in maintenance:
                    continue  # silenced; decided again when maintenance ends
                hold = timedelta(seconds=self._hold(channel, t))
                before = sent.get(fid)
                if t.absent_since is not None:
                    if before is None or now - t.absent_since < hold:
                        continue
                    if quiet and before.severity < Severity.CRITICAL:
                        continue
                    del sent[fid]
                    if self._wants(channel, t, before.severity):
                        notices.append(self._notice(channel.name, "clear", t, before.severity))
                    continue
                if before is None:
                    # held at this severity: a warning that just turned critical is news to a
                    # critical-only channel only once the critical has held
                    if now - t.severity_since < hold or not self._wants(channel, t, t.severity):
                        continue
                    if quiet and t.severity < Severity.CRITICAL:
                        continue
                    sent[fid] = Sent(t.severity, now)
                    notices.append(self._notice(channel.name, "appear", t, None))
                elif t.severity != before.severity and now - t.severity_since >= hold:
                    if t.severity < before.severity:
                        sent[fid] = Sent(t.severity, now)  # eased: remembered, not announced
                        continue
                    if quiet and t.severity < Severity.CRITICAL:
                        continue
                    sent[fid] = Sent(t.severity, now)
                    if self._wants(channel, t, t.severity):
                        notices.append(self._notice(channel.name, "escalate", t, before.severity))
        self.state.maintenance = set(maintenance)
        # A cleared finding no channel still has to hear about is forgotten.
        for fid, t in list(self.state.tracked.items()):
            if t.absent_since is not None and not self._ever_sent(fid):
                del self.state.tracked[fid]
        for ch in list(self.state.sent):
            if ch not in {c.name for c in self.config.notify}:
                del self.state.sent[ch]  # a channel removed from the config
        return notices

    def _notice(self, channel: str, kind: str, t: Tracked, previous: Severity | None) -> Notice:
        where = f"{t.domain}:{t.target}" + (f" on {t.host}" if t.host else "")
        since = f"{t.since:%Y-%m-%d %H:%M:%S} UTC"
        if kind == "clear":
            assert t.absent_since is not None
            title = f"[hlcon] cleared: {t.subject} ({t.domain}:{t.target})"
            body = (
                f"Cleared: {t.message}\nWhere: {where}\nOpen from {since} until "
                f"{t.absent_since:%Y-%m-%d %H:%M:%S} UTC\nSee: {shown_by(t.domain)}"
            )
            return Notice(channel, kind, previous or t.severity, title, body, t, previous)
        verb = "now " + t.severity.label if kind == "escalate" else t.severity.label
        title = f"[hlcon] {verb}: {t.message}"
        body = (
            f"{t.severity.name}: {t.message}\nWhere: {where}\nSince: {since}\n"
            f"Rule: {t.rule}"
            + (f" (was {previous.label})" if previous else "")
            + f"\nSee: {shown_by(t.domain)}"
        )
        return Notice(channel, kind, t.severity, title, body, t, previous)

    # -- other notices ---------------------------------------------------------------------

    def broadcast(
        self,
        kind: str,
        severity: Severity,
        title: str,
        body: str,
        labels: dict[str, str] | None = None,
    ) -> list[Notice]:
        """One notice to every channel that takes this severity (actions, digest). `labels`
        name it for Alertmanager (rule, target …)."""
        return [
            Notice(c.name, kind, severity, title, body, payload=labels)
            for c in self.config.notify
            if kind == "digest" or severity >= _severity_named(c.min_severity)
        ]

    def open_findings(self) -> list[Tracked]:
        """What is open (present now), worst first: for the digest and Alertmanager."""
        now_open = [t for t in self.state.tracked.values() if t.absent_since is None]
        return sorted(now_open, key=lambda t: (-t.severity, t.id))

    def digest_due(self, now: datetime) -> bool:
        spec = self.config.watch.digest
        if not spec:
            return False
        local = self.local_time(now)
        hh, _, mm = spec.partition(":")
        due = local.replace(hour=int(hh), minute=int(mm), second=0, microsecond=0)
        day = local.date().isoformat()
        if local >= due and self.state.digest_day != day:
            self.state.digest_day = day
            return True
        return False

    def digest(self, now: datetime) -> list[Notice]:
        items = self.open_findings()
        lines = [f"- {t.severity.name} {t.message} (since {t.since:%Y-%m-%d %H:%M} UTC)"
                 for t in items]  # fmt: skip
        body = "\n".join(lines) if lines else "Nothing open."
        title = f"[hlcon] daily digest: {len(items)} open finding{'s' if len(items) != 1 else ''}"
        return self.broadcast("digest", max((t.severity for t in items), default=Severity.OK),
                              title, body)  # fmt: skip
