"""Fixtures for the failure tests: real Celery worker processes (to kill, pause and resume), a
Redis server of the test's own (to stop and restart), and an image server whose responses the
test holds back, so a worker can be caught mid-input at a known place."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests import mediafiles

ROOT = Path(__file__).resolve().parents[2]
# The workers' clock: a heartbeat every second, stale after three, so a dead or frozen worker's
# job is taken over within seconds rather than a minute.
FAST_JOBS = {
    "BAGGINTAG_JOB_STALE_SECONDS": 3,
    "BAGGINTAG_JOB_HEARTBEAT_SECONDS": 1,
    "BAGGINTAG_JOB_SEND_GRACE_SECONDS": 1,
}


def wait_until(check: Callable[[], Any], *, timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database_url() -> str:
    from django.db import connection

    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{conf['NAME']}"
    auth = conf["USER"] + (f":{conf['PASSWORD']}" if conf["PASSWORD"] else "")
    return f"mysql://{auth}@{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 3306}/{conf['NAME']}"


@dataclass
class Worker:
    """A `celery worker` process (prefork, one child) on the test database and broker."""

    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def child_pids(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def signal_all(self, sig: int) -> None:
        """Signal the main process and its pool children (a whole worker)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def stop(self) -> None:
        self.signal_all(signal.SIGCONT)
        self.signal_all(signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def fast_jobs(settings) -> dict[str, int]:
    for name, value in FAST_JOBS.items():
        setattr(settings, name, value)
    return FAST_JOBS


@pytest.fixture
def start_worker(transactional_db, media_root, fast_jobs, tmp_path) -> Iterator[Callable[..., Worker]]:
    """Start worker processes; each is ready (consuming) when returned. All die at the end."""
    started: list[Worker] = []

    def start(*, redis_url: str | None = None, name: str = "") -> Worker:
        from django.conf import settings

        name = name or f"w{len(started) + 1}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "baggintag.settings.test",
            "BAGGINTAG_TEST_RUN": os.environ.get("BAGGINTAG_TEST_RUN") or str(os.getpid()),
            "TEST_DATABASE_URL": _database_url(),
            "REDIS_URL": redis_url if redis_url is not None else settings.REDIS_URL,
            "MEDIA_ROOT": str(media_root),
            "BAGGINTAG_URL_ALLOWED_NETWORKS": "127.0.0.1/32",
            **{key: str(value) for key, value in fast_jobs.items()},
        }
        log = tmp_path / f"{name}.log"
        command = [sys.executable, "-m", "celery", "-A", "baggintag", "worker", "-Q", "default,media"]
        command += ["-c", "1", "-P", "prefork", "-n", f"{name}-{os.getpid()}@%h", "--loglevel", "INFO"]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        worker = Worker(process=process, log=log)
        started.append(worker)
        wait_until(
            lambda: " ready." in worker.output() or process.poll() is not None, timeout=60, what="worker"
        )
        assert process.poll() is None, worker.output()
        return worker

    yield start
    for worker in started:
        worker.stop()


@dataclass
class ImageServer:
    """Serves /img/<n>.png; requests for held numbers send half the body and wait for `release`."""

    url: str
    held: set[int] = field(default_factory=set)
    released: threading.Event = field(default_factory=threading.Event)
    requested: list[int] = field(default_factory=list)

    def image(self, n: int) -> str:
        return f"{self.url}/img/{n}.png"

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    server_state: dict[str, ImageServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state = server_state["s"]
            n = int(self.path.rsplit("/", 1)[-1].split(".")[0])
            body = mediafiles.image_bytes("png", seed=100 + n)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            half = len(body) // 2
            self.wfile.write(body[:half])
            self.wfile.flush()
            state.requested.append(n)
            if n in state.held:
                state.released.wait(60)
            with contextlib.suppress(OSError):
                self.wfile.write(body[half:])

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state["s"] = ImageServer(url=f"http://127.0.0.1:{httpd.server_port}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server_state["s"]
    server_state["s"].release()
    httpd.shutdown()
    httpd.server_close()


@dataclass
class RedisServer:
    """A redis-server of this test's own (never the shared one), without persistence."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(self.folder)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, timeout=10, what="redis-server")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def _answers(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
        ):
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False


@pytest.fixture
def own_redis(tmp_path) -> Iterator[RedisServer]:
    """A private Redis, and this process's Celery app sending to it (restored afterwards)."""
    import shutil

    from django.conf import settings

    from baggintag.celery import app

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(port=_free_port(), folder=tmp_path)
    server.start()
    run = os.environ.get("BAGGINTAG_TEST_RUN") or str(os.getpid())
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    app.conf.broker_url = server.url
    app.conf.broker_transport_options = {"visibility_timeout": 3600, "global_keyprefix": f"bt-test-{run}:"}
    _reset_pools(app)
    try:
        yield server
    finally:
        server.stop()
        app.conf.broker_url, app.conf.broker_transport_options = saved
        _reset_pools(app)
        assert saved[0] == settings.CELERY_BROKER_URL


def _reset_pools(app: Any) -> None:
    """Forget every broker connection pool (kombu keeps them in a global registry by URL)."""
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
