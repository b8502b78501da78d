"""The audit log: append-only, hash-chained JSONL.

One JSON object per line. Every line carries `prev` = sha256 (hex) of the previous line's bytes
(without its newline); the first line's prev is "0" * 64. Keys are written in a fixed order with
`prev` first, so a line always starts `{"prev":"<64 hex>","seq":N,`.

Appends take an exclusive flock on the log, so processes interleave whole lines and `seq` stays
monotonic. Durability: "intent" records are fsynced before the action runs (the runner asks for
it); every other record is one write() to the kernel — it survives the process dying, not a power
cut.

A chain cannot tell an edit of its LAST line by itself, so a small sidecar `<log>.head` holds the
seq and hash of the newest line (rewritten on every append). `verify()` checks it too; a head one
record behind the log is the trace of a process that died between the two writes and is accepted.
This detects accidents and naive edits; it is not a defence against someone who rewrites both
files.

Redaction happens before a record is serialised: values under keys that name a secret
(password, passphrase, secret, token, private_key …) are masked, and every value lab.secrets has
revealed in this process is replaced wherever it appears in a string.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import math
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lab.model import utcnow

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

SecretValues = Callable[[], frozenset[str]]


class AuditError(Exception):
    """The log cannot be written or read; str() names the file and why."""


def _revealed_values() -> frozenset[str]:
    from lab.secrets import revealed_values

    return revealed_values()


@dataclass(frozen=True)
class Who:
    """Who acted: the login user, the sudo caller and the SSH client, as the process sees them."""

    user: str
    sudo_user: str | None = None
    ssh_client: str | None = None

    @classmethod
    def current(cls) -> Who:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        return cls(user, os.environ.get("SUDO_USER"), os.environ.get("SSH_CLIENT"))

    def to_record(self) -> dict[str, str | None]:
        return {"user": self.user, "sudo_user": self.sudo_user, "ssh_client": self.ssh_client}


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


def _sha(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


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


class AuditLog:
    """The append-only, hash-chained log at `path` (created with its directory on first write)."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], datetime] = utcnow,
        secret_values: SecretValues = _revealed_values,
    ) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.name + ".head")
        self._clock = clock
        self._secret_values = secret_values
        self._tlock = threading.Lock()

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
        """Append one record; `sync` fsyncs it. Raises AuditError when it cannot be written."""
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
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                last = _last_line(fd)
                if last is None:
                    prev, seq = ZERO_HASH, 1
                else:
                    try:
                        record, _ = _parse_line(last, None)
                    except ValueError as exc:
                        raise AuditError(
                            f"audit log {self.path} is damaged at its end ({exc}); "
                            "run `hlcon audit verify` and move the file aside"
                        ) from None
                    prev, seq = _sha(last), record.seq + 1
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
                line = _dumps(body)
                _write_all(fd, line + b"\n")
                if sync:
                    os.fsync(fd)
                    if created:
                        _fsync_dir(self.path.parent)
                self._write_head(seq, _sha(line))
            finally:
                os.close(fd)  # releases the flock
        return AuditRecord.from_json(body)

    def _write_head(self, seq: int, digest: str) -> None:
        # Under the log's flock, so a plain rewrite cannot race another writer.
        data = _dumps({"seq": seq, "sha256": digest}) + b"\n"
        fd = os.open(self.head_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)

    # -- reading ----------------------------------------------------------------------------

    def records(self) -> Iterator[AuditRecord]:
        """Every record, oldest first, streamed. Lines that do not parse are skipped (verify()
        reports them)."""
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

    def verify(self) -> VerifyResult:
        """Walk the chain; name the first bad line and why."""
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return VerifyResult(True, 0, None, "no audit log yet")
        except OSError as exc:
            return VerifyResult(False, 0, None, f"cannot read {self.path}: {exc.strerror}")
        with f:
            return self._verify(iter(f))

    def _verify(self, lines: Iterator[bytes]) -> VerifyResult:
        expect_prev = ZERO_HASH
        last_seq = 0
        last_hash = ZERO_HASH
        count = 0
        lineno = 0
        head = self._read_head()
        for raw in lines:
            lineno += 1
            if not raw.endswith(b"\n"):
                return VerifyResult(
                    False, count, lineno, "the last line is incomplete (no newline): a cut write"
                )
            line = raw[:-1]
            try:
                data = _load_line(line)
            except ValueError as exc:
                return VerifyResult(False, count, lineno, f"not a valid record: {exc}")
            seq: int = data["seq"]
            if seq != last_seq + 1:
                return VerifyResult(
                    False,
                    count,
                    lineno,
                    f"seq {seq} follows seq {last_seq}: a record was removed, added or altered",
                )
            digest = hashlib.sha256(line).hexdigest()
            if data["prev"] != expect_prev:
                if lineno == 1:
                    return VerifyResult(False, 0, 1, "the first record's prev is not 000…0")
                # Either the previous line was altered, or this line's prev was. If this line
                # is itself vouched for (by the next line or by the head), it is the previous.
                nxt = next(lines, None)
                if nxt is not None:
                    vouched = nxt.startswith(_PREFIX) and nxt[9:73] == digest.encode()
                else:
                    vouched = head is not None and head == (seq, digest)
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
            last_seq = seq
            last_hash = expect_prev = digest
            count += 1
        return self._check_head(head, count, lineno, last_seq, last_hash)

    def _check_head(
        self,
        head: tuple[int, str] | None,
        count: int,
        lineno: int,
        last_seq: int,
        last_hash: str,
    ) -> VerifyResult:
        ok = VerifyResult(True, count, None, f"{count} records, chain intact")
        if head is None:
            return (
                ok
                if count == 0 or not self.head_path.exists()
                else VerifyResult(False, count, None, f"{self.head_path} is unreadable")
            )
        seq, digest = head
        if seq == last_seq:
            if digest == last_hash:
                return ok
            return VerifyResult(
                False,
                count - 1,
                lineno,
                f"its hash does not match {self.head_path.name}: the line was altered",
            )
        if seq == last_seq - 1:
            return ok  # a writer died between the line and the head; the next append repairs it
        if seq > last_seq:
            return VerifyResult(
                False,
                count,
                lineno + 1,
                f"the log ends at seq {last_seq} but {self.head_path.name} says {seq}: "
                "records were removed from the end",
            )
        return VerifyResult(
            False, count, None, f"{self.head_path.name} says seq {seq}, the log ends at {last_seq}"
        )

    def _read_head(self) -> tuple[int, str] | None:
        try:
            data = json.loads(self.head_path.read_bytes())
            seq, digest = data["seq"], data["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(seq, int) or not isinstance(digest, str):
            return None
        return seq, digest


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
