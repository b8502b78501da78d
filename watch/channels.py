"""Where notices go: Apprise URLs and Prometheus Alertmanager, each behind its own queue.

Each channel has a task that delivers its queue in order; a failed delivery is retried with a
backoff that doubles up to [watch] retry_max, and the channel's `status` says since when it fails
and why (shown by the watch log, its metrics, `hlcon status` and the console). Polling never
waits for a channel: `put()` only appends.

An Apprise URL carries tokens: it is a secret reference, resolved at delivery, and every part of
it is cut out of what a failure says. Apprise's own log lines are caught, never passed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lab.config import NotifyConfig
from lab.model import Severity, utcnow
from lab.secrets import Secret, SecretError, SecretRef, redact, resolve, revealed_values
from watch.notify import Notice, Tracked

log = logging.getLogger(__name__)

QUEUE_MAX = 500  # notices waiting per channel; the oldest go first when a channel is down long
Clock = Callable[[], datetime]


class DeliveryError(Exception):
    """A delivery failed; str() says why, with nothing of the channel's URL in it."""


@dataclass
class ChannelStatus:
    name: str
    kind: str
    delivered: int = 0
    failures: int = 0  # consecutive
    failing_since: datetime | None = None
    last_error: str = ""
    last_ok: datetime | None = None
    dropped: int = 0
    sent_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "delivered": self.delivered,
            "failures": self.failures,
            "failing_since": self.failing_since.isoformat() if self.failing_since else None,
            "last_error": self.last_error,
            "last_ok": self.last_ok.isoformat() if self.last_ok else None,
        }


def url_parts(url: str) -> list[str]:
    """Every piece of a URL that may be a token (userinfo, path segments, query values): what a
    failure message must not repeat. The host and port stay (they say where it failed)."""
    parts = [url]
    with contextlib.suppress(ValueError):
        split = urllib.parse.urlsplit(url)
        parts += [p for p in (split.username, split.password) if p]
        parts += [seg for seg in split.path.split("/") if len(seg) >= 4]
        parts += [v for _, v in urllib.parse.parse_qsl(split.query) if len(v) >= 4]
        parts += [split.netloc.rpartition("@")[0]] if "@" in split.netloc else []
    return [p for p in parts if p]


class RedactSecrets(logging.Filter):
    """Every secret value this process resolved, and every part of a channel URL, cut out of a
    log record — on the watch's handler (whatever module wrote the line) and on the loggers of
    the HTTP libraries Apprise uses (their debug lines name the request path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = revealed_values()
        if values:
            extra = [p for v in values for p in url_parts(v)]
            text = record.getMessage()
            redacted = redact(text, extra)
            if redacted != text:
                record.msg, record.args = redacted, None
        return True


LIBRARY_LOGGERS = ("urllib3.connectionpool", "urllib3.connection", "requests", "apprise")


def guard_library_logs() -> None:
    """Put RedactSecrets on the HTTP libraries' own loggers (once)."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


class Channel:
    """A queue and a delivery task. Subclasses implement `send(notice)` (raise DeliveryError)."""

    kind = "channel"

    def __init__(self, config: NotifyConfig, *, retry_max: float, clock: Clock = utcnow) -> None:
        self.config = config
        self.name = config.name
        self.retry_max = retry_max
        self.clock = clock
        self.status = ChannelStatus(config.name, self.kind)
        self._queue: deque[Notice] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def put(self, notice: Notice) -> None:
        if len(self._queue) >= QUEUE_MAX:
            self._queue.popleft()
            self.status.dropped += 1
        self._queue.append(notice)
        self._idle.clear()
        self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"notify {self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def drain(self, timeout: float) -> bool:
        """Wait until the queue is empty (or `timeout` passes): `hlcon watch --once`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        return not self._queue

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            notice = self._queue[0]
            try:
                await self.send(notice)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a channel must never take the watch down
                why = str(exc) if isinstance(exc, DeliveryError) else type(exc).__name__
                self._failed(why)
                delay = min(self.retry_max, 2.0 ** min(self.status.failures - 1, 30))
                if self.status.failures == 1 or self.status.failures % 10 == 0:
                    log.warning(
                        "notify %s: delivery failed (%s); retrying in %gs", self.name, why, delay
                    )
                with contextlib.suppress(TimeoutError):
                    self._wake.clear()
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            self._queue.popleft()
            self._delivered(notice)

    def _failed(self, why: str) -> None:
        st = self.status
        st.failures += 1
        st.last_error = why
        if st.failing_since is None:
            st.failing_since = self.clock()

    def _delivered(self, notice: Notice) -> None:
        st = self.status
        if st.failing_since is not None:
            log.info("notify %s: delivering again after %d failures", self.name, st.failures)
        st.failures, st.failing_since, st.last_error = 0, None, ""
        st.delivered += 1
        st.last_ok = self.clock()
        st.sent_by_kind[notice.kind] = st.sent_by_kind.get(notice.kind, 0) + 1

    async def send(self, notice: Notice) -> None:
        raise NotImplementedError

    async def sync(self, open_alerts: Iterable[tuple[Tracked, Severity]], now: datetime) -> None:
        """Called every pass with what this channel was told is open (Alertmanager re-posts)."""

    async def _url(self) -> tuple[str, list[str]]:
        """The channel's URL, resolved if it is a secret reference, and what to redact."""
        raw = self.config.url
        scheme = raw.partition(":")[0]
        if scheme in ("keyring", "env", "file", "command"):
            try:
                secret: Secret = await asyncio.to_thread(resolve, SecretRef.parse(raw))
            except (SecretError, ValueError) as exc:
                raise DeliveryError(f"url: {exc}") from None
            url = secret.reveal()
            return url, url_parts(url)
        return raw, []


# ---------------------------------------------------------------- Apprise


class _Capture(logging.Handler):
    """Apprise's log records of one delivery, kept to say why it failed (never re-logged).
    Apprise may send from a worker thread of its own: _APPRISE_LOCK keeps one delivery at a
    time, so every record caught belongs to it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            with contextlib.suppress(Exception):
                self.lines.append(record.getMessage())


_APPRISE_LOCK = threading.Lock()  # one delivery at a time reconfigures apprise's logger


class AppriseChannel(Channel):
    kind = "apprise"

    _TYPES = {
        Severity.CRITICAL: "failure",
        Severity.UNKNOWN: "warning",
        Severity.WARNING: "warning",
        Severity.INFO: "info",
        Severity.OK: "success",
    }

    async def send(self, notice: Notice) -> None:
        url, needles = await self._url()
        kind = "success" if notice.kind == "clear" else self._TYPES[notice.severity]
        ok, why = await asyncio.to_thread(
            self._notify, url, notice.title, notice.body, kind, self.config.timeout
        )
        if not ok:
            raise DeliveryError(redact(why, needles))

    @staticmethod
    def _notify(url: str, title: str, body: str, kind: str, timeout: float) -> tuple[bool, str]:
        import apprise

        logger = logging.getLogger("apprise")
        with _APPRISE_LOCK:
            capture = _Capture()
            saved = (logger.propagate, logger.level)
            logger.propagate = False  # apprise's lines may quote the URL: they go nowhere
            logger.setLevel(logging.WARNING)
            logger.addHandler(capture)
            try:
                asset = apprise.AppriseAsset(async_mode=False)
                ap = apprise.Apprise(asset=asset)
                if not ap.add(url):
                    return False, "Apprise does not understand the URL (see apprise's URL list)"
                for server in ap:
                    # Apprise's plugins take their socket timeouts from the URL's ?cto/?rto;
                    # set them for the whole delivery so a dead server cannot hold the channel.
                    server.socket_connect_timeout = timeout
                    server.socket_read_timeout = timeout
                done = ap.notify(title=title, body=body, notify_type=kind)
            except Exception as exc:
                return False, f"Apprise failed: {type(exc).__name__}"
            finally:
                logger.removeHandler(capture)
                logger.propagate, logger.level = saved[0], saved[1]
        if done:
            return True, ""
        return False, capture.lines[-1] if capture.lines else "Apprise could not deliver"


# ---------------------------------------------------------------- Alertmanager


def alert_labels(t: Tracked, severity: Severity) -> dict[str, str]:
    return {
        "alertname": "hlcon",
        "domain": t.domain,
        "target": t.target,
        "host": t.host,
        "subject": t.subject,
        "severity": severity.label,
        "rule": t.rule,
    }


def _iso(at: datetime) -> str:
    if at.utcoffset() == timedelta(0):
        return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return at.isoformat()


class AlertmanagerChannel(Channel):
    """Findings as alerts on Alertmanager's v2 API (POST /api/v2/alerts). An open finding is
    re-posted every [watch] repost with endsAt 3× that ahead (so a watch that dies lets them
    expire); a cleared one is posted with endsAt now (resolved)."""

    kind = "alertmanager"

    def __init__(
        self, config: NotifyConfig, *, retry_max: float, repost: float, clock: Clock = utcnow
    ) -> None:
        super().__init__(config, retry_max=retry_max, clock=clock)
        self.repost = repost
        self._last_sync = 0.0

    def alert(self, t: Tracked, severity: Severity, ends: datetime) -> dict[str, Any]:
        from watch.notify import shown_by

        return {
            "labels": alert_labels(t, severity),
            "annotations": {
                "summary": t.message,
                "description": f"{severity.name}: {t.message} (since {t.since:%Y-%m-%d %H:%M:%S}"
                " UTC)",
                "see": shown_by(t.domain),
            },
            "startsAt": _iso(t.since),
            "endsAt": _iso(ends),
        }

    def alerts_for(self, notice: Notice) -> list[dict[str, Any]]:
        now = self.clock()
        t = notice.finding
        if t is None:
            if notice.kind not in ("test", "action"):
                return []  # maintenance-ended, digest: events for people, not alerts
            labels = {"alertname": "hlcon" if notice.kind == "action" else "hlcon_test",
                      "severity": notice.severity.label, "rule": notice.kind,
                      **(notice.payload or {})}  # fmt: skip
            return [{
                "labels": labels,
                "annotations": {"summary": notice.title, "description": notice.body},
                "startsAt": _iso(now),
                "endsAt": _iso(now + timedelta(seconds=3 * self.repost)),
            }]  # fmt: skip
        if notice.kind == "clear":
            return [self.alert(t, notice.severity, now)]
        out = [self.alert(t, t.severity, now + timedelta(seconds=3 * self.repost))]
        if notice.kind == "escalate" and notice.previous is not None:
            out.append(self.alert(t, notice.previous, now))  # the old labels resolved
        return out

    async def send(self, notice: Notice) -> None:
        alerts = list(notice.payload) if notice.kind == "repost" else self.alerts_for(notice)
        if alerts:
            await self.post(alerts)

    async def post(self, alerts: list[dict[str, Any]]) -> None:
        base, needles = await self._url()
        url = base.rstrip("/") + "/api/v2/alerts"
        data = json.dumps(alerts).encode()
        why = await asyncio.to_thread(_post_json, url, data, self.config.timeout)
        if why:
            raise DeliveryError(redact(why, needles))

    async def sync(self, open_alerts: Iterable[tuple[Tracked, Severity]], now: datetime) -> None:
        if time.monotonic() - self._last_sync < self.repost:
            return
        alerts = [
            self.alert(t, sev, now + timedelta(seconds=3 * self.repost)) for t, sev in open_alerts
        ]
        self._last_sync = time.monotonic()
        if alerts and not any(n.kind == "repost" for n in self._queue):
            self.put(_repost_notice(self.name, alerts))


def _repost_notice(channel: str, alerts: list[dict[str, Any]]) -> Notice:
    return Notice(channel, "repost", Severity.INFO, "re-post open alerts", "", payload=alerts)


def _post_json(url: str, data: bytes, timeout: float) -> str:
    """POST JSON; "" on success, else why (no URL in it)."""
    if not url.startswith(("http://", "https://")):
        return "not an http(s) URL"
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read()
            return ""
    except urllib.error.HTTPError as exc:
        detail = exc.read(200).decode("utf-8", "replace").strip().splitlines()
        return f"HTTP {exc.code}" + (f": {detail[0]}" if detail else "")
    except urllib.error.URLError as exc:
        return f"cannot reach it: {exc.reason}"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


def make_channel(config: NotifyConfig, *, retry_max: float, repost: float) -> Channel:
    guard_library_logs()
    if config.kind == "alertmanager":
        return AlertmanagerChannel(config, retry_max=retry_max, repost=repost)
    return AppriseChannel(config, retry_max=retry_max)
