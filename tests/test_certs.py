"""Certificates against real parts (tests/testbed/acme.py): TLS, SMTP STARTTLS (aiosmtpd), IMAP
STARTTLS, PEM files; bad endpoints as Faults; renew through lego against Pebble, via the Runner,
with the audit log holding serial and notAfter from before and after."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from actions import registry
from actions.audit import AuditRecord
from actions.base import Target
from actions.certs import CertRenew
from actions.runner import Runner, RunResult
from lab import certs
from lab.config import CertConfig, Config, ConsoleConfig, HostConfig
from lab.health import cert_findings
from lab.model import Cert
from lab.poller import Poller
from lab.secrets import SecretRef
from lab.store import Store
from lab.wiring import Lab
from tests.testbed import require_tools
from tests.testbed.acme import (
    LEGO_DOMAIN,
    AcmeLab,
    BadEndpoints,
    CertServer,
    CertServers,
    SmtpStartTls,
    free_port,
    past_issuing_second,
)
from tests.testbed.acme import _wait_port as wait_port
from tests.testbed.sshd import SshdLab

pytestmark = pytest.mark.testbed


def make_lab(tmp_path: Path, *entries: CertConfig, timeout: float = 4.0) -> Lab:
    console = ConsoleConfig(timeout=timeout, state_dir=tmp_path / "state")
    return Lab(Config(source="test_certs", console=console, certs=entries))


async def read(lab: Lab, name: str) -> Cert:
    reading = await certs.reader_for(lab, certs.find(lab, name)).read()
    assert isinstance(reading, Cert)
    return reading


# ---------------------------------------------------------------- days left, every way


TRANSPORTS = ("tls", "smtp", "imap", "file")


def entry(servers: CertServers, case: str, transport: str, **kw: object) -> CertConfig:
    c = servers.cases[case]
    name = f"{case}-{transport}"
    common: dict[str, object] = {"name": name, "ca_file": servers.ca_file, **kw}
    if transport == "file":
        return CertConfig(file=c.cert_file, sni=servers.hostname, **common)  # type: ignore[arg-type]
    by_transport: dict[str, CertServer | SmtpStartTls] = {
        "tls": c.tls,
        "smtp": c.smtp,
        "imap": c.imap,
    }
    endpoint = by_transport[transport].endpoint
    starttls = None if transport == "tls" else transport
    return CertConfig(endpoint=endpoint, sni=servers.hostname, starttls=starttls, **common)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", ["expired", "5-day", "90-day"])
async def test_days_left_over_every_transport(
    cert_servers: CertServers, tmp_path: Path, case: str, transport: str
) -> None:
    cfg = entry(cert_servers, case, transport)
    lab = make_lab(tmp_path, cfg)
    cert = await read(lab, cfg.name)
    want = cert_servers.cases[case].days_left
    assert cert.days_left == want
    assert cert.expired is (want < 0)
    assert cert.subject == f"CN=svc.lab ({case})"
    assert cert.sans == ("DNS:svc.lab", "DNS:*.svc.lab", "IP:127.0.0.1")
    assert cert.issuer == "CN=hlcon Test Root CA"
    assert cert.key_type == "EC P-256" and not cert.self_signed
    assert cert.hostname == "svc.lab" and cert.hostname_matches is True
    # Trusted through ca_file while valid; an expired chain fails verification.
    assert cert.trusted is (want >= 0), cert.trust_error
    if want < 0:
        assert "expired" in cert.trust_error
    assert cert.source.startswith(
        {"tls": "tls 127.0.0.1:", "smtp": "smtp+starttls 127.0.0.1:", "imap": "imap+starttls "}.get(
            transport, "file local:"
        )
    )
    rules = [f.rule for f in cert_findings(cert, lab.config, ("cert", cfg.name), cert.at)]
    assert rules == {"expired": ["cert-expired"], "5-day": ["cert-critical"], "90-day": []}[case]


async def test_untrusted_without_the_ca_file(cert_servers: CertServers, tmp_path: Path) -> None:
    for transport in ("tls", "file"):
        cfg = entry(cert_servers, "90-day", transport, ca_file=None)
        lab = make_lab(tmp_path, cfg)
        cert = await read(lab, cfg.name)
        assert cert.trusted is False and cert.trust_error
        (finding,) = cert_findings(cert, lab.config, ("cert", cfg.name), cert.at)
        assert finding.rule == "cert-untrusted" and "not trusted" in finding.message


async def test_self_signed_and_wrong_host(bad_endpoints: BadEndpoints, tmp_path: Path) -> None:
    lab = make_lab(
        tmp_path,
        CertConfig(name="ss", endpoint=bad_endpoints.self_signed.endpoint, sni="svc.lab"),
        CertConfig(name="wh", endpoint=bad_endpoints.wrong_host.endpoint, sni="svc.lab"),
    )
    ss = await read(lab, "ss")
    assert ss.self_signed and ss.trusted is False and ss.hostname_matches is True
    (f,) = cert_findings(ss, lab.config, ("cert", "ss"), ss.at)
    assert f.rule == "cert-untrusted" and "self-signed" in f.message
    wh = await read(lab, "wh")
    assert wh.hostname_matches is False and wh.sans == ("DNS:other.lab",)
    rules = {f.rule for f in cert_findings(wh, lab.config, ("cert", "wh"), wh.at)}
    assert "cert-hostname" in rules


# ---------------------------------------------------------------- faults


async def test_bad_endpoints_become_faults(
    bad_endpoints: BadEndpoints, cert_servers: CertServers, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    entries = {
        "refused": CertConfig(name="refused", endpoint=bad_endpoints.refused),
        "tarpit": CertConfig(name="tarpit", endpoint=bad_endpoints.tarpit),
        "plaintext": CertConfig(name="plaintext", endpoint=bad_endpoints.plaintext),
        "smtp-on-ssh": CertConfig(
            name="smtp-on-ssh", endpoint=bad_endpoints.plaintext, starttls="smtp"
        ),
        "imap-on-tls": CertConfig(
            name="imap-on-tls", endpoint=cert_servers.cases["90-day"].smtp.endpoint, starttls="imap"
        ),
        "missing-file": CertConfig(name="missing-file", file=tmp_path / "nope.pem"),
        "garbage-file": CertConfig(name="garbage-file", file=garbage),
        "both": CertConfig(name="both", endpoint="127.0.0.1:1", file=garbage),
        "bad-port": CertConfig(name="bad-port", endpoint="127.0.0.1:99999"),
        "other-host": CertConfig(name="other-host", file=garbage, host="nas"),
    }
    lab = make_lab(tmp_path, *entries.values(), timeout=1.5)
    store = Store()
    poller = Poller(store, lab.readers())
    await poller.poll_all()
    faults = {}
    for name in entries:
        e = store.get(("cert", name))
        assert e is not None and e.reading is None and e.fault is not None, name
        faults[name] = (e.fault.what, e.fault.why)
    assert faults["refused"] == ("endpoint refused", f"{bad_endpoints.refused}: connection refused")
    assert faults["tarpit"][0] == "endpoint timed out"
    assert faults["tarpit"][1].startswith(bad_endpoints.tarpit)
    assert faults["plaintext"][0] == "no TLS"
    assert "WRONG_VERSION_NUMBER" in faults["plaintext"][1].upper()
    assert faults["smtp-on-ssh"][0] == "STARTTLS failed"
    assert "SSH-2.0" in faults["smtp-on-ssh"][1]
    assert faults["imap-on-tls"] == (
        "STARTTLS failed",
        f"{cert_servers.cases['90-day'].smtp.endpoint}: not an IMAP greeting: "
        + repr(faults["imap-on-tls"][1].split("greeting: ", 1)[1][1:-1]),
    )
    assert faults["missing-file"][0] == "file unreadable"
    assert "No such file" in faults["missing-file"][1]
    assert faults["garbage-file"][0] == "not a certificate"
    assert f"local:{garbage}" in faults["garbage-file"][1]
    assert faults["both"] == (
        "bad config",
        "cert both: give exactly one of endpoint = … or file = …",
    )
    assert faults["bad-port"][0] == "bad config" and "1–65535" in faults["bad-port"][1]
    assert faults["other-host"][0] == "bad config" and "'nas'" in faults["other-host"][1]


# ---------------------------------------------------------------- ACME: Pebble + lego


def renew_entry(acme: AcmeLab, **kw: object) -> CertConfig:
    return CertConfig(
        name=LEGO_DOMAIN,
        endpoint=acme.endpoint,
        sni=LEGO_DOMAIN,
        renew=acme.renew_command,
        ca_file=acme.root_ca,
        renew_timeout=60.0,
        **kw,  # type: ignore[arg-type]
    )


async def test_lego_certificate_from_pebble(acme_lab: AcmeLab, tmp_path: Path) -> None:
    lab = make_lab(tmp_path, renew_entry(acme_lab))
    served = await read(lab, LEGO_DOMAIN)
    assert served.issuer.startswith("CN=Pebble Intermediate CA")
    assert served.sans == (f"DNS:{LEGO_DOMAIN}",) and served.hostname_matches
    assert served.trusted is True, served.trust_error  # against Pebble's root (ca_file)
    filed = await read(
        make_lab(
            tmp_path,
            CertConfig(name=LEGO_DOMAIN, file=acme_lab.cert_file, ca_file=acme_lab.root_ca),
        ),
        LEGO_DOMAIN,
    )
    assert filed.serial == served.serial and filed.trusted is True, filed.trust_error


async def test_renew_runs_the_confirmed_step(acme_lab: AcmeLab, tmp_path: Path) -> None:
    """What was confirmed is what runs: execute runs the plan's own renew step (here wrapped
    so it leaves a marker), not a second copy of the command kept in the payload."""
    lab = make_lab(tmp_path, renew_entry(acme_lab))
    before = await read(lab, LEGO_DOMAIN)
    await past_issuing_second(before.not_before)
    runner = Runner(lab)
    prepared = await runner.prepare(registry.build("renew", f"cert:{LEGO_DOMAIN}", lab, {}))
    renew, *rest = prepared.plan.steps
    assert renew.argv is not None
    marker = tmp_path / "the-confirmed-step-ran"
    wrapped = ("sh", "-c", 'touch "$0" && exec "$@"', str(marker), *renew.argv)
    plan = dataclasses.replace(
        prepared.plan, steps=(dataclasses.replace(renew, argv=wrapped), *rest)
    )
    result = await runner.run(dataclasses.replace(prepared, plan=plan), answer="")
    assert result.ok, result.outcome.message
    assert marker.exists()


def records_of(runner: Runner, result: RunResult) -> list[AuditRecord]:
    return [r for r in runner.audit.records() if r.seq == result.seq]


async def test_renew_through_runner_changes_served_cert(acme_lab: AcmeLab, tmp_path: Path) -> None:
    lab = make_lab(tmp_path, renew_entry(acme_lab))
    before = await read(lab, LEGO_DOMAIN)
    await past_issuing_second(before.not_before)
    runner = Runner(lab)
    action = registry.build("renew", f"cert:{LEGO_DOMAIN}", lab, {})
    assert isinstance(action, CertRenew)
    prepared = await runner.prepare(action)
    plan = prepared.plan
    assert plan.steps[0].argv == tuple(shlex.split(acme_lab.renew_command))
    assert plan.data.before is not None
    assert plan.data.before.serial == before.serial
    lines: list[str] = []
    result = await runner.run(prepared, answer="", progress=lambda _f, m: lines.append(m))
    assert result.ok, result.outcome.message
    after = await read(lab, LEGO_DOMAIN)
    assert after.serial != before.serial and after.not_after > before.not_after
    assert any("Server responded with a certificate" in ln for ln in lines)
    (outcome,) = records_of(runner, result)
    assert outcome.phase == "outcome" and outcome.result is not None
    details = outcome.result["details"]
    assert details["before"]["serial"] == before.serial
    assert details["before"]["not_after"] == before.not_after.isoformat()
    assert details["after"]["serial"] == after.serial
    assert details["after"]["not_after"] == after.not_after.isoformat()
    assert runner.audit.verify().ok


async def test_failed_renew_is_reported_audited_and_leaves_the_old_cert(
    fresh_acme_lab: AcmeLab, tmp_path: Path
) -> None:
    acme = fresh_acme_lab
    lab = make_lab(tmp_path, renew_entry(acme))
    before = await read(lab, LEGO_DOMAIN)
    old_files = {p: p.read_bytes() for p in (acme.cert_file, acme.key_file)}
    acme.pebble.stop()
    runner = Runner(lab)
    prepared = await runner.prepare(CertRenew.create(Target("cert", LEGO_DOMAIN), lab, {}))
    result = await runner.run(prepared, answer="y")
    assert not result.ok
    message = result.outcome.message
    assert "renew command exited 1" in message and "connection refused" in message
    (outcome,) = records_of(runner, result)
    assert outcome.result is not None and outcome.result["ok"] is False
    assert outcome.result["message"] == message
    assert outcome.result["details"]["before"]["serial"] == before.serial
    assert any("connection refused" in ln for ln in outcome.result["details"]["output_tail"])
    assert {p: p.read_bytes() for p in old_files} == old_files
    assert (await read(lab, LEGO_DOMAIN)).serial == before.serial


async def test_renew_that_changes_nothing_fails_verify_and_no_shell_runs(
    cert_servers: CertServers, tmp_path: Path
) -> None:
    odd = tmp_path / "$(id); touch pwned"
    cfg = entry(cert_servers, "90-day", "tls", renew=f"touch {shlex.quote(str(odd))}")
    lab = make_lab(tmp_path, cfg)

    class QuickCertRenew(CertRenew):
        verify_within = 1.0  # the served cert cannot change here: don't wait 30 s to see it

    runner = Runner(lab)
    prepared = await runner.prepare(QuickCertRenew.create(Target("cert", cfg.name), lab, {}))
    result = await runner.run(prepared, "")
    assert not result.ok and "still has serial" in result.outcome.message
    assert odd.exists() and not (tmp_path / "pwned").exists()


async def test_unknown_and_unrenewable_certs_are_refused(
    cert_servers: CertServers, tmp_path: Path
) -> None:
    lab = make_lab(tmp_path, entry(cert_servers, "90-day", "tls"))
    with pytest.raises(ValueError, match="no certificate named '\\$\\(id\\)'"):
        registry.build("renew", "cert:$(id)", lab, {})
    runner = Runner(lab)
    from actions.runner import Refused

    with pytest.raises(Refused, match="has no renew command"):
        await runner.prepare(CertRenew.create(Target("cert", "90-day-tls"), lab, {}))


# ---------------------------------------------------------------- the CLI, as a user runs it

REPO = Path(__file__).resolve().parents[1]
CLI = "import sys; from tui.cli import main; sys.exit(main(sys.argv[1:]))"


def hlcon(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HLCON_CONFIG"}
    return subprocess.run(
        [sys.executable, "-c", CLI, "--config", str(config), *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_cli_dry_run_then_renew_then_status(acme_lab: AcmeLab, tmp_path: Path) -> None:
    config = tmp_path / "hlcon.toml"
    config.write_text(
        f'[console]\nstate_dir = "{tmp_path / "state"}"\n\n'
        f'[[certs]]\nname = "{LEGO_DOMAIN}"\nendpoint = "{acme_lab.endpoint}"\n'
        f'sni = "{LEGO_DOMAIN}"\nrenew = {json.dumps(acme_lab.renew_command)}\n'
        f'ca_file = "{acme_lab.root_ca}"\n'
    )
    lab = make_lab(tmp_path, renew_entry(acme_lab))
    before = await read(lab, LEGO_DOMAIN)
    dry = hlcon(config, "do", "renew", f"cert:{LEGO_DOMAIN}", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"serial {before.serial}" in dry.stdout and "lego" in dry.stdout
    assert (await read(lab, LEGO_DOMAIN)).serial == before.serial
    await past_issuing_second(before.not_before)
    done = hlcon(config, "do", "renew", f"cert:{LEGO_DOMAIN}", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    after = await read(lab, LEGO_DOMAIN)
    assert after.serial != before.serial
    assert f"serial {before.serial} → {after.serial}" in done.stdout
    status = hlcon(config, "status")
    line = next(ln for ln in status.stdout.splitlines() if f"cert:{LEGO_DOMAIN}" in ln)
    assert "days left" in line and "trusted" in line and "Pebble Intermediate CA" in line


# ---------------------------------------------------------------- files on another host (SSH)


async def test_file_on_an_ssh_host_read_and_renewed(
    sshd_hosts: SshdLab, cert_servers: CertServers, tmp_path: Path
) -> None:
    """The file reader and the renew run through the host's SSH Executor (as the unprivileged
    test user): read, a permission fault, and a renew verified on the filed certificate."""
    shared = Path(tempfile.mkdtemp(prefix="hlcon-certs-ssh-"))
    try:
        shared.chmod(0o777)
        live, newer = shared / "live cert.pem", shared / "$(id) next.pem"
        live.write_bytes(cert_servers.cases["5-day"].cert_file.read_bytes())
        newer.write_bytes(cert_servers.cases["90-day"].cert_file.read_bytes())
        for p in (live, newer):
            p.chmod(0o666)
        h = sshd_hosts.hosts[0]
        host = HostConfig(
            name=h.name,
            address=h.address,
            port=h.port,
            user=sshd_hosts.user,
            identity=sshd_hosts.identity,
            known_hosts=sshd_hosts.known_hosts,
            connect_timeout=3.0,
        )
        renew = shlex.join(["cp", str(newer), str(live)])
        entries = (
            CertConfig(name="remote", file=live, host=h.name, sni="svc.lab", renew=renew),
            CertConfig(name="private", file=cert_servers.cases["5-day"].key_file, host=h.name),
        )
        console = ConsoleConfig(timeout=5.0, state_dir=tmp_path / "state")
        lab = Lab(Config(source="test_certs", console=console, hosts=(host,), certs=entries))
        try:
            before = await read(lab, "remote")
            assert before.days_left == 5 and before.source == f"file {h.name}:{live}"
            store = Store()
            await Poller(store, [certs.reader_for(lab, entries[1])]).poll_all()
            fault = store.get(("cert", "private"))
            assert fault is not None and fault.fault is not None
            assert fault.fault.what == "file unreadable" and "Permission denied" in fault.fault.why
            runner = Runner(lab)
            prepared = await runner.prepare(CertRenew.create(Target("cert", "remote"), lab, {}))
            assert prepared.plan.steps[0].host == h.name
            result = await runner.run(prepared, "")
            assert result.ok, result.outcome.message
            after = await read(lab, "remote")
            assert after.days_left == 90 and after.serial != before.serial
        finally:
            await lab.close()
    finally:
        shutil.rmtree(shared, ignore_errors=True)


# ---------------------------------------------------------------- secrets for the renew command


async def test_renew_env_secret_reaches_the_command_but_no_record(
    cert_servers: CertServers, tmp_path: Path
) -> None:
    token = "tok-$(id)-s3cr3t-dns01"
    token_file = tmp_path / "dns-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    # The command echoes its token (as a careless tool might) and fails.
    renew = "sh -c 'echo using token $HLCON_DNS_TOKEN >&2; exit 3'"
    ok_ref = {"HLCON_DNS_TOKEN": SecretRef.parse(f"file:{token_file}")}
    bad_ref = {"HLCON_DNS_TOKEN": SecretRef.parse("env:HLCON_TEST_NEVER_SET")}
    lab = make_lab(
        tmp_path,
        entry(cert_servers, "90-day", "tls", renew=renew, env=ok_ref),
        dataclasses.replace(entry(cert_servers, "5-day", "tls", renew=renew), env=bad_ref),
    )
    runner = Runner(lab)
    lines: list[str] = []
    prepared = await runner.prepare(CertRenew.create(Target("cert", "90-day-tls"), lab, {}))
    assert f"HLCON_DNS_TOKEN from file:{token_file}" in prepared.plan.steps[0].description
    result = await runner.run(prepared, "", progress=lambda _f, m: lines.append(m))
    assert not result.ok
    assert "renew command exited 3" in result.outcome.message
    assert "using token ******" in result.outcome.message
    assert any("using token ******" in ln for ln in lines)
    assert all(token not in ln for ln in lines)

    prepared = await runner.prepare(CertRenew.create(Target("cert", "5-day-tls"), lab, {}))
    result = await runner.run(prepared, "")
    assert not result.ok
    assert "env HLCON_DNS_TOKEN" in result.outcome.message
    assert "HLCON_TEST_NEVER_SET" in result.outcome.message
    assert token not in runner.audit.path.read_text()


# ---------------------------------------------------------------- an old device


async def test_tls10_only_device_is_still_read(cert_servers: CertServers, tmp_path: Path) -> None:
    """An old printer or NAS speaking only TLS 1.0 (openssl s_server -tls1): its certificate is
    still read; reading trusts nothing, and the trust check says what it can."""
    require_tools("openssl")
    case = cert_servers.cases["90-day"]
    port = free_port()
    argv = ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-www", "-quiet"]
    argv += ["-cert", str(case.cert_file), "-key", str(case.key_file)]
    argv += ["-tls1", "-cipher", "ALL:@SECLEVEL=0"]
    server = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, server)
        cfg = CertConfig(name="printer", endpoint=f"127.0.0.1:{port}", sni="svc.lab")
        cert = await read(make_lab(tmp_path, cfg), "printer")
        assert cert.days_left == 90 and cert.hostname_matches is True
        # The verifying handshake wants TLS 1.2: trust is unknown, and says why.
        assert cert.trusted is None and cert.trust_error.startswith("trust check failed: ")
    finally:
        server.terminate()
        server.wait(10)
