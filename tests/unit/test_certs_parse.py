"""Pure parts of lab/certs.py on real captured certificates (tests/data/certs/: a lego
certificate issued by Pebble, an openssl self-signed RSA one, lego's own output), hypothesis for
bad input, and the cert health rules on readings."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actions.certs import split_command
from lab.certs import (
    cert_reading,
    hostname_matches,
    load_der,
    load_pem_chain,
    parse_endpoint,
    smtp_reply,
    verify_chain,
)
from lab.config import CertConfig, Config
from lab.health import cert_findings
from lab.model import Cert, Severity

DATA = Path(__file__).parent.parent / "data" / "certs"
AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def lego_chain() -> list:  # type: ignore[type-arg]
    return load_pem_chain((DATA / "lego-pebble-fullchain.pem").read_text())


# ---------------------------------------------------------------- captured certificates


def test_lego_fullchain_from_pebble() -> None:
    chain = lego_chain()
    assert len(chain) == 2  # leaf, then Pebble's intermediate
    cert = cert_reading(
        chain[0], name="lab.local", source="file x", at=AT, trusted=None, hostname="lab.local"
    )
    assert cert.subject == "CN=lab.local"
    assert cert.sans == ("DNS:lab.local",)
    assert cert.issuer == "CN=Pebble Intermediate CA 1a99b6"
    assert cert.serial == "3d97d69d11746c57"
    assert cert.not_after == datetime(2031, 11, 23, 11, 38, 19, tzinfo=UTC)
    assert cert.days_left == (cert.not_after - AT).days
    assert cert.key_type == "EC P-256"
    assert not cert.self_signed and cert.hostname_matches is True and not cert.expired
    assert len(cert.fingerprint) == 64
    other = cert_reading(chain[0], name="x", source="s", at=AT, trusted=None, hostname="lab.lan")
    assert other.hostname_matches is False


def test_lego_chain_verifies_to_its_intermediate_and_not_after_expiry() -> None:
    leaf, intermediate = lego_chain()
    assert verify_chain([leaf], [intermediate], AT) is None
    assert verify_chain([leaf], [], AT) == "no trusted roots"
    late = verify_chain([leaf], [intermediate], datetime(2032, 1, 1, tzinfo=UTC))
    assert late == "certificate has expired"
    early = verify_chain([leaf], [intermediate], datetime(2020, 1, 1, tzinfo=UTC))
    assert early == "certificate is not yet valid"


def test_openssl_self_signed_rsa() -> None:
    (leaf,) = load_pem_chain((DATA / "openssl-selfsigned-rsa.pem").read_text())
    cert = cert_reading(leaf, name="nas", source="s", at=AT, trusted=False, hostname="nas.lab")
    assert cert.self_signed and cert.key_type == "RSA 2048"
    assert cert.subject == "O=Homelab,CN=nas.lab" and cert.issuer == cert.subject
    assert cert.sans == ("DNS:nas.lab", "DNS:*.nas.lab", "IP:192.168.1.10")
    assert verify_chain([leaf], [leaf], AT) is None  # trusted only when pinned as a root
    (other,) = lego_chain()[1:]
    why = verify_chain([leaf], [other], AT)
    assert why is not None and why.startswith("chain does not verify") and "<" not in why


def test_days_left_truncates_toward_zero_and_expired_is_a_state() -> None:
    (leaf,) = load_pem_chain((DATA / "openssl-selfsigned-rsa.pem").read_text())
    end = leaf.not_valid_after_utc
    for at, days in [
        (end - timedelta(days=5, hours=1), 5),
        (end - timedelta(hours=23), 0),
        (end + timedelta(hours=23), 0),
        (end + timedelta(days=10, hours=1), -10),
    ]:
        cert = cert_reading(leaf, name="n", source="s", at=at, trusted=None)
        assert cert.days_left == days
        assert cert.expired is (at >= end)


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("nas.lab", True),
        ("NAS.LAB.", True),
        ("x.nas.lab", True),
        ("a.b.nas.lab", False),  # a wildcard covers one label
        ("nas.lab.evil", False),
        ("192.168.1.10", True),
        ("192.168.1.11", False),
        ("lab", False),
    ],
)
def test_hostname_matches(host: str, ok: bool) -> None:
    names = ("DNS:nas.lab", "DNS:*.nas.lab", "IP:192.168.1.10", "email:a@nas.lab")
    assert hostname_matches(names, host) is ok


def test_lego_output_captured_says_why_it_failed() -> None:
    # What a failed renew's outcome quotes: the tool's last line, verbatim.
    text = (DATA / "lego-renew-pebble-down.stderr").read_text()
    assert "connection refused" in text.strip().splitlines()[-1]
    assert "Server responded with a certificate" in (DATA / "lego-renew.stderr").read_text()


# ---------------------------------------------------------------- endpoints and replies


@pytest.mark.parametrize(
    ("text", "starttls", "want"),
    [
        ("fufu.land:443", None, ("fufu.land", 443)),
        ("fufu.land", None, ("fufu.land", 443)),
        ("mail.lan", "smtp", ("mail.lan", 25)),
        ("mail.lan:587", "smtp", ("mail.lan", 587)),
        ("mail.lan", "imap", ("mail.lan", 143)),
        ("[::1]:8443", None, ("::1", 8443)),
        ("127.0.0.1:8443", None, ("127.0.0.1", 8443)),
    ],
)
def test_parse_endpoint(text: str, starttls: str | None, want: tuple[str, int]) -> None:
    assert parse_endpoint(text, starttls) == want


@pytest.mark.parametrize(
    ("text", "starttls", "says"),
    [
        ("", None, "expected HOST:PORT"),
        ("host:0", None, "1–65535"),
        ("host:https", None, "1–65535"),
        ("::1:443", None, "[ADDR]:PORT"),
        ("[nope]:443", None, "expected [IPv6]:PORT"),
        ("x; touch /tmp/pwned:25", None, "expected HOST:PORT"),
        ("$(id):25", None, "not a host name"),
        ("host:25", "pop3", "starttls 'pop3'"),
    ],
)
def test_parse_endpoint_rejects(text: str, starttls: str | None, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("[", r"\[").replace("(", r"\(")):
        parse_endpoint(text, starttls)


def test_smtp_reply() -> None:
    code, texts = smtp_reply(["250-mail.lab", "250-SIZE 33554432", "250-STARTTLS", "250 HELP"])
    assert code == 250 and texts == ["mail.lab", "SIZE 33554432", "STARTTLS", "HELP"]
    with pytest.raises(ValueError, match="mixes codes"):
        smtp_reply(["250-a", "220 b"])
    with pytest.raises(ValueError, match="not an SMTP reply line"):
        smtp_reply(["SSH-2.0-OpenSSH_9.2p1"])


def test_split_command() -> None:
    assert split_command("systemctl start 'acme-fufu.land.service'", "renew", "c") == [
        "systemctl",
        "start",
        "acme-fufu.land.service",
    ]
    with pytest.raises(ValueError, match=r"cert c: renew command .* does not parse"):
        split_command("lego 'unbalanced", "renew", "c")
    with pytest.raises(ValueError, match="cert c: reload command is empty"):
        split_command("   ", "reload", "c")


# ---------------------------------------------------------------- bad input


@given(st.text(max_size=200), st.sampled_from([None, "smtp", "imap"]))
def test_parse_endpoint_never_crashes(text: str, starttls: str | None) -> None:
    try:
        host, port = parse_endpoint(text, starttls)
    except ValueError as exc:
        assert str(exc)
    else:
        assert host and 0 < port < 65536


@given(st.text(max_size=400))
def test_load_pem_chain_garbage_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        load_pem_chain(text)


@given(st.binary(max_size=300))
def test_pem_block_of_garbage_is_a_value_error(body: bytes) -> None:
    import base64

    text = (
        "-----BEGIN CERTIFICATE-----\n"
        + base64.encodebytes(body).decode()
        + "-----END CERTIFICATE-----\n"
    )
    with pytest.raises(ValueError, match="certificate 1 of 1 is not valid"):
        load_pem_chain(text)


@given(st.binary(max_size=300))
def test_load_der_garbage_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="not valid DER"):
        load_der(data)


@given(st.lists(st.text(max_size=40), max_size=5))
def test_smtp_reply_never_crashes(lines: list[str]) -> None:
    try:
        code, texts = smtp_reply(lines)
    except ValueError as exc:
        assert str(exc)
    else:
        assert 0 <= code <= 999 and len(texts) == len(lines)


def test_truncated_lego_chain_names_the_bad_block() -> None:
    text = (DATA / "lego-pebble-fullchain.pem").read_text()
    first, rest = text.split("-----END CERTIFICATE-----", 1)
    broken = first[: len(first) // 2] + "\n-----END CERTIFICATE-----" + rest
    with pytest.raises(ValueError, match="certificate 1 of 2 is not valid"):
        load_pem_chain(broken)


# ---------------------------------------------------------------- health rules


def reading(**kw: object) -> Cert:
    (leaf,) = load_pem_chain((DATA / "openssl-selfsigned-rsa.pem").read_text())
    base = cert_reading(leaf, name="web", source="tls web:443", at=AT, trusted=True)
    base = dataclasses.replace(base, self_signed=False, hostname="web", hostname_matches=True)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def findings(cert: Cert, **cfg: object) -> list[tuple[Severity, str, str]]:
    config = Config(certs=(CertConfig(name="web", endpoint="web:443", **cfg),))  # type: ignore[arg-type]
    return [
        (f.severity, f.rule, f.message) for f in cert_findings(cert, config, ("cert", "web"), AT)
    ]


def expiring_in(days: float) -> Cert:
    return reading(not_after=AT + timedelta(days=days, hours=1))


def test_windows() -> None:
    assert findings(expiring_in(60)) == []
    assert findings(expiring_in(22)) == []
    ((sev, rule, msg),) = findings(expiring_in(21))
    assert (sev, rule) == (Severity.WARNING, "cert-warn")
    assert "expires in 21 days" in msg and "warning at 21" in msg
    ((sev, rule, msg),) = findings(expiring_in(7))
    assert (sev, rule) == (Severity.CRITICAL, "cert-critical") and "critical at 7" in msg
    ((sev, rule, _),) = findings(expiring_in(0))
    assert (sev, rule) == (Severity.CRITICAL, "cert-critical")
    # per-entry windows
    assert [r for _, r, _ in findings(expiring_in(25), warn_days=30)] == ["cert-warn"]
    assert [r for _, r, _ in findings(expiring_in(10), critical_days=14)] == ["cert-critical"]


def test_expired_is_critical_and_not_also_untrusted() -> None:
    cert = reading(not_after=AT - timedelta(days=3), trusted=False, trust_error="expired")
    ((sev, rule, msg),) = findings(cert)
    assert (sev, rule) == (Severity.CRITICAL, "cert-expired") and "expired 3d ago" in msg


def test_untrusted_and_self_signed() -> None:
    ((sev, rule, msg),) = findings(
        reading(
            not_after=AT + timedelta(days=90), trusted=False, trust_error="unable to get issuer"
        )
    )
    assert (sev, rule) == (Severity.WARNING, "cert-untrusted") and "unable to get issuer" in msg
    ((_, _, msg),) = findings(
        reading(not_after=AT + timedelta(days=90), trusted=False, self_signed=True)
    )
    assert msg.endswith("is not trusted: self-signed")
    assert findings(reading(not_after=AT + timedelta(days=90), trusted=None)) == []


def test_hostname_not_in_sans() -> None:
    cert = reading(not_after=AT + timedelta(days=90), hostname="web.lan", hostname_matches=False)
    ((sev, rule, msg),) = findings(cert)
    assert (sev, rule) == (Severity.CRITICAL, "cert-hostname")
    assert "does not cover web.lan" in msg and "DNS:nas.lab" in msg
    unchecked = reading(not_after=AT + timedelta(days=90), hostname=None, hostname_matches=None)
    assert findings(unchecked) == []
