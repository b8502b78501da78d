"""restic parsers on output captured from real restic 0.14 and documented 0.17 samples
(tests/data/backups/README.md), the backup health rule, and hypothesis for garbage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.backups import (
    children,
    classify_failure,
    group_snapshots,
    parse_check,
    parse_exit_error,
    parse_lock,
    parse_lock_ids,
    parse_ls,
    parse_message,
    parse_snapshots,
    parse_stats,
    parse_time,
    parse_verified_count,
    parse_version,
)
from lab.config import BackupConfig, Config
from lab.health import backup_findings
from lab.model import CheckRecord, RepoLock, RepoState, Snapshot
from lab.secrets import SecretRef

DATA = Path(__file__).parent.parent / "data" / "backups"


def data(name: str) -> str:
    return (DATA / name).read_text()


def test_snapshots_014() -> None:
    snaps = parse_snapshots(data("snapshots-0.14.json"))
    assert [s.short_id for s in snaps] == ["e4ced9f7", "1b68bc55"]
    first = snaps[0]
    assert first.id.startswith("e4ced9f7") and len(first.id) == 64
    assert first.host == "labhost" and first.paths == ("/tmp/rcap/src",)
    assert first.tags == ("daily",) and snaps[1].tags == ()
    assert first.time == datetime(2026, 11, 23, 11, 30, 46, 662196, tzinfo=UTC)
    assert first.size is None  # 0.14 snapshots carry no summary


def test_snapshot_size_from_017_summary() -> None:
    obj = json.loads(data("snapshots-0.14.json"))[0]
    obj["summary"] = {"total_bytes_processed": 1234, "files_new": 3}
    (snap,) = parse_snapshots(json.dumps([obj]))
    assert snap.size == 1234
    assert parse_snapshots("null") == () and parse_snapshots("[]") == ()


def test_group_newest_per_host_and_paths() -> None:
    snaps = parse_snapshots(data("snapshots-0.14.json"))
    now = datetime(2026, 11, 23, 12, 30, 47, 420399, tzinfo=UTC)
    (group,) = group_snapshots(snaps, now)
    assert group.newest.short_id == "1b68bc55" and group.count == 2
    assert group.age == pytest.approx(3600, abs=1)


def test_stats_014() -> None:
    stats = parse_stats(data("stats-0.14.json"))
    assert (stats.total_size, stats.total_file_count, stats.snapshots_count) == (6000021, 17, 2)
    raw = parse_stats(data("stats-raw-data-0.14.json"))
    assert raw.total_size == 3002556 and raw.total_file_count == 0


def test_ls_recursive_and_one_directory() -> None:
    snap, nodes = parse_ls(data("ls-recursive-0.14.jsonl"))
    assert snap is not None and snap.short_id == "e4ced9f7"
    paths = {n.path: n for n in nodes}
    assert "/src/dir with space/a file.txt" in paths
    assert any("ünïcødé" in p for p in paths)
    big = paths["/src/sub/big.bin"]
    assert big.type == "file" and big.size == 3000000 and big.permissions == "-rw-------"
    assert paths["/src/sub/link"].type == "symlink"
    snap, nodes = parse_ls(data("ls-dir-0.14.jsonl"))
    # `ls ID /src/sub` lists the directory itself, then its children
    assert [n.name for n in children(nodes, "/src/sub")] == ["big.bin", "link"]
    assert [n.name for n in children(parse_ls(data("ls-recursive-0.14.jsonl"))[1], "/src")][:2] == [
        "dir with space",
        "sub",
    ]


def test_lock_014() -> None:
    (lock_id,) = parse_lock_ids(
        "3a80fb4683dcb9de2df573978caf57e7caf2b49b6587105474974082b441ccd3\n"
    )
    lock = parse_lock(lock_id, data("lock-0.14.json"))
    assert lock.pid == 7250 and lock.hostname == "vm" and not lock.exclusive
    assert lock.time.year == 2026
    with pytest.raises(ValueError, match="not a lock id"):
        parse_lock_ids("Fatal: something\n")


@pytest.mark.parametrize(
    ("file", "code", "kind"),
    [
        ("stderr-wrong-password-0.14.txt", 1, "wrong-password"),
        ("stderr-no-repository-0.14.txt", 1, "no-repository"),
        ("stderr-locked-0.14.txt", 1, "locked"),
        ("stderr-no-snapshot-0.14.txt", 1, "no-snapshot"),
        ("stderr-wrong-password-0.17.jsonl", 12, "wrong-password"),
        ("stderr-no-repository-0.17.jsonl", 10, "no-repository"),
        ("stderr-locked-0.17.jsonl", 11, "locked"),
    ],
)
def test_failures_of_both_generations(file: str, code: int, kind: str) -> None:
    failure = classify_failure(code, data(file))
    assert failure.kind == kind
    assert failure.message and "{" not in failure.message


def test_017_exit_codes_win_over_text() -> None:
    # ≥ 0.17: the exit code decides even when the message is unfamiliar
    assert classify_failure(11, "Fatal: something new\n").kind == "locked"
    assert classify_failure(12, "").kind == "wrong-password"
    assert classify_failure(1, "Fatal: disk on fire\n").kind == "failed"
    assert parse_exit_error(data("stderr-locked-0.17.jsonl")) is not None
    assert parse_exit_error("Fatal: wrong password or no key found\n") is None


def test_progress_lines() -> None:
    lines = data("backup-0.14.jsonl").splitlines()
    status = parse_message(lines[1])
    assert status is not None and status.type == "status"
    assert status.fraction == pytest.approx(0.548, abs=0.001) and status.bytes_done == 1644641
    summary = parse_message(lines[-1])
    assert summary is not None and summary.snapshot_id == "e4ced9f7"
    restore = [parse_message(ln) for ln in data("restore-status-0.17.jsonl").splitlines()]
    assert [m.type for m in restore if m] == ["status", "status", "summary"]
    assert restore[1] is not None and restore[1].bytes_done == 2400010
    assert parse_message("restoring <Snapshot …> to out") is None


def test_verify_and_check_and_version() -> None:
    assert parse_verified_count(data("restore-verify-0.14.txt")) == 1
    assert parse_check(0, data("check-0.14.txt"), "") == (True, "no errors were found")
    ok, message = parse_check(1, "", data("stderr-locked-0.14.txt"))
    assert not ok and message
    assert parse_version(data("version-0.14.txt")) == (0, 14, 0)


# ---------------------------------------------------------------- bad input


@given(st.text(max_size=300))
def test_garbage_raises_value_error_only(text: str) -> None:
    for parser in (parse_snapshots, parse_stats, parse_version, parse_lock_ids):
        try:
            parser(text)
        except ValueError as exc:
            assert str(exc)
    try:
        parse_ls(text)
    except ValueError as exc:
        assert str(exc)
    classify_failure(1, text)
    parse_message(text)


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_wrong_shaped_json_raises_value_error(value: object) -> None:
    text = json.dumps(value)
    for parser in (parse_snapshots, parse_stats):
        try:
            parser(text)
        except ValueError as exc:
            assert str(exc)
    try:
        parse_lock("a" * 64, text)
    except ValueError as exc:
        assert str(exc)


def test_bad_times_are_value_errors() -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time("yesterday")
    with pytest.raises(ValueError, match="not a valid time"):
        parse_time("2026-13-45T99:00:00Z")


# ---------------------------------------------------------------- health


NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def state(snapshots: tuple[Snapshot, ...], **kw: object) -> RepoState:
    return RepoState(
        at=NOW,
        name="offsite",
        repository="/srv/restic",
        host="local",
        restic_version="0.14.0",
        snapshots=snapshots,
        groups=group_snapshots(snapshots, NOW),
        **kw,  # type: ignore[arg-type]
    )


CONFIG = Config(
    backups=(
        BackupConfig(
            name="offsite",
            repository="/srv/restic",
            password=SecretRef("env", "X"),
            max_age=26 * 3600,
        ),
    )
)


def snap(hours: float, host: str = "nas") -> Snapshot:
    return Snapshot("a" * 64, "aaaaaaaa", NOW - timedelta(hours=hours), host, ("/srv",))


def test_health_rules() -> None:
    key = ("backup", "offsite")
    fresh_check = CheckRecord(NOW - timedelta(days=1), True, "no errors were found")
    assert backup_findings(state((snap(2),), last_check=fresh_check), CONFIG, key, NOW) == []
    old = backup_findings(
        state((snap(30), snap(1, "pc")), last_check=fresh_check), CONFIG, key, NOW
    )
    assert [(f.rule, f.subject) for f in old] == [("backup-age", "nas:/srv")]
    assert "30h old" in old[0].message
    assert old[0].row == "repo:offsite|nas:/srv"  # the backups pane's row id (Enter-to-jump)
    none = backup_findings(state((), last_check=fresh_check), CONFIG, key, NOW)
    assert [f.message for f in none] == ["repo offsite: no snapshots"]
    failed = CheckRecord(NOW - timedelta(hours=1), False, "pack abc: not found")
    (f,) = backup_findings(state((snap(1),), last_check=failed), CONFIG, key, NOW)
    assert f.rule == "backup-check" and "pack abc" in f.message
    stale_check = CheckRecord(NOW - timedelta(days=9), True, "ok")
    (f,) = backup_findings(state((snap(1),), last_check=stale_check), CONFIG, key, NOW)
    assert "9d ago" in f.message
    lock = RepoLock("b" * 64, NOW - timedelta(minutes=2), False, "nas", "root", 42, True, 120.0)
    live = RepoLock("c" * 64, NOW - timedelta(minutes=2), False, "nas", "root", 43, False, 120.0)
    found = backup_findings(
        state((snap(1),), last_check=fresh_check, locks=(lock, live)), CONFIG, key, NOW
    )
    assert [(f.rule, f.subject) for f in found] == [("backup-lock", "lock bbbbbbbb")]


def test_include_patterns_are_escaped() -> None:
    from actions.backups import clean_path, escape_pattern

    assert escape_pattern("/srv/[b]/star*q?.txt") == "/srv/\\[b]/star\\*q\\?.txt"
    assert escape_pattern("/a\\b") == "/a\\\\b"
    assert clean_path("/srv/../etc//x/", "include") == "/etc/x"
    for bad in ("relative", "", "/a\nb", "/a\x00b"):
        with pytest.raises(ValueError):
            clean_path(bad, "include")
