"""A host that comes back is read again promptly (issue 11, part 7): a real sshd is killed, the
poller backs off, sshd starts again, and the next probe — not the end of the backoff — brings
the good reading. The figure is printed (pytest -s), never asserted on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from lab.config import Config, ConsoleConfig, HostConfig
from lab.execute import Executor
from lab.hosts import HostReader
from lab.model import Key, utcnow
from lab.poller import Poller
from lab.ssh import HostUnreachable, ssh_host
from lab.store import Entry, Store
from lab.wiring import Lab
from tests.testbed.sshd import SshdLab, Tarpit

pytestmark = pytest.mark.testbed

REFRESH = 2.0
TIMEOUT = 3.0


@dataclass(frozen=True)
class Uptime:
    at: datetime
    text: str

    def summary(self) -> str:
        return self.text


class UptimeReader:
    """Another reader of the same SSH host, with no probe of its own (as a container endpoint
    or a certificate read over that host's SSH): it is retried when the host reader's probe
    finds the host back."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.key: Key = ("uptime", "returning")
        self.interval = REFRESH
        self.timeout = TIMEOUT

    async def read(self) -> Uptime:
        result = await self.executor.run(["cat", "/proc/uptime"], timeout=self.timeout)
        return Uptime(utcnow(), result.stdout.strip())

    async def close(self) -> None:
        pass


async def until(check: Callable[[], bool], what: str, limit: float = 120.0) -> None:
    """Wait for the poller to make `check` true (a bound against hangs, not a timing)."""
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)


async def test_a_restarted_sshd_is_read_again_at_the_next_probe(
    sshd_hosts: SshdLab, tmp_path: Path
) -> None:
    sshd = sshd_hosts.extra_host("returning")
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line)
    host = HostConfig(
        name="returning", address=sshd.address, port=sshd.port, user=sshd_hosts.user,
        identity=sshd_hosts.identity, known_hosts=known, connect_timeout=2.0,
    )  # fmt: skip
    config = Config(
        console=ConsoleConfig(state_dir=tmp_path, refresh=REFRESH, timeout=TIMEOUT), hosts=(host,)
    )
    lab = Lab(config)
    store = Store()
    reader = HostReader("returning", lab.executor("returning"), interval=REFRESH, timeout=TIMEOUT)
    other = UptimeReader(lab.executor("returning"))
    faults: list[float] = []

    def heard(key: Key) -> None:
        entry = store.get(key)
        if key == reader.key and entry is not None and entry.fault is not None:
            faults.append(time.monotonic())

    store.subscribe(heard)
    poller = Poller(store, [reader, other])
    entry, other_entry = store.expect(reader.key), store.expect(other.key)
    poller.start()
    try:
        for e in (entry, other_entry):

            def first_reading(e: Entry = e) -> bool:
                return e.reading is not None and e.fault is None

            await until(first_reading, "a first reading")
        sshd.kill_all()  # the host goes away, its open connection with it
        # Into the backoff: after the third failed poll the next one is 2 * 2**3 = 16 s away.
        await until(lambda: len(faults) >= 3, "three failed polls")
        backoff_from = faults[-1]
        await asyncio.sleep(REFRESH * 1.5)
        sshd.start()
        back = time.monotonic()
        await until(lambda: entry.fault is None, "a good reading after sshd came back")
        took = time.monotonic() - back
        print(
            f"\nsshd back after {back - backoff_from:.1f} s of a 16 s backoff: read again "
            f"{took:.2f} s later (bound refresh + timeout = {REFRESH + TIMEOUT:g} s)"
        )
        # The poller's decision: the probe ended the backoff, not its time running out.
        assert poller.backoff_ended[reader.key] == "probe"
        assert len(faults) == 3  # no failed poll in between: the probe's poll was the good one
        # and the host's other reader, backing off with no probe, was retried with it
        await until(lambda: other_entry.fault is None, "the other reader's good reading")
        assert other_entry.fault is None and poller.backoff_ended[other.key] == "refresh"
    finally:
        await poller.stop()
        await lab.close()
        sshd.start()


async def test_the_probe_answers_only_when_the_port_comes_back(
    sshd_hosts: SshdLab, tmp_path: Path
) -> None:
    """SshHost.probe against real listeners: a refused port is closed until sshd starts again
    (then True, once); a port that accepts TCP and never speaks SSH was never closed, so its
    probe never cuts the backoff short (no poll that hangs until its timeout every interval)."""
    sshd = sshd_hosts.extra_host("probed")
    tarpit = Tarpit()
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line)
    base = {"user": sshd_hosts.user, "identity": sshd_hosts.identity, "known_hosts": known}
    hosts = (
        HostConfig(name="probed", address=sshd.address, port=sshd.port, **base),  # type: ignore[arg-type]
        HostConfig(name="hung", address=tarpit.address, port=tarpit.port,
                   connect_timeout=0.5, **base),  # type: ignore[arg-type]
    )  # fmt: skip
    lab = Lab(Config(console=ConsoleConfig(state_dir=tmp_path), hosts=hosts))
    probed, hung = ssh_host(lab, "probed"), ssh_host(lab, "hung")
    try:
        assert (await lab.executor("probed").run(["true"], timeout=5)).ok
        assert not await probed.probe()  # connected: nothing to probe
        sshd.kill_all()
        with pytest.raises(HostUnreachable):
            for _ in range(50):  # until the client has noticed the closed connection
                await lab.executor("probed").run(["true"], timeout=5)
                await asyncio.sleep(0.05)
        assert not await probed.probe()  # refused: still down
        sshd.start()
        assert await probed.probe()  # back: the backoff is dropped, dial now
        assert (await lab.executor("probed").run(["true"], timeout=5)).ok

        with pytest.raises(HostUnreachable, match="no SSH answer"):
            await lab.executor("hung").run(["true"], timeout=5)
        assert not await hung.probe() and not await hung.probe()
    finally:
        tarpit.close()
        await lab.close()
        sshd.start()
