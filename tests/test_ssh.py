"""lab.ssh against real sshd on loopback: commands, quoting, env, timeouts, logins, host keys,
fault isolation with the event loop's lag measured."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.config import Config, ConsoleConfig, HostConfig
from lab.hosts import HostReader
from lab.model import HostState
from lab.poller import Poller
from lab.ssh import (
    HostKeyChanged,
    HostKeyUnknown,
    HostUnreachable,
    LoginFailed,
    SshExecutor,
    own_known_hosts,
    remote_command,
    ssh_host,
)
from lab.store import Store
from lab.wiring import Lab
from tests.testbed import is_root, require, require_tools
from tests.testbed.podman import IMAGE, PodmanService, ensure_busybox_image, idle_command, podman
from tests.testbed.sshd import BlackHole, SshdLab, Tarpit

pytestmark = pytest.mark.testbed


def host_cfg(lab: SshdLab, i: int, **kw: object) -> HostConfig:
    h = lab.hosts[i]
    base: dict[str, object] = {
        "name": h.name,
        "address": h.address,
        "port": h.port,
        "user": lab.user,
        "identity": lab.identity,
        "known_hosts": lab.known_hosts,
        "connect_timeout": 2.0,
    }
    base.update(kw)
    return HostConfig(**base)  # type: ignore[arg-type]


def make_lab(state: Path, *hosts: HostConfig) -> Lab:
    return Lab(
        Config(console=ConsoleConfig(state_dir=state, refresh=0.3, timeout=3.0), hosts=hosts)
    )


@pytest.fixture
async def lab(sshd_hosts: SshdLab, tmp_path: Path):  # type: ignore[no-untyped-def]
    the_lab = make_lab(tmp_path, *(host_cfg(sshd_hosts, i) for i in range(len(sshd_hosts.hosts))))
    yield the_lab
    await the_lab.close()


async def test_argv_is_quoted_and_reaches_the_remote_verbatim(lab: Lab, tmp_path: Path) -> None:
    ex = lab.executor("h0")
    assert isinstance(ex, SshExecutor)
    pwned = Path("/tmp/hlcon-pwned-ssh")
    pwned.unlink(missing_ok=True)
    nasty = ["x; touch /tmp/hlcon-pwned-ssh", "$(id)", "`id`", "a'b\"c", "*", "  spaced  "]
    result = await ex.run(["printf", "%s\\n", *nasty], timeout=5)
    assert result.ok, result.stderr
    assert result.stdout.splitlines() == nasty
    assert not pwned.exists()


async def test_env_goes_on_stdin_not_on_the_command_line(lab: Lab) -> None:
    ex = lab.executor("h1")
    secret = "s3cr3t-$(id)-value"
    cmd, preamble = remote_command(["true"], {"HLCON_T": secret})
    assert secret not in cmd and secret in preamble
    script = 'printf "%s\\n" "$HLCON_T"; tr "\\0" " " < /proc/$$/cmdline; echo; cat'
    result = await ex.run(
        ["sh", "-c", script], timeout=5, env={"HLCON_T": secret}, input="from stdin\n"
    )
    lines = result.stdout.splitlines()
    assert lines[0] == secret  # exported literally, $(id) not evaluated
    assert secret not in lines[1]  # the process's own command line never held it
    assert lines[2] == "from stdin"  # input still follows the preamble


async def test_streams_lines_and_reuses_one_connection(lab: Lab) -> None:
    ex = lab.executor("h2")
    seen: list[str] = []
    result = await ex.run(
        ["sh", "-c", "for i in 1 2 3; do echo line$i; done"], timeout=5, on_line=seen.append
    )
    assert seen == ["line1", "line2", "line3"]
    assert result.returncode == 0
    failed = await ex.run(["sh", "-c", "echo oops >&2; exit 7"], timeout=5)
    assert failed.returncode == 7 and failed.brief() == "oops"
    assert ssh_host(lab, "h2").connects == 1


async def test_command_timeout_kills_the_command_not_the_connection(lab: Lab) -> None:
    ex = lab.executor("h3")
    with pytest.raises(TimeoutError):
        await ex.run(["sleep", "30"], timeout=0.5)
    after = await ex.run(["echo", "still here"], timeout=5)
    assert after.stdout.strip() == "still here"
    assert ssh_host(lab, "h3").connects == 1


# The poll shell's PID: the command runs in a subshell of it, whose parent it is.
POLL_SHELL_PID = ["sh", "-c", "cut -d' ' -f4 /proc/$PPID/stat"]


async def test_poll_shell_runs_repeated_commands_in_one_remote_shell(lab: Lab) -> None:
    """run_polled: the same long-lived `sh` each time (its PID is the commands' parent), argv
    quoted as with run, output and exit status exact, stdin never shared with the next line."""
    ex = lab.executor("h0")
    assert isinstance(ex, SshExecutor)
    shells = {(await ex.run_polled(POLL_SHELL_PID, timeout=5)).stdout for _ in "abc"}
    assert len(shells) == 1  # each command runs in a subshell of one and the same shell
    pwned = Path("/tmp/hlcon-pwned-ssh-poll")
    pwned.unlink(missing_ok=True)
    nasty = ["x; touch /tmp/hlcon-pwned-ssh-poll", "$(id)", "`id`", "a'b\"c", "*", "  spaced  "]
    result = await ex.run_polled(["printf", "%s\n", *nasty], timeout=5)
    assert result.ok and result.stdout.splitlines() == nasty
    assert not pwned.exists()
    no_newline = await ex.run_polled(["printf", "no newline at the end"], timeout=5)
    assert no_newline.stdout == "no newline at the end"
    eats_stdin = await ex.run_polled(["sh", "-c", "cat; echo oops >&2; exit 7"], timeout=5)
    assert eats_stdin.returncode == 7 and eats_stdin.stdout == ""
    after = await ex.run_polled(["echo", "next line intact"], timeout=5)
    assert after.stdout == "next line intact\n"
    assert (await ex.run_polled(["exit", "3"], timeout=5)).returncode == 3  # a builtin, too
    assert {(await ex.run_polled(POLL_SHELL_PID, timeout=5)).stdout} == shells  # still the same
    assert ssh_host(lab, "h0").connects == 1


async def test_poll_shell_timeout_starts_a_new_shell_on_the_same_connection(lab: Lab) -> None:
    ex = lab.executor("h1")
    assert isinstance(ex, SshExecutor)
    before = (await ex.run_polled(POLL_SHELL_PID, timeout=5)).stdout
    with pytest.raises(TimeoutError):
        await ex.run_polled(["sleep", "30"], timeout=0.5)
    after = (await ex.run_polled(POLL_SHELL_PID, timeout=5)).stdout
    assert after != before  # the stuck shell was dropped, a fresh one answers
    assert ssh_host(lab, "h1").connects == 1


async def test_wrong_user_and_wrong_key_are_clear_faults(
    sshd_hosts: SshdLab, tmp_path: Path
) -> None:
    other_key = tmp_path / "other"
    import subprocess

    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True
    )
    the_lab = make_lab(
        tmp_path,
        host_cfg(sshd_hosts, 0, name="baduser", user="nobody-here"),
        host_cfg(sshd_hosts, 0, name="badkey", identity=other_key),
        host_cfg(sshd_hosts, 0, name="nokey", identity=tmp_path / "missing"),
    )
    try:
        with pytest.raises(LoginFailed, match=r"nobody-here@127\.0\.0\.21:.*permission denied"):
            await the_lab.executor("baduser").run(["true"], timeout=5)
        with pytest.raises(LoginFailed, match=f"refused key {other_key}"):
            await the_lab.executor("badkey").run(["true"], timeout=5)
        with pytest.raises(LoginFailed, match=r"identity file .*missing not found"):
            await the_lab.executor("nokey").run(["true"], timeout=5)
    finally:
        await the_lab.close()


async def test_unknown_host_key_names_its_fingerprint(sshd_hosts: SshdLab, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    the_lab = make_lab(tmp_path, host_cfg(sshd_hosts, 0, known_hosts=empty))
    try:
        with pytest.raises(HostKeyUnknown) as info:
            await the_lab.executor("h0").run(["true"], timeout=5)
        err = info.value
        assert err.what == "unverified host key"
        assert err.key.fingerprint.startswith("SHA256:")
        assert err.key.openssh == sshd_hosts.hosts[0].host_key_pub
        assert "hlcon do trust host:h0" in str(err)
        # Trusted through hlcon's own known_hosts (what the trust action appends to):
        own = own_known_hosts(the_lab.config)
        own.parent.mkdir(parents=True, exist_ok=True)
        own.write_text(err.key.known_hosts_line())
        ssh_host(the_lab, "h0").reset_backoff()
        assert (await the_lab.executor("h0").run(["echo", "ok"], timeout=5)).stdout == "ok\n"
    finally:
        await the_lab.close()


async def test_changed_key_blocks_that_host_only_and_is_audited(
    sshd_hosts: SshdLab, tmp_path: Path
) -> None:
    victim = sshd_hosts.extra_host("changed")
    known = tmp_path / "known_hosts"
    known.write_text(sshd_hosts.known_hosts_text() + victim.known_hosts_line)
    cfgs = [host_cfg(sshd_hosts, i, known_hosts=known) for i in range(2)]
    victim_cfg = dataclasses.replace(
        cfgs[0], name="changed", address=victim.address, port=victim.port, services=("demo",)
    )
    the_lab = make_lab(tmp_path, *cfgs, victim_cfg)
    from actions.hostkey_audit import audit_key_changes

    audit_key_changes(the_lab)  # as the runner and `hlcon status` attach it
    audit_key_changes(the_lab)  # once, however often attached
    try:
        assert (await the_lab.executor("changed").run(["true"], timeout=5)).ok
        await ssh_host(the_lab, "changed").close()
        victim.new_host_key()
        for _ in range(2):  # audited once, however often it is retried
            ssh_host(the_lab, "changed").reset_backoff()
            with pytest.raises(HostKeyChanged, match="HOST KEY CHANGED") as info:
                await the_lab.executor("changed").run(["true"], timeout=5)
        assert ssh_host(the_lab, "changed").blocked is info.value
        from actions.registry import build
        from actions.runner import Refused, Runner

        with pytest.raises(Refused, match="HOST KEY CHANGED"):  # no actions either
            await Runner(the_lab).prepare(build("restart", "service:demo@changed", the_lab, {}))
        assert str(known) in str(info.value)
        # The others go on.
        for cfg in cfgs:
            assert (await the_lab.executor(cfg.name).run(["true"], timeout=5)).ok
        records = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
        assert [(r["phase"], r["target"]) for r in records] == [
            ("refused", "host:changed"),  # the key change itself, once
            ("refused", "service:demo@changed"),  # the action it stopped
        ]
        assert records[0]["result"]["fingerprint"] == info.value.key.fingerprint
    finally:
        await the_lab.close()


@pytest.fixture
def blackhole() -> Iterator[BlackHole]:
    require(is_root(), "root (a network namespace)")
    require_tools("ip", "iptables")
    with BlackHole() as hole:
        yield hole


@pytest.fixture
def tarpit() -> Iterator[Tarpit]:
    pit = Tarpit("127.0.0.30")
    yield pit
    pit.close()


async def test_dead_hosts_do_not_stall_the_others_or_the_loop(
    sshd_hosts: SshdLab, tmp_path: Path, blackhole: BlackHole, tarpit: Tarpit
) -> None:
    """One host hangs after connect (tarpit), one is black-holed (iptables DROP in a netns of
    our own), one has its sshd killed; the rest keep their schedule and the event loop's
    lateness stays under 100 ms."""
    killed = sshd_hosts.extra_host("killed")
    killed.stop()
    live = [host_cfg(sshd_hosts, i) for i in range(len(sshd_hosts.hosts))]
    dead = [
        host_cfg(sshd_hosts, 0, name="hung", address=tarpit.address, port=tarpit.port),
        host_cfg(sshd_hosts, 0, name="killed", address=killed.address, port=killed.port),
        host_cfg(sshd_hosts, 0, name="dropped", address=blackhole.address, port=22),
    ]
    the_lab = make_lab(tmp_path, *live, *dead)
    store = Store()
    readers = [
        HostReader(h.name, the_lab.executor(h.name), interval=0.3, timeout=3.0)
        for h in (*live, *dead)
    ]
    poller = Poller(store, readers)
    lag = 0.0

    async def ticker() -> None:
        nonlocal lag
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(0.01)
            lag = max(lag, time.monotonic() - t0 - 0.01)

    tick = asyncio.create_task(ticker())
    updates: dict[str, int] = {}
    store.subscribe(lambda key: updates.__setitem__(key[1], updates.get(key[1], 0) + 1))
    poller.start()
    try:
        # Until the hung host's connect timeout (2 s) has come and gone.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            hung, dropped = store.get(("host", "hung")), store.get(("host", "dropped"))
            faulted = all(e is not None and e.fault is not None for e in (hung, dropped))
            if faulted and updates.get("h0", 0) >= 8:
                break
    finally:
        await poller.stop()
        tick.cancel()
        await the_lab.close()
    for h in live:
        entry = store.get(("host", h.name))
        assert entry is not None and isinstance(entry.reading, HostState) and entry.fault is None
        # polled every 0.3 s while the hung host waited 2 s for its timeout
        assert updates[h.name] >= 5, updates
    hung_entry, killed_entry = store.get(("host", "hung")), store.get(("host", "killed"))
    assert hung_entry is not None and hung_entry.fault is not None
    assert hung_entry.fault.what == "host unreachable" and "no SSH answer" in hung_entry.fault.why
    assert killed_entry is not None and killed_entry.fault is not None
    assert "connection refused" in killed_entry.fault.why
    dropped_entry = store.get(("host", "dropped"))
    assert dropped_entry is not None and dropped_entry.fault is not None
    assert "no SSH answer" in dropped_entry.fault.why
    print(f"max event-loop lag {lag * 1000:.1f} ms")
    assert lag < 0.1


async def test_unreachable_errors_are_ssh_errors(sshd_hosts: SshdLab, tmp_path: Path) -> None:
    killed = sshd_hosts.extra_host("gone")
    killed.stop()
    the_lab = make_lab(
        tmp_path, host_cfg(sshd_hosts, 0, name="gone", address=killed.address, port=killed.port)
    )
    try:
        with pytest.raises(HostUnreachable, match="connection refused"):
            await the_lab.executor("gone").run(["true"], timeout=5)
        # Backing off: the same error again at once, nothing dialled.
        with pytest.raises(HostUnreachable, match="connection refused"):
            await the_lab.executor("gone").run(["true"], timeout=5)
    finally:
        await the_lab.close()


async def test_trust_flow_through_the_runner(sshd_hosts: SshdLab, tmp_path: Path) -> None:
    """Unknown key → Fault naming the fingerprint → trust action (typed confirm) → connects."""
    from actions.registry import build
    from actions.runner import Refused, Runner

    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    the_lab = make_lab(tmp_path, host_cfg(sshd_hosts, 1, known_hosts=empty))
    store = Store()
    poller = Poller(store, [HostReader("h1", the_lab.executor("h1"), interval=5, timeout=5)])
    try:
        await poller.poll_all()
        entry = store.get(("host", "h1"))
        assert entry is not None and entry.fault is not None
        assert entry.fault.what == "unverified host key"
        runner = Runner(the_lab)
        prepared = await runner.prepare(build("trust", "host:h1", the_lab, {}))
        fingerprint = prepared.plan.data.fingerprint
        assert fingerprint in entry.fault.why and fingerprint in prepared.plan.confirmation.prompt
        with pytest.raises(Refused):
            await runner.run(prepared, "yes")  # the host's name must be typed
        prepared = await runner.prepare(build("trust", "host:h1", the_lab, {}))
        result = await runner.run(prepared, "h1")
        assert result.ok, result.outcome.message
        assert own_known_hosts(the_lab.config).read_text() == (
            f"[{sshd_hosts.hosts[1].address}]:{sshd_hosts.hosts[1].port} "
            f"{sshd_hosts.hosts[1].host_key_pub}\n"
        )
        await poller.poll_all()
        entry = store.get(("host", "h1"))
        assert entry is not None and entry.fault is None and isinstance(entry.reading, HostState)
        audit = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
        assert [r["phase"] for r in audit if r["action"] == "hostkey.trust"][-2:] == [
            "intent",
            "outcome",
        ]
        # Trusting again is refused: nothing to do.
        with pytest.raises(Refused, match="already trusted"):
            await runner.prepare(build("trust", "host:h1", the_lab, {}))
    finally:
        await poller.stop()
        await the_lab.close()


async def test_trust_is_refused_for_a_changed_key(sshd_hosts: SshdLab, tmp_path: Path) -> None:
    from actions.registry import build
    from actions.runner import Refused, Runner

    wrong = tmp_path / "wrong_known_hosts"
    h = sshd_hosts.hosts[2]
    wrong.write_text(f"[{h.address}]:{h.port} {sshd_hosts.hosts[3].host_key_pub}\n")
    the_lab = make_lab(tmp_path, host_cfg(sshd_hosts, 2, known_hosts=wrong))
    try:
        with pytest.raises(HostKeyChanged):
            await the_lab.executor("h2").run(["true"], timeout=5)
        with pytest.raises(Refused, match="DIFFERENT key is on file"):
            await Runner(the_lab).prepare(build("trust", "host:h2", the_lab, {}))
        assert not own_known_hosts(the_lab.config).exists()
    finally:
        await the_lab.close()


async def test_container_on_a_host_reached_only_over_ssh(
    sshd_hosts: SshdLab, podman_service_session: PodmanService, tmp_path: Path
) -> None:
    """The remote podman socket is forwarded over the SSH connection; the containers reader
    lists through it and the runner restarts through it."""
    from actions.registry import build
    from actions.runner import Runner
    from lab import containers
    from lab.model import ContainerEndpointState

    svc = podman_service_session
    ensure_busybox_image(svc.env)
    name = f"over-ssh-{os.getpid()}"
    with contextlib.suppress(RuntimeError):
        podman(svc.env, "rm", "-f", "-t", "0", name)
    podman(svc.env, "run", "-d", "--name", name, IMAGE, *idle_command())
    cfg = host_cfg(
        sshd_hosts, 3, name="remote", user="root", containers="ssh", docker_socket=str(svc.socket)
    )
    the_lab = make_lab(tmp_path, cfg)
    try:
        (reader,) = [r for r in containers.readers(the_lab) if r.key == ("containers", "remote")]
        state = await reader.read()
        assert isinstance(state, ContainerEndpointState)
        before = {c.name: c for c in state.containers}[name]
        assert before.state == "running"
        url = containers.endpoints(the_lab).get("remote").url
        assert url.startswith("unix://") and str(svc.socket) not in url
        runner = Runner(the_lab)
        prepared = await runner.prepare(build("restart", f"container:{name}@remote", the_lab, {}))
        result = await runner.run(prepared, "")
        assert result.ok, result.outcome.message
        again = await reader.read()
        assert isinstance(again, ContainerEndpointState)
        after = {c.name: c for c in again.containers}[name]
        assert after.state == "running" and after.started_at != before.started_at
    finally:
        await the_lab.close()
        with contextlib.suppress(RuntimeError):
            podman(svc.env, "rm", "-f", "-t", "0", name)


async def test_identity_passphrase_from_a_secret_reference(
    sshd_hosts: SshdLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An encrypted identity unlocked by env:…; a wrong passphrase is a clear LoginFailed that
    never repeats the passphrase."""
    import subprocess

    from lab import secrets
    from lab.secrets import SecretRef

    key = tmp_path / "locked"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "right-horse-42", "-f", str(key)], check=True
    )
    authorized = sshd_hosts.workdir / "authorized_keys"
    original = authorized.read_text()
    authorized.write_text(original + key.with_suffix(".pub").read_text())
    monkeypatch.setenv("HLCON_TEST_PASS_OK", "right-horse-42")
    monkeypatch.setenv("HLCON_TEST_PASS_BAD", "wrong-horse-17")
    secrets.forget_cached()
    the_lab = make_lab(
        tmp_path,
        host_cfg(sshd_hosts, 0, name="ok", identity=key,
                 passphrase=SecretRef("env", "HLCON_TEST_PASS_OK")),
        host_cfg(sshd_hosts, 0, name="bad", identity=key,
                 passphrase=SecretRef("env", "HLCON_TEST_PASS_BAD")),
    )  # fmt: skip
    try:
        assert (await the_lab.executor("ok").run(["echo", "in"], timeout=5)).stdout == "in\n"
        with pytest.raises(LoginFailed) as info:
            await the_lab.executor("bad").run(["true"], timeout=5)
        assert "cannot load identity" in str(info.value)
        assert "wrong-horse-17" not in str(info.value)
    finally:
        authorized.write_text(original)
        await the_lab.close()


async def test_reconnects_after_the_host_drops_the_connection(
    sshd_hosts: SshdLab, tmp_path: Path
) -> None:
    flaky = sshd_hosts.extra_host("flaky")
    cfg = host_cfg(sshd_hosts, 0, name="flaky", address=flaky.address, port=flaky.port)
    known = tmp_path / "known"
    known.write_text(flaky.known_hosts_line)
    the_lab = make_lab(tmp_path, dataclasses.replace(cfg, known_hosts=known))
    ex = the_lab.executor("flaky")
    try:
        assert (await ex.run(["true"], timeout=5)).ok
        flaky.kill_all()  # the "reboot": every connection is gone
        with pytest.raises(HostUnreachable):
            for _ in range(50):  # until the client has noticed the closed connection
                await ex.run(["true"], timeout=5)
                await asyncio.sleep(0.05)
        flaky.start()
        ssh_host(the_lab, "flaky").reset_backoff()  # what a manual refresh does
        assert (await ex.run(["echo", "back"], timeout=5)).stdout == "back\n"
        assert ssh_host(the_lab, "flaky").connects == 2
    finally:
        await the_lab.close()
