"""The audit log under faults, as a user meets them: real `hlcon` processes, a real full tmpfs,
tampered files, forged identities in the environment, and a real journald (the systemd testbed
image) as the anchor outside the log's trust domain."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actions.audit import AuditError, AuditLog, Who
from tests.test_cli_do import Env
from tests.testbed import is_root, require, require_tools

WHO = Who("alice")


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "256k") -> Iterator[Path]:
    require_tools("mount", "umount")
    require(is_root(), "root (mount -t tmpfs)")
    where.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "hlcon-audit-test", str(where)],
        check=True,
        timeout=30,
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True, timeout=30)


def fill_up(fs: Path) -> Path:
    """Write a file on `fs` until the kernel says ENOSPC, in ever smaller pieces."""
    filler = fs / "filler"
    with filler.open("wb", buffering=0) as f:
        for chunk in (65536, 4096, 512, 64, 1):
            while True:
                try:
                    f.write(b"\0" * chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    return filler


# -- 5. a full disk -------------------------------------------------------------------------------


def test_a_failed_append_leaves_the_log_exactly_as_it_was(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "fs") as fs:
        log = AuditLog(fs / "state" / "audit.jsonl", secret_values=frozenset)
        for i in range(3):
            log.append("planned", who=WHO, target=f"file:{i}@local", plan={"summary": "x"})
        filler = fill_up(fs)
        # The log's last page may still have room: append until the kernel refuses.
        failed = None
        for _ in range(200):
            before = (log.path.read_bytes(), log.head_path.read_bytes())
            try:
                log.append("intent", who=WHO, target="file:x@local", plan={"pad": "p" * 300})
            except AuditError as exc:
                failed = exc
                break
        assert failed is not None, "the tmpfs never filled up"
        assert "No space left on device" in str(failed)
        assert (log.path.read_bytes(), log.head_path.read_bytes()) == before
        assert log.verify().ok, log.verify()
        filler.unlink()
        rec = log.append("intent", who=WHO, target="file:x@local")
        assert log.verify().ok and log.tail(1)[0].seq == rec.seq


def test_actions_run_again_once_space_is_back(tmp_path: Path) -> None:
    env = Env(tmp_path)
    with small_tmpfs(tmp_path / "fs") as fs:
        audit = fs / "audit.jsonl"  # only the log is on the small disk; locks are not
        env.write_config(f'audit_log = "{audit}"\n')
        assert env.run(*env.write("a.txt", "--yes")).returncode == 0
        filler = fill_up(fs)
        refused = None
        for i in range(40):  # the first runs may still fit in the log's last page
            r = env.run(*env.write(f"b{i}.txt", "--yes"))
            if r.returncode != 0:
                refused = (i, r)
                break
        assert refused is not None, "the tmpfs never filled up"
        i, r = refused
        assert f"audit log {audit} cannot be written: No space left on device" in r.stderr
        assert "Traceback" not in r.stderr
        assert not (env.files / f"b{i}.txt").exists()  # refused before anything ran
        assert audit.read_bytes().endswith(b"\n")  # no torn line
        v = env.run("audit", "verify")
        assert v.returncode == 0, v.stderr
        filler.unlink()
        r = env.run(*env.write("c.txt", "--yes"))
        assert r.returncode == 0, r.stderr
        assert (env.files / "c.txt").exists()
        v = env.run("audit", "verify")
        assert v.returncode == 0 and "chain intact" in v.stdout, v.stderr


def test_a_line_cut_by_an_older_hlcon_is_repaired_keeping_the_chain(env: Env) -> None:
    """What a full disk left before appends were all or nothing: a torn last line. Moving the
    file aside would lose the chain, the rate-limit history and pending intents."""
    for name in ("r1", "r2"):
        assert env.run(*env.write(name, "--yes")).returncode == 0
    intact = env.audit.read_bytes()
    torn = b'{"prev":"' + b"ab" * 20  # a write cut short
    env.audit.write_bytes(intact + torn)
    r = env.run(*env.write("r3", "--yes"))
    assert r.returncode == 2 and "hlcon audit repair" in r.stderr, r.stderr
    assert env.run("audit", "verify").returncode == 1
    r = env.run("audit", "repair")
    assert r.returncode == 0, r.stderr
    assert f"cut {len(torn)} bytes" in r.stdout
    assert env.audit.read_bytes().startswith(intact)
    rec = json.loads(_lines(env.audit)[-1])
    assert rec["phase"] == "repair" and rec["seq"] == 7
    assert rec["result"] == {"cut_bytes": len(torn), "sha256": hashlib.sha256(torn).hexdigest()}
    assert env.run(*env.write("r3", "--yes")).returncode == 0
    v = env.run("audit", "verify")
    assert v.returncode == 0 and "10 records, chain intact" in v.stdout, v.stderr
    r = env.run("audit", "repair")
    assert r.returncode == 0 and "nothing to repair" in r.stdout


def test_repair_never_cuts_a_complete_line(env: Env) -> None:
    for name in ("q1", "q2"):
        assert env.run(*env.write(name, "--yes")).returncode == 0
    data = env.audit.read_bytes()
    env.audit.write_bytes(data + b"not a record\n")  # complete, but not a record: tampering
    r = env.run("audit", "repair")
    assert r.returncode == 1 and "not a cut write" in r.stderr, r.stderr
    assert env.audit.read_bytes() == data + b"not a record\n"


# -- 10. a head that cannot be written names itself -----------------------------------------------


def test_a_head_that_cannot_be_written_on_a_full_disk_is_named(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "fs") as fs:
        log = AuditLog(fs / "audit.jsonl", secret_values=frozenset)
        log.append("planned", who=WHO, target="file:0@local")
        log.head_path.unlink()  # as if the first writer died before its head: a new page
        assert log.verify().ok
        fill_up(fs)
        before = log.path.read_bytes()
        with pytest.raises(AuditError) as caught:
            log.append("intent", who=WHO, target="file:0@local")
        assert f"audit head {log.head_path} cannot be written: No space left" in str(caught.value)
        assert log.path.read_bytes() == before and not log.head_path.exists()
        assert log.verify().ok


def test_an_unwritable_head_is_named(env: Env) -> None:
    assert env.run(*env.write("a.txt", "--yes")).returncode == 0
    head = env.audit.with_name("audit.jsonl.head")
    head.unlink()
    head.mkdir()  # cannot be replaced by a file
    before = env.audit.read_bytes()
    r = env.run(*env.write("b.txt", "--yes"))
    assert r.returncode == 2
    assert f"{head} cannot be" in r.stderr, r.stderr
    assert f"{env.audit} cannot be written" not in r.stderr
    assert env.audit.read_bytes() == before
    assert not (env.files / "b.txt").exists()


# -- 6. tamper evidence ---------------------------------------------------------------------------


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def chain_hash(line: bytes) -> str:
    """What the next line's prev holds: sha256 of the line without its `mac` (the format)."""
    if b',"mac":"' in line:
        line = line[: line.rindex(b',"mac":"')] + b"}"
    return hashlib.sha256(line).hexdigest()


def _two_actions(env: Env) -> None:
    for name in ("t1", "t2"):
        assert env.run(*env.write(name, "--yes")).returncode == 0
    v = env.run("audit", "verify")
    assert v.returncode == 0 and "6 records, chain intact" in v.stdout, v.stderr


def _verify_fails(env: Env, *words: str) -> str:
    r = env.run("audit", "verify")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in r.stderr, r.stderr
    return r.stderr


def test_the_key_is_made_on_first_use_for_the_user_alone(env: Env) -> None:
    _two_actions(env)
    key = env.audit.with_name("audit.jsonl.key")
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(key.read_bytes().strip()) >= 64


def test_a_forged_record_with_a_correct_prev_is_caught(env: Env) -> None:
    _two_actions(env)
    last = _lines(env.audit)[-1]
    forged = json.loads(last)
    forged.update(prev=chain_hash(last), seq=forged["seq"] + 1)
    forged.update(phase="maintenance", reason="forged", result={"on": False})
    with env.audit.open("ab") as f:
        f.write(json.dumps(forged, separators=(",", ":")).encode() + b"\n")
    _verify_fails(env, "line 7")


def test_a_forged_record_and_a_rewritten_head_are_caught(env: Env) -> None:
    _two_actions(env)
    last = _lines(env.audit)[-1]
    forged = json.loads(last)
    forged.update(prev=chain_hash(last), seq=7, reason="forged")
    line = json.dumps(forged, separators=(",", ":")).encode()
    with env.audit.open("ab") as f:
        f.write(line + b"\n")
    head = env.audit.with_name("audit.jsonl.head")
    head.write_text(json.dumps({"seq": 7, "sha256": chain_hash(line)}))
    _verify_fails(env, "line 7")


def test_a_deleted_head_and_an_edited_last_line_are_caught(env: Env) -> None:
    _two_actions(env)
    env.audit.with_name("audit.jsonl.head").unlink()
    data = env.audit.read_bytes()
    cut = data.rstrip(b"\n").rfind(b"\n") + 1
    edited = data[cut:].replace(b"file:t2", b"file:t3")
    assert edited != data[cut:]
    env.audit.write_bytes(data[:cut] + edited)
    _verify_fails(env, "line 6")


def test_a_deleted_head_alone_is_caught(env: Env) -> None:
    _two_actions(env)
    env.audit.with_name("audit.jsonl.head").unlink()
    _verify_fails(env, "audit.jsonl.head", "missing")


def test_both_files_deleted_is_caught(env: Env) -> None:
    _two_actions(env)
    env.audit.unlink()
    env.audit.with_name("audit.jsonl.head").unlink()
    _verify_fails(env, "missing", "audit.jsonl.key")
    # and no new action quietly starts a fresh chain over the evidence
    r = env.run(*env.write("t3", "--yes"))
    assert r.returncode == 2 and f"audit log {env.audit} is missing" in r.stderr, r.stderr
    assert not (env.files / "t3").exists()
    assert not env.audit.exists()  # the refusal left no empty log behind
    _verify_fails(env, "missing", "audit.jsonl.key")


def test_a_rewritten_chain_without_the_key_is_caught(env: Env) -> None:
    _two_actions(env)
    lines = [json.loads(raw) for raw in _lines(env.audit)]
    lines[1]["reason"] = "rewritten"
    prev, out = "0" * 64, []
    for rec in lines:
        rec.pop("mac", None)
        rec["prev"] = prev
        raw = json.dumps(rec, separators=(",", ":")).encode()
        out.append(raw)
        prev = hashlib.sha256(raw).hexdigest()
    env.audit.write_bytes(b"\n".join(out) + b"\n")
    env.audit.with_name("audit.jsonl.head").write_text(json.dumps({"seq": 6, "sha256": prev}))
    _verify_fails(env, "line 1")


# -- 7. who is who --------------------------------------------------------------------------------


def test_the_identity_is_the_real_uid_and_the_environment_only_a_claim(env: Env) -> None:
    me = pwd.getpwuid(os.getuid()).pw_name
    assert me != "mallory"
    claimed = {"LOGNAME": "mallory", "USER": "mallory", "SUDO_USER": "alice"}
    claimed["SSH_CLIENT"] = "203.0.113.9 40404 22"
    proc = subprocess.run(
        env.argv(*env.write("w.txt", "--yes")),
        env={**env.env(), **claimed},
        cwd=env.tmp,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(raw) for raw in _lines(env.audit)]
    for rec in records:
        assert rec["who"]["user"] == me
        assert rec["who"]["uid"] == os.getuid()
        assert rec["who"]["claimed"] == {
            "LOGNAME": "mallory",
            "SUDO_USER": "alice",
            "SSH_CLIENT": "203.0.113.9 40404 22",
        }
    tail = env.run("audit", "tail")
    assert tail.returncode == 0
    assert "mallory (sudo by alice)" not in tail.stdout
    assert "sudo by alice" not in tail.stdout.replace("claims sudo by alice", "")
    for line in tail.stdout.splitlines():
        assert f" {me} (claims sudo by alice, LOGNAME mallory)" in line, line


# -- issue 11 §8: a log path that is a directory, a state_dir that is a file ----------------------


@pytest.mark.parametrize("command", ["tail", "pending", "verify"])
def test_a_log_path_that_is_a_directory(env: Env, command: str) -> None:
    where = env.tmp / "logdir"
    where.mkdir()
    env.write_config(f'audit_log = "{where}"\n')
    r = env.run("audit", command)
    assert "Traceback" not in r.stderr
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert str(where) in r.stderr and "directory" in r.stderr.lower(), r.stderr


@pytest.mark.parametrize("command", ["tail", "pending", "verify"])
def test_a_state_dir_that_is_a_file(env: Env, command: str) -> None:
    env.state.write_text("not a directory\n")
    r = env.run("audit", command)
    assert "Traceback" not in r.stderr
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert str(env.state) in r.stderr, r.stderr


# -- 6. the journald anchor -----------------------------------------------------------------------


class Journal:
    """journald of the systemd testbed image, its socket and journal directory bound out."""

    def __init__(self, base: Path) -> None:
        self.socket_dir = base / "run-journal"
        self.log_dir = base / "var-log-journal"
        self.socket = self.socket_dir / "socket"

    def entries(self, log: Path) -> list[dict[str, str]]:
        out = subprocess.run(
            ["journalctl", "-D", str(self.log_dir), "-o", "json", f"HLCON_AUDIT_LOG={log}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def wait_for(self, log: Path, n: int) -> list[dict[str, str]]:
        deadline = time.monotonic() + 30
        while True:
            got = self.entries(log)
            if len(got) >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.2)


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journal]:
    from tests.testbed.podman import podman, podman_env
    from tests.testbed.systemd import _wait_booted, ensure_image, systemd_available

    require_tools("podman", "runc", "journalctl")
    require(is_root(), "root (podman with systemd)")
    require(systemd_available(), "debootstrap (or a cached image)")
    env = podman_env()
    image = ensure_image(env)
    j = Journal(tmp_path_factory.mktemp("journald"))
    j.socket_dir.mkdir()
    j.log_dir.mkdir()
    name = f"hlcon-journald-{os.getpid()}"
    podman(
        env,
        "run",
        "-d",
        "--name",
        name,
        "--systemd=always",
        "-v",
        f"{j.socket_dir}:/run/systemd/journal",
        "-v",
        f"{j.log_dir}:/var/log/journal",
        image,
    )
    try:
        from tests.testbed.systemd import SystemdHost

        _wait_booted(SystemdHost(name, "", 0, "root", Path(), "", env))
        deadline = time.monotonic() + 30
        while not j.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert j.socket.exists(), "journald made no socket"
        yield j
    finally:
        with contextlib.suppress(Exception):
            podman(env, "rm", "--force", "--time", "0", name, timeout=120)


def _rewrite_with_the_key(audit: Path, line_index: int) -> None:
    """What a user with write access to the log AND the key can do: a consistent rewrite."""
    import hmac

    key = bytes.fromhex(audit.with_name("audit.jsonl.key").read_text().splitlines()[0])
    recs = [json.loads(raw) for raw in _lines(audit)]
    recs[line_index]["reason"] = "rewritten by someone with the key"
    prev, out = "0" * 64, []
    for rec in recs:
        rec.pop("mac", None)
        rec["prev"] = prev
        body = json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode()
        digest = hashlib.sha256(body)
        mac = hmac.new(key, digest.digest(), "sha256").hexdigest()[:32]
        out.append(body[:-1] + f',"mac":"{mac}"}}'.encode())
        prev = digest.hexdigest()
    audit.write_bytes(b"\n".join(out) + b"\n")
    seq = len(recs)
    head_mac = hmac.new(key, f"head:{seq}:{prev}".encode(), "sha256").hexdigest()
    audit.with_name("audit.jsonl.head").write_text(
        json.dumps({"seq": seq, "sha256": prev, "mac": head_mac})
    )


def test_the_journal_anchor_catches_a_rewrite_with_the_key(env: Env, journal: Journal) -> None:
    env.write_config(f'audit_journal = "{journal.socket}"\n')
    _two_actions(env)
    anchors = journal.wait_for(env.audit, 6)
    assert [int(a["HLCON_AUDIT_SEQ"]) for a in anchors] == [1, 2, 3, 4, 5, 6]
    lines = _lines(env.audit)
    assert anchors[-1]["HLCON_AUDIT_SHA256"] == chain_hash(lines[-1])
    jdir = ("--journal-dir", str(journal.log_dir))
    r = env.run("audit", "verify", "--against-journal", *jdir)
    assert r.returncode == 0, r.stderr
    assert "6 records, chain intact; 6 journal anchors agree" in r.stdout

    _rewrite_with_the_key(env.audit, 1)
    assert env.run("audit", "verify").returncode == 0  # the documented limit
    r = env.run("audit", "verify", "--against-journal", *jdir)
    assert r.returncode == 1
    assert "line 2" in r.stderr and "journal" in r.stderr, r.stderr


def test_the_journal_anchor_catches_all_three_files_deleted(env: Env, journal: Journal) -> None:
    env.write_config(f'audit_journal = "{journal.socket}"\n')
    _two_actions(env)
    journal.wait_for(env.audit, 6)
    for suffix in ("", ".head", ".key"):
        env.audit.with_name("audit.jsonl" + suffix).unlink()
    assert env.run("audit", "verify").returncode == 0  # nothing local is left to tell
    r = env.run("audit", "verify", "--against-journal", "--journal-dir", str(journal.log_dir))
    assert r.returncode == 1
    assert "seq 6" in r.stderr and "journal" in r.stderr, r.stderr


def test_an_absent_journal_never_blocks_an_action(env: Env, tmp_path: Path) -> None:
    env.write_config(f'audit_journal = "{tmp_path / "no-such-socket"}"\n')
    r = env.run(*env.write("n.txt", "--yes"))
    assert r.returncode == 0, r.stderr
    r = env.run("audit", "verify", "--against-journal", "--journal-dir", str(tmp_path))
    assert r.returncode == 1 and "no anchors" in r.stderr, r.stderr
