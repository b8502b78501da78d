"""Key files (an SSH identity, a known_hosts file) are read only when they are regular files of
a sane size: a FIFO would block the console for ever (issue 11 §8)."""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh
import pytest

from lab.certs import trust_roots
from lab.config import Config, ConsoleConfig, HostConfig
from lab.poller import ReadError
from lab.ssh import LoginFailed, keys_on_file
from lab.wiring import Lab


@pytest.mark.timeout(30)  # before the fix: blocked in open() for ever
def test_a_known_hosts_fifo_is_skipped_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "known_hosts"
    os.mkfifo(fifo)
    good = tmp_path / "good_known_hosts"
    public = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    good.write_text(f"[127.0.0.1]:2222 {public}")
    keys = keys_on_file([fifo, Path("/dev/zero"), good], "127.0.0.1", 2222)
    assert keys and {k.get_algorithm() for k in keys} == {"ssh-ed25519"}


@pytest.mark.parametrize("kind", ["fifo", "huge"])
async def test_an_identity_that_is_not_a_key_file_is_named(tmp_path: Path, kind: str) -> None:
    identity = tmp_path / "id_ed25519"
    if kind == "fifo":
        os.mkfifo(identity)
        says = r"is not a regular file \(a FIFO\)"
    else:
        with identity.open("wb") as out:
            out.truncate(64 * 1024 * 1024)
        says = "is larger than 1 MiB; not a private key"
    lab = Lab(
        Config(
            console=ConsoleConfig(state_dir=tmp_path / "state"),
            # port 9 (discard) is never dialled: the identity is checked first
            hosts=(HostConfig(name="h", address="127.0.0.1", port=9, identity=identity),),
        )
    )
    try:
        with pytest.raises(LoginFailed, match=f"identity file {identity} {says}"):
            await lab.executor("h").run(["true"], timeout=5)
    finally:
        await lab.close()


@pytest.mark.timeout(30)  # before the fix: blocked in open() for ever
def test_a_ca_file_that_is_a_fifo_is_a_clear_fault(tmp_path: Path) -> None:
    fifo = tmp_path / "ca.pem"
    os.mkfifo(fifo)
    with pytest.raises(ReadError) as info:
        trust_roots(fifo)
    assert (info.value.what, str(info.value)) == (
        "bad config",
        f"ca_file {fifo}: not a regular file (a FIFO)",
    )
