"""The audit log: append-only, hash-chained, MAC'd JSONL.

One JSON object per line. Every line carries `prev` = sha256 (hex) of the previous line's bytes
without its newline and without its `mac`; the first line's prev is "0" * 64. Keys are written in
a fixed order with `prev` first, so a line always starts `{"prev":"<64 hex>","seq":N,`, and `mac`
last: HMAC-SHA256 (128 bits kept) of that same hash under a key hlcon makes on first use
(`<log>.key`, mode 0600) — one hashing pass per line covers the chain and the MAC.

Appends take an exclusive flock on the log, so processes interleave whole lines and `seq` stays
monotonic. An append is all or nothing: when the line or the head cannot be written (a full disk)
the log is truncated back to its old size, so a failed append leaves no torn line. Durability:
"intent" records are fsynced before the action runs (the runner asks for it); every other record
is one write() to the kernel — it survives the process dying, not a power cut.

A chain alone cannot tell an edit of its LAST line, nor a whole rewritten chain, so a sidecar
`<log>.head` holds the seq and hash of the newest line with an HMAC under the key. `verify()`
checks the chain, every line's MAC and the head; a head one record behind is the trace of a
process that died between the two writes and is accepted only when the last line's MAC is good.
A log missing (or emptied) beside its key or head is an error, and so is an append onto one.

Each head is also sent to the systemd journal (its native socket) as an anchor outside the file's
trust domain; `verify(anchors=…)` compares them. What none of this stops: someone who can write
the log AND read the key rewrites all three files consistently; only the journal then tells.

Redaction happens before a record is serialised: values under keys that name a secret
(password, passphrase, secret, token, private_key …) are masked, and every value lab.secrets has
revealed in this process is replaced wherever it appears in a string.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import hmac
import json
import logging
import math
import os
import pwd
import re
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.model import utcnow

if TYPE_CHECKING:
    from lab.config import Config

log = logging.getLogger("hlcon.audit")

ZERO_HASH = "0" * 64
MASK = "[redacted]"
PHASES = (
    "planned",
    "refused",
    "cancelled",
    "intent",
    "outcome",
    "rollback",
    "maintenance",
    "repair",
)
# Record keys in the order they are written; `prev` first so verify can find it by position.
_KEYS = (
    "prev",
    "seq",
    "time",
    "phase",
    "who",
    "action",
    "target",
    "ref",
    "plan",
    "result",
    "reason",
    "duration",
)
_PREFIX = b'{"prev":"'
_SECRET_KEY = re.compile(
    r"passw(or)?d|passphrase|secret|token|private[_-]?key|api[_-]?key|credential", re.IGNORECASE
)
# Revealed values shorter than this are not replaced: masking "a" would shred every record.
MIN_SECRET_LEN = 4
# A line ends `,"mac":"<32 hex>"}`: 128 bits of HMAC-SHA256 over the line without it.
MAC_HEX = 32
_MAC_OPEN = b',"mac":"'
_MAC_TAIL = len(_MAC_OPEN) + MAC_HEX + 2
DEFAULT_JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
HEAD_SIZE = 256  # the head is padded to this, so rewriting it never needs a new block
MAX_HEAD = 4096  # what is read of a head at most (it is never more; a device is not)
JOURNAL_IDENTIFIER = "hlcon-audit"
# Environment variables recorded as what the caller claims, never as who acted.
CLAIMED_ENV = ("LOGNAME", "SUDO_USER", "SSH_CLIENT")

SecretValues = Callable[[], frozenset[str]]


class AuditError(Exception):
    """The log cannot be written or read; str() names the file and why."""


def _revealed_values() -> frozenset[str]:
    from lab.secrets import revealed_values

    return revealed_values()


@dataclass(frozen=True)
class Who:
    """Who acted: the account of the process's real uid. LOGNAME, SUDO_USER and SSH_CLIENT are
    whatever the environment says — anyone can set them — so they are kept as claims only."""

    user: str
    uid: int | None = None
    claimed: tuple[tuple[str, str], ...] = ()

    @classmethod
    def current(cls) -> Who:
        uid = os.getuid()
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        claims = tuple((k, os.environ[k]) for k in CLAIMED_ENV if os.environ.get(k))
        return cls(user, uid, claims)

    def to_record(self) -> dict[str, Any]:
        return {"user": self.user, "uid": self.uid, "claimed": dict(self.claimed)}


def describe_who(who: Mapping[str, Any]) -> str:
    """ "root (claims sudo by alice, LOGNAME mallory)": the identity, then what the environment
    claimed. Records from before claims were kept (sudo_user at top level) read the same way."""
    user = str(who.get("user") or "?")
    claimed = who.get("claimed")
    if not isinstance(claimed, Mapping):
        claimed = {"SUDO_USER": who.get("sudo_user")}
    parts = []
    if claimed.get("SUDO_USER"):
        parts.append(f"sudo by {claimed['SUDO_USER']}")
    if claimed.get("LOGNAME") and claimed["LOGNAME"] != user:
        parts.append(f"LOGNAME {claimed['LOGNAME']}")
    return f"{user} (claims {', '.join(parts)})" if parts else user


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    time: str
    phase: str
    who: Mapping[str, Any]
    action: str | None = None
    target: str | None = None
    ref: int | None = None  # seq of the "planned" record this one belongs to
    plan: Mapping[str, Any] | None = None
    result: Mapping[str, Any] | None = None
    reason: str | None = None
    duration: float | None = None
    prev: str = ZERO_HASH
    line: int | None = None  # 1-based line in the file, where known

    @property
    def at(self) -> datetime:
        return datetime.fromisoformat(self.time)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], line: int | None = None) -> AuditRecord:
        seq = data.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError("no integer seq")
        time = data.get("time")
        phase = data.get("phase")
        if not isinstance(time, str) or not isinstance(phase, str):
            raise ValueError("no time or phase")
        who = data.get("who")
        ref = data.get("ref")
        duration = data.get("duration")
        return cls(
            seq=seq,
            time=time,
            phase=phase,
            who=who if isinstance(who, dict) else {},
            action=_str_or_none(data.get("action")),
            target=_str_or_none(data.get("target")),
            ref=ref if isinstance(ref, int) and not isinstance(ref, bool) else None,
            plan=_dict_or_none(data.get("plan")),
            result=_dict_or_none(data.get("result")),
            reason=_str_or_none(data.get("reason")),
            duration=float(duration) if isinstance(duration, int | float) else None,
            prev=str(data.get("prev", "")),
            line=line,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in _KEYS}
        out["who"] = dict(self.who)
        return out


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _dict_or_none(v: Any) -> dict[str, Any] | None:
    return v if isinstance(v, dict) else None


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int  # records that verified before the first bad line (all of them when ok)
    first_bad_line: int | None = None  # 1-based
    reason: str = ""
    readable: bool = True  # False: the log, head, key or journal could not be read at all


def redact(value: Any, secrets: frozenset[str] = frozenset()) -> Any:
    """A copy of `value` (JSON-like) with secret-named keys masked and secret values replaced."""
    needles = sorted((s for s in secrets if len(s) >= MIN_SECRET_LEN), key=len, reverse=True)
    return _redact(value, needles)


def _redact(value: Any, needles: list[str]) -> Any:
    if isinstance(value, str):
        for n in needles:
            if n in value:
                value = value.replace(n, MASK)
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = _redact(str(k), needles)
            if _SECRET_KEY.search(str(k)) and v is not None and not isinstance(v, bool):
                out[key] = MASK
            else:
                out[key] = _redact(v, needles)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(v, needles) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf
    if value is None or isinstance(value, bool | int | float):
        return value
    return _redact(str(value), needles)


def _dumps(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _load_line(line: bytes) -> dict[str, Any]:
    """A stored line → its JSON object, checked for shape. ValueError says what is wrong."""
    if not line.startswith(_PREFIX):
        raise ValueError("does not start with a prev hash")
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if type(data) is not dict:
        raise ValueError("not a JSON object")
    prev = data.get("prev")
    if type(prev) is not str or len(prev) != 64 or line[9:73] != prev.encode():
        raise ValueError("prev is not a 64-digit hash in first place")
    if type(data.get("seq")) is not int:
        raise ValueError("no integer seq")
    return data


def _parse_line(line: bytes, lineno: int | None) -> tuple[AuditRecord, str]:
    """A stored line → (record, its prev). ValueError says what is wrong with it."""
    data = _load_line(line)
    return AuditRecord.from_json(data, lineno), data["prev"]


def _split_mac(line: bytes) -> tuple[bytes, bytes | None]:
    """A stored line → (the line as it was MAC'd, its MAC) — (line, None) when it carries none."""
    if len(line) > _MAC_TAIL and line.endswith(b'"}') and line[-_MAC_TAIL:].startswith(_MAC_OPEN):
        return line[:-_MAC_TAIL] + b"}", line[-MAC_HEX - 2 : -2]
    return line, None


class _Hmac:
    """HMAC-SHA256 (RFC 2104) with the key's pads hashed once: verify MACs 100k lines, and
    hmac.digest() sets the key up again on every call (≈3× the cost of the copies here)."""

    def __init__(self, key: bytes) -> None:
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def __call__(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


_HMACS: dict[bytes, _Hmac] = {}


def _line_mac(key: bytes, digest: bytes) -> bytes:
    """The MAC of a line whose body hashes to `digest` (the chain hash: one pass per line)."""
    mac = _HMACS.get(key)
    if mac is None:
        mac = _HMACS[key] = _Hmac(key)
    return mac(digest).hex()[:MAC_HEX].encode()


def _chain_hash(line: bytes) -> str:
    """What the next line's prev holds: sha256 of the line without its MAC."""
    return hashlib.sha256(_split_mac(line)[0]).hexdigest()


def _head_mac(key: bytes, seq: int, digest: str) -> str:
    return hmac.new(key, f"head:{seq}:{digest}".encode(), "sha256").hexdigest()


def _good_mac(key: bytes | None, line: bytes) -> bool:
    body, mac = _split_mac(line)
    if key is None or mac is None:
        return False
    return hmac.compare_digest(_line_mac(key, hashlib.sha256(body).digest()), mac)


@dataclass(frozen=True)
class Head:
    """What `<log>.head` says: the newest line's seq and hash, and its HMAC (None: written
    before hlcon had a key)."""

    seq: int
    sha256: str
    mac: str | None


@dataclass(frozen=True)
class Anchor:
    """One head as the journal recorded it."""

    seq: int
    sha256: str
    time: str  # when journald received it (its own clock), for messages


class AuditLog:
    """The append-only, hash-chained log at `path` (created with its directory on first write).

    `journal_socket`: where each head is also sent (journald's native socket); None turns the
    anchor off. A socket that is absent or refuses is skipped: the anchor never blocks an action.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], datetime] = utcnow,
        secret_values: SecretValues = _revealed_values,
        journal_socket: Path | None = DEFAULT_JOURNAL_SOCKET,
    ) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.name + ".head")
        self.key_path = self.path.with_name(self.path.name + ".key")
        self.journal_socket = journal_socket
        self._clock = clock
        self._secret_values = secret_values
        self._tlock = threading.Lock()
        self._key: bytes | None = None
        self._macs_from = 1  # the key file says from which seq on every line carries a MAC
        self._key_stamp: tuple[int, int, int, int] | None = None
        self._sock: socket.socket | None = None

    @property
    def anchor_name(self) -> str:
        """The log's name in the journal (HLCON_AUDIT_LOG): its absolute path."""
        return str(Path(os.path.abspath(self.path)))

    # -- writing ----------------------------------------------------------------------------

    def append(
        self,
        phase: str,
        *,
        who: Who,
        action: str | None = None,
        target: str | None = None,
        ref: int | None = None,
        plan: Mapping[str, Any] | None = None,
        result: Mapping[str, Any] | None = None,
        reason: str | None = None,
        duration: float | None = None,
        sync: bool = False,
    ) -> AuditRecord:
        """Append one record; `sync` fsyncs it. Raises AuditError when it cannot be written —
        the log, its head and key are then as they were."""
        try:
            return self._append(
                phase, who, action, target, ref, plan, result, reason, duration, sync
            )
        except OSError as exc:
            raise AuditError(
                f"audit log {self.path} cannot be written: {exc.strerror or exc}"
            ) from None

    def _append(
        self,
        phase: str,
        who: Who,
        action: str | None,
        target: str | None,
        ref: int | None,
        plan: Mapping[str, Any] | None,
        result: Mapping[str, Any] | None,
        reason: str | None,
        duration: float | None,
        sync: bool,
    ) -> AuditRecord:
        secrets = self._secret_values()
        with self._tlock:
            created = not self.path.exists()
            if created and (self.key_path.exists() or self.head_path.exists()):
                # Refused before the open, which would leave an empty log behind.
                raise AuditError(self._gone(self._read_head(), "is missing"))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                size = os.fstat(fd).st_size
                last = _last_line(fd)
                head = self._read_head()
                key = self._load_key()
                if last is None:
                    prev, seq = ZERO_HASH, 1
                    if key is not None or head is not None:
                        raise AuditError(self._gone(head, "is empty"))
                else:
                    try:
                        record, _ = _parse_line(last, None)
                    except ValueError as exc:
                        if os.pread(fd, 1, size - 1) != b"\n":
                            raise AuditError(
                                f"audit log {self.path} ends in a line cut short (a write that "
                                "failed, e.g. on a full disk): `hlcon audit repair` removes it "
                                "and records that, keeping the chain"
                            ) from None
                        raise AuditError(
                            f"audit log {self.path} is damaged at its end ({exc}); "
                            "run `hlcon audit verify` and move the file aside"
                        ) from None
                    prev, seq = _chain_hash(last), record.seq + 1
                    if key is None and _split_mac(last)[1] is not None:
                        raise AuditError(
                            f"audit key {self.key_path} is missing beside a log whose lines "
                            "carry MACs; run `hlcon audit verify`"
                        )
                    problem = _end_problem(head, key, record.seq, last, self.head_path.name)
                    if problem:
                        raise AuditError(
                            f"audit log {self.path}: {problem}; run `hlcon audit verify` — an "
                            "append would cover it up"
                        )
                made_key = key is None
                if key is None:
                    key = self._create_key(seq)
                body: dict[str, Any] = {
                    "prev": prev,
                    "seq": seq,
                    "time": self._clock().isoformat(timespec="milliseconds"),
                    "phase": phase,
                    "who": who.to_record(),
                    "action": action,
                    "target": target,
                    "ref": ref,
                    "plan": plan,
                    "result": result,
                    "reason": reason,
                    "duration": round(duration, 3) if duration is not None else None,
                }
                body = redact(body, secrets)
                raw = _dumps(body)
                hashed = hashlib.sha256(raw)
                line = raw[:-1] + _MAC_OPEN + _line_mac(key, hashed.digest()) + b'"}'
                digest = hashed.hexdigest()
                try:
                    _write_all(fd, line + b"\n")
                    if sync:
                        os.fsync(fd)
                        if created:
                            _fsync_dir(self.path.parent)
                    self._write_head(seq, digest, key, sync)
                except BaseException:
                    # All or nothing: a torn line would refuse every later append.
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, size)
                        os.fsync(fd)
                    if made_key:
                        with contextlib.suppress(OSError):
                            self.key_path.unlink()
                        self._key = None
                    raise
                self._anchor(seq, digest)
            finally:
                os.close(fd)  # releases the flock
        return AuditRecord.from_json(body)

    def repair(self, who: Who) -> AuditRecord | None:
        """Remove a last line cut short (no newline: a write that failed) and record that in a
        "repair" record with the cut bytes' length and hash. None: the log ends in a whole line.
        Raises AuditError for anything else — a complete line that is bad is not a cut write."""
        with self._tlock:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise AuditError(f"audit log {self.path} cannot be read: {exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                size = os.fstat(fd).st_size
                if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
                    return None
                start = size
                while start > 0:
                    step = min(65536, start)
                    i = os.pread(fd, step, start - step).rfind(b"\n")
                    if i >= 0:
                        start = start - step + i + 1
                        break
                    start -= step
                cut = os.pread(fd, size - start, start)
                os.ftruncate(fd, start)
                os.fsync(fd)
            except OSError as exc:
                raise AuditError(
                    f"audit log {self.path} cannot be repaired: {exc.strerror}"
                ) from None
            finally:
                os.close(fd)
        return self.append(
            "repair",
            who=who,
            action="audit.repair",
            target=f"audit:{self.path}",
            result={"cut_bytes": len(cut), "sha256": hashlib.sha256(cut).hexdigest()},
            reason="removed a last line cut short (a write that failed)",
            sync=True,
        )

    def _gone(self, head: Head | None, how: str, appending: bool = True) -> str:
        witness = self.key_path.name if head is None else f"{self.head_path.name} (seq {head.seq})"
        check = "run `hlcon audit verify`; " if appending else ""
        return (
            f"audit log {self.path} {how} but {witness} shows records were written to it: "
            f"{check}to start a new log, move {self.path.name}, "
            f"{self.head_path.name} and {self.key_path.name} aside together"
        )

    def _load_key(self) -> bytes | None:
        """The key, or None when there is none. Cached while the file stays the same one: a
        log moved aside with its head and key starts anew even in a long-running console."""
        try:
            st = os.stat(self.key_path)
            stamp = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
            if self._key is not None and stamp == self._key_stamp:
                return self._key
            with self.key_path.open("rb") as f:
                text = f.read(MAX_HEAD)
        except FileNotFoundError:
            self._key = None
            return None
        except OSError as exc:
            raise AuditError(f"audit key {self.key_path} cannot be read: {exc.strerror}") from None
        try:
            first, *rest = text.decode().splitlines()
            key = bytes.fromhex(first.strip())
            macs_from = 1
            for extra in rest:
                name, _, value = extra.partition(" ")
                if name == "macs_from":
                    macs_from = int(value)
        except (UnicodeDecodeError, ValueError):
            key = b""
        if len(key) < 16:
            raise AuditError(f"audit key {self.key_path} is damaged (not a hex key)")
        self._key, self._macs_from, self._key_stamp = key, macs_from, stamp
        return key

    def _create_key(self, macs_from: int) -> bytes:
        """A new key; lines from seq `macs_from` on carry MACs (older ones predate the key)."""
        key = os.urandom(32)
        try:
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AuditError(
                f"audit key {self.key_path} cannot be written: {exc.strerror}"
            ) from None
        try:
            _write_all(fd, f"{key.hex()}\nmacs_from {macs_from}\n".encode())
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                self.key_path.unlink()
            raise AuditError(
                f"audit key {self.key_path} cannot be written: {exc.strerror}"
            ) from None
        os.close(fd)
        self._key = None  # read back (and stamped) by the next _load_key
        self._macs_from = macs_from
        return key

    def _write_head(self, seq: int, digest: str, key: bytes, sync: bool) -> None:
        """Under the log's flock. Rewritten in place at a fixed size, so once it exists an update
        needs no new disk block (a full disk cannot stop it), and no rename (on ext4 a rename
        over a file flushes it: 1.6 ms an append). A failed write puts the old bytes back."""
        data = _dumps({"seq": seq, "sha256": digest, "mac": _head_mac(key, seq, digest)})
        data = data.ljust(HEAD_SIZE - 1) + b"\n"
        created = False
        try:
            try:
                fd = os.open(self.head_path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                fd = os.open(self.head_path, flags, 0o600)
                created = True
            try:
                old = b"" if created else os.pread(fd, MAX_HEAD, 0)
                try:
                    if os.pwrite(fd, data, 0) != len(data):
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    if len(old) > len(data):
                        os.ftruncate(fd, len(data))
                    if sync:
                        os.fsync(fd)
                except OSError:
                    if old:
                        with contextlib.suppress(OSError):
                            os.pwrite(fd, old, 0)
                            os.ftruncate(fd, len(old))
                    raise
            finally:
                os.close(fd)
        except OSError as exc:
            if created:
                with contextlib.suppress(OSError):
                    self.head_path.unlink()
            raise AuditError(
                f"audit head {self.head_path} cannot be written: {exc.strerror or exc}"
            ) from None

    def _anchor(self, seq: int, digest: str) -> None:
        """Send the new head to journald. Best effort: it is the witness, not the record."""
        if self.journal_socket is None:
            return
        message = _journal_message(
            {
                "MESSAGE": f"hlcon audit head {self.anchor_name} seq {seq} sha256 {digest}",
                "SYSLOG_IDENTIFIER": JOURNAL_IDENTIFIER,
                "PRIORITY": "6",
                "HLCON_AUDIT_LOG": self.anchor_name,
                "HLCON_AUDIT_SEQ": str(seq),
                "HLCON_AUDIT_SHA256": digest,
            }
        )
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message, str(self.journal_socket))
        except OSError as exc:
            log.debug("audit anchor not sent to %s: %s", self.journal_socket, exc)

    # -- reading ----------------------------------------------------------------------------

    def records(self) -> Iterator[AuditRecord]:
        """Every record, oldest first, streamed. Lines that do not parse are skipped (verify()
        reports them). OSError other than a missing file goes up (a directory, say)."""
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return
        with f:
            for lineno, raw in enumerate(f, 1):
                with contextlib.suppress(ValueError):
                    yield _parse_line(raw.rstrip(b"\n"), lineno)[0]

    def reversed_records(self) -> Iterator[AuditRecord]:
        """Every record, newest first, read backwards in blocks (cheap for recent history)."""
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return
        with f:
            for raw in _lines_backwards(f):
                with contextlib.suppress(ValueError):
                    yield _parse_line(raw, None)[0]

    def tail(self, n: int = 20) -> list[AuditRecord]:
        """The newest `n` records, oldest first."""
        out: list[AuditRecord] = []
        if n <= 0:
            return out
        for rec in self.reversed_records():
            out.append(rec)
            if len(out) >= n:
                break
        out.reverse()
        return out

    def since(self, cutoff: datetime) -> Iterator[AuditRecord]:
        """Records written at or after `cutoff`, newest first."""
        for rec in self.reversed_records():
            try:
                if rec.at < cutoff:
                    return
            except ValueError:
                continue
            yield rec

    # -- checking ---------------------------------------------------------------------------

    def journal_anchors(
        self, journal_dir: Path | None = None, since: str | None = None
    ) -> list[Anchor]:
        """The heads journald recorded for this log (`journalctl [-D DIR]`), oldest first.
        Raises AuditError when journalctl cannot be run."""
        argv = ["journalctl", "--no-pager", "-o", "json", "-q"]
        if journal_dir is not None:
            argv += ["-D", str(journal_dir)]
        if since:
            argv += ["--since", since]
        argv.append(f"HLCON_AUDIT_LOG={self.anchor_name}")
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=300, check=False)
        except FileNotFoundError:
            raise AuditError("journalctl is not installed: cannot read the journal") from None
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AuditError(f"journalctl failed: {exc}") from None
        if proc.returncode != 0 and not proc.stdout:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            if err and "no journal files" not in err[0].lower():
                raise AuditError(f"journalctl failed: {err[0]}")
        return list(_parse_anchors(proc.stdout.splitlines()))

    def verify(self, anchors: Iterable[Anchor] | None = None) -> VerifyResult:
        """Walk the chain, every line's MAC, the head, and (given) the journal's anchors; name
        the first bad line and why."""
        try:
            key = self._load_key()
            head = self._read_head()
        except AuditError as exc:
            return VerifyResult(False, 0, None, str(exc), readable=False)
        expected = None if anchors is None else _anchor_map(anchors)
        if isinstance(expected, str):
            return VerifyResult(False, 0, None, expected)
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return self._check_end(head, key, expected, 0, 0, 0, None, ZERO_HASH)
        except OSError as exc:
            return VerifyResult(
                False, 0, None, f"cannot read {self.path}: {exc.strerror}", readable=False
            )
        with f:
            try:
                return self._verify(iter(f), head, key, expected)
            except OSError as exc:
                return VerifyResult(
                    False, 0, None, f"cannot read {self.path}: {exc.strerror}", readable=False
                )

    def _verify(
        self,
        lines: Iterator[bytes],
        head: Head | None,
        key: bytes | None,
        expected: dict[int, Anchor] | None,
    ) -> VerifyResult:
        expect_prev = ZERO_HASH
        last_seq = 0
        count = 0
        lineno = 0
        seen_mac = False
        line = b""
        mac_of = _Hmac(key) if key is not None else None
        sha256 = hashlib.sha256
        for raw in lines:
            lineno += 1
            if not raw.endswith(b"\n"):
                return VerifyResult(
                    False, count, lineno, "the last line is incomplete (no newline): a cut write"
                )
            line = raw[:-1]
            body, mac = _split_mac(line)
            hashed = sha256(body).digest()
            digest = hashed.hex()
            data: dict[str, Any] | None = None
            if mac is not None:
                if mac_of is None:
                    return VerifyResult(
                        False,
                        count,
                        lineno,
                        f"it carries a MAC but {self.key_path.name} is missing: "
                        "the key was deleted, so no line can be authenticated",
                    )
                if not hmac.compare_digest(mac_of(hashed).hex()[:MAC_HEX].encode(), mac):
                    return VerifyResult(
                        False, count, lineno, "its MAC does not match: the line was altered"
                    )
                seen_mac = True
                # hlcon wrote this line (the MAC says so), so prev and seq sit where it put
                # them: read them by position — json.loads of every line was most of the cost.
                end = line.find(b",", 81)
                if line[73:81] == b'","seq":' and end > 81 and line[81:end].isdigit():
                    prev, seq = line[9:73].decode("ascii", "replace"), int(line[81:end])
                else:
                    data = {}
            elif seen_mac:
                return VerifyResult(
                    False,
                    count,
                    lineno,
                    "it has no MAC though the lines before it do: "
                    "it was added or altered outside hlcon",
                )
            else:
                data = {}
            if data is not None:
                try:
                    data = _load_line(line)
                except ValueError as exc:
                    return VerifyResult(False, count, lineno, f"not a valid record: {exc}")
                prev, seq = data["prev"], data["seq"]
            if mac is None and key is not None and seq >= self._macs_from:
                return VerifyResult(
                    False,
                    count,
                    lineno,
                    f"it has no MAC though {self.key_path.name} says every line from seq "
                    f"{self._macs_from} on carries one: it was written outside hlcon",
                )
            if seq != last_seq + 1:
                return VerifyResult(
                    False,
                    count,
                    lineno,
                    f"seq {seq} follows seq {last_seq}: a record was removed, added or altered",
                )
            if prev != expect_prev:
                if lineno == 1:
                    return VerifyResult(False, 0, 1, "the first record's prev is not 000…0")
                # Either the previous line was altered, or this line's prev was. If this line
                # is itself vouched for (by the next line or by the head), it is the previous.
                nxt = next(lines, None)
                if nxt is not None:
                    vouched = nxt.startswith(_PREFIX) and nxt[9:73] == digest.encode()
                else:
                    vouched = head is not None and (head.seq, head.sha256) == (seq, digest)
                if vouched:
                    return VerifyResult(
                        False,
                        count - 1,
                        lineno - 1,
                        f"its hash does not match the prev recorded in line {lineno}: "
                        "the line was altered",
                    )
                return VerifyResult(
                    False,
                    count,
                    lineno,
                    f"prev does not match the hash of line {lineno - 1}: the chain is broken",
                )
            if expected is not None:
                anchor = expected.get(seq)
                if anchor is not None and anchor.sha256 != digest:
                    return VerifyResult(
                        False,
                        count,
                        lineno,
                        f"its hash differs from the journal's anchor for seq {seq} "
                        f"(sent {anchor.time}): the file was rewritten",
                    )
            last_seq = seq
            expect_prev = digest
            count += 1
        return self._check_end(head, key, expected, count, lineno, last_seq, line, expect_prev)

    def _check_end(
        self,
        head: Head | None,
        key: bytes | None,
        expected: dict[int, Anchor] | None,
        count: int,
        lineno: int,
        last_seq: int,
        last: bytes | None,
        last_hash: str,
    ) -> VerifyResult:
        if count == 0:
            if key is not None or head is not None:
                how = "is missing" if not self.path.exists() else "is empty"
                return VerifyResult(False, 0, None, self._gone(head, how, appending=False))
        else:
            assert last is not None
            problem = _end_problem(head, key, last_seq, last, self.head_path.name)
            if problem:
                bad = lineno + 1 if head is not None and head.seq > last_seq else lineno
                return VerifyResult(False, count - 1 if bad == lineno else count, bad, problem)
            if head is not None and head.seq == last_seq and head.sha256 != last_hash:
                return VerifyResult(
                    False,
                    count - 1,
                    lineno,
                    f"its hash does not match {self.head_path.name}: the line was altered",
                )
        reason = f"{count} records, chain intact" if count else "no audit log yet"
        if expected is not None:
            if not expected:
                if count:
                    return VerifyResult(
                        False,
                        count,
                        None,
                        f"the journal has no anchors for {self.anchor_name}: was "
                        "console.audit_journal reachable when the records were written?",
                    )
            else:
                newest = max(expected)
                if newest > last_seq:
                    return VerifyResult(
                        False,
                        count,
                        lineno + 1 if count else None,
                        f"the journal has anchors up to seq {newest} (sent "
                        f"{expected[newest].time}) but the log ends at seq {last_seq}: "
                        "records were removed or the log deleted",
                    )
                reason += f"; {len(expected)} journal anchors agree"
        return VerifyResult(True, count, None, reason)

    def _read_head(self) -> Head | None:
        """The head, or None when there is none. AuditError when it exists but cannot be read
        or is not a head."""
        try:
            with self.head_path.open("rb") as f:
                raw = f.read(MAX_HEAD)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuditError(
                f"audit head {self.head_path} cannot be read: {exc.strerror}"
            ) from None
        try:
            data = json.loads(raw)
            seq, digest, mac = data["seq"], data["sha256"], data.get("mac")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise AuditError(f"audit head {self.head_path} is not a head (damaged)") from None
        if type(seq) is not int or not isinstance(digest, str) or not isinstance(mac, str | None):
            raise AuditError(f"audit head {self.head_path} is not a head (damaged)")
        return Head(seq, digest, mac)


def _end_problem(
    head: Head | None, key: bytes | None, last_seq: int, last: bytes, head_name: str
) -> str | None:
    """What is wrong with how the log ends beside its head, or None. `last`: the last line."""
    if head is None:
        if last_seq == 1 and _good_mac(key, last):
            return None  # the first writer died between its line and the first head
        return f"{head_name} is missing beside a log of {last_seq} records: it was deleted"
    if key is not None:
        if head.mac is None or not hmac.compare_digest(
            _head_mac(key, head.seq, head.sha256), head.mac
        ):
            return f"{head_name} is not signed by the audit key: it was rewritten"
    elif head.mac is not None:
        return f"{head_name} is signed but the audit key is missing: the key was deleted"
    if head.seq == last_seq:
        return None  # the hash is compared by the caller, which names the line
    if head.seq == last_seq - 1:
        # A writer died between the line and the head — if the line is hlcon's own.
        if last[9:73] != head.sha256.encode():
            return f"{head_name} says seq {head.seq} with another hash: the log was altered"
        if key is None or _good_mac(key, last):
            return None
        return f"the last line is not vouched for by {head_name} nor by a MAC: it was forged"
    if head.seq > last_seq:
        return (
            f"the log ends at seq {last_seq} but {head_name} says {head.seq}: "
            "records were removed from the end"
        )
    return f"{head_name} says seq {head.seq}, the log ends at {last_seq}: records were added"


def _journal_message(fields: Mapping[str, str]) -> bytes:
    """journald's native protocol: KEY=value lines; a value with a newline goes length-framed."""
    out = bytearray()
    for k, v in fields.items():
        data = v.encode()
        if b"\n" in data:
            out += k.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += k.encode() + b"=" + data + b"\n"
    return bytes(out)


def _parse_anchors(lines: Iterable[bytes]) -> Iterator[Anchor]:
    for line in lines:
        try:
            entry = json.loads(line)
            seq = int(entry["HLCON_AUDIT_SEQ"])
            digest = str(entry["HLCON_AUDIT_SHA256"])
        except (ValueError, KeyError, TypeError):
            continue
        when = ""
        with contextlib.suppress(KeyError, ValueError, TypeError):
            micros = int(entry["__REALTIME_TIMESTAMP"])
            when = datetime.fromtimestamp(micros / 1e6, tz=utcnow().tzinfo).isoformat(
                timespec="seconds"
            )
        yield Anchor(seq, digest, when)


def _anchor_map(anchors: Iterable[Anchor]) -> dict[int, Anchor] | str:
    """seq → anchor; a string saying so when the journal holds two hashes for one seq."""
    out: dict[int, Anchor] = {}
    for a in anchors:
        seen = out.get(a.seq)
        if seen is not None and seen.sha256 != a.sha256:
            return (
                f"the journal holds two hashes for seq {a.seq} (sent {seen.time} and {a.time}): "
                "the log was replaced, or someone wrote anchors; use --journal-since"
            )
        out[a.seq] = a
    return out


def journal_socket_for(config: Config) -> Path | None:
    """console.audit_journal: "auto" (journald's socket), "none", or a socket path."""
    value = str(getattr(config.console, "audit_journal", "auto") or "none")
    if value == "none":
        return None
    return DEFAULT_JOURNAL_SOCKET if value == "auto" else Path(value)


def audit_log_for(config: Config, *, clock: Callable[[], datetime] = utcnow) -> AuditLog:
    """The AuditLog the config names, with its journal anchor."""
    from lab.config import audit_log_path

    return AuditLog(audit_log_path(config), clock=clock, journal_socket=journal_socket_for(config))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _last_line(fd: int) -> bytes | None:
    """The last line of the file (without its newline), or None when it is empty."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    block = 4096
    buf = b""
    pos = size
    while pos > 0:
        step = min(block, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        body = buf[:-1] if buf.endswith(b"\n") else buf
        i = body.rfind(b"\n")
        if i >= 0:
            return body[i + 1 :]
        block *= 2
    return buf[:-1] if buf.endswith(b"\n") else buf


def _lines_backwards(f: Any, block: int = 65536) -> Iterator[bytes]:
    f.seek(0, os.SEEK_END)
    pos = f.tell()
    rest = b""
    while pos > 0:
        step = min(block, pos)
        pos -= step
        f.seek(pos)
        chunk = f.read(step) + rest
        parts = chunk.split(b"\n")
        rest = parts[0]
        for part in reversed(parts[1:]):
            if part:
                yield part
    if rest:
        yield rest
