"""Certificates: TLS endpoints (direct, or STARTTLS for SMTP and IMAP) and PEM files on hosts.

Pure parts first (parse_endpoint, load_pem_chain, cert_reading, hostname_matches …), then the
I/O: an endpoint is read twice — once with verification off, to get the leaf whatever it is, and
once against the system trust store (plus the entry's ca_file), to learn whether it is trusted.
Untrusted, self-signed and expired are states of the reading, not errors. A file is read with
`cat` through the host's Executor (so it works over SSH) and its chain checked with
cryptography's verifier against the same roots.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import ipaddress
import re
import ssl
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from lab.config import CertConfig
from lab.files import MIB, UnreadableFile, read_regular_file
from lab.model import Cert
from lab.poller import ReadError

if TYPE_CHECKING:
    from lab.poller import Reader
    from lab.wiring import Lab

STARTTLS_PROTOCOLS = ("smtp", "imap")
DEFAULT_PORTS = {None: 443, "smtp": 25, "imap": 143}
MIN_INTERVAL = 60.0  # certificates change rarely: no handshakes every 5 s
_LINE_LIMIT = 4096  # a STARTTLS greeting line longer than this is not a mail server

# ---------------------------------------------------------------- pure parsing


def parse_endpoint(text: str, starttls: str | None = None) -> tuple[str, int]:
    """ "host:port", "[::1]:443", "host" (the protocol's default port) → (host, port)."""
    text = text.strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"endpoint {text!r}: expected HOST:PORT")
    if starttls not in DEFAULT_PORTS:
        raise ValueError(f"starttls {starttls!r}: expected one of {', '.join(STARTTLS_PROTOCOLS)}")
    default = DEFAULT_PORTS[starttls]
    if text.startswith("["):
        m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?", text)
        if not m:
            raise ValueError(f"endpoint {text!r}: expected [IPv6]:PORT")
        host, port_text = m[1], m[2]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"endpoint {text!r}: {host!r} is not an IPv6 address") from None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif ":" in text:
        raise ValueError(f"endpoint {text!r}: write an IPv6 address as [ADDR]:PORT")
    else:
        host, port_text = text, None
    if not host or not re.fullmatch(r"[A-Za-z0-9._:-]+", host):
        raise ValueError(f"endpoint {text!r}: {host!r} is not a host name or address")
    if port_text is None:
        return host, default
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"endpoint {text!r}: port {port_text!r} is not 1–65535")
    return host, int(port_text)


_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", re.DOTALL)


def load_pem_chain(text: str) -> list[x509.Certificate]:
    """Every certificate in a PEM text, leaf first (as lego, certbot and nginx write them).

    Other blocks (a private key in a combined file) are skipped; none at all is a ValueError.
    """
    blocks = _PEM_BLOCK.findall(text)
    if not blocks:
        raise ValueError("no PEM certificate (-----BEGIN CERTIFICATE-----) in the text")
    out: list[x509.Certificate] = []
    for i, block in enumerate(blocks, 1):
        try:
            out.append(x509.load_pem_x509_certificate(block.encode("ascii", "replace")))
        except ValueError as exc:
            raise ValueError(
                f"certificate {i} of {len(blocks)} is not valid PEM/DER: {exc}"
            ) from None
    return out


def load_der(data: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise ValueError(f"the peer's certificate is not valid DER: {exc}") from None


_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def key_type(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {_CURVES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return type(key).__name__


def sans(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    out = [f"DNS:{n}" for n in ext.get_values_for_type(x509.DNSName)]
    out += [f"IP:{a}" for a in ext.get_values_for_type(x509.IPAddress)]
    out += [f"email:{e}" for e in ext.get_values_for_type(x509.RFC822Name)]
    out += [f"URI:{u}" for u in ext.get_values_for_type(x509.UniformResourceIdentifier)]
    return tuple(out)


def hostname_matches(names: Sequence[str], hostname: str) -> bool:
    """RFC 6125 in short: exact DNS name, a left-most `*.` wildcard for one label, or an IP SAN.
    The subject CN is not consulted (browsers stopped doing so)."""
    host = hostname.strip().rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        ip = None
    for name in names:
        kind, _, value = name.partition(":")
        if ip is not None:
            if kind == "IP" and ipaddress.ip_address(value) == ip:
                return True
            continue
        if kind != "DNS":
            continue
        pattern = value.rstrip(".").lower()
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == pattern[2:]:
                return True
    return False


def is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def cert_reading(
    leaf: x509.Certificate,
    *,
    name: str,
    source: str,
    at: datetime,
    trusted: bool | None,
    trust_error: str = "",
    hostname: str | None = None,
) -> Cert:
    """The reading for a leaf certificate, stamped `at`. Pure."""
    names = sans(leaf)
    not_after = leaf.not_valid_after_utc
    return Cert(
        at=at,
        name=name,
        source=source,
        subject=leaf.subject.rfc4514_string(),
        sans=names,
        issuer=leaf.issuer.rfc4514_string(),
        serial=format(leaf.serial_number, "x"),
        not_before=leaf.not_valid_before_utc,
        not_after=not_after,
        days_left=int((not_after - at).total_seconds() / 86400),
        key_type=key_type(leaf),
        fingerprint=hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest(),
        self_signed=is_self_signed(leaf),
        trusted=trusted,
        trust_error=trust_error,
        hostname=hostname,
        hostname_matches=hostname_matches(names, hostname) if hostname else None,
    )


def verify_chain(
    chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], at: datetime
) -> str | None:
    """None if the leaf (chain[0]) verifies to one of `roots` at `at` with chain[1:] as
    intermediates; else why not. The hostname is checked apart (hostname_matches), so the
    leaf is verified for a name it claims itself."""
    leaf = chain[0]
    names = sans(leaf)
    subject: x509.verification.Subject
    dns = [n[4:] for n in names if n.startswith("DNS:") and "*" not in n]
    ips = [n[3:] for n in names if n.startswith("IP:")]
    if dns:
        subject = x509.DNSName(dns[0])
    elif ips:
        subject = x509.IPAddress(ipaddress.ip_address(ips[0]))
    else:
        return "no subjectAltName to verify the chain for"
    if not roots:
        return "no trusted roots"
    # cryptography says only "not valid at validation time"; name it as OpenSSL does.
    if at > leaf.not_valid_after_utc:
        return "certificate has expired"
    if at < leaf.not_valid_before_utc:
        return "certificate is not yet valid"
    if any(leaf == root for root in roots):
        return None  # pinned: the certificate itself is in the trust store (as OpenSSL allows)
    verifier = PolicyBuilder().store(Store(list(roots))).time(at).build_server_verifier(subject)
    try:
        verifier.verify(leaf, list(chain[1:]))
    except VerificationError as exc:
        why = str(exc).split(" (encountered processing", 1)[0]
        return f"chain does not verify: {why}"
    return None


def smtp_reply(lines: Sequence[str]) -> tuple[int, list[str]]:
    """A (possibly multi-line) SMTP reply → (code, texts). `lines` end with the "NNN " line."""
    if not lines:
        raise ValueError("empty SMTP reply")
    code: int | None = None
    texts: list[str] = []
    for line in lines:
        m = re.fullmatch(r"(\d{3})([ -])(.*)", line.rstrip("\r\n"))
        if not m:
            raise ValueError(f"not an SMTP reply line: {line[:80]!r}")
        if code is not None and int(m[1]) != code:
            raise ValueError(f"SMTP reply mixes codes {code} and {m[1]}")
        code = int(m[1])
        texts.append(m[3])
    assert code is not None
    return code, texts


# ---------------------------------------------------------------- I/O: roots


@functools.cache
def _system_roots() -> tuple[x509.Certificate, ...]:
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return tuple(_load_bundle(Path(candidate).read_text(errors="replace")))
    return ()


def _load_bundle(text: str) -> list[x509.Certificate]:
    out = []
    for block in _PEM_BLOCK.findall(text):
        # One odd root (some bundles hold a negative serial) must not hide the others.
        with contextlib.suppress(ValueError), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append(x509.load_pem_x509_certificate(block.encode("ascii", "replace")))
    return out


CA_FILE_MAX_BYTES = 16 * MIB  # the whole Mozilla bundle is ~0.2 MiB


def trust_roots(ca_file: Path | None) -> list[x509.Certificate]:
    roots = list(_system_roots())
    if ca_file is not None:
        try:
            # a regular file of a sane size only: a FIFO here would block the console for ever
            data = read_regular_file(ca_file, CA_FILE_MAX_BYTES)
        except UnreadableFile as exc:
            raise ReadError("bad config", f"ca_file {ca_file}: {exc.reason}") from None
        roots += _load_bundle(data.decode("utf-8", "replace"))
    return roots


# ---------------------------------------------------------------- I/O: endpoints


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    sni: str | None
    starttls: str | None

    def __str__(self) -> str:
        return f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}"

    @property
    def source(self) -> str:
        scheme = f"{self.starttls}+starttls" if self.starttls else "tls"
        return f"{scheme} {self}"


async def _readline(reader: asyncio.StreamReader, where: Endpoint) -> str:
    try:
        raw = await reader.readline()
    except ValueError:  # the line outgrew the stream limit
        raise ReadError("STARTTLS failed", f"{where}: not a mail server (endless line)") from None
    if not raw:
        raise ReadError("STARTTLS failed", f"{where}: closed the connection before STARTTLS")
    return raw.decode("utf-8", "replace").rstrip("\r\n")


async def _smtp_read(reader: asyncio.StreamReader, where: Endpoint) -> tuple[int, list[str]]:
    lines: list[str] = []
    while True:
        line = await _readline(reader, where)
        lines.append(line)
        if not (line[:3].isdigit() and line[3:4] == "-") or len(lines) > 100:
            break
    try:
        return smtp_reply(lines)
    except ValueError as exc:
        raise ReadError("STARTTLS failed", f"{where}: {exc}") from None


async def _starttls_dialog(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ep: Endpoint
) -> None:
    if ep.starttls == "smtp":
        code, _ = await _smtp_read(reader, ep)
        if code != 220:
            raise ReadError("STARTTLS failed", f"{ep}: SMTP greeting {code}, expected 220")
        writer.write(b"EHLO hlcon.invalid\r\n")
        code, texts = await _smtp_read(reader, ep)
        if code != 250:
            raise ReadError("STARTTLS failed", f"{ep}: EHLO answered {code}")
        if not any(t.split()[:1] == ["STARTTLS"] for t in (x.upper() for x in texts[1:])):
            raise ReadError("STARTTLS failed", f"{ep}: the SMTP server does not offer STARTTLS")
        writer.write(b"STARTTLS\r\n")
        code, texts = await _smtp_read(reader, ep)
        if code != 220:
            raise ReadError("STARTTLS failed", f"{ep}: STARTTLS answered {code} {' '.join(texts)}")
    elif ep.starttls == "imap":
        greeting = await _readline(reader, ep)
        if not greeting.upper().startswith("* OK"):
            raise ReadError("STARTTLS failed", f"{ep}: not an IMAP greeting: {greeting[:60]!r}")
        writer.write(b"a001 STARTTLS\r\n")
        for _ in range(100):
            line = await _readline(reader, ep)
            if line.startswith("a001 "):
                if line[5:].upper().startswith("OK"):
                    return
                raise ReadError("STARTTLS failed", f"{ep}: IMAP STARTTLS refused: {line[:80]!r}")
        raise ReadError("STARTTLS failed", f"{ep}: no answer to a001 STARTTLS")


async def _handshake(ep: Endpoint, ctx: ssl.SSLContext) -> bytes:
    """Connect, STARTTLS if asked, handshake with `ctx`; the peer's leaf as DER."""
    server_hostname = ep.sni or ep.host
    if ep.starttls is None:
        reader, writer = await asyncio.open_connection(
            ep.host, ep.port, ssl=ctx, server_hostname=server_hostname
        )
    else:
        reader, writer = await asyncio.open_connection(ep.host, ep.port, limit=_LINE_LIMIT)
    try:
        if ep.starttls is not None:
            await _starttls_dialog(reader, writer, ep)
            await writer.start_tls(ctx, server_hostname=server_hostname)
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            raise ReadError("no TLS", f"{ep}: the server sent no certificate")
        return bytes(der)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


async def fetch_leaf(ep: Endpoint, ctx: ssl.SSLContext, timeout: float) -> bytes:
    """`_handshake` with every way it fails turned into a ReadError that says what and where.
    ssl.SSLCertVerificationError passes through: for the trust check it is an answer."""
    try:
        return await asyncio.wait_for(_handshake(ep, ctx), timeout)
    except ssl.SSLCertVerificationError:
        raise
    except TimeoutError:
        raise ReadError(
            "endpoint timed out", f"{ep}: no TLS handshake within {timeout:g}s"
        ) from None
    except ConnectionRefusedError:
        raise ReadError("endpoint refused", f"{ep}: connection refused") from None
    except (ssl.SSLError, ConnectionResetError, asyncio.IncompleteReadError) as exc:
        why = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        raise ReadError("no TLS", f"{ep}: TLS handshake failed ({why})") from None
    except OSError as exc:
        raise ReadError("endpoint unreachable", f"{ep}: {exc.strerror or exc}") from None


def _insecure_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # we read what is served; trust is checked apart
    # Reading an old printer's or NAS's certificate trusts nothing, so accept what it speaks.
    with contextlib.suppress(ValueError, ssl.SSLError), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0: deprecated, still served
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


def _verifying_context(ca_file: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False  # the hostname is its own finding, not a trust failure
    if ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ReadError("bad config", f"ca_file {ca_file}: {exc}") from None
    return ctx


# ---------------------------------------------------------------- readers


class _Base:
    def __init__(self, lab: Lab, cfg: CertConfig) -> None:
        self.lab = lab
        self.cfg = cfg
        self._key = ("cert", cfg.name)

    @property
    def key(self) -> tuple[str, str]:
        return self._key

    @property
    def interval(self) -> float:
        return max(self.lab.config.console.refresh, MIN_INTERVAL)

    @property
    def timeout(self) -> float:
        return self.lab.config.console.timeout

    async def close(self) -> None:
        return None


class TlsEndpointReader(_Base):
    """A TLS endpoint, directly or after STARTTLS (smtp, imap)."""

    def __init__(self, lab: Lab, cfg: CertConfig, endpoint: Endpoint) -> None:
        super().__init__(lab, cfg)
        self.endpoint = endpoint
        self._insecure = _insecure_context()
        self._verifying: tuple[object, ssl.SSLContext] | None = None

    def _verifying_context(self) -> ssl.SSLContext:
        """Made once and kept while ca_file is unchanged: loading the system's CA bundle costs
        more CPU than both handshakes together."""
        ca_file = self.cfg.ca_file
        stamp: object = None
        try:
            if ca_file is not None:
                info = ca_file.stat()
                stamp = (info.st_mtime_ns, info.st_size)
        except OSError as exc:
            raise ReadError("bad config", f"ca_file {ca_file}: {exc.strerror or exc}") from None
        if self._verifying is None or self._verifying[0] != stamp:
            self._verifying = (stamp, _verifying_context(ca_file))
        return self._verifying[1]

    async def read(self) -> Cert:
        ep = self.endpoint
        # Two handshakes share the poll's time; each gets a bit less than half, so a hang is
        # reported as this endpoint's timeout rather than the poller's anonymous one.
        each = self.timeout * 0.45
        der = await fetch_leaf(ep, self._insecure, each)
        try:
            leaf = load_der(der)
        except ValueError as exc:
            raise ReadError("bad certificate", f"{ep}: {exc}") from None
        at = self.lab.clock()
        trusted: bool | None
        try:
            await fetch_leaf(ep, self._verifying_context(), each)
            trusted, trust_error = True, ""
        except ssl.SSLCertVerificationError as exc:
            trusted, trust_error = False, str(exc.verify_message or exc)
        except ReadError as exc:
            if exc.what == "bad config":
                raise
            # It answered a moment ago: the reading stands, only trust is unknown.
            trusted, trust_error = None, f"trust check failed: {exc}"
        return cert_reading(
            leaf,
            name=self.cfg.name,
            source=ep.source,
            at=at,
            trusted=trusted,
            trust_error=trust_error,
            hostname=ep.sni or ep.host,
        )


class PemFileReader(_Base):
    """A PEM file on a host, read with `cat` through the host's Executor; the leaf is first."""

    def __init__(self, lab: Lab, cfg: CertConfig, path: Path) -> None:
        super().__init__(lab, cfg)
        self.path = path

    @property
    def where(self) -> str:
        return f"{self.cfg.host}:{self.path}"

    async def read(self) -> Cert:
        from lab.wiring import UnknownHost

        try:
            executor = self.lab.executor(self.cfg.host)
        except UnknownHost as exc:
            raise ReadError("bad config", f"cert {self.cfg.name}: {exc}") from None
        result = await executor.run(["cat", "--", str(self.path)], timeout=self.timeout)
        if not result.ok:
            raise ReadError("file unreadable", f"{self.where}: {result.brief()}")
        try:
            chain = load_pem_chain(result.stdout)
        except ValueError as exc:
            raise ReadError("not a certificate", f"{self.where}: {exc}") from None
        at = self.lab.clock()
        roots = trust_roots(self.cfg.ca_file)
        why = verify_chain(chain, roots, at)
        return cert_reading(
            chain[0],
            name=self.cfg.name,
            source=f"file {self.where}",
            at=at,
            trusted=why is None,
            trust_error=why or "",
            hostname=self.cfg.sni,
        )


class MisconfiguredCertReader(_Base):
    """A [[certs]] entry that cannot be read as written: every poll is a Fault that says why."""

    def __init__(self, lab: Lab, cfg: CertConfig, why: str) -> None:
        super().__init__(lab, cfg)
        self.why = why

    async def read(self) -> Cert:
        raise ReadError("bad config", f"cert {self.cfg.name}: {self.why}")


CertReader = TlsEndpointReader | PemFileReader | MisconfiguredCertReader


def reader_for(lab: Lab, cfg: CertConfig) -> CertReader:
    if (cfg.endpoint is None) == (cfg.file is None):
        return MisconfiguredCertReader(lab, cfg, "give exactly one of endpoint = … or file = …")
    if cfg.file is not None:
        if cfg.starttls is not None:
            return MisconfiguredCertReader(lab, cfg, "starttls applies to endpoints, not files")
        return PemFileReader(lab, cfg, cfg.file)
    assert cfg.endpoint is not None
    try:
        host, port = parse_endpoint(cfg.endpoint, cfg.starttls)
    except ValueError as exc:
        return MisconfiguredCertReader(lab, cfg, str(exc))
    return TlsEndpointReader(lab, cfg, Endpoint(host, port, cfg.sni, cfg.starttls))


def readers(lab: Lab) -> list[Reader]:
    return [reader_for(lab, cfg) for cfg in lab.config.certs]


def find(lab: Lab, name: str) -> CertConfig:
    """The [[certs]] entry called `name`; KeyError says which names exist."""
    for cfg in lab.config.certs:
        if cfg.name == name:
            return cfg
    known = ", ".join(c.name for c in lab.config.certs) or "none configured"
    raise KeyError(f"no certificate named {name!r} in the config ([[certs]]: {known})")
