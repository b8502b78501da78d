"""WireGuard against real wireguard-go in network namespaces (tests/testbed/wireguard.py):
the reader (UAPI and `wg show dump`), peer add end to end with a third namespace pinging across
the tunnel, the QR code decoded back, rollback on a read-only conf, remove/disable/enable, bad
input refused with nothing changed, and no secret in the audit log."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from actions.base import Target
from actions.runner import Refused, Runner
from actions.vpn import PeerAdd, PeerDisable, PeerEnable, PeerRemove
from lab.config import HostConfig
from lab.execute import LocalExecutor
from lab.health import vpn_findings
from lab.model import Severity, WgInterface, utcnow
from lab.vpn import VpnReader, parse_wg_quick_conf, wg_dump
from lab.wiring import Lab
from tests.testbed.wireguard import WgTestbed, ping, sh

pytestmark = pytest.mark.testbed


@pytest.fixture
def lab(wg_testbed: WgTestbed, tmp_path: Path) -> Iterator[Lab]:
    yield Lab(wg_testbed.config(tmp_path / "state"))


def live_peers(bed: WgTestbed) -> set[tuple[str, str]]:
    """The live peer set without counters: (public key, allowed ips)."""
    out = set()
    for line in sh("wg", "show", bed.iface, "dump").splitlines()[1:]:
        f = line.split("\t")
        out.add((f[0], f[3]))
    return out


def target(bed: WgTestbed) -> Target:
    return Target("vpn", bed.iface, "local")


async def read(lab: Lab) -> WgInterface:
    return await VpnReader(lab, lab.config.vpn[0]).read()


async def test_reader_shows_real_handshake_transfer_and_stale_peer(
    wg_testbed: WgTestbed, lab: Lab
) -> None:
    reader = VpnReader(lab, lab.config.vpn[0])
    first = await reader.read()
    assert first.source == "uapi" and first.up
    assert first.public_key == wg_testbed.keys["server"][1]
    assert "10.77.0.1/24" in first.addresses and first.mtu == 1420
    peers = {p.name: p for p in first.peers}
    laptop, phone = peers["laptop"], peers["phone"]
    assert laptop.latest_handshake is not None and laptop.online
    assert laptop.rx_bytes > 0 and laptop.tx_bytes > 0
    assert laptop.endpoint == "192.168.201.2:" + laptop.endpoint.rsplit(":", 1)[1]  # type: ignore[union-attr]
    assert phone.latest_handshake is None and phone.stale and not phone.online
    assert ping(wg_testbed.ns_client, "10.77.0.1", count=1)
    second = await reader.read()
    again = {p.name: p for p in second.peers}["laptop"]
    assert again.rx_bytes > laptop.rx_bytes
    assert again.rx_rate is not None and again.rx_rate > 0
    # The same handshake seen ten minutes later is stale (stale_after = 3 min).
    later = Lab(lab.config, clock=lambda: utcnow() + timedelta(minutes=10))
    stale = {p.name: p for p in (await read(later)).peers}["laptop"]
    assert stale.stale and stale.age is not None and stale.age > 500
    # The private key is never part of a reading.
    assert wg_testbed.keys["server"][0] not in repr(second)


async def test_wg_dump_path_agrees_with_uapi(wg_testbed: WgTestbed, lab: Lab) -> None:
    raw = await wg_dump(LocalExecutor(), wg_testbed.iface)
    assert raw is not None
    uapi = await read(lab)
    assert raw.public_key == uapi.public_key
    assert {p.public_key for p in raw.peers} == {p.public_key for p in uapi.peers}
    assert await wg_dump(LocalExecutor(), "nosuchwg0") is None


async def test_health_flags_the_never_seen_always_on_peer(wg_testbed: WgTestbed, lab: Lab) -> None:
    reading = await read(lab)
    findings = vpn_findings(reading, lab.config, ("vpn", f"{wg_testbed.iface}@local"), utcnow())
    # (other tests add peers of their own to the session's interface: only the testbed's two)
    mine = {f"{wg_testbed.iface} peer {n}" for n in ("laptop", "phone")}
    assert [(f.subject, f.severity) for f in findings if f.subject in mine] == [
        (f"{wg_testbed.iface} peer phone", Severity.CRITICAL)
    ]


async def test_a_peer_that_never_shook_hands_is_a_finding_by_default(
    wg_testbed: WgTestbed, tmp_path: Path
) -> None:
    """Without always_on: the real never-seen phone is a warning, the laptop that pings is not;
    `expected_offline` silences it (issue 11 §2)."""
    key = ("vpn", f"{wg_testbed.iface}@local")
    mine = {f"{wg_testbed.iface} peer {n}" for n in ("laptop", "phone")}
    plain = Lab(wg_testbed.config(tmp_path / "state", always_on=()))
    findings = [
        f for f in vpn_findings(await read(plain), plain.config, key, utcnow()) if f.subject in mine
    ]
    assert [(f.subject, f.severity) for f in findings] == [
        (f"{wg_testbed.iface} peer phone", Severity.WARNING)
    ]
    assert "never completed a handshake" in findings[0].message
    away = Lab(wg_testbed.config(tmp_path / "state", always_on=(), expected_offline=("phone",)))
    assert not [
        f for f in vpn_findings(await read(away), away.config, key, utcnow()) if f.subject in mine
    ]


async def test_peer_add_end_to_end_with_a_hostile_name(
    wg_testbed: WgTestbed, lab: Lab, tmp_path: Path
) -> None:
    pwned = Path(f"/tmp/pwned-{wg_testbed.prefix}")
    name = f"x; touch {pwned} $(id)"
    runner = Runner(lab)
    before_conf = wg_testbed.conf.read_bytes()
    prepared = await runner.prepare(PeerAdd.create(target(wg_testbed), lab, {"name": name}))
    plan = prepared.plan
    assert plan.diff is not None and f"+# {name}" in plan.diff
    assert "PrivateKey = (hidden)" in plan.diff or "PrivateKey" not in plan.diff
    result = await runner.run(prepared, "")
    assert result.ok, result.outcome.message
    client = str(result.outcome.details["secret_client_config"])
    private = str(plan.data.client_private_key)
    assert f"PrivateKey = {private}" in client
    # persisted with a backup, the peer named by its comment
    conf = parse_wg_quick_conf(wg_testbed.conf.read_text())
    added = conf.by_name(name)
    assert added is not None and added.public_key == plan.data.public_key
    assert Path(f"{wg_testbed.conf}.hlcon-bak").read_bytes() == before_conf
    assert not pwned.exists()
    # nothing secret reached the audit log: the client key, the psk, the client config
    audit = runner.audit.path.read_text()
    assert private not in audit
    psk = str(plan.data.live_stdin)
    assert psk not in audit
    assert "[redacted]" in audit
    # a third namespace brings the generated config up and pings the server across the tunnel
    wg_testbed.bring_up_client(f"{wg_testbed.prefix}n", client)
    assert ping(wg_testbed.ns_new, "10.77.0.1")
    peer = {p.name: p for p in (await read(lab)).peers}[name]
    assert peer.online and peer.latest_handshake is not None
    assert peer.allowed_ips == (str(plan.data.address),)


async def test_peer_add_runs_the_confirmed_step(
    wg_testbed: WgTestbed, lab: Lab, tmp_path: Path
) -> None:
    """What was confirmed is what runs: execute runs the plan's own `wg set` step (here one
    with a keepalive added), not a second copy of its argv kept in the payload."""
    runner = Runner(lab)
    prepared = await runner.prepare(PeerAdd.create(target(wg_testbed), lab, {"name": "kept"}))
    live, *rest = prepared.plan.steps
    assert live.argv is not None and live.argv[:2] == ("wg", "set")
    changed = dataclasses.replace(live, argv=(*live.argv, "persistent-keepalive", "25"))
    plan = dataclasses.replace(prepared.plan, steps=(changed, *rest))
    result = await runner.run(dataclasses.replace(prepared, plan=plan), "")
    assert result.ok, result.outcome.message
    peer = {p.name: p for p in (await read(lab)).peers}["kept"]
    assert peer.keepalive == 25


async def test_qr_decodes_back_to_the_client_config(
    wg_testbed: WgTestbed, lab: Lab, tmp_path: Path
) -> None:
    import segno
    import zxingcpp
    from PIL import Image

    prepared = await Runner(lab).prepare(PeerAdd.create(target(wg_testbed), lab, {"name": "qr"}))
    client = str(prepared.plan.data.client_config)
    Runner(lab).cancel(prepared)
    png = tmp_path / "qr.png"
    segno.make(client, error="l", micro=False).save(str(png), scale=4)
    decoded = zxingcpp.read_barcodes(Image.open(png))
    assert [d.text for d in decoded] == [client]


async def test_rollback_on_read_only_conf_restores_live_and_file(
    wg_testbed: WgTestbed, lab: Lab
) -> None:
    runner = Runner(lab)
    before_live = live_peers(wg_testbed)
    before_conf = wg_testbed.conf.read_bytes()
    prepared = await runner.prepare(PeerAdd.create(target(wg_testbed), lab, {"name": "ro-test"}))
    subprocess.run(["chattr", "+i", str(wg_testbed.conf)], check=True)
    try:
        result = await runner.run(prepared, "")
    finally:
        subprocess.run(["chattr", "-i", str(wg_testbed.conf)], check=True)
    assert not result.ok and "writing" in result.outcome.message
    assert result.rollback is not None and result.rollback.ok, result.rollback
    assert live_peers(wg_testbed) == before_live
    assert wg_testbed.conf.read_bytes() == before_conf
    assert not Path(f"{wg_testbed.conf}.hlcon-new").exists()
    phases = [r.phase for r in runner.audit.records() if r.ref == prepared.seq]
    assert phases == ["intent", "outcome", "rollback"]


@pytest.mark.parametrize(
    ("overrides", "name", "why"),
    [
        ({}, "laptop", "already exists"),
        ({"subnet": "10.77.0.0/30"}, "new", "exhausted"),
        ({"endpoint": "vpn.example.org"}, "new", "invalid endpoint"),
        ({"endpoint": "vpn.example.org:99999"}, "new", "invalid endpoint"),
    ],
)
async def test_bad_input_refused_and_nothing_changed(
    wg_testbed: WgTestbed, tmp_path: Path, overrides: dict[str, object], name: str, why: str
) -> None:
    lab = Lab(wg_testbed.config(tmp_path / "state", **overrides))
    before = (live_peers(wg_testbed), wg_testbed.conf.read_bytes())
    with pytest.raises(Refused, match=why):
        await Runner(lab).prepare(PeerAdd.create(target(wg_testbed), lab, {"name": name}))
    assert (live_peers(wg_testbed), wg_testbed.conf.read_bytes()) == before


async def test_conf_that_does_not_parse_is_refused(wg_testbed: WgTestbed, tmp_path: Path) -> None:
    broken = tmp_path / "broken.conf"
    broken.write_text("[Interface]\nPrivateKey = x\n[Peer]\nAllowedIPs = 10.77.0.9/32\n")
    lab = Lab(wg_testbed.config(tmp_path / "state", peers_file=broken))
    before = live_peers(wg_testbed)
    with pytest.raises(Refused, match=r"broken.conf on local does not parse \(line 3"):
        await Runner(lab).prepare(PeerAdd.create(target(wg_testbed), lab, {"name": "new"}))
    assert live_peers(wg_testbed) == before and broken.read_text().startswith("[Interface]")


def test_control_characters_in_names_are_refused(wg_testbed: WgTestbed, tmp_path: Path) -> None:
    lab = Lab(wg_testbed.config(tmp_path / "state"))
    with pytest.raises(ValueError, match="control characters"):
        PeerAdd.create(target(wg_testbed), lab, {"name": "a\n[Peer]"})


async def test_disable_enable_remove(wg_testbed: WgTestbed, lab: Lab) -> None:
    runner = Runner(lab)
    t = target(wg_testbed)
    added = await runner.run(await runner.prepare(PeerAdd.create(t, lab, {"name": "tablet"})), "")
    assert added.ok
    key = str(added.outcome.details["peer"])

    disable = await runner.prepare(PeerDisable.create(t, lab, {"name": "tablet"}))
    assert disable.plan.confirmation.expect == "tablet"
    assert (await runner.run(disable, "tablet")).ok
    assert key not in {k for k, _ in live_peers(wg_testbed)}
    peer = {p.name: p for p in (await read(lab)).peers}["tablet"]
    assert peer.disabled

    enable = await runner.prepare(PeerEnable.create(t, lab, {"name": "tablet"}))
    assert (await runner.run(enable, "")).ok
    assert key in {k for k, _ in live_peers(wg_testbed)}
    assert not {p.name: p for p in (await read(lab)).peers}["tablet"].disabled

    remove = await runner.prepare(PeerRemove.create(t, lab, {"name": "tablet"}))
    with pytest.raises(Refused, match="confirmation did not match"):
        await runner.run(remove, "")
    remove = await runner.prepare(PeerRemove.create(t, lab, {"name": "tablet"}))
    assert (await runner.run(remove, "tablet")).ok
    assert key not in {k for k, _ in live_peers(wg_testbed)}
    conf = parse_wg_quick_conf(wg_testbed.conf.read_text())
    assert conf.by_name("tablet") is None and conf.by_name("laptop") is not None


async def test_nixos_host_gets_a_snippet_and_no_file_edit(
    wg_testbed: WgTestbed, tmp_path: Path
) -> None:
    lab = Lab(wg_testbed.config(tmp_path / "state", nixos=True))
    runner = Runner(lab)
    before_conf = wg_testbed.conf.read_bytes()
    prepared = await runner.prepare(PeerAdd.create(target(wg_testbed), lab, {"name": "nixbox"}))
    assert prepared.plan.diff is None
    assert any("networking.wireguard.interfaces" in n for n in prepared.plan.notes)
    result = await runner.run(prepared, "")
    assert result.ok and "nix" in result.outcome.details
    assert wg_testbed.conf.read_bytes() == before_conf
    # leave the live interface as the other tests expect it
    sh("wg", "set", wg_testbed.iface, "peer", str(result.outcome.details["peer"]), "remove")


def test_cli_peer_add_prints_client_config_and_qr(
    wg_testbed: WgTestbed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tui.cli import main

    config = tmp_path / "hlcon.toml"
    config.write_text(
        f'[console]\nstate_dir = "{tmp_path / "state"}"\n\n'
        f'[local]\ncontainers = "none"\nwireguard = false\n\n'
        f'[[vpn]]\ninterface = "{wg_testbed.iface}"\nhost = "local"\n'
        f'subnet = "10.77.0.0/24"\nendpoint = "{wg_testbed.endpoint_for_new}"\n'
        f'peers_file = "{wg_testbed.conf}"\nnetns = "{wg_testbed.ns_server}"\n'
    )
    target_text = f"vpn:{wg_testbed.iface}@local"
    args = ["--config", str(config), "do", "peer-add", target_text, "--name", "cli-box"]
    assert main([*args, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "dry run: nothing was changed" in dry
    assert re.search(r"PrivateKey = [A-Za-z0-9+/]{43}=", dry) is None  # no key before the add
    assert main([*args, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "[Interface]\nPrivateKey = " in out and "█" in out
    conf = parse_wg_quick_conf(wg_testbed.conf.read_text())
    added = conf.by_name("cli-box")
    assert added is not None and added.public_key in {k for k, _ in live_peers(wg_testbed)}
    private = out.split("PrivateKey = ", 1)[1].split("\n", 1)[0]
    audit = (tmp_path / "state" / "audit.jsonl").read_text()
    assert private not in audit and "cli-box" in audit


async def test_remote_host_over_ssh_reads_and_adds_a_peer(
    wg_testbed: WgTestbed, sshd_hosts: Any, tmp_path: Path
) -> None:
    """The SSH path: `wg show IFACE dump`, `cat` of the conf, `wg set` with the psk on stdin
    and the persist script, all through lab.ssh to an sshd on loopback (root, because the
    UAPI sockets are root's)."""
    sshd = sshd_hosts.hosts[0]
    host = HostConfig(
        name="wgremote",
        address=sshd.address,
        port=sshd.port,
        user="root",
        identity=sshd_hosts.identity,
        known_hosts=sshd_hosts.known_hosts,
    )
    base = wg_testbed.config(tmp_path / "state", host="wgremote", netns=None)
    lab = Lab(dataclasses.replace(base, hosts=(host,)))
    try:
        reading = await read(lab)
        assert reading.source == "wg" and reading.host == "wgremote"
        assert {p.name for p in reading.peers} >= {"laptop", "phone"}
        runner = Runner(lab)
        name = "remote $(touch /tmp/pwned-ssh) 'q"
        t = Target("vpn", wg_testbed.iface, "wgremote")
        result = await runner.run(await runner.prepare(PeerAdd.create(t, lab, {"name": name})), "")
        assert result.ok, result.outcome.message
        assert not Path("/tmp/pwned-ssh").exists()
        conf = parse_wg_quick_conf(wg_testbed.conf.read_text())
        added = conf.by_name(name)
        assert added is not None and added.has_psk
        live = sh("wg", "show", wg_testbed.iface, "preshared-keys")
        assert f"{added.public_key}\t(none)" not in live  # the psk arrived through stdin
    finally:
        await lab.close()


# ---------------------------------------------------------------- issue 12 §9: VPN actions


async def test_remove_disable_enable_by_public_key(wg_testbed: WgTestbed, lab: Lab) -> None:
    """Peers are addressable by public key (the pane passes the key; so does the CLI's
    `--name "$(cat peer.pub)"`): a 44-character key is not a name too long."""
    runner = Runner(lab)
    t = target(wg_testbed)
    added = await runner.run(await runner.prepare(PeerAdd.create(t, lab, {"name": "bykey"})), "")
    assert added.ok, added.outcome.message
    key = str(added.outcome.details["peer"])

    disable = await runner.prepare(PeerDisable.create(t, lab, {"peer": key}))
    assert disable.plan.confirmation.expect == "bykey"
    assert (await runner.run(disable, "bykey")).ok
    assert key not in {k for k, _ in live_peers(wg_testbed)}

    enable = await runner.prepare(PeerEnable.create(t, lab, {"name": key}))
    assert (await runner.run(enable, "")).ok
    assert key in {k for k, _ in live_peers(wg_testbed)}

    remove = await runner.prepare(PeerRemove.create(t, lab, {"peer": key}))
    assert (await runner.run(remove, "bykey")).ok
    assert key not in {k for k, _ in live_peers(wg_testbed)}
    assert parse_wg_quick_conf(wg_testbed.conf.read_text()).by_key(key) is None


def test_cli_names_a_peer_by_its_public_key(
    wg_testbed: WgTestbed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tui.cli import main

    config = tmp_path / "hlcon.toml"
    config.write_text(
        f'[console]\nstate_dir = "{tmp_path / "state"}"\n\n'
        f'[local]\ncontainers = "none"\nwireguard = false\n\n'
        f'[[vpn]]\ninterface = "{wg_testbed.iface}"\nhost = "local"\n'
        f'subnet = "10.77.0.0/24"\nendpoint = "{wg_testbed.endpoint_for_new}"\n'
        f'peers_file = "{wg_testbed.conf}"\nnetns = "{wg_testbed.ns_server}"\n'
    )
    key = wg_testbed.keys["laptop"][1]
    target_text = f"vpn:{wg_testbed.iface}@local"
    for verb in ("peer-remove", "peer-disable"):
        code = main(["--config", str(config), "do", verb, target_text, "--name", key, "--dry-run"])
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "laptop" in out.out and "dry run: nothing was changed" in out.out


async def test_remove_keeps_the_next_peers_name(wg_testbed: WgTestbed, lab: Lab) -> None:
    """Removing alice leaves bob's `# bob` comment (it belongs to the block below)."""
    runner = Runner(lab)
    t = target(wg_testbed)
    for name in ("alice", "bob"):
        done = await runner.run(await runner.prepare(PeerAdd.create(t, lab, {"name": name})), "")
        assert done.ok, done.outcome.message
    bob_key = parse_wg_quick_conf(wg_testbed.conf.read_text()).by_name("bob")
    assert bob_key is not None
    remove = await runner.prepare(PeerRemove.create(t, lab, {"name": "alice"}))
    assert remove.plan.diff is not None
    assert "-# alice" in remove.plan.diff and "-# bob" not in remove.plan.diff
    assert (await runner.run(remove, "alice")).ok
    conf = parse_wg_quick_conf(wg_testbed.conf.read_text())
    assert conf.by_name("alice") is None
    bob = conf.by_name("bob")
    assert bob is not None and bob.public_key == bob_key.public_key
    remove = await runner.prepare(PeerRemove.create(t, lab, {"name": "bob"}))
    assert (await runner.run(remove, "bob")).ok
    assert parse_wg_quick_conf(wg_testbed.conf.read_text()).by_key(bob.public_key) is None


async def test_psk_false_adds_no_preshared_key(wg_testbed: WgTestbed, lab: Lab) -> None:
    """`--param psk=false` arrives as the string "false": no preshared key, live or persisted."""
    runner = Runner(lab)
    t = target(wg_testbed)
    prepared = await runner.prepare(PeerAdd.create(t, lab, {"name": "nopsk", "psk": "false"}))
    argv = prepared.plan.steps[0].argv
    assert argv is not None and "preshared-key" not in argv
    result = await runner.run(prepared, "")
    assert result.ok, result.outcome.message
    assert "PresharedKey" not in str(result.outcome.details["secret_client_config"])
    added = parse_wg_quick_conf(wg_testbed.conf.read_text()).by_name("nopsk")
    assert added is not None and not added.has_psk
    live = sh("wg", "show", wg_testbed.iface, "preshared-keys")
    assert f"{added.public_key}\t(none)" in live
    with pytest.raises(ValueError, match="psk: expected true or false"):
        PeerAdd.create(t, lab, {"name": "x", "psk": "perhaps"})


def _backup_state(bed: WgTestbed) -> str | None:
    """The backup's digest (its bytes hold the server's private key: never in test output)."""
    bak = Path(f"{bed.conf}.hlcon-bak")
    return hashlib.sha256(bak.read_bytes()).hexdigest() if bak.exists() else None


async def test_rollback_leaves_the_backup_as_it_was(wg_testbed: WgTestbed, lab: Lab) -> None:
    """A rolled-back add leaves no new .hlcon-bak behind, and an older one as it was."""
    bak = Path(f"{wg_testbed.conf}.hlcon-bak")
    for earlier in (None, b"an older backup\n"):
        if earlier is None:
            bak.unlink(missing_ok=True)
        else:
            bak.write_bytes(earlier)
        runner = Runner(lab)
        prepared = await runner.prepare(PeerAdd.create(target(wg_testbed), lab, {"name": "rb"}))
        subprocess.run(["chattr", "+i", str(wg_testbed.conf)], check=True)
        try:
            result = await runner.run(prepared, "")
        finally:
            subprocess.run(["chattr", "-i", str(wg_testbed.conf)], check=True)
        assert not result.ok and result.rollback is not None and result.rollback.ok
        assert _backup_state(wg_testbed) == (
            hashlib.sha256(earlier).hexdigest() if earlier is not None else None
        )


# ---------------------------------------------------------------- issue 11 §6: the address


@pytest.mark.parametrize(
    ("wanted", "why"),
    [
        ("10.77.0.2", "taken by peer laptop"),
        ("10.77.0.1", "the interface's own address"),
        ("10.78.0.9", "outside the subnet 10.77.0.0/24"),
        ("10.77.0.255", "broadcast"),
    ],
)
async def test_a_chosen_address_is_refused_when_not_free(
    wg_testbed: WgTestbed, lab: Lab, wanted: str, why: str
) -> None:
    before = (live_peers(wg_testbed), wg_testbed.conf.read_bytes())
    action = PeerAdd.create(target(wg_testbed), lab, {"name": "chosen", "address": wanted})
    with pytest.raises(Refused, match=why):
        await Runner(lab).prepare(action)
    assert (live_peers(wg_testbed), wg_testbed.conf.read_bytes()) == before


async def test_a_chosen_free_address_is_the_peers(wg_testbed: WgTestbed, lab: Lab) -> None:
    runner = Runner(lab)
    params = {"name": "chosen-ok", "address": "10.77.0.200"}
    result = await runner.run(
        await runner.prepare(PeerAdd.create(target(wg_testbed), lab, params)), ""
    )
    assert result.ok, result.outcome.message
    assert result.outcome.details["address"] == "10.77.0.200/32"
    added = parse_wg_quick_conf(wg_testbed.conf.read_text()).by_name("chosen-ok")
    assert added is not None and added.allowed_ips == ("10.77.0.200/32",)
    assert (added.public_key, "10.77.0.200/32") in live_peers(wg_testbed)


async def test_an_interface_without_address_keeps_the_first_host(
    wg_testbed: WgTestbed, tmp_path: Path
) -> None:
    """No address visible on the link (no netns given) and no Address in the conf: the
    subnet's first host is the server's, never a new peer's."""
    bare = tmp_path / "bare.conf"
    bare.write_text(
        "\n".join(
            ln for ln in wg_testbed.conf.read_text().splitlines() if not ln.startswith("Address")
        )
        + "\n"
    )
    lab = Lab(wg_testbed.config(tmp_path / "state", peers_file=bare, netns=None))
    runner = Runner(lab)
    prepared = await runner.prepare(PeerAdd.create(target(wg_testbed), lab, {"name": "bare"}))
    runner.cancel(prepared)
    assert prepared.plan.data.address != "10.77.0.1/32"
    assert any("10.77.0.1 is kept as the server's" in n for n in prepared.plan.notes)


async def test_a_live_only_peer_is_shown_by_its_name(wg_testbed: WgTestbed, tmp_path: Path) -> None:
    """No peers_file (or a NixOS host): the name given at peer add has no `# name` comment to
    live in; hlcon remembers it in its state directory, and forgets it when the peer goes."""
    lab = Lab(wg_testbed.config(tmp_path / "state", peers_file=None))
    runner = Runner(lab)
    t = target(wg_testbed)
    added = await runner.run(
        await runner.prepare(PeerAdd.create(t, lab, {"name": "live-only"})), ""
    )
    assert added.ok, added.outcome.message
    key = str(added.outcome.details["peer"])
    try:
        assert {p.public_key: p.name for p in (await read(lab)).peers}[key] == "live-only"
        remove = await runner.prepare(PeerRemove.create(t, lab, {"peer": key}))
        assert remove.plan.confirmation.expect == "live-only"
        assert (await runner.run(remove, "live-only")).ok
        assert key not in {k for k, _ in live_peers(wg_testbed)}
        sh("wg", "set", wg_testbed.iface, "peer", key, "allowed-ips", "10.77.0.240/32")
        assert {p.public_key: p.name for p in (await read(lab)).peers}[key] == key[:8] + "…"
    finally:
        sh("wg", "set", wg_testbed.iface, "peer", key, "remove")
