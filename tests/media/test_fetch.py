"""URL import without SSRF: refused URLs and addresses, and real downloads from a loopback server.

The server binds 127.0.0.2 only (Linux routes all of 127/8 to loopback) and stops itself; the
tests exempt exactly that address with BAGGINTAG_URL_ALLOWED_NETWORKS. Nothing here contacts
a non-loopback address: refused URLs must fail before any connection is made.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from apps.media.exceptions import MediaTooLargeError, UrlFetchError, UrlRefusedError
from apps.media.models import MediaItem, MediaSource
from apps.media.services import fetch
from apps.media.services.fetch import address_is_public, check_url, fetch_url, resolve_public
from tests import mediafiles
from tests.conftest import stored_files

SERVER_HOST = "127.0.0.2"
SERVER_LIFETIME_S = 60.0  # the server shuts itself down after this, whatever the tests do
JPEG = mediafiles.image_bytes("jpeg", seed=11)


# --------------------------------------------------------------------------------------------
# A bounded local HTTP server
# --------------------------------------------------------------------------------------------

Route = Callable[[BaseHTTPRequestHandler, "Server"], None]


@dataclass
class Server:
    httpd: ThreadingHTTPServer
    routes: dict[str, Route]
    stop: threading.Event = field(default_factory=threading.Event)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    sentinel_port: int = 0

    scheme: str = "http"

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def url(self, path: str) -> str:
        return f"{self.scheme}://{SERVER_HOST}:{self.port}{path}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # a handler never waits on a silent client for longer than this
    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        state: Server = self.server.state  # type: ignore[attr-defined]
        assert self.client_address[0].startswith("127."), "the test server serves loopback only"
        path = self.path.split("?", 1)[0]
        state.requests.append((self.path, dict(self.headers.items())))
        route = state.routes.get(path)
        if route is None:
            self.send_response(404)
            self.send_header("Content-Length", "9")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"not found")
            return
        # The client may hang up on purpose (size or time limit).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            route(self, state)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _head(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str]) -> None:
    handler.send_response(status)
    for name, value in {**headers, "Connection": "close"}.items():
        handler.send_header(name, value)
    handler.end_headers()


def _body(data: bytes, content_type: str = "image/jpeg") -> Route:
    def route(h: BaseHTTPRequestHandler, s: Server) -> None:
        _head(h, 200, {"Content-Type": content_type, "Content-Length": str(len(data))})
        h.wfile.write(data)

    return route


def _redirect(location: Callable[[Server], str], status: int = 302) -> Route:
    def route(h: BaseHTTPRequestHandler, s: Server) -> None:
        _head(h, status, {"Location": location(s), "Content-Length": "0"})

    return route


def _announce_big(h: BaseHTTPRequestHandler, s: Server) -> None:
    # Announces 10 MB; sends a little, the client must refuse on the header alone.
    _head(h, 200, {"Content-Type": "image/jpeg", "Content-Length": str(10 * 1024 * 1024)})
    h.wfile.write(b"\xff" * 1024)


def _chunked_big(h: BaseHTTPRequestHandler, s: Server) -> None:
    _head(h, 200, {"Content-Type": "image/jpeg", "Transfer-Encoding": "chunked"})
    chunk = b"\xff" * 64 * 1024
    for _ in range(64):  # 4 MB in total, far over the 100 kB limit the tests set
        if s.stop.is_set():
            return
        h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    h.wfile.write(b"0\r\n\r\n")


def _unannounced_big(h: BaseHTTPRequestHandler, s: Server) -> None:
    # No usable Content-Length (absent here, nonsense in the next route): read until close.
    _head(h, 200, {"Content-Type": "image/jpeg"})
    for _ in range(64):
        if s.stop.is_set():
            return
        h.wfile.write(b"\xff" * 64 * 1024)


def _bogus_length_big(h: BaseHTTPRequestHandler, s: Server) -> None:
    _head(h, 200, {"Content-Type": "image/jpeg", "Content-Length": "12abc"})
    for _ in range(64):
        if s.stop.is_set():
            return
        h.wfile.write(b"\xff" * 64 * 1024)


def _stall(h: BaseHTTPRequestHandler, s: Server) -> None:
    s.stop.wait(8)  # says nothing at all


def _drip_body(h: BaseHTTPRequestHandler, s: Server) -> None:
    # Headers at once, then one byte every 0.2 s: every single read is quick, the whole is not.
    _head(h, 200, {"Content-Type": "image/jpeg", "Content-Length": "100"})
    for _ in range(100):
        if s.stop.wait(0.2):
            return
        h.wfile.write(b"\xff")
        h.wfile.flush()


def _drip_headers(h: BaseHTTPRequestHandler, s: Server) -> None:
    h.wfile.write(b"HTTP/1.1 200 OK\r\n")
    for i in range(100):
        if s.stop.wait(0.2):
            return
        h.wfile.write(b"X-Slow-%d: 1\r\n" % i)
        h.wfile.flush()


ROUTES: dict[str, Route] = {
    "/photo.jpg": _body(JPEG),
    "/fotos/caf%C3%A9%201.jpg": _body(JPEG),
    "/go": _redirect(lambda s: "/photo.jpg", 301),
    "/go-absolute": _redirect(lambda s: s.url("/photo.jpg"), 307),
    "/to-loopback": _redirect(lambda s: f"http://127.0.0.1:{s.sentinel_port}/photo.jpg"),
    "/to-metadata": _redirect(lambda s: "http://169.254.169.254/latest/meta-data/"),
    "/to-file": _redirect(lambda s: "file:///etc/passwd"),
    "/to-gopher": _redirect(lambda s: "gopher://127.0.0.2:70/_hello"),
    "/loop": _redirect(lambda s: "/loop"),
    "/no-location": lambda h, s: _head(h, 302, {"Content-Length": "0"}),
    "/big-announced": _announce_big,
    "/big-chunked": _chunked_big,
    "/big-unannounced": _unannounced_big,
    "/big-bogus-length": _bogus_length_big,
    "/stall": _stall,
    "/drip-body": _drip_body,
    "/drip-headers": _drip_headers,
    "/teapot": lambda h, s: _head(h, 418, {"Content-Length": "0"}),
}


@pytest.fixture
def sentinel() -> Iterator[socket.socket]:
    """A listener on 127.0.0.1 that records any connection: refused redirects must not reach it."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener
    listener.close()


def _sentinel_contacted(listener: socket.socket) -> bool:
    listener.setblocking(False)
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def _serve(settings, sentinel: socket.socket, tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    httpd = ThreadingHTTPServer((SERVER_HOST, 0), _Handler)
    httpd.daemon_threads = True
    assert httpd.server_address[0] == SERVER_HOST
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    state = Server(
        httpd=httpd, routes=ROUTES, sentinel_port=sentinel.getsockname()[1], scheme="https" if tls else "http"
    )
    httpd.state = state  # type: ignore[attr-defined]
    serving = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    serving.start()
    watchdog = threading.Timer(SERVER_LIFETIME_S, httpd.shutdown)
    watchdog.daemon = True
    watchdog.start()
    settings.BAGGINTAG_URL_ALLOWED_NETWORKS = [f"{SERVER_HOST}/32"]
    settings.BAGGINTAG_URL_TIMEOUT = 5.0
    try:
        yield state
    finally:
        state.stop.set()
        watchdog.cancel()
        httpd.shutdown()
        httpd.server_close()
        serving.join(timeout=5)


@pytest.fixture
def server(settings, sentinel: socket.socket) -> Iterator[Server]:
    """The loopback server, with its address (and only it) exempted from the SSRF check."""
    yield from _serve(settings, sentinel)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for the IP address 127.0.0.2: (cert, key)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            f"/CN={SERVER_HOST}",
            "-addext",
            f"subjectAltName=IP:{SERVER_HOST}",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
def tls_server(settings, sentinel: socket.socket, certificate: tuple[Path, Path]) -> Iterator[Server]:
    """The same server over TLS, with a certificate nobody trusts unless a test says so."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    yield from _serve(settings, sentinel, context)


@pytest.fixture
def trust_certificate(monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]) -> None:
    """Make fetch's default TLS context trust the test certificate (and nothing else)."""
    real = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda: real(cafile=str(certificate[0])))


@pytest.fixture
def url_temp_files(tmp_path: Path, settings) -> Callable[[], set[str]]:
    """fetch_url's spool files ("bt-url-*"), in a spool folder of this test's own.

    A private spool folder keeps other processes' downloads out of the comparison.
    """
    private = tmp_path / "spool"
    settings.BAGGINTAG_SPOOL_DIR = str(private)
    return lambda: {p.name for p in private.glob("bt-url-*")}


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record (and stop) any outgoing connection; refused URLs must leave this list empty."""
    attempts: list[object] = []

    def refuse(address: object, *args: object, **kwargs: object) -> socket.socket:
        attempts.append(address)
        raise AssertionError(f"fetch_url tried to connect to {address!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


# --------------------------------------------------------------------------------------------
# URL shape
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("file:///etc/passwd", "'file'"),
        ("ftp://example.com/a.jpg", "'ftp'"),
        ("gopher://127.0.0.1:6379/_INFO", "'gopher'"),
        ("javascript:alert(1)", "'javascript'"),
        ("data:image/jpeg;base64,/9j/4AAQ", "'data'"),
        ("/etc/passwd", "a bare path"),
        ("example.com/a.jpg", "a bare path"),
    ],
)
def test_check_url_refuses_schemes_other_than_http(url, says, no_connect):
    with pytest.raises(UrlRefusedError) as info:
        check_url(url)
    err = info.value
    assert (err.code, err.status_code) == ("media.url_refused", 400)
    assert "Only http and https URLs can be imported" in err.message
    assert says in err.message
    with pytest.raises(UrlRefusedError):
        fetch_url(url)
    assert no_connect == []


@pytest.mark.parametrize(
    "url",
    [
        "http://user:secret@example.com/a.jpg",
        "https://user@example.com/a.jpg",
        "http://example.com\\@127.0.0.1/a.jpg",
    ],
)
def test_check_url_refuses_userinfo(url, no_connect):
    with pytest.raises(UrlRefusedError, match="user names or passwords") as info:
        fetch_url(url)
    assert info.value.code == "media.url_refused"
    assert no_connect == []


def test_check_url_refuses_overlong_urls(no_connect):
    url = "http://example.com/" + "a" * 1982
    assert len(url) == 2001
    with pytest.raises(UrlRefusedError, match="at most 2000 characters") as info:
        fetch_url(url)
    assert info.value.code == "media.url_refused"
    assert no_connect == []
    assert check_url("http://example.com/" + "a" * 1981)[1] == "example.com"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http:///a.jpg", "has no host"),
        ("http://[::1/a.jpg", "Not a valid URL"),
        ("http://example.com:99999/a.jpg", "Not a valid URL"),
    ],
)
def test_check_url_refuses_malformed_urls(url, says, no_connect):
    with pytest.raises(UrlRefusedError, match=says):
        fetch_url(url)
    assert no_connect == []


def test_check_url_splits_and_defaults_ports():
    assert check_url("http://example.com") == ("http", "example.com", 80, "/")
    assert check_url("HTTPS://Example.COM/a/b.jpg?x=1&y=2") == (
        "https",
        "example.com",
        443,
        "/a/b.jpg?x=1&y=2",
    )
    assert check_url("http://[2001:db8::1]:8080/p") == ("http", "2001:db8::1", 8080, "/p")


def test_check_url_percent_encodes_what_cannot_go_on_the_request_line():
    # Spaces and non-ASCII letters are common in image URLs; http.client refuses them raw.
    assert check_url("http://example.com/fotos/café 1.jpg")[3] == "/fotos/caf%C3%A9%201.jpg"
    assert check_url("http://example.com/a%20b.jpg?q=a b")[3] == "/a%20b.jpg?q=a%20b"


# --------------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------------

BLOCKED_ADDRESSES = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "192.0.2.1",
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd00:ec2::254",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "ff02::1",
    "2001:db8::1",
    "2002:7f00:1::1",
    "2002:a9fe:a9fe::1",
]


@pytest.mark.parametrize("address", BLOCKED_ADDRESSES)
def test_address_is_public_refuses_internal_addresses(address):
    assert address_is_public(address) is False


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:93.184.216.34",
        "2002:5db8:d822::1",
    ],
)
def test_address_is_public_accepts_public_addresses(address):
    assert address_is_public(address) is True


def test_address_is_public_honours_allowed_networks_exactly(settings):
    settings.BAGGINTAG_URL_ALLOWED_NETWORKS = ["127.0.0.2/32", "fd12:3456::/32"]
    assert address_is_public("127.0.0.2")
    assert address_is_public("::ffff:127.0.0.2")
    assert address_is_public("fd12:3456::9")
    assert not address_is_public("127.0.0.1")
    assert not address_is_public("127.0.0.3")
    assert not address_is_public("fd12:3457::9")


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1.2.3",
        "localhost",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "[::1]",
        "[fe80::1]",
        "[fc00::1]",
        "[fd00:ec2::254]",
        "[::ffff:127.0.0.1]",
        "[::]",
        # Other spellings of 127.0.0.1 that the resolver accepts.
        "2130706433",
        "0x7f000001",
        "017700000001",
        "127.1",
    ],
)
def test_fetch_url_refuses_internal_hosts_before_connecting(host, no_connect, url_temp_files):
    before = url_temp_files()
    with pytest.raises(UrlRefusedError) as info:
        fetch_url(f"http://{host}/x.jpg")
    err = info.value
    assert (err.code, err.status_code) == ("media.url_refused", 400)
    assert "only public hosts can be imported from" in err.message
    assert err.details["host"] == host.strip("[]")
    assert no_connect == []
    assert url_temp_files() == before


def test_resolve_public_refuses_a_name_with_any_internal_address(monkeypatch, no_connect):
    # One public and one private record: the private one is enough to refuse.
    def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list:
        assert host == "mixed.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(UrlRefusedError, match=r"10\.0\.0\.1"):
        resolve_public("mixed.example", 80)
    with pytest.raises(UrlRefusedError):
        fetch_url("http://mixed.example/a.jpg")
    assert no_connect == []


def test_resolve_public_returns_a_checked_public_address(monkeypatch):
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:4700:4700::1111", port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
        ],
    )
    assert resolve_public("public.example", 443) == "2606:4700:4700::1111"


def test_resolve_public_reports_unknown_hosts(monkeypatch):
    def fail(*args: object, **kwargs: object) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(UrlFetchError, match="could not be resolved") as info:
        resolve_public("nowhere.invalid", 80)
    assert info.value.code == "media.url_fetch_failed"


def test_resolve_public_reports_unencodable_host_names():
    with pytest.raises(UrlFetchError, match="could not be resolved"):
        resolve_public("a" * 300, 80)


# --------------------------------------------------------------------------------------------
# Real downloads from the loopback server
# --------------------------------------------------------------------------------------------


def test_fetch_url_downloads_a_jpeg(server, url_temp_files):
    fetched = fetch_url(server.url("/photo.jpg"))
    try:
        assert fetched.path.read_bytes() == JPEG
        assert fetched.filename == "photo.jpg"
        assert fetched.final_url == server.url("/photo.jpg")
        assert fetched.content_type == "image/jpeg"
        assert fetched.path.name.startswith("bt-url-")
        assert url_temp_files() == {fetched.path.name}
    finally:
        fetched.path.unlink()
    path, headers = server.requests[0]
    assert path == "/photo.jpg"
    assert headers["Host"] == f"{SERVER_HOST}:{server.port}"
    assert headers["User-Agent"] == fetch.USER_AGENT


def test_fetch_url_encodes_spaces_and_unicode_and_decodes_the_filename(server):
    fetched = fetch_url(server.url("/fotos/café 1.jpg"))
    try:
        assert fetched.path.read_bytes() == JPEG
        assert fetched.filename == "café 1.jpg"
    finally:
        fetched.path.unlink()
    assert server.requests[0][0] == "/fotos/caf%C3%A9%201.jpg"


@pytest.mark.parametrize("start", ["/go", "/go-absolute"])
def test_fetch_url_follows_redirects_and_names_the_file_after_the_last_hop(server, start):
    fetched = fetch_url(server.url(start))
    try:
        assert fetched.path.read_bytes() == JPEG
        assert fetched.final_url == server.url("/photo.jpg")
        assert fetched.filename == "photo.jpg"
    finally:
        fetched.path.unlink()
    assert [p for p, _ in server.requests] == [start, "/photo.jpg"]


def test_fetch_url_pins_the_connection_to_the_checked_address(server, monkeypatch):
    # A rebinding resolver answers the allowed address first, loopback afterwards. One lookup
    # only must happen, and the connection must go to the address that was checked.
    answers = iter(["127.0.0.2", "127.0.0.1", "127.0.0.1"])
    lookups: list[str] = []
    real = socket.getaddrinfo

    def rebinding(host: str, port: int, *args: Any, **kwargs: Any) -> list:
        if host != "media.example":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    fetched = fetch_url(f"http://media.example:{server.port}/photo.jpg")
    fetched.path.unlink()
    assert lookups == ["media.example"]
    assert server.requests[0][1]["Host"] == f"media.example:{server.port}"


@pytest.mark.parametrize(
    ("start", "says"),
    [
        ("/to-loopback", "only public hosts"),
        ("/to-metadata", "only public hosts"),
        ("/to-file", "not 'file'"),
        ("/to-gopher", "not 'gopher'"),
    ],
)
def test_fetch_url_refuses_redirects_to_blocked_targets(server, sentinel, url_temp_files, start, says):
    before = url_temp_files()
    with pytest.raises(UrlRefusedError, match=says) as info:
        fetch_url(server.url(start))
    assert (info.value.code, info.value.status_code) == ("media.url_refused", 400)
    assert [p for p, _ in server.requests] == [start]
    assert not _sentinel_contacted(sentinel), "the refused redirect target was contacted"
    assert url_temp_files() == before


def test_fetch_url_stops_a_redirect_loop(server, settings, url_temp_files):
    settings.BAGGINTAG_URL_MAX_REDIRECTS = 3
    before = url_temp_files()
    with pytest.raises(UrlFetchError, match=r"Too many redirects \(more than 3\)") as info:
        fetch_url(server.url("/loop"))
    assert (info.value.code, info.value.status_code) == ("media.url_fetch_failed", 400)
    assert len(server.requests) == 4
    assert url_temp_files() == before


def test_fetch_url_reports_a_redirect_without_location(server):
    with pytest.raises(UrlFetchError, match="redirected without a Location"):
        fetch_url(server.url("/no-location"))


@pytest.mark.parametrize("path", ["/big-announced", "/big-chunked", "/big-unannounced", "/big-bogus-length"])
def test_fetch_url_refuses_bodies_over_the_limit(server, url_temp_files, path):
    before = url_temp_files()
    with pytest.raises(MediaTooLargeError) as info:
        fetch_url(server.url(path), max_bytes=100_000)
    err = info.value
    assert (err.code, err.status_code) == ("media.too_large", 413)
    assert "the limit is 100,000" in err.message or "limit of 100,000 bytes" in err.message
    assert url_temp_files() == before


def test_fetch_url_uses_the_upload_limit_by_default(server, settings, url_temp_files):
    settings.BAGGINTAG_MAX_UPLOAD_BYTES = len(JPEG) - 1
    before = url_temp_files()
    with pytest.raises(MediaTooLargeError, match=f"the limit is {len(JPEG) - 1:,}"):
        fetch_url(server.url("/photo.jpg"))
    assert url_temp_files() == before
    settings.BAGGINTAG_MAX_UPLOAD_BYTES = len(JPEG)
    fetched = fetch_url(server.url("/photo.jpg"))
    assert fetched.path.read_bytes() == JPEG
    fetched.path.unlink()


@pytest.mark.parametrize(("path", "status"), [("/missing.jpg", 404), ("/teapot", 418)])
def test_fetch_url_reports_http_errors_with_their_status(server, url_temp_files, path, status):
    before = url_temp_files()
    with pytest.raises(UrlFetchError) as info:
        fetch_url(server.url(path))
    err = info.value
    assert (err.code, err.status_code) == ("media.url_fetch_failed", 400)
    assert err.details == {"status": status}
    assert f"The server answered {status}" in err.message
    assert server.url(path) in err.message
    assert url_temp_files() == before


@pytest.mark.parametrize("path", ["/stall", "/drip-body", "/drip-headers"])
def test_fetch_url_gives_up_after_the_time_limit(server, settings, url_temp_files, path):
    # Silence, a body dripped a byte at a time, headers dripped a line at a time: each single
    # read is quick in the last two, but the download as a whole must end at the limit.
    settings.BAGGINTAG_URL_TIMEOUT = 1.0
    before = url_temp_files()
    started = time.monotonic()
    with pytest.raises(UrlFetchError) as info:
        fetch_url(server.url(path))
    elapsed = time.monotonic() - started
    err = info.value
    assert (err.code, err.status_code) == ("media.url_fetch_failed", 400)
    assert "longer than 1 s" in err.message, err.message
    assert elapsed < 3.0
    assert url_temp_files() == before


def test_fetch_url_refuses_an_untrusted_certificate(tls_server, url_temp_files):
    before = url_temp_files()
    with pytest.raises(UrlFetchError, match="CERTIFICATE_VERIFY_FAILED") as info:
        fetch_url(tls_server.url("/photo.jpg"))
    assert info.value.code == "media.url_fetch_failed"
    assert tls_server.requests == []
    assert url_temp_files() == before


def test_fetch_url_downloads_over_tls_from_a_trusted_server(tls_server, trust_certificate):
    fetched = fetch_url(tls_server.url("/go"))
    try:
        assert fetched.path.read_bytes() == JPEG
        assert fetched.final_url == tls_server.url("/photo.jpg")
    finally:
        fetched.path.unlink()


def test_fetch_url_checks_the_certificate_against_the_url_host_not_the_pinned_address(
    tls_server, trust_certificate, monkeypatch
):
    # tls.example resolves to the server, but the certificate names only 127.0.0.2.
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: (
            [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (SERVER_HOST, port))]
            if host == "tls.example"
            else real(host, port, *a, **k)
        ),
    )
    with pytest.raises(UrlFetchError, match="CERTIFICATE_VERIFY_FAILED"):
        fetch_url(f"https://tls.example:{tls_server.port}/photo.jpg")


def test_fetch_url_time_limit_holds_over_tls(tls_server, trust_certificate, settings, url_temp_files):
    settings.BAGGINTAG_URL_TIMEOUT = 1.0
    before = url_temp_files()
    started = time.monotonic()
    with pytest.raises(UrlFetchError, match="longer than 1 s"):
        fetch_url(tls_server.url("/drip-body"))
    assert time.monotonic() - started < 3.0
    assert url_temp_files() == before


def test_fetch_url_reports_a_closed_port_without_a_temp_file(settings, url_temp_files):
    # A loopback port nothing listens on (bound, then closed); exempted like the server.
    probe = socket.socket()
    probe.bind((SERVER_HOST, 0))
    port = probe.getsockname()[1]
    probe.close()
    settings.BAGGINTAG_URL_ALLOWED_NETWORKS = [f"{SERVER_HOST}/32"]
    before = url_temp_files()
    with pytest.raises(UrlFetchError, match="Could not download") as info:
        fetch_url(f"http://{SERVER_HOST}:{port}/x.jpg")
    assert info.value.code == "media.url_fetch_failed"
    assert url_temp_files() == before


# --------------------------------------------------------------------------------------------
# Through the API
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1/x.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:1/x.jpg",
        "file:///etc/passwd",
    ],
)
def test_api_upload_refuses_internal_urls_and_stores_nothing(api, media_root, no_connect, url):
    response = api.post("/api/media/upload", {"url": url}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == "media.url_refused"
    assert "only public hosts" in body["message"] or "Only http and https" in body["message"]
    assert isinstance(body["details"], dict)
    assert MediaItem.objects.count() == 0
    assert MediaSource.objects.count() == 0
    assert stored_files(media_root) == []
    assert no_connect == []


@pytest.mark.django_db
def test_api_upload_reports_a_failed_download_as_a_domain_error(api, media_root, server):
    response = api.post("/api/media/upload", {"url": server.url("/missing.jpg")}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "media.url_fetch_failed"
    assert body["details"] == {"status": 404}
    assert MediaItem.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.django_db
def test_api_upload_imports_from_an_allowed_url(api, media_store, server, url_temp_files):
    response = api.post("/api/media/upload", {"url": server.url("/go")}, format="json")
    assert response.status_code == 201, response.content
    item = MediaItem.objects.get()
    assert (item.kind, item.format, item.size_bytes) == ("image", "jpeg", len(JPEG))
    source = item.sources.get()
    assert (source.kind, source.url, source.original_filename) == ("url", server.url("/go"), "photo.jpg")
    assert url_temp_files() == set()  # the view deletes its download
    assert set(media_store.files()) == {
        item.storage_key,
        item.thumbnail_key,
    }
