"""HTTP/2 and TLS targets: the run's certificate, the orchestrator's client, and real servers
answering over their own protocol (real TLS handshakes, real h2 frames) with the same bytes
as fastapi-uvicorn."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from harness.run import client, servers
from harness.run.client import FetchError, Reply
from harness.run.servers import ServerError, serve
from harness.run.tls import Certificate, make_certificate
from targets.registry import PROTOCOL_TARGETS, TARGETS

# The rows this issue added: every one but the HTTP/1.1 servers that were there before.
NEW_ROWS = [n for n in PROTOCOL_TARGETS if n not in ("fastapi-granian", "fastapi-uvicorn",
                                                     "flask-gunicorn-gthread")]  # fmt: skip
PATHS = ("/health", "/json?items=3")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Reply]:
    """fastapi-uvicorn's answers to PATHS, over plain HTTP/1.1."""
    log = tmp_path_factory.mktemp("reference") / "fastapi-uvicorn.log"
    with serve(TARGETS["fastapi-uvicorn"], log) as server:
        return {path: client.fetch(server.url, "GET", path) for path in PATHS}


# --- the certificate --------------------------------------------------------------------------


def test_make_certificate_writes_a_ca_and_a_server_certificate(tmp_path: Path) -> None:
    made = make_certificate(tmp_path / "tls")
    assert made.files.certfile == made.certfile == tmp_path / "tls" / "server.pem"
    assert made.files.keyfile == made.keyfile
    assert stat.S_IMODE(made.keyfile.stat().st_mode) == 0o600
    assert made.keyfile.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert made.ca_file.read_text() == made.ca_pem
    assert made.ca_pem.startswith("-----BEGIN CERTIFICATE-----")
    leaf = x509.load_pem_x509_certificate(made.certfile.read_bytes())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    ca = x509.load_pem_x509_certificate(made.ca_pem.encode())
    assert leaf.issuer == ca.subject
    assert "PRIVATE" not in str(made.to_dict())  # the manifest names files, never the key
    # A second certificate is another CA: clients of one run trust nothing of another.
    assert make_certificate(tmp_path / "other").ca_pem != made.ca_pem


def test_fetch_refuses_an_unknown_http_version_or_scheme() -> None:
    with pytest.raises(ValueError, match="http '3'"):
        client.fetch("http://127.0.0.1:1", "GET", "/", http="3")
    with pytest.raises(ValueError, match="expected http:// or https://"):
        client.fetch("ftp://127.0.0.1:1", "GET", "/")


@pytest.mark.parametrize("http", ["1.1", "2"])
def test_fetch_with_nothing_listening_is_a_fetch_error(http: str) -> None:
    url = f"http://127.0.0.1:{servers.free_port()}"
    with pytest.raises(FetchError, match="no answer") as info:
        client.fetch(url, "GET", "/health", http=http, timeout_s=2)
    assert isinstance(info.value, OSError)


def test_a_tls_row_without_a_certificate_is_refused_before_it_starts(tmp_path: Path) -> None:
    log = tmp_path / "h2.log"
    with (
        pytest.raises(ServerError, match="target fastapi-hypercorn-h2 serves only over TLS"),
        serve(TARGETS["fastapi-hypercorn-h2"], log),
    ):
        pytest.fail("served a TLS row without a certificate")
    assert not log.exists()  # nothing was started


# --- real servers -----------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("name", NEW_ROWS)
def test_new_row_answers_over_its_protocol_like_fastapi_uvicorn(
    name: str, tmp_path: Path, certificate: Certificate, reference: dict[str, Reply]
) -> None:
    target = TARGETS[name]
    tls = certificate if target.tls else None
    with serve(target, tmp_path / f"{name}.log", tls=tls) as server:
        assert server.http == target.http
        assert server.tls is target.tls
        assert server.url.startswith("https://" if target.tls else "http://")
        assert server.ca_pem == (certificate.ca_pem if target.tls else None)
        replies = {
            path: client.fetch(server.url, "GET", path, http=target.http, ca_file=server.ca_file)
            for path in PATHS
        }
        if name == "fastapi-granian-h2c":  # h2c only: readiness had to ask over HTTP/2
            with pytest.raises(FetchError):
                client.fetch(server.url, "GET", "/health", timeout_s=2)
    expected = "HTTP/2" if target.http == "2" else "HTTP/1.1"
    for path, reply in replies.items():
        assert reply.http_version == expected, path
        assert reply.status == 200, path
        assert (reply.content_type, reply.body) == (
            reference[path].content_type,
            reference[path].body,
        ), path


@pytest.fixture(scope="module")
def hypercorn_h2(
    tmp_path_factory: pytest.TempPathFactory, certificate: Certificate
) -> Iterator[servers.RunningServer]:
    """fastapi-hypercorn-h2: over TLS, it offers both h2 and http/1.1 by ALPN."""
    log = tmp_path_factory.mktemp("h2") / "fastapi-hypercorn-h2.log"
    with serve(TARGETS["fastapi-hypercorn-h2"], log, tls=certificate) as server:
        yield server


@pytest.mark.e2e
@pytest.mark.parametrize("http", ["1.1", "2"])
@pytest.mark.parametrize("trust", ["system CAs", "another run's CA"])
def test_a_client_that_does_not_trust_the_ca_is_refused(
    http: str, trust: str, tmp_path: Path, hypercorn_h2: servers.RunningServer
) -> None:
    ca_file = None if trust == "system CAs" else make_certificate(tmp_path).ca_file
    with pytest.raises(FetchError) as info:
        client.fetch(hypercorn_h2.url, "GET", "/health", http=http, ca_file=ca_file)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    if http == "1.1":  # http.client: the ssl module's own error
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    # The same server, trusting the run's CA, answers in either protocol.
    reply = client.fetch(
        hypercorn_h2.url, "GET", "/health", http=http, ca_file=hypercorn_h2.ca_file
    )
    assert reply.status == 200
    assert reply.http_version == ("HTTP/2" if http == "2" else "HTTP/1.1")


@pytest.mark.e2e
def test_an_http2_only_server_refuses_http1_over_tls(
    tmp_path: Path, certificate: Certificate
) -> None:
    # granian --http 2 over TLS accepts ALPN h2 only: a client offering only http/1.1 fails,
    # so HTTP/1.1 users cannot silently measure another protocol against it.
    with serve(TARGETS["fastapi-granian-h2"], tmp_path / "h2.log", tls=certificate) as server:
        with pytest.raises(FetchError, match="no application protocol"):
            client.fetch(server.url, "GET", "/health", ca_file=server.ca_file)
        reply = client.fetch(server.url, "GET", "/health", http="2", ca_file=server.ca_file)
    assert (reply.status, reply.http_version) == (200, "HTTP/2")


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["fastapi-uvicorn", "flask-gunicorn-gthread"])
def test_a_plain_http1_row_serves_tls_when_given_a_certificate(
    name: str, tmp_path: Path, certificate: Certificate, reference: dict[str, Reply]
) -> None:
    with serve(TARGETS[name], tmp_path / f"{name}.log", tls=certificate) as server:
        assert server.url.startswith("https://127.0.0.1:")
        assert server.tls and server.ca_pem == certificate.ca_pem and server.http == "1.1"
        reply = client.fetch(server.url, "GET", "/json?items=3", ca_file=certificate.ca_file)
        plain_url = server.url.replace("https://", "http://")
        with pytest.raises(FetchError):  # plain text to a TLS port gets no HTTP answer
            client.fetch(plain_url, "GET", "/health", timeout_s=2)
    assert (reply.status, reply.http_version) == (200, "HTTP/1.1")
    assert reply.body == reference["/json?items=3"].body
