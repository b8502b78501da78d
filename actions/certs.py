"""Certificate renew: the configured renew command, then the reload, then proof it worked.

Target: cert:NAME (a [[certs]] entry). The renew command (lego, certbot, `systemctl start
acme-NAME.service` on NixOS …) and the reload (`systemctl reload nginx`) run on the entry's host
through its Executor, as argv lists split from the configured strings — never through a shell.
Verification reads the certificate the way the reader does (served by the endpoint, or held in
the file) until its serial changes: the serial must differ and notAfter must be later. The
outcome's details hold the serial and notAfter from before and after, so the audit log does.
A renew cannot be undone (the CA has issued), so there is no rollback; a failed renew command
leaves the old files as the tool left them — lego and certbot write only on success.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from actions.base import (
    JSON,
    Action,
    ActionFailed,
    BlastRadius,
    Confirmation,
    Identity,
    Outcome,
    Plan,
    Progress,
    Step,
    Target,
)
from actions.maintenance import canonical_host
from actions.registry import register
from lab import certs, inflight, secrets
from lab.config import CertConfig
from lab.model import Cert
from lab.poller import ReadError

if TYPE_CHECKING:
    from lab.wiring import Lab

RELOAD_TIMEOUT = 60.0
VERIFY_WITHIN = 30.0  # how long a server may take to pick up the new files after the reload
VERIFY_EVERY = 0.5
TAIL = 20  # output lines kept for the outcome


def split_command(text: str, what: str, cert: str) -> list[str]:
    """A configured command string → argv, or ValueError naming the cert and the key."""
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cert {cert}: {what} command {text!r} does not parse: {exc}") from None
    if not argv:
        raise ValueError(f"cert {cert}: {what} command is empty")
    return argv


def cert_summary(cert: Cert) -> dict[str, JSON]:
    """What the audit keeps of a certificate: enough to tell before from after."""
    return {
        "serial": cert.serial,
        "not_after": cert.not_after.isoformat(),
        "issuer": cert.issuer,
        "fingerprint": cert.fingerprint,
    }


@dataclass(frozen=True)
class CertSeen:
    """A certificate as the plan read it: what verify tells before from after by."""

    serial: str
    not_after: str  # ISO 8601
    issuer: str
    fingerprint: str

    @classmethod
    def of(cls, cert: Cert) -> CertSeen:
        return cls(cert.serial, cert.not_after.isoformat(), cert.issuer, cert.fingerprint)

    def record(self) -> dict[str, JSON]:
        return dict(asdict(self))


@dataclass(frozen=True)
class RenewSpec:
    """The renew as planned. The commands are the plan's own steps (the renew command first,
    then the reload when `reloads`): what was confirmed is what runs."""

    before: CertSeen | None  # None: the current certificate could not be read
    reloads: bool


@register
class CertRenew(Action[RenewSpec]):
    family: ClassVar[str] = "cert.renew"
    verb: ClassVar[str] = "renew"
    kind: ClassVar[str] = "cert"
    verify_within: ClassVar[float] = VERIFY_WITHIN

    @classmethod
    def create(cls, target: Target, lab: Lab, params: Mapping[str, Any]) -> Action:
        try:
            cfg = certs.find(lab, target.name)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        if target.where is not None and not (
            target.where == cfg.host or (lab.is_local(target.where) and lab.is_local(cfg.host))
        ):
            raise ValueError(
                f"cert {target.name} lives on {cfg.host}, not {target.where}: "
                f"use cert:{target.name}"
            )
        return cls(target, lab)

    def _cfg(self) -> CertConfig | None:
        return next((c for c in self.lab.config.certs if c.name == self.target.name), None)

    def config(self) -> CertConfig:
        try:
            return certs.find(self.lab, self.target.name)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None

    @property
    def host(self) -> str:
        cfg = self._cfg()
        return cfg.host if cfg is not None else super().host

    async def identity(self, plan: Plan[RenewSpec]) -> Identity:
        # cert:NAME and cert:NAME@HOST are one certificate (create() refuses another host)
        host = canonical_host(self.lab.config, self.host)
        return Identity((f"cert:{self.target.name}",), (host,))

    def allowed(self) -> str | None:
        cfg = self._cfg()
        if cfg is None:
            return f"no certificate named {self.target.name!r} in {self.lab.config.source}"
        if not cfg.renew:
            return (
                f'cert {cfg.name} has no renew command: add renew = "…" to its [[certs]] '
                f"entry in {self.lab.config.source}"
            )
        return None

    async def _read(self, cfg: CertConfig) -> Cert:
        reading = await certs.reader_for(self.lab, cfg).read()
        assert isinstance(reading, Cert)
        return reading

    async def plan(self) -> Plan[RenewSpec]:
        cfg = self.config()
        if not cfg.renew:
            raise ValueError(self.allowed() or f"cert {cfg.name} has no renew command")
        renew = split_command(cfg.renew, "renew", cfg.name)
        reload = split_command(cfg.reload, "reload", cfg.name) if cfg.reload else None
        notes: list[str] = []
        before: Cert | None = None
        try:
            before = await self._read(cfg)
        except ReadError as exc:
            notes.append(
                f"the current certificate cannot be read ({exc.what}: {exc}); verify will only "
                "check that a valid one is there afterwards"
            )
        where = "served by " if cfg.endpoint else "in "
        source = f"{where}{cfg.endpoint or f'{cfg.host}:{cfg.file}'}"
        with_env = (
            " (environment: " + ", ".join(f"{k} from {v}" for k, v in cfg.env.items()) + ")"
            if cfg.env
            else ""
        )
        steps = [
            Step(f"renew certificate {cfg.name} on {cfg.host}{with_env}", cfg.host, tuple(renew))
        ]
        if reload is not None:
            steps.append(
                Step("reload, so the new certificate is used", cfg.host, argv=tuple(reload))
            )
        steps.append(
            Step(f"verify the certificate {source} has a new serial and a later notAfter", cfg.host)
        )
        now_text = (
            f"serial {before.serial}, expires {before.not_after:%Y-%m-%d} ({before.days_left} days)"
            if before is not None
            else "current certificate unreadable"
        )
        return Plan(
            family=self.family,
            target=self.target,
            summary=f"Renew certificate {cfg.name} on {cfg.host} ({now_text})",
            steps=tuple(steps),
            blast_radius=BlastRadius.SINGLE,
            confirmation=Confirmation(f"Renew certificate {cfg.name} on {cfg.host}?"),
            reversible=False,
            cost="one certificate order at the CA (mind its rate limits)",
            notes=tuple(notes),
            data=RenewSpec(CertSeen.of(before) if before is not None else None, reload is not None),
            timeout=cfg.renew_timeout + RELOAD_TIMEOUT + VERIFY_WITHIN + 10.0,
        )

    async def _run_step(
        self,
        what: str,
        argv: list[str],
        timeout: float,
        progress: Progress,
        details: dict[str, JSON],
        env: Mapping[str, str] | None = None,
    ) -> None:
        cfg = self.config()
        tail: deque[str] = deque(maxlen=TAIL)
        hidden = list(env.values()) if env else []

        def sink(line: str) -> None:
            line = secrets.redact(line, hidden)  # a tool that echoes its token shows ******
            tail.append(line)
            progress(None, line)

        progress(None, f"{what}: {shlex.join(argv)} on {cfg.host}")
        try:
            result = await self.lab.executor(cfg.host).run(
                argv, timeout=timeout, on_line=sink, env=env
            )
        except TimeoutError:
            details["output_tail"] = list(tail)
            said = f"; last output: {tail[-1]}" if tail else ""
            raise ActionFailed(
                f"{what} command timed out after {timeout:g}s on {cfg.host}{said}", details
            ) from None
        except OSError as exc:  # the program is not there, or the host cannot be reached
            raise ActionFailed(
                f"{what} command {argv[0]} could not run on {cfg.host}: {exc.strerror or exc}",
                details,
            ) from None
        # The executor streams stdout; tools such as lego log to stderr, which arrives at the end.
        for line in result.stderr.splitlines():
            if line.strip():
                sink(line)
        details["output_tail"] = list(tail)
        if not result.ok:
            last = [ln for ln in tail if ln.strip()][-5:]
            raise ActionFailed(
                f"{what} command exited {result.returncode} on {cfg.host}: "
                + (" | ".join(last) if last else "no output"),
                details,
            )

    async def _renew_env(self, cfg: CertConfig, details: dict[str, JSON]) -> dict[str, str]:
        """The renew command's environment, resolved from secret references (blocking
        resolvers run in a thread). The values go to the process only, never to a record."""
        env: dict[str, str] = {}
        for key, ref in cfg.env.items():
            try:
                secret = await inflight.to_thread(secrets.resolve, ref)  # tracked: see runner
            except secrets.SecretError as exc:
                raise ActionFailed(f"cert {cfg.name}: env {key}: {exc}", details) from None
            env[key] = secret.reveal()
        return env

    async def execute(self, plan: Plan[RenewSpec], progress: Progress) -> Outcome:
        cfg = self.config()
        before = plan.data.before
        details: dict[str, JSON] = {"before": before.record() if before is not None else None}
        renew, reload = plan.steps[0].argv, plan.steps[1].argv if plan.data.reloads else None
        if renew is None or (plan.data.reloads and reload is None):
            raise ActionFailed(f"the plan of {cfg.name} has no command to run", details)
        env = await self._renew_env(cfg, details)
        await self._run_step("renew", list(renew), cfg.renew_timeout, progress, details, env)
        renew_tail = details.get("output_tail")
        if reload:
            await self._run_step("reload", list(reload), RELOAD_TIMEOUT, progress, details)
        details["output_tail"] = renew_tail
        return Outcome(True, f"renew command for {cfg.name} succeeded", details)

    async def verify(self, plan: Plan[RenewSpec], outcome: Outcome) -> Outcome:
        cfg = self.config()
        before = plan.data.before
        details: dict[str, JSON] = {"before": before.record() if before is not None else None}
        after: Cert | None = None
        last_error: ReadError | None = None
        deadline = time.monotonic() + self.verify_within
        # A server may take a moment to notice new files after the reload: read until the
        # serial changes or the window closes, then judge the last reading.
        while True:
            try:
                after = await self._read(cfg)
                last_error = None
                if before is None or after.serial != before.serial:
                    break
            except ReadError as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(VERIFY_EVERY)
        if after is None or last_error is not None:
            why = f"{last_error.what}: {last_error}" if last_error else "no reading"
            raise ActionFailed(
                f"cannot read certificate {cfg.name} after the renew: {why}", details
            )
        details["after"] = cert_summary(after)
        if before is None:
            if after.expired:
                raise ActionFailed(f"certificate {cfg.name} is still expired after renew", details)
            return Outcome(
                True,
                f"certificate {cfg.name} now has serial {after.serial}, notAfter "
                f"{after.not_after:%Y-%m-%d %H:%M:%S} (nothing earlier to compare)",
                details,
            )
        if after.serial == before.serial:
            raise ActionFailed(
                f"certificate {cfg.name} still has serial {after.serial} after renew"
                + (" and reload" if plan.data.reloads else "")
                + f" (waited {self.verify_within:g}s for it to change)",
                details,
            )
        if after.not_after <= datetime.fromisoformat(before.not_after):
            raise ActionFailed(
                f"certificate {cfg.name} has a new serial but its notAfter did not move later "
                f"({before.not_after} → {after.not_after.isoformat()})",
                details,
            )
        return Outcome(
            True,
            f"renewed {cfg.name}: serial {before.serial} → {after.serial}, notAfter "
            f"{before.not_after} → {after.not_after.isoformat()}",
            details,
        )
