"""Fetching media from URLs without letting a URL reach inside the network (SSRF).

Every hop is resolved once, every address it resolves to must be public, and the connection
goes to exactly that checked address (no second DNS lookup an attacker could answer
differently). Redirects are followed by hand and checked the same way.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from django.conf import settings

from apps.media.exceptions import MediaTooLargeError, UrlFetchError, UrlRefusedError

# Not "global" by ipaddress's tables but still never a media host, e.g. cloud metadata.
_EXTRA_BLOCKED = [
    ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("fd00:ec2::/32"), ipaddress.ip_network("64:ff9b::/96"),
]
_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 256 * 1024
USER_AGENT = "Baggintag/0.1 (+media import)"


@dataclass
class Fetched:
    path: Path
    final_url: str
    content_type: str
    filename: str


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in settings.BAGGINTAG_URL_ALLOWED_NETWORKS]


def address_is_public(address: str) -> bool:
    """True when `address` is a globally routable unicast address (or explicitly allowed)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if any(ip in net for net in _allowed_networks()):
        return True
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return False
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
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def fetch_url(url: str, *, max_bytes: int | None = None) -> Fetched:
    """Download `url` into a temporary file, enforcing address, size and time limits.

    The caller owns (and deletes) the returned file.
    """
    max_bytes = max_bytes or settings.BAGGINTAG_MAX_UPLOAD_BYTES
    deadline = time.monotonic() + settings.BAGGINTAG_URL_TIMEOUT
    current = url
    for _hop in range(settings.BAGGINTAG_URL_MAX_REDIRECTS + 1):
        scheme, host, port, path = check_url(current)
        address = resolve_public(host, port)
        timeout = max(1.0, deadline - time.monotonic())
        conn_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
        conn = conn_class(host, port, address, timeout)
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
            return _download(response, current, max_bytes=max_bytes, deadline=deadline)
        except (OSError, http.client.HTTPException) as exc:
            raise UrlFetchError(f"Could not download {current[:200]}: {exc}.") from exc
        finally:
            conn.close()
    raise UrlFetchError(f"Too many redirects (more than {settings.BAGGINTAG_URL_MAX_REDIRECTS}).")


def _download(response: http.client.HTTPResponse, url: str, *, max_bytes: int,
              deadline: float) -> Fetched:
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise MediaTooLargeError(
            f"The file at {url[:200]} is {int(declared):,} bytes; the limit is {max_bytes:,}.",
        )
    handle = tempfile.NamedTemporaryFile(prefix="bt-url-", delete=False)  # noqa: SIM115
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
                if time.monotonic() > deadline:
                    raise UrlFetchError(
                        f"Downloading {url[:200]} took longer than {settings.BAGGINTAG_URL_TIMEOUT:g} s.",
                    )
                handle.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    name = Path(urlsplit(url).path).name
    return Fetched(path=path, final_url=url, content_type=response.getheader("Content-Type") or "",
                   filename=name)
