"""Frozen certificate readings for the certs pane's snapshots and screenshots (catalog.py).

A plausible homelab: a Let's Encrypt site cert, a mail server's STARTTLS cert about to expire, a
self-signed NAS cert in a file, an expired one, and an endpoint that refuses.
"""

from __future__ import annotations

from datetime import timedelta

from lab.config import CertConfig, Config
from lab.model import Cert
from tests.tui.fixtures import NOW, fault, make_context
from tui.app import HlconApp


def demo_cert(
    name: str,
    source: str,
    *,
    days: float,
    issuer: str = "CN=R11,O=Let's Encrypt,C=US",
    trusted: bool | None = True,
    self_signed: bool = False,
    hostname_matches: bool | None = True,
    serial: str = "4a1f9c0b7e3d2a11",
    trust_error: str = "self-signed certificate",
) -> Cert:
    at = NOW - timedelta(seconds=20)
    not_after = NOW + timedelta(days=days, hours=3)
    return Cert(
        at=at,
        name=name,
        source=source,
        subject=f"CN={name}",
        sans=(f"DNS:{name}", f"DNS:*.{name}"),
        issuer=f"CN={name}" if self_signed else issuer,
        serial=serial,
        not_before=not_after - timedelta(days=90),
        not_after=not_after,
        days_left=int((not_after - at).total_seconds() / 86400),
        key_type="EC P-256",
        fingerprint="9f" * 32,
        self_signed=self_signed,
        trusted=trusted,
        trust_error="" if trusted else trust_error,
        hostname=name,
        hostname_matches=hostname_matches,
    )


def certs_app() -> HlconApp:
    config = Config(
        certs=(
            CertConfig(name="fufu.land", endpoint="fufu.land:443", renew="lego renew"),
            CertConfig(name="mail.fufu.land", endpoint="mail.fufu.land:25", starttls="smtp"),
            CertConfig(name="nas.lab", file="/etc/ssl/nas.pem", host="nas"),  # type: ignore[arg-type]
            CertConfig(name="old.lab", endpoint="old.lab:8443"),
            CertConfig(name="vpn.fufu.land", endpoint="vpn.fufu.land:443"),
        )
    )
    readings = [
        (("cert", "fufu.land"), demo_cert("fufu.land", "tls fufu.land:443", days=64)),
        (
            ("cert", "mail.fufu.land"),
            demo_cert("mail.fufu.land", "smtp+starttls mail.fufu.land:25", days=5),
        ),
        (
            ("cert", "nas.lab"),
            demo_cert(
                "nas.lab", "file nas:/etc/ssl/nas.pem", days=19, trusted=False, self_signed=True
            ),
        ),
        (
            ("cert", "old.lab"),
            demo_cert(
                "old.lab",
                "tls old.lab:8443",
                days=-12,
                trusted=False,
                trust_error="certificate has expired",
            ),
        ),
    ]
    faults = [
        (
            ("cert", "vpn.fufu.land"),
            fault(
                "endpoint refused", "cert:vpn.fufu.land", "vpn.fufu.land:443: connection refused"
            ),
        )
    ]
    return HlconApp(make_context(config=config, readings=readings, faults=faults), initial_pane=6)
