"""The audit log: chain, tamper detection, concurrent writers, redaction."""

from __future__ import annotations

import atexit
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actions.audit import MASK, ZERO_HASH, AuditLog, AuditRecord, Who, redact

REPO = Path(__file__).resolve().parents[2]
WHO = Who("alice", 1000, (("SUDO_USER", "root"), ("SSH_CLIENT", "192.0.2.7 50000 22")))


def fill(log: AuditLog, n: int) -> list[AuditRecord]:
    out = []
    for i in range(n):
        out.append(
            log.append(
                ("planned", "intent", "outcome")[i % 3],
                who=WHO,
                action="container.restart",
                target=f"container:web{i % 4}@local",
                ref=i,
                plan={"summary": f"Restart web{i % 4} — ünïcode ok", "steps": []},
                result={"ok": True, "message": "running again"} if i % 3 == 2 else None,
                duration=0.5 if i % 3 == 2 else None,
                sync=i % 3 == 1,
            )
        )
    return out


def test_chain_links_every_line(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a" / "audit.jsonl")
    written = fill(log, 7)
    lines = log.path.read_bytes().splitlines()
    assert len(lines) == 7
    assert json.loads(lines[0])["prev"] == ZERO_HASH
    import hashlib

    for before, line in itertools.pairwise(lines):
        body = before[: before.rindex(b',"mac":"')] + b"}"  # the chain hash leaves out the MAC
        assert json.loads(line)["prev"] == hashlib.sha256(body).hexdigest()
    assert [r.seq for r in log.records()] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.seq for r in written] == [1, 2, 3, 4, 5, 6, 7]
    first = next(log.records())
    assert first.who == {
        "user": "alice",
        "uid": 1000,
        "claimed": {"SUDO_USER": "root", "SSH_CLIENT": "192.0.2.7 50000 22"},
    }
    assert first.line == 1 and first.at.tzinfo is not None
    assert list(json.loads(lines[0])) == [
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
        "mac",
    ]
    result = log.verify()
    assert result.ok and result.records == 7 and result.reason == "7 records, chain intact"


def test_tail_and_since(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    assert log.tail(5) == [] and log.verify().ok
    fill(log, 300)  # more than one 64 KiB block read backwards
    assert [r.seq for r in log.tail(3)] == [298, 299, 300]
    assert len(log.tail(1000)) == 300
    assert [r.seq for r in log.since(log.tail(2)[0].at)][:2] == [300, 299]


def _flip(path: Path, pos: int, new: int) -> None:
    data = bytearray(path.read_bytes())
    data[pos] = new
    path.write_bytes(bytes(data))


def _line_of(data: bytes, pos: int) -> int:
    return data.count(b"\n", 0, pos) + 1


@pytest.mark.parametrize("line", [1, 2, 5, 9, 10])
@pytest.mark.parametrize("where", ["content", "prev", "seq"])
def test_one_changed_byte_names_its_line(tmp_path: Path, line: int, where: str) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    fill(log, 10)
    data = log.path.read_bytes()
    start = 0 if line == 1 else [i for i, b in enumerate(data) if b == 10][line - 2] + 1
    text = data[start:].split(b"\n", 1)[0]
    offset = {
        "content": text.index(b"container:web") + 10,  # "web" → "wxb": still valid JSON
        "prev": 20,
        "seq": text.index(b'"seq":') + 6,
    }[where]
    old = data[start + offset]
    _flip(log.path, start + offset, old ^ 0x01 if where != "content" else ord("x"))
    result = log.verify()
    assert not result.ok
    assert result.first_bad_line == line, result.reason


def test_removed_last_line_is_detected(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    fill(log, 5)
    lines = log.path.read_bytes().splitlines(keepends=True)
    log.path.write_bytes(b"".join(lines[:-1]))
    result = log.verify()
    assert not result.ok and "removed from the end" in result.reason


def test_removed_middle_line_is_detected(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    fill(log, 5)
    lines = log.path.read_bytes().splitlines(keepends=True)
    log.path.write_bytes(b"".join(lines[:2] + lines[3:]))
    result = log.verify()
    assert not result.ok and result.first_bad_line == 3


def test_writer_dying_between_line_and_head_is_tolerated(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    fill(log, 3)
    head = log.head_path.read_bytes()
    fill(log, 1)
    log.head_path.write_bytes(head)  # as if the process died after writing line 4
    assert log.verify().ok
    fill(log, 1)  # the next append repairs the head
    assert log.verify().ok and json.loads(log.head_path.read_bytes())["seq"] == 5


def test_damaged_end_refuses_to_append(tmp_path: Path) -> None:
    from actions.audit import AuditError

    log = AuditLog(tmp_path / "audit.jsonl")
    fill(log, 2)
    with log.path.open("ab") as f:
        f.write(b'{"prev":"cut sho')
    with pytest.raises(AuditError, match=r"line cut short.*hlcon audit repair"):
        log.append("intent", who=WHO)
    result = log.verify()
    assert not result.ok and result.first_bad_line == 3 and "incomplete" in result.reason
    # a complete last line that is not a record is damage, not a cut write
    with log.path.open("ab") as f:
        f.write(b"\n")
    with pytest.raises(AuditError, match=r"damaged at its end.*move the file aside"):
        log.append("intent", who=WHO)


APPENDER = """
import sys
from pathlib import Path
from actions.audit import AuditLog, Who
log = AuditLog(Path(sys.argv[1]))
who = Who(sys.argv[2])
for i in range(int(sys.argv[3])):
    log.append("planned", who=who, target="container:x@local", plan={"i": i})
"""


def test_two_processes_interleave_whole_records(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(path), name, "300"], cwd=REPO)
        for name in ("p1", "p2")
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    log = AuditLog(path)
    result = log.verify()
    assert result.ok and result.records == 600, result.reason
    records = list(log.records())
    assert [r.seq for r in records] == list(range(1, 601))
    assert {r.who["user"] for r in records} == {"p1", "p2"}


# -- redaction ----------------------------------------------------------------------------------


def test_redact_masks_secret_keys_and_values() -> None:
    value = {
        "password": "pw1",
        "restic_password": "pw2",
        "wg": {"private_key": "k", "PrivateKey": "k2", "public_key": "pub"},
        "api-token": "t",
        "passphrase": None,
        "has_secret": True,
        "steps": [{"argv": ["restic", "--password-file", "/run/secrets/x"]}],
        "note": "dialled with hunter2hunter2 twice: hunter2hunter2",
        "n": float("nan"),
        "short": "ab",
    }
    out = redact(value, frozenset({"hunter2hunter2", "ab"}))
    assert out == {
        "password": MASK,
        "restic_password": MASK,
        "wg": {"private_key": MASK, "PrivateKey": MASK, "public_key": "pub"},
        "api-token": MASK,
        "passphrase": None,
        "has_secret": True,
        "steps": [{"argv": ["restic", "--password-file", "/run/secrets/x"]}],
        "note": f"dialled with {MASK} twice: {MASK}",
        "n": "nan",
        "short": "ab",  # shorter than MIN_SECRET_LEN: masking it would shred every record
    }


def test_values_revealed_by_lab_secrets_never_reach_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lab import secrets

    monkeypatch.setenv("HLCON_TEST_AUDIT_SECRET", "s3cr3t-from-env-Zq9")
    value = secrets.resolve("env:HLCON_TEST_AUDIT_SECRET").reveal()
    log = AuditLog(tmp_path / "audit.jsonl")  # the default: lab.secrets.revealed_values()
    log.append(
        "outcome",
        who=WHO,
        target="repo:offsite",
        result={"ok": False, "message": f"restic: wrong password {value}", "env": [value]},
        reason=f"failed with {value}",
    )
    text = log.path.read_text()
    assert value not in text
    rec = log.tail(1)[0]
    assert rec.result == {"ok": False, "message": f"restic: wrong password {MASK}", "env": [MASK]}
    assert rec.reason == f"failed with {MASK}"


# -- hypothesis: random damage --------------------------------------------------------------------

_BASE = tempfile.mkdtemp(prefix="hlcon-audit-hyp-")
atexit.register(shutil.rmtree, _BASE, True)
_PRISTINE = Path(_BASE) / "pristine.jsonl"
_log = AuditLog(_PRISTINE)
fill(_log, 12)
_DATA = _PRISTINE.read_bytes()
_HEAD = _log.head_path.read_bytes()
_KEY = _log.key_path.read_bytes()


def _damaged(data: bytes) -> AuditLog:
    d = Path(tempfile.mkdtemp(dir=_BASE))
    (d / "audit.jsonl").write_bytes(data)
    (d / "audit.jsonl.head").write_bytes(_HEAD)
    (d / "audit.jsonl.key").write_bytes(_KEY)
    return AuditLog(d / "audit.jsonl")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pos=st.integers(0, len(_DATA) - 1), new=st.integers(0, 255))
def test_any_single_byte_change_is_found_on_its_line(pos: int, new: int) -> None:
    if _DATA[pos] == new:
        new ^= 0xFF
    data = bytearray(_DATA)
    data[pos] = new
    result = _damaged(bytes(data)).verify()
    assert not result.ok
    assert result.first_bad_line == _line_of(_DATA, pos), (pos, new, result)


@settings(max_examples=200, deadline=None)
@given(
    cut=st.integers(0, len(_DATA)),
    junk=st.binary(max_size=200),
    keep=st.integers(0, len(_DATA)),
)
def test_arbitrary_damage_never_raises(cut: int, junk: bytes, keep: int) -> None:
    data = _DATA[:cut] + junk + _DATA[keep:]
    result = _damaged(data).verify()
    assert isinstance(result.ok, bool)
    if data != _DATA:
        assert not result.ok
    records = list(_damaged(data).records())  # readers skip what does not parse
    assert all(isinstance(r, AuditRecord) for r in records)


# -- keys, heads, identities, anchors --------------------------------------------------------------


def test_who_is_the_real_uid_and_the_environment_only_a_claim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os
    import pwd

    from actions.audit import describe_who

    monkeypatch.setenv("LOGNAME", "mallory")
    monkeypatch.setenv("USER", "mallory")
    monkeypatch.setenv("SUDO_USER", "alice")
    monkeypatch.delenv("SSH_CLIENT", raising=False)
    who = Who.current()
    me = pwd.getpwuid(os.getuid()).pw_name
    assert who.user == me and who.uid == os.getuid()
    assert who.to_record()["claimed"] == {"LOGNAME": "mallory", "SUDO_USER": "alice"}
    assert describe_who(who.to_record()) == f"{me} (claims sudo by alice, LOGNAME mallory)"
    assert describe_who({"user": "bob", "uid": 1, "claimed": {"LOGNAME": "bob"}}) == "bob"
    # a record written before claims were kept apart
    assert describe_who({"user": "bob", "sudo_user": "carol"}) == "bob (claims sudo by carol)"


def test_a_log_from_before_keys_gets_one_and_macs_from_then_on(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", secret_values=frozenset)
    fill(log, 3)
    # strip what this version adds: the lines' MACs, the head's MAC, the key
    legacy, prev = [], ZERO_HASH
    import hashlib

    for raw in log.path.read_bytes().splitlines():
        rec = json.loads(raw)
        rec.pop("mac")
        rec["prev"] = prev
        line = json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode()
        legacy.append(line)
        prev = hashlib.sha256(line).hexdigest()
    log.path.write_bytes(b"\n".join(legacy) + b"\n")
    log.head_path.write_text(json.dumps({"seq": 3, "sha256": prev}))
    log.key_path.unlink()
    old = AuditLog(log.path, secret_values=frozenset)
    assert old.verify().ok
    fill(old, 2)
    assert old.verify().ok, old.verify()
    assert old.key_path.read_text().splitlines()[1] == "macs_from 4"
    # seq 5 without its MAC: refused although it is the line after a legacy-looking one
    lines = old.path.read_bytes().splitlines()
    rec = json.loads(lines[-1])
    rec.pop("mac")
    lines[-1] = json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode()
    old.path.write_bytes(b"\n".join(lines) + b"\n")
    result = AuditLog(log.path).verify()
    assert not result.ok and result.first_bad_line == 5, result


def test_the_key_is_private_and_a_forged_last_line_is_refused(tmp_path: Path) -> None:

    log = AuditLog(tmp_path / "audit.jsonl", secret_values=frozenset)
    fill(log, 2)
    assert log.key_path.stat().st_mode & 0o777 == 0o600
    last = log.path.read_bytes().splitlines()[-1]
    forged = json.loads(last)
    forged.update(prev=json.loads(log.head_path.read_bytes())["sha256"], seq=3, mac="0" * 32)
    with log.path.open("ab") as f:
        f.write(json.dumps(forged, separators=(",", ":")).encode() + b"\n")
    result = log.verify()
    assert not result.ok and result.first_bad_line == 3 and "MAC" in result.reason


def test_an_empty_log_beside_its_key_refuses_to_start_a_new_chain(tmp_path: Path) -> None:
    from actions.audit import AuditError

    log = AuditLog(tmp_path / "audit.jsonl", secret_values=frozenset)
    fill(log, 3)
    log.path.write_bytes(b"")
    result = log.verify()
    assert not result.ok and "is empty" in result.reason and "seq 3" in result.reason
    moved = r"move audit\.jsonl, audit\.jsonl\.head and audit\.jsonl\.key"
    with pytest.raises(AuditError, match=moved):
        log.append("intent", who=WHO)
    assert log.path.read_bytes() == b""


def test_anchors_are_compared_line_by_line(tmp_path: Path) -> None:

    from actions.audit import Anchor

    log = AuditLog(tmp_path / "audit.jsonl", secret_values=frozenset)
    fill(log, 4)
    digests = [json.loads(raw)["prev"] for raw in log.path.read_bytes().splitlines()[1:]]
    digests.append(json.loads(log.head_path.read_bytes())["sha256"])
    anchors = [Anchor(i + 1, d, "t") for i, d in enumerate(digests)]
    ok = log.verify(anchors)
    assert ok.ok and ok.reason == "4 records, chain intact; 4 journal anchors agree"
    bad = log.verify([*anchors[:2], Anchor(3, "f" * 64, "t3")])
    assert not bad.ok and bad.first_bad_line == 3 and "anchor for seq 3 (sent t3)" in bad.reason
    ahead = log.verify([*anchors, Anchor(5, "e" * 64, "t5")])
    assert not ahead.ok and "anchors up to seq 5" in ahead.reason
    twice = log.verify([*anchors, Anchor(2, "d" * 64, "t2b")])
    assert not twice.ok and "two hashes for seq 2" in twice.reason
    none = log.verify([])
    assert not none.ok and "no anchors" in none.reason


def test_journal_messages_frame_values_with_newlines() -> None:
    from actions.audit import _journal_message

    msg = _journal_message({"A": "plain", "B": "two\nlines"})
    assert msg == b"A=plain\nB\n" + (9).to_bytes(8, "little") + b"two\nlines\n"


def test_a_log_moved_aside_with_its_head_and_key_starts_anew_in_a_running_process(
    tmp_path: Path,
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", secret_values=frozenset)  # the console's, long-lived
    fill(log, 3)
    old_key = log.key_path.read_bytes()
    aside = tmp_path / "aside"
    aside.mkdir()
    for p in (log.path, log.head_path, log.key_path):
        p.rename(aside / p.name)
    rec = log.append("intent", who=WHO)
    assert rec.seq == 1 and log.key_path.read_bytes() != old_key
    assert log.verify().ok and AuditLog(aside / "audit.jsonl").verify().ok
