"""Policy: read-only, maintenance, allow-lists, rate limits — through the runner, on real files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.action_families  # noqa: F401
from actions import policy
from actions.audit import AuditLog, Who
from actions.base import Action
from actions.maintenance import Maintenance
from actions.registry import build
from actions.runner import Refused, Runner
from lab.config import ActionsConfig, Config, ConsoleConfig, LocalConfig
from lab.wiring import Lab


def make_lab(tmp_path: Path, *, read_only: bool = False, **actions: float) -> Lab:
    return Lab(
        Config(
            source=str(tmp_path / "hlcon.toml"),
            console=ConsoleConfig(state_dir=tmp_path / "state", read_only=read_only),
            actions=ActionsConfig(**actions),  # type: ignore[arg-type]
        )
    )


def write_action(lab: Lab, tmp_path: Path, name: str = "a.txt") -> Action:
    (tmp_path / "files").mkdir(exist_ok=True)
    return build("write", f"file:{name}@local", lab, {"dir": str(tmp_path / "files")})


async def test_read_only_from_config_says_where(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, read_only=True)
    runner = Runner(lab)
    with pytest.raises(Refused) as refused:
        await runner.prepare(write_action(lab, tmp_path))
    assert str(refused.value) == (
        f"read-only mode: console.read_only = true in {tmp_path / 'hlcon.toml'} "
        "(set it to false to act)"
    )
    assert [r.phase for r in runner.audit.records()] == ["refused"]


async def test_read_only_flag(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    with pytest.raises(Refused, match="started with --read-only"):
        await Runner(lab, read_only=True).prepare(write_action(lab, tmp_path))
    # the flag can only make hlcon stricter: False does not override the config
    strict = make_lab(tmp_path, read_only=True)
    with pytest.raises(Refused, match=r"console\.read_only"):
        await Runner(strict, read_only=False).prepare(write_action(strict, tmp_path))


async def test_maintenance_refuses_until_turned_off(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    runner = Runner(lab)
    who = Who("alice")
    assert runner.maintenance.set("local", True, who=who, note="disk swap", audit=runner.audit)
    assert not runner.maintenance.set("local", True, who=who, audit=runner.audit)  # no change
    with pytest.raises(Refused) as refused:
        await runner.prepare(write_action(lab, tmp_path))
    assert "host local is in maintenance (since " in str(refused.value)
    assert "by alice: disk swap); `hlcon maintenance off local` ends it" in str(refused.value)
    # a prepared action is checked again at run time
    runner.maintenance.set("local", False, who=who, audit=runner.audit)
    prepared = await runner.prepare(write_action(lab, tmp_path))
    runner.maintenance.set("local", True, who=who, audit=runner.audit)
    with pytest.raises(Refused, match="in maintenance"):
        await runner.run(prepared, "y")
    assert not (tmp_path / "files" / "a.txt").exists()
    toggles = [r for r in runner.audit.records() if r.phase == "maintenance"]
    assert [(t.target, t.result) for t in toggles] == [
        ("host:local", {"on": True}),
        ("host:local", {"on": False}),
        ("host:local", {"on": True}),
    ]
    data = json.loads((runner.state_dir / "maintenance.json").read_text())
    assert list(data) == ["local"] and data["local"]["by"] == "alice"


async def test_maintenance_on_local_covers_the_local_name(tmp_path: Path) -> None:
    lab = Lab(
        Config(
            console=ConsoleConfig(state_dir=tmp_path / "state"),
            local=LocalConfig(name="admin-box"),
        )
    )
    runner = Runner(lab)
    runner.maintenance.set("local", True, who=Who("bob"))
    action = build("write", "file:x@admin-box", lab, {"dir": str(tmp_path)})
    with pytest.raises(Refused, match="maintenance"):
        await runner.prepare(action)


async def test_broken_maintenance_file_fails_closed(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    runner = Runner(lab)
    runner.state_dir.mkdir(parents=True)
    (runner.state_dir / "maintenance.json").write_text("{not json")
    with pytest.raises(Refused, match=r"maintenance flags unreadable.*maintenance.json"):
        await runner.prepare(write_action(lab, tmp_path))


def test_maintenance_flags_survive_other_hosts(tmp_path: Path) -> None:
    m1, m2 = Maintenance(tmp_path), Maintenance(tmp_path)
    m1.set("alpha", True, who=Who("a"))
    m2.set("beta", True, who=Who("b"))
    m1.set("alpha", False, who=Who("a"))
    assert set(Maintenance(tmp_path).hosts()) == {"beta"}
    assert not list(tmp_path.glob(".maintenance.*"))  # no temp files left


async def test_rate_limit_counts_the_log_across_runners(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, rate_limit=2, rate_window=600.0)
    for _ in range(2):  # two "processes": separate Runner and AuditLog objects, one file
        runner = Runner(lab)
        prepared = await runner.prepare(write_action(lab, tmp_path))
        assert (await runner.run(prepared, prepared.plan.confirmation.expect or "y")).ok
    runner = Runner(lab)
    with pytest.raises(Refused) as refused:
        await runner.prepare(write_action(lab, tmp_path))
    assert str(refused.value).startswith(
        "rate limit: 2 actions on file:a.txt@local in the last 10m (actions.rate_limit = 2, "
        f"actions.rate_window = 10m in {tmp_path / 'hlcon.toml'}); next allowed in "
    )
    # another target is not limited
    prepared = await runner.prepare(write_action(lab, tmp_path, "other.txt"))
    assert prepared.plan.target.name == "other.txt"


async def test_rate_limit_zero_disables(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, rate_limit=0)
    runner = Runner(lab)
    for _ in range(3):
        prepared = await runner.prepare(write_action(lab, tmp_path))
        await runner.run(prepared, prepared.plan.confirmation.expect or "y")
    assert [r.phase for r in runner.audit.records()].count("outcome") == 3


@pytest.fixture
def deny_hook() -> Iterator[None]:
    def deny(action: Action) -> str | None:
        if action.target.name == "forbidden":
            return "file forbidden is not on the allow-list (add it to [files] allow in FILE)"
        return None

    policy.allow_hook(deny)
    yield
    policy.ALLOW_HOOKS.remove(deny)


async def test_allow_hook_refuses(tmp_path: Path, deny_hook: None) -> None:
    lab = make_lab(tmp_path)
    runner = Runner(lab)
    with pytest.raises(Refused, match="not on the allow-list"):
        await runner.prepare(write_action(lab, tmp_path, "forbidden"))
    assert (await runner.prepare(write_action(lab, tmp_path, "fine"))).seq > 0


def test_human_duration() -> None:
    assert [policy.human_duration(s) for s in (0.2, 5, 90, 600, 3900, 7200, 93600)] == [
        "0.2s",
        "5s",
        "90s",
        "10m",
        "65m",
        "2h",
        "26h",
    ]


def test_state_paths_follow_console_config(tmp_path: Path) -> None:
    config = Config(console=ConsoleConfig(state_dir=tmp_path / "s"))
    assert policy.state_dir(config) == tmp_path / "s"
    assert policy.audit_log_path(config) == tmp_path / "s" / "audit.jsonl"
    config = Config(console=ConsoleConfig(state_dir=tmp_path, audit_log=tmp_path / "x.jsonl"))
    assert policy.audit_log_path(config) == tmp_path / "x.jsonl"
    assert AuditLog(policy.audit_log_path(config)).path == tmp_path / "x.jsonl"


# ---------------------------------------------------------------- identities (issue 12)


def test_timeout_families_in_the_config_are_the_registry_s() -> None:
    from actions import registry
    from lab.config import ACTION_FAMILIES

    registry.load_families()
    real = {c.family for c in registry._FAMILIES.values() if not c.__module__.startswith("tests")}
    assert set(ACTION_FAMILIES) == real


def test_paths_overlap_by_ancestry_on_one_host_only() -> None:
    from actions.base import keys_overlap, path_key
    from actions.locks import path_ancestors

    a, sub, sibling = (path_key(p, "local") for p in ("/srv/a", "/srv/a/b/c", "/srv/ab"))
    assert keys_overlap(a, sub) and keys_overlap(sub, a) and keys_overlap(a, a)
    assert not keys_overlap(a, sibling)  # /srv/ab is not inside /srv/a
    assert not keys_overlap(a, path_key("/srv/a", "nas"))
    assert not keys_overlap("container:x", "container:y")
    assert path_ancestors(path_key("/srv/a@odd/b", "nas")) == (
        "path:/srv/a@odd@nas",
        "path:/srv@nas",
        "path:/@nas",
    )
    assert path_ancestors("repo:/srv@local") == ()


def test_every_name_of_a_machine_is_one_host() -> None:
    from actions.maintenance import canonical_host, resolve_host
    from lab.config import ContainerEndpointConfig, HostConfig

    config = Config(
        local=LocalConfig(name="admin-box"),
        hosts=(HostConfig(name="nas", address="nas.lan"),),
        containers=(
            ContainerEndpointConfig(name="alias", url="unix:///run/podman/podman.sock"),
            ContainerEndpointConfig(name="loop", url="tcp://127.0.0.1:2375"),
            ContainerEndpointConfig(name="nas-docker", url="tcp://nas.lan:2375"),
            ContainerEndpointConfig(name="elsewhere", url="tcp://10.9.9.9:2375"),
        ),
    )
    hosts = {n: canonical_host(config, n) for n in ("local", "admin-box", "alias", "loop")}
    assert set(hosts.values()) == {"local"}
    assert canonical_host(config, "nas-docker") == "nas"
    assert canonical_host(config, "elsewhere") == "elsewhere"  # a host of its own
    assert resolve_host(config, "alias") == (
        "local",
        "alias is a container endpoint on local; maintenance is per host and covers every "
        "endpoint on it",
    )
    assert resolve_host(config, "nas") == ("nas", "")
    assert resolve_host(config, "nobody") is None


def test_a_bulk_intent_counts_against_each_member(tmp_path: Path) -> None:
    from datetime import timedelta

    from actions.base import Identity

    lab = make_lab(tmp_path, rate_limit=2)
    audit = Runner(lab).audit
    for _ in range(2):
        audit.append(
            "intent",
            who=Who("a"),
            action="containers.restart",
            target="containers:web-*@local",
            result={"pid": 1, "identity": ["container:e/1", "container:e/2"]},
        )
    now = lab.clock() + timedelta(seconds=1)
    member = Identity(("container:e/2",), ("local",))
    why = policy.rate_reason(audit, "container:web-2@alias", lab.config, now, member)
    assert why is not None and why.startswith(
        "rate limit: 2 actions on container:web-2@alias (container:e/2, however it is spelled)"
    )
    other = Identity(("container:e/3",), ("local",))
    assert policy.rate_reason(audit, "container:web-3", lab.config, now, other) is None


def test_timeouts_say_where_they_come_from(tmp_path: Path) -> None:
    config = Config(
        source="hlcon.toml",
        actions=ActionsConfig(timeout=5.0, timeouts={"backup.check": 60.0}),
    )
    assert policy.timeout_for(config, "backup.check", 3 * 3600.0) == (
        60.0,
        'actions.timeouts."backup.check" in hlcon.toml',
    )
    assert policy.timeout_for(config, "backup.restore", None)[0] == 6 * 3600.0
    assert policy.timeout_for(config, "container.stop", None) == (
        5.0,
        'actions.timeout in hlcon.toml; actions.timeouts."container.stop" sets this family\'s own',
    )
