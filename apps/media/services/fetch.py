"""Fetching media from URLs without letting a URL reach inside the network (SSRF).

Every hop is resolved once, every address it resolves to must be public, and the connection
goes to exactly that checked address (no second DNS lookup an attacker could answer
differently). Redirects are followed by hand and checked the same way. The time limit covers
the whole download: a timer shuts the socket down when it runs out, because socket timeouts
only bound each read and a server sending a byte a second would never trip them.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urljoin, urlsplit

from apps.core import spool
from apps.media import conf
from apps.media.exceptions import MediaTooLargeError, UrlFetchError, UrlRefusedError

# Not "global" by ipaddress's tables but still never a media host, e.g. cloud metadata.
_EXTRA_BLOCKED = [
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("fd00:ec2::/32"),
    ipaddress.ip_network("64:ff9b::/96"),
]
_REDIRECTS = {301, 302, 303, 307, 308}
# Characters left as they are when the path is percent-encoded: RFC 3986 reserved ones and "%"
# (existing escapes); spaces, control characters and non-ASCII letters get encoded.
_PATH_SAFE = "!$&'()*+,/:;=?@[]~%"
_CHUNK = 256 * 1024
USER_AGENT = "Baggintag/0.1 (+media import)"


@dataclass
class Fetched:
    path: Path
    final_url: str
    content_type: str
    filename: str


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in conf.url_allowed_networks()]


def address_is_public(address: str) -> bool:
    """True when `address` is a globally routable unicast address (or explicitly allowed)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if any(ip in net for net in _allowed_networks()):
        return True
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return False
    # 6to4 (2002::/16) carries an IPv4 address that a 6to4 relay would route to.
    if isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour is not None:
        return address_is_public(str(ip.sixtofour))
    return not any(ip in net for net in _EXTRA_BLOCKED if net.version == ip.version)


def check_url(url: str) -> tuple[str, str, int, str]:
    """Validate a URL's shape: (scheme, host, port, path+query). Raises UrlRefusedError."""
    if not isinstance(url, str) or len(url) > 2000:
        raise UrlRefusedError("URLs must be strings of at most 2000 characters.")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UrlRefusedError(f"Not a valid URL: {url[:200]!r}.") from exc
    if parts.scheme not in ("http", "https"):
        raise UrlRefusedError(
            f"Only http and https URLs can be imported, not {parts.scheme or 'a bare path'!r}.",
            details={"url": url[:200]},
        )
    if not parts.hostname:
        raise UrlRefusedError(f"The URL {url[:200]!r} has no host.")
    if parts.username or parts.password:
        raise UrlRefusedError("URLs with user names or passwords are not imported.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    # http.client refuses spaces and non-ASCII on the request line; encode them as browsers do.
    path = quote(path, safe=_PATH_SAFE)
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def resolve_public(host: str, port: int) -> str:
    """The first address of `host`, after checking that every address it has is public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlFetchError(f"The host {host!r} could not be resolved.") from exc
    addresses = [str(info[4][0]) for info in infos]
    blocked = [a for a in addresses if not address_is_public(a)]
    if blocked or not addresses:
        raise UrlRefusedError(
            f"The host {host!r} resolves to a private, loopback or link-local address "
            f"({blocked[0] if blocked else 'none'}); only public hosts can be imported from.",
            details={"host": host},
        )
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked `address` only; `expire()` (from a timer) ends any blocked read."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self.expired = False

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._socket = sock
            expired = self.expired
        if expired:  # the timer ran while we were connecting
            _shutdown(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            sock = self._socket
        if sock is not None:
            _shutdown(sock)

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self._track(self.sock)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    default_port = http.client.HTTPS_PORT

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, address, timeout)
        self._context = ssl.create_default_context()

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self._track(raw)
        # Wrapping detaches `raw`; track the TLS socket before the handshake so expire() reaches it.
        sock = self._context.wrap_socket(raw, server_hostname=self.host, do_handshake_on_connect=False)
        self._track(sock)
        self.sock = sock
        sock.do_handshake()


def _shutdown(sock: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: that one also drops the TLS state under
    # the feet of the thread that is reading. Either way the blocked read returns at once.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _too_slow(url: str) -> UrlFetchError:
    return UrlFetchError(
        f"Downloading {url[:200]} took longer than {conf.url_timeout():g} s; "
        "the server is too slow or not answering.",
    )


def fetch_url(url: str, *, max_bytes: int | None = None) -> Fetched:
    """Download `url` into a temporary file, enforcing address, size and time limits.

    The caller owns (and deletes) the returned file.
    """
    max_bytes = max_bytes or conf.max_upload_bytes()
    deadline = time.monotonic() + conf.url_timeout()
    current = url
    for _hop in range(conf.url_max_redirects() + 1):
        scheme, host, port, path = check_url(current)
        address = resolve_public(host, port)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _too_slow(current)
        conn_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
        conn = conn_class(host, port, address, remaining)
        timer = threading.Timer(remaining, conn.expire)
        timer.daemon = True
        timer.start()
        try:
            conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
            response = conn.getresponse()
            if response.status in _REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise UrlFetchError(f"{current[:200]} redirected without a Location.")
                current = urljoin(current, location)
                continue
            if response.status != 200:
                raise UrlFetchError(
                    f"The server answered {response.status} {response.reason} for {current[:200]}.",
                    details={"status": response.status},
                )
            return _download(response, current, max_bytes=max_bytes, conn=conn)
        except (OSError, http.client.HTTPException) as exc:
            if conn.expired or isinstance(exc, TimeoutError):
                raise _too_slow(current) from exc
            raise UrlFetchError(f"Could not download {current[:200]}: {exc}.") from exc
        finally:
            timer.cancel()
            conn.close()
    raise UrlFetchError(f"Too many redirects (more than {conf.url_max_redirects()}).")


def _download(
    response: http.client.HTTPResponse, url: str, *, max_bytes: int, conn: _PinnedHTTPConnection
) -> Fetched:
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise MediaTooLargeError(
            f"The file at {url[:200]} is {int(declared):,} bytes; the limit is {max_bytes:,}.",
        )
    handle = spool.spool_file(prefix="bt-url-")
    path = Path(handle.name)
    try:
        with handle:
            received = 0
            while chunk := response.read(_CHUNK):
                received += len(chunk)
                if received > max_bytes:
                    raise MediaTooLargeError(
                        f"The file at {url[:200]} is larger than the limit of {max_bytes:,} bytes.",
                    )
                handle.write(chunk)
            # A shut-down socket reads as a normal end of body: do not keep a cut-off file.
            if conn.expired:
                raise _too_slow(url)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    return Fetched(
        path=path, final_url=url, content_type=response.getheader("Content-Type") or "", filename=name
    )
