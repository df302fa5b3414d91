"""Intake fixtures: a target dataset with a subset, a bounded loopback HTTP server for URL
entries, and a folder root for folder entries."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests import mediafiles

HOST = "127.0.0.2"  # Linux routes 127/8 to loopback; only this address is exempted


@dataclass
class Files:
    """What the server serves (path → bytes) and how often each path was fetched."""

    httpd: ThreadingHTTPServer
    bodies: dict[str, bytes]
    hits: Counter[str] = field(default_factory=Counter)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.httpd.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        files: Files = self.server.files  # type: ignore[attr-defined]
        files.hits[self.path] += 1
        body = files.bodies.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def url_server(settings) -> Iterator[Files]:  # type: ignore[no-untyped-def]
    """Serves three distinct JPEGs at /a.jpg, /b.jpg, /c.jpg (and 404 elsewhere) on 127.0.0.2,
    the only address exempted from the fetcher's private-address block."""
    httpd = ThreadingHTTPServer((HOST, 0), _Handler)
    httpd.daemon_threads = True
    files = Files(
        httpd=httpd,
        bodies={f"/{n}.jpg": mediafiles.image_bytes("jpeg", seed=40 + i) for i, n in enumerate("abc")},
    )
    httpd.files = files  # type: ignore[attr-defined]
    serving = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    serving.start()
    watchdog = threading.Timer(120.0, httpd.shutdown)
    watchdog.daemon = True
    watchdog.start()
    settings.BAGGINTAG_URL_ALLOWED_NETWORKS = [f"{HOST}/32"]
    settings.BAGGINTAG_URL_TIMEOUT = 5.0
    try:
        yield files
    finally:
        watchdog.cancel()
        httpd.shutdown()
        httpd.server_close()
        serving.join(timeout=5)


@pytest.fixture
def folder_root(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """The intake root with `shoot/` (two pictures and a note) and a sibling folder outside it."""
    root = tmp_path / "intake-root"
    shoot = root / "shoot" / "day1"
    shoot.mkdir(parents=True)
    (shoot / "one.png").write_bytes(mediafiles.image_bytes("png", seed=60))
    (root / "shoot" / "two.webp").write_bytes(mediafiles.image_bytes("webp", seed=61))
    (root / "shoot" / "notes.txt").write_bytes(b"not media")
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.png").write_bytes(mediafiles.image_bytes("png", seed=62))
    settings.BAGGINTAG_INTAKE_FOLDER_ROOT = str(root)
    return root


@pytest.fixture
def dataset(db):  # type: ignore[no-untyped-def]
    from apps.datasets import services

    return services.dataset_create(name="Faces", purpose="LoRA")


@pytest.fixture
def subset(dataset):  # type: ignore[no-untyped-def]
    from apps.datasets import services

    return services.subset_create(dataset=dataset, name="Alice")
