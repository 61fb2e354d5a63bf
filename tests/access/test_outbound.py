"""The guarded outbound client refuses every non-public address, in every spelling, unless
OUTBOUND_ALLOWED_HOSTS lets the host or its network through."""

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import pytest

from access.outbound import (
    MAX_RESPONSE_BYTES,
    OutboundRefused,
    address_blocked,
    outbound_address,
    outbound_post,
    outbound_url_problem,
)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",  # CGNAT
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
        "224.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "fd00:ec2::254",  # AWS metadata over IPv6 (unique-local)
        "fe80::1",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    ],
)
def test_non_public_addresses_are_blocked(address):
    assert address_blocked(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert not address_blocked(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://localhost:8000/",
        "http://[::1]/",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "https://user:secret@example.com/",
    ],
)
def test_urls_reaching_the_platform_are_refused(url):
    assert outbound_url_problem(url)
    with pytest.raises(OutboundRefused):
        outbound_address(url)


def test_an_unresolvable_host_may_be_saved_and_is_checked_when_called():
    assert outbound_url_problem("https://not-yet-registered.invalid/hook") is None


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        (["127.0.0.1"], "http://127.0.0.1:9000/"),
        (["localhost"], "http://localhost:9000/"),
        (["127.0.0.0/8"], "http://127.0.0.1:9000/"),
        (["127.0.0.0/8"], "http://localhost:9000/"),
    ],
)
def test_the_allow_list_lets_named_hosts_and_networks_through(settings, allowed, url):
    settings.OUTBOUND_ALLOWED_HOSTS = allowed
    assert outbound_url_problem(url) is None


def test_allowing_a_name_does_not_allow_its_address_under_another_name(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost"]
    assert outbound_url_problem("http://127.0.0.1:9000/")


class _Recorder(BaseHTTPRequestHandler):
    """Answers `answer` (status, headers) and notes each request line it got."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append(self.requestline)  # type: ignore[attr-defined]
        status, headers = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def servers():
    started = []

    def start(status: int = 204, headers: dict[str, str] | None = None) -> HTTPServer:
        server = HTTPServer(("127.0.0.1", 0), _Recorder)
        server.seen, server.answer = [], (status, headers or {})  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def test_proxy_variables_are_ignored(settings, monkeypatch, servers):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    receiver, proxy = servers(), servers()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.server_port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    response = outbound_post(
        f"http://127.0.0.1:{receiver.server_port}/hook", body=b"{}", headers={}
    )
    assert response.status == 204
    assert receiver.seen == ["POST /hook HTTP/1.1"] and proxy.seen == []


def test_a_redirect_is_returned_not_followed(settings, servers):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    target = servers()
    redirecting = servers(302, {"Location": f"http://127.0.0.1:{target.server_port}/inside"})
    response = outbound_post(f"http://127.0.0.1:{redirecting.server_port}/", body=b"", headers={})
    assert response.status == 302 and target.seen == []


def test_a_refused_address_is_refused_at_send_time_too(servers):
    receiver = servers()
    with pytest.raises(OutboundRefused):
        outbound_post(f"http://127.0.0.1:{receiver.server_port}/", body=b"", headers={})
    assert receiver.seen == []


@pytest.mark.parametrize(
    "url", ["http://[::ffff:127.0.0.1]/", "ftp://example.com/", "https://example.com/" + "a" * 2000]
)
def test_mapped_addresses_other_schemes_and_over_long_urls_are_refused(url):
    assert outbound_url_problem(url)


class _KeepAlive(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: notes which connection each request came on; answers
    `size` bytes of body; with `hang_up`, closes the connection once it answered (as a server
    whose idle timeout ran out), without saying so."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.connections.append(self.client_address)  # type: ignore[attr-defined]
        size = self.server.size  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.write(b"x" * size)
        self.close_connection = self.server.hang_up  # type: ignore[attr-defined]

    def log_message(self, *args: object) -> None:
        pass


class _KeepAliveServer(ThreadingHTTPServer):
    daemon_threads = True
    connections: list[tuple[str, int]]
    size = 2
    hang_up = False
    hung_up = threading.Event()

    def shutdown_request(self, request) -> None:
        super().shutdown_request(request)
        self.hung_up.set()


@pytest.fixture
def keep_alive(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    server = _KeepAliveServer(("127.0.0.1", 0), _KeepAlive)
    server.connections, server.hung_up = [], threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_sends_to_one_receiver_share_a_connection(keep_alive):
    url = f"http://127.0.0.1:{keep_alive.server_port}/hook"
    answers = [outbound_post(url, body=b"{}", headers={}) for _ in range(3)]
    assert [(a.status, a.body) for a in answers] == [(200, b"xx")] * 3
    assert len(set(keep_alive.connections)) == 1


def test_a_connection_the_server_closed_while_idle_is_not_reused(keep_alive):
    url = f"http://127.0.0.1:{keep_alive.server_port}/hook"
    keep_alive.hang_up = True
    outbound_post(url, body=b"{}", headers={})
    assert keep_alive.hung_up.wait(5)
    keep_alive.hang_up = False
    assert outbound_post(url, body=b"{}", headers={}).status == 200
    assert len(set(keep_alive.connections)) == 2


def test_an_answer_longer_than_the_limit_is_cut_and_its_connection_dropped(keep_alive):
    keep_alive.size = MAX_RESPONSE_BYTES + 10
    url = f"http://127.0.0.1:{keep_alive.server_port}/hook"
    assert len(outbound_post(url, body=b"{}", headers={}).body) == MAX_RESPONSE_BYTES
    keep_alive.size = 2
    assert outbound_post(url, body=b"{}", headers={}).body == b"xx"
    assert len(set(keep_alive.connections)) == 2


def _self_signed_for_localhost() -> tuple[bytes, bytes]:
    """A certificate for the name `localhost` only (no address), and its key, in PEM."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def test_tls_names_the_host_and_verifies_its_certificate(settings, tmp_path):
    import ssl

    from access import outbound
    from access.outbound import OutboundError

    certificate, key = _self_signed_for_localhost()
    (tmp_path / "cert.pem").write_bytes(certificate)
    (tmp_path / "key.pem").write_bytes(key)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    # Listening where the client connects `localhost` to: its first address.
    family, *_, (address, *_) = socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)[0]
    server_class = type("TlsServer", (_KeepAliveServer,), {"address_family": family})
    server = server_class((address, 0), _KeepAlive)
    server.connections = []
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # An allow-list of its own: the pool built for it trusts the test certificate below.
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost", address]
    port = server.server_port
    by_address = f"[{address}]" if ":" in address else address
    try:
        with pytest.raises(OutboundError, match="CERTIFICATE_VERIFY_FAILED"):
            outbound_post(f"https://localhost:{port}/", body=b"{}", headers={})
        outbound._guarded_pool()._tls.load_verify_locations(cadata=certificate.decode())
        assert outbound_post(f"https://localhost:{port}/", body=b"{}", headers={}).status == 200
        # The same server by its address: the certificate names `localhost` only.
        with pytest.raises(OutboundError, match="CERTIFICATE_VERIFY_FAILED"):
            outbound_post(f"https://{by_address}:{port}/", body=b"{}", headers={})
    finally:
        server.shutdown()
        server.server_close()
