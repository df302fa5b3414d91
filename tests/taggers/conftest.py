"""Taggers tests run offline (docs/taggers.md#tests): the Hugging Face offline variables are set
before anything imports huggingface_hub, non-loopback sockets are blocked, and models are the
tiny random-init open_clip config of fixtures/model_configs, provisioned as a `local-dir:`."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.taggers import factories

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class NetworkBlocked(OSError):
    """A taggers test tried to reach beyond this machine."""


def _loopback(host: Any) -> bool:
    if not isinstance(host, str):
        return False
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(address: Any, family: int) -> None:
    if family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _loopback(host):
        raise NetworkBlocked(f"taggers tests may not connect to {address!r} (only loopback)")


def _connect(self: socket.socket, address: Any) -> Any:
    _check(address, self.family)
    return _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> Any:
    _check(address, self.family)
    return _real_connect_ex(self, address)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _loopback(host.decode() if isinstance(host, bytes) else host):
        raise NetworkBlocked(f"taggers tests may not resolve {host!r} (only loopback)")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", _getaddrinfo)


@pytest.fixture(scope="session")
def tiny_mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mirrored open_clip repository of the tiny model (config + safetensors), made once."""
    return factories.tiny_mirror(tmp_path_factory.mktemp("mirror") / "tiny")


@pytest.fixture
def model_dir(settings: Any, tmp_path: Path, tiny_mirror: Path) -> Path:
    """BAGGINTAG_MODEL_DIR with the tiny model provisioned as open_clip/tiny (and a data dir
    for the matrix cache)."""
    from apps.taggers.engine import provision

    root = tmp_path / "models"
    settings.BAGGINTAG_MODEL_DIR = root
    settings.DATA_DIR = tmp_path / "data"
    provision.provision(
        model_root=root, kind="open_clip", repo="test/tiny", name="tiny", from_dir=tiny_mirror
    )
    return root


@pytest.fixture
def space(db: Any, model_dir: Path) -> Any:
    from apps.taggers.services.spaces import space_create

    return space_create(name="tiny", model_ref="local-dir:open_clip/tiny")


@pytest.fixture
def ml_worker(transactional_db: Any, settings: Any) -> Iterator[object]:
    """A real Celery worker (in a thread) consuming the ML queues and default."""
    import contextlib

    from celery.contrib.testing.worker import start_worker

    from baggintag.celery import app

    queues = ["default", "ml", "ml_cpu"]
    with app.connection_for_write() as conn:
        for queue in queues:
            with contextlib.suppress(Exception):
                conn.default_channel.queue_purge(queue)
    with start_worker(
        app, pool="solo", perform_ping_check=False, queues=queues, shutdown_timeout=30
    ) as worker:
        yield worker
