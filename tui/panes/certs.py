"""Pane 6: certificates — days left, trust and hostname per served endpoint or PEM file.

One row per [[certs]] entry, soonest expiry first (faults and waiting rows last). Colours follow
the entry's own warn/critical windows. Keys: R renews (the configured renew command, through
the runner: plan, confirm, verify the served serial changed), Enter shows every field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text

from lab.config import CertConfig, Config
from lab.model import Cert
from lab.store import Entry
from tui.format import ago
from tui.panes.base import Row, TablePane
from tui.screens.detail import TextDetail, fields_text

if TYPE_CHECKING:
    from datetime import datetime

    from actions.base import Action


def left_text(cert: Cert, cfg: CertConfig | None, now: datetime) -> Text:
    days = cert.days_left_at(now)
    warn = cfg.warn_days if cfg else 21
    critical = cfg.critical_days if cfg else 7
    if cert.not_after <= now:
        return Text(f"expired {ago(now, cert.not_after)}", "bold red")
    style = "bold red" if days <= critical else "yellow" if days <= warn else "green"
    return Text(f"{days}d", style)


def trust_text(cert: Cert) -> Text:
    out = Text()
    if cert.trusted is True:
        out.append("trusted", "green")
    elif cert.trusted is False:
        out.append("self-signed" if cert.self_signed else "UNTRUSTED", "bold yellow")
    else:
        out.append("unknown", "dim")
    if cert.hostname_matches is False:
        out.append(" ≠host", "bold red")
    return out


def cert_detail(name: str, entry: Entry, now: datetime) -> Text:
    text = Text()
    text.append(f"cert:{name}\n", "bold")
    if entry.fault is not None:
        f = entry.fault
        text.append(f"⚠ {f.what}: {f.why} (since {ago(now, f.since)} ago)\n", "bold red")
    cert = entry.reading if isinstance(entry.reading, Cert) else None
    if cert is None:
        return text
    trust = (
        "yes"
        if cert.trusted
        else f"no: {cert.trust_error}"
        if cert.trusted is False
        else f"unknown ({cert.trust_error})"
    )
    host = (
        "not checked (set sni = … for files)"
        if cert.hostname_matches is None
        else f"{cert.hostname} {'is' if cert.hostname_matches else 'is NOT'} in the SANs"
    )
    fields = [
        ("Source", cert.source),
        ("Subject", cert.subject),
        ("SANs", ", ".join(cert.sans) or "none"),
        ("Issuer", cert.issuer),
        ("Serial", cert.serial),
        ("Not before", f"{cert.not_before:%Y-%m-%d %H:%M:%S} UTC"),
        ("Not after", f"{cert.not_after:%Y-%m-%d %H:%M:%S} UTC"),
        ("Days left", str(cert.days_left_at(now))),
        ("Key", cert.key_type),
        ("Self-signed", "yes" if cert.self_signed else "no"),
        ("Trusted", trust),
        ("Hostname", host),
        ("SHA-256", cert.fingerprint),
        ("Read", f"{ago(now, cert.at)} ago"),
    ]
    return fields_text(fields, text)


class CertDetail(TextDetail):
    pass


class CertsPane(TablePane):
    NUMBER = 6
    PANE_ID = "certs"
    TITLE = "Certs"
    DOMAINS = ("cert",)
    CONFIG_SECTION = "[[certs]]"
    COLUMNS = ("Certificate", "Left", "Expires", "Trust", "Issuer", "Source")
    ACTION_KEYS: ClassVar[dict[str, str]] = {"R": "renew"}

    @classmethod
    def configured(cls, config: Config) -> bool:
        return bool(config.certs)

    def empty_message(self) -> str:
        return "no certificates read yet"

    def rows(self) -> Iterable[Row]:
        now = self.now()
        configs = {c.name: c for c in self.ctx.config.certs}

        def order(e: Entry) -> tuple[int, float, str]:
            if isinstance(e.reading, Cert) and e.fault is None:
                return (0, e.reading.not_after.timestamp(), e.key[1])
            return (1, 0.0, e.key[1])

        for entry in sorted(self.entries(), key=order):
            name = entry.key[1]
            cfg = configs.get(name)
            cert = entry.reading if isinstance(entry.reading, Cert) else None
            name_cell = Text(name, "bold")
            if entry.fault is not None:
                name_cell.append(" ⚠", "bold red")
            if cert is None:
                status = (
                    Text(entry.fault.what, "bold red") if entry.fault else Text("waiting…", "dim")
                )
                where = (cfg.endpoint or str(cfg.file)) if cfg else ""
                yield Row(f"cert:{name}", (name_cell, status, "", "", "", where), data=entry)
                continue
            issuer = cert.issuer.removeprefix("CN=").split(",")[0]
            yield Row(
                f"cert:{name}",
                (
                    name_cell,
                    left_text(cert, cfg, now),
                    f"{cert.not_after:%Y-%m-%d}",
                    trust_text(cert),
                    issuer,
                    cert.source,
                ),
                data=entry,
            )

    def open_detail(self, row: Row) -> None:
        self.app.push_screen(
            CertDetail(cert_detail(row.id.removeprefix("cert:"), row.data, self.now()))
        )

    def make_action(self, verb: str, row: Row) -> Action | None:
        lab = self.ctx.lab
        if lab is None or verb != "renew":
            return None
        from actions.base import Target
        from actions.certs import CertRenew

        try:
            return CertRenew.create(Target("cert", row.id.removeprefix("cert:")), lab, {})
        except ValueError as exc:
            self.notify(str(exc), severity="warning", markup=False)
        return None
