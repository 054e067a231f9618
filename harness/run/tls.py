"""The run's certificate: a private certificate authority and a server certificate it signs.

A target served over TLS needs a certificate its clients can verify, without trusting
anything outside the run: ``make_certificate`` makes a fresh CA (trustme) and a certificate
for 127.0.0.1 and localhost, and writes the PEM files every server's TLS options take
(``targets.registry.TlsFiles``). The clients (the verify gate, readiness, the locust users)
trust that CA alone (``ca_file``, or ``ca_pem`` where a file cannot be passed along), so a
client that would skip verification is never needed and never written.

One certificate serves a whole run (the runner makes it once, into ``<run>/raw/tls/``): the
key stays on this machine and a run's results say which CA its servers presented.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization

from targets.registry import TlsFiles

# The names the server certificate is valid for: every address a target is served on.
HOSTS = ("127.0.0.1", "localhost")
CERTFILE = "server.pem"
KEYFILE = "server.key"
CA_FILE = "ca.pem"


@dataclass(frozen=True)
class Certificate:
    certfile: Path  # the server's certificate (PEM)
    keyfile: Path  # its private key (PEM, PKCS#8, mode 0600)
    ca_file: Path  # the CA that signed it: the one thing clients trust (PEM)
    ca_pem: str  # the same CA as text, for clients in other processes (the go file's link)

    @property
    def files(self) -> TlsFiles:
        """What a server command takes (``Target.command``)."""
        return TlsFiles(certfile=self.certfile, keyfile=self.keyfile)

    def to_dict(self, base: Path | None = None) -> dict[str, object]:
        """What the manifest records: where the files are (relative to ``base``, the run
        folder, when they are inside it: a copied run folder still finds them) and what names
        the certificate holds (never the key itself)."""

        def shown(path: Path) -> str:
            if base is not None and path.is_relative_to(base):
                return str(path.relative_to(base))
            return str(path)

        return {
            "certfile": shown(self.certfile),
            "keyfile": shown(self.keyfile),
            "ca_file": shown(self.ca_file),
            "hosts": list(HOSTS),
        }


def make_certificate(folder: Path) -> Certificate:
    """A fresh CA and a server certificate for HOSTS, written into ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert(*HOSTS)
    certfile, keyfile, ca_file = folder / CERTFILE, folder / KEYFILE, folder / CA_FILE
    issued.cert_chain_pems[0].write_to_path(str(certfile))
    ca.cert_pem.write_to_path(str(ca_file))
    # trustme writes the traditional OpenSSL form; granian reads PKCS#8 only, which every
    # other server reads too.
    key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), password=None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Readable by this user alone from its first byte: a new file created with mode 0600 (an
    # old one would keep its mode through O_CREAT, so it goes first).
    keyfile.unlink(missing_ok=True)
    descriptor = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pkcs8)
    return Certificate(
        certfile=certfile, keyfile=keyfile, ca_file=ca_file, ca_pem=ca.cert_pem.bytes().decode()
    )
