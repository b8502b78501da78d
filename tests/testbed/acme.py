"""Certificates for the testbed: Pebble + lego (real ACME), TLS/STARTTLS servers, made certs.

- `Pebble`: Let's Encrypt's test CA on loopback (PEBBLE_VA_ALWAYS_VALID=1), its own HTTPS
  listener on a self-signed 127.0.0.1 certificate, ports picked free; start()/stop().
- `lego_argv(...)`: the lego command line against a Pebble (`env LEGO_CA_CERTIFICATES=…` so the
  command is one argv, as hlcon's renew setting needs). `renew` uses --no-random-sleep: without it
  lego waits a random few minutes before renewing.
- `CertServer`: a TLS server in threads on 127.0.0.1 that serves a cert/key pair from files and
  picks up new files when their mtime changes (what `systemctl reload nginx` does), directly or
  after IMAP STARTTLS (`a001 STARTTLS`). SMTP STARTTLS is aiosmtpd's real server.
- `make_cert(...)`: cryptography-made certificates (expired, 5-day, 90-day …), self-signed or
  signed by a `TestCA`.

Fixtures: `acme_lab` (session: Pebble, a lego account and certificate for lab.local, a server
serving it), `fresh_acme_lab` (function: the same, its own Pebble, for tests that stop it),
`cert_servers` (session: expired/5-day/90-day certs over TLS, SMTP and IMAP STARTTLS, and in
files), `bad_endpoints` (session: a refused port, a tarpit, a server that speaks no TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.testbed import end_process, require, require_tools

LEGO_DOMAIN = "lab.local"
LEGO_EMAIL = "admin@lab.local"
# Whole days plus an hour: a "5-day" certificate read a moment later still has 5 whole days.
MARGIN = dt.timedelta(hours=1)


async def past_issuing_second(not_before: dt.datetime) -> None:
    """Certificate times have whole seconds: a renewal within the second the current one was
    issued could not move notAfter, which verify rightly rejects. A precondition of a renew
    test, not a timing assertion."""
    gap = (not_before + dt.timedelta(seconds=1.2) - dt.datetime.now(dt.UTC)).total_seconds()
    if gap > 0:
        await asyncio.sleep(gap)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {within}s")


# ---------------------------------------------------------------- made certificates


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _san(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(out)


@dataclass
class TestCA:
    """A root CA made here, for chains that verify against a given ca_file."""

    __test__ = False  # not a pytest class
    name: str = "hlcon Test Root CA"
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    cert: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(self.name))
            .issuer_name(_name(self.name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def make_cert(
    cn: str,
    names: tuple[str, ...],
    *,
    not_after: dt.datetime,
    not_before: dt.datetime | None = None,
    ca: TestCA | None = None,
) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM); self-signed unless `ca` signs it."""
    key = ec.generate_private_key(ec.SECP256R1())
    not_before = not_before or min(not_after - dt.timedelta(days=1), dt.datetime.now(dt.UTC))
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.cert.subject if ca else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    cert = builder.sign(ca.key if ca else key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_pair(directory: Path, stem: str, pair: tuple[bytes, bytes]) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert.write_bytes(pair[0])
    key.write_bytes(pair[1])
    key.chmod(0o600)
    return cert, key


# ---------------------------------------------------------------- servers


class CertServer:
    """Serves cert_file/key_file over TLS on 127.0.0.1 (protocol "tls"), or after an IMAP
    STARTTLS ("imap"). The files are loaded again whenever their mtime changes; a half-written
    pair (cert and key not matching yet) keeps the old context until the next connection."""

    def __init__(self, cert_file: Path, key_file: Path, protocol: str = "tls") -> None:
        self.cert_file, self.key_file, self.protocol = cert_file, key_file, protocol
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._stamp: tuple[int, int] | None = None
        self._ctx: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.reloads = 0
        self._context()  # fail now, in the fixture, if the pair is bad
        self._thread = threading.Thread(
            target=self._serve, name=f"certserver:{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _context(self) -> ssl.SSLContext:
        with self._lock:
            stamp = (self.cert_file.stat().st_mtime_ns, self.key_file.stat().st_mtime_ns)
            if stamp != self._stamp or self._ctx is None:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                try:
                    ctx.load_cert_chain(self.cert_file, self.key_file)
                except ssl.SSLError:
                    if self._ctx is None:
                        raise
                    return self._ctx
                self._ctx, self._stamp = ctx, stamp
                self.reloads += 1
            return self._ctx

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        with contextlib.suppress(OSError, ssl.SSLError), conn:
            if self.protocol == "imap":
                conn.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] hlcon testbed ready\r\n")
                line = conn.makefile("rb").readline(1000)
                tag = line.split(b" ", 1)[0] or b"*"
                if b"STARTTLS" not in line.upper():
                    conn.sendall(tag + b" BAD expected STARTTLS\r\n")
                    return
                conn.sendall(tag + b" OK Begin TLS negotiation now\r\n")
            with self._context().wrap_socket(conn, server_side=True) as tls:
                tls.recv(1024)  # the client's first bytes, or its close
                tls.sendall(b"HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\nok\n")

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)


class SmtpStartTls:
    """aiosmtpd's SMTP server offering STARTTLS with a fixed cert/key."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Sink

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        self.port = free_port()
        self._controller = Controller(
            Sink(),
            hostname="127.0.0.1",
            port=self.port,
            tls_context=ctx,
            server_hostname="mail.lab",
        )
        self._controller.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._controller.stop()


class SilentServer:
    """Accepts and then says `greeting` (or nothing: a tarpit) and keeps the connection open."""

    def __init__(self, greeting: bytes = b"") -> None:
        self.greeting = greeting
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            if self.greeting:
                with contextlib.suppress(OSError):
                    conn.sendall(self.greeting)

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        for c in self._conns:
            c.close()
        self._thread.join(5)


# ---------------------------------------------------------------- Pebble + lego


class Pebble:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.listener_cert, listener_key = write_pair(
            root,
            "pebble-listener",
            make_cert(
                "localhost",
                ("localhost", "127.0.0.1"),
                not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=30),
            ),
        )
        self.port, self.mgmt_port = free_port(), free_port()
        self.config = root / "pebble.json"
        self.config.write_text(
            json.dumps(
                {
                    "pebble": {
                        "listenAddress": f"127.0.0.1:{self.port}",
                        "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
                        "certificate": str(self.listener_cert),
                        "privateKey": str(listener_key),
                        "httpPort": free_port(),
                        "tlsPort": free_port(),
                        "ocspResponderURL": "",
                        "externalAccountBindingRequired": False,
                    }
                }
            )
        )
        self.log = root / "pebble.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def start(self) -> None:
        env = {**os.environ, "PEBBLE_VA_ALWAYS_VALID": "1", "PEBBLE_VA_NOSLEEP": "1"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                ["pebble", "-config", str(self.config)], stdout=log, stderr=log, env=env
            )
        _wait_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            end_process(self.proc)
        self.proc = None

    def root_ca(self) -> bytes:
        """The root of the chains it issues (it makes a new one at every start)."""
        ctx = ssl.create_default_context(cafile=str(self.listener_cert))
        url = f"https://127.0.0.1:{self.mgmt_port}/roots/0"
        with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
            data: bytes = resp.read()
        return data


def lego_argv(pebble: Pebble, path: Path, verb: str, domain: str = LEGO_DOMAIN) -> list[str]:
    argv = [
        "env",
        f"LEGO_CA_CERTIFICATES={pebble.listener_cert}",
        "lego",
        "--server",
        pebble.directory,
        "--email",
        LEGO_EMAIL,
        "--domains",
        domain,
        "--accept-tos",
        "--http",
        "--http.port",
        f"127.0.0.1:{free_port()}",
        "--path",
        str(path),
        verb,
    ]
    if verb == "renew":
        argv += ["--days", "100000", "--no-random-sleep"]  # always renew, at once
    return argv


@dataclass
class AcmeLab:
    root: Path
    pebble: Pebble
    lego_dir: Path
    cert_file: Path  # lego's fullchain for LEGO_DOMAIN
    key_file: Path
    root_ca: Path  # Pebble's root: a ca_file under which the chain is trusted
    server: CertServer
    renew_command: str  # the configured renew string (shlex-joined lego renew)

    @property
    def endpoint(self) -> str:
        return self.server.endpoint


def _acme_lab(root: Path) -> Iterator[AcmeLab]:
    require_tools("pebble", "lego")
    pebble = Pebble(root / "pebble")
    pebble.start()
    server: CertServer | None = None
    try:
        lego_dir = root / "lego"
        run = subprocess.run(
            lego_argv(pebble, lego_dir, "run"), capture_output=True, text=True, timeout=60
        )
        require(
            run.returncode == 0,
            f"lego could not get a certificate from Pebble: {run.stderr[-500:]}",
        )
        cert_file = lego_dir / "certificates" / f"{LEGO_DOMAIN}.crt"
        key_file = lego_dir / "certificates" / f"{LEGO_DOMAIN}.key"
        root_ca = root / "pebble-root.pem"
        root_ca.write_bytes(pebble.root_ca())
        server = CertServer(cert_file, key_file)
        yield AcmeLab(
            root,
            pebble,
            lego_dir,
            cert_file,
            key_file,
            root_ca,
            server,
            shlex.join(lego_argv(pebble, lego_dir, "renew")),
        )
    finally:
        if server is not None:
            server.stop()
        pebble.stop()


@pytest.fixture(scope="session")
def acme_lab() -> Iterator[AcmeLab]:
    root = Path(tempfile.mkdtemp(prefix="hlcon-acme-"))
    try:
        yield from _acme_lab(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fresh_acme_lab(tmp_path: Path) -> Iterator[AcmeLab]:
    """Its own Pebble and certificate, for a test that stops Pebble."""
    yield from _acme_lab(tmp_path)


# ---------------------------------------------------------------- made-cert endpoints


@dataclass
class CertCase:
    name: str  # "expired", "5-day", "90-day"
    days_left: int  # what a reader must report
    cert_file: Path
    key_file: Path
    tls: CertServer
    imap: CertServer
    smtp: SmtpStartTls


@dataclass
class CertServers:
    root: Path
    ca: TestCA
    ca_file: Path
    cases: dict[str, CertCase]
    hostname: str = "svc.lab"


@pytest.fixture(scope="session")
def cert_servers() -> Iterator[CertServers]:
    pytest.importorskip("aiosmtpd", reason="aiosmtpd (pyproject test extra) is not installed")
    root = Path(tempfile.mkdtemp(prefix="hlcon-certs-"))
    ca = TestCA()
    ca_file = root / "test-root.pem"
    ca_file.write_bytes(ca.pem())
    now = dt.datetime.now(dt.UTC)
    wanted = {"expired": -10, "5-day": 5, "90-day": 90}
    cases: dict[str, CertCase] = {}
    stoppers: list[CertServer | SmtpStartTls] = []
    try:
        for name, days in wanted.items():
            not_after = now + dt.timedelta(days=days) + (MARGIN if days >= 0 else -MARGIN)
            not_before = now - dt.timedelta(days=100) if days < 0 else now - dt.timedelta(hours=1)
            pair = make_cert(
                f"svc.lab ({name})",
                ("svc.lab", "*.svc.lab", "127.0.0.1"),
                not_after=not_after,
                not_before=not_before,
                ca=ca,
            )
            cert_file, key_file = write_pair(root, name, pair)
            tls = CertServer(cert_file, key_file)
            stoppers.append(tls)
            imap = CertServer(cert_file, key_file, protocol="imap")
            stoppers.append(imap)
            smtp = SmtpStartTls(cert_file, key_file)
            stoppers.append(smtp)
            cases[name] = CertCase(name, days, cert_file, key_file, tls, imap, smtp)
        yield CertServers(root, ca, ca_file, cases)
    finally:
        for s in stoppers:
            with contextlib.suppress(Exception):
                s.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class BadEndpoints:
    refused: str  # nothing listens
    tarpit: str  # accepts, never speaks
    plaintext: str  # speaks, but SSH, not TLS
    self_signed: CertServer  # a valid, self-signed certificate for svc.lab
    wrong_host: CertServer  # trusted by the test CA, but for other.lab only


@pytest.fixture(scope="session")
def bad_endpoints(cert_servers: CertServers) -> Iterator[BadEndpoints]:
    refused = f"127.0.0.1:{free_port()}"
    tarpit = SilentServer()
    plaintext = SilentServer(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    now = dt.datetime.now(dt.UTC)
    root = cert_servers.root
    ss_cert, ss_key = write_pair(
        root,
        "self-signed",
        make_cert("svc.lab", ("svc.lab",), not_after=now + dt.timedelta(days=60) + MARGIN),
    )
    wh_cert, wh_key = write_pair(
        root,
        "wrong-host",
        make_cert(
            "other.lab",
            ("other.lab",),
            not_after=now + dt.timedelta(days=60) + MARGIN,
            ca=cert_servers.ca,
        ),
    )
    self_signed = CertServer(ss_cert, ss_key)
    wrong_host = CertServer(wh_cert, wh_key)
    try:
        yield BadEndpoints(refused, tarpit.endpoint, plaintext.endpoint, self_signed, wrong_host)
    finally:
        for s in (tarpit, plaintext, self_signed, wrong_host):
            s.stop()
