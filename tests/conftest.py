"""Shared fixtures: storage in a temporary folder (or an S3 bucket), users, API clients, media,
a real worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from tests import mediafiles
from tests.storage import MediaStore

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path: Path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    # setting_changed makes default_storage follow the new location.
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture(autouse=True)
def _caches_cleared() -> None:
    """Every test starts with empty caches: a count or autocomplete list cached by one test
    (search caches counts slower than 10 ms) must not answer the next one."""
    from django.core.cache import caches

    for cache in caches.all():
        cache.clear()


@pytest.fixture
def media_root(_media_root: Path) -> Path:
    return _media_root


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto in server mode) on a free port of 127.0.0.1, for this run."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def media_store(request, settings, _media_root: Path) -> Iterator[MediaStore]:
    """Runs the test on the local folder and again on an S3 bucket of its own (marker `s3`):
    the storage-facing tests (tests/storage.py). Select one side with `-m s3` / `-m "not s3"`."""
    if request.param == "local":
        yield MediaStore(backend="local", root=_media_root)
        return
    import uuid

    import boto3

    endpoint = request.getfixturevalue("s3_endpoint")
    options = {
        "bucket_name": f"bt-test-{uuid.uuid4().hex[:16]}",
        "endpoint_url": endpoint,
        "access_key": "testing",
        "secret_key": "testing",
        "region_name": "us-east-1",
    }
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=options["bucket_name"])
    # setting_changed makes default_storage follow the new backend (also in the worker thread).
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }
    store = MediaStore(backend="s3", root=_media_root, client=client, bucket=options["bucket_name"])
    yield store
    for key in store.files():
        if not key.startswith("local:"):
            client.delete_object(Bucket=store.bucket, Key=key)
    client.delete_bucket(Bucket=store.bucket)


def stored_files(root: Path) -> list[Path]:
    """Every regular file under the storage root (the orphan-file check)."""
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def curator(db) -> User:
    """A non-staff user in the curators group."""
    from apps.core.services import curators_group_ensure

    user = User.objects.create_user("curator", password="pw-curator-123")
    user.groups.add(curators_group_ensure())
    return User.objects.get(pk=user.pk)


@pytest.fixture
def viewer(db) -> User:
    """A signed-in user with no permissions beyond reading."""
    return User.objects.create_user("viewer", password="pw-viewer-123")


@pytest.fixture
def api(curator: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(curator)
    return client


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture
def jpeg() -> bytes:
    return mediafiles.image_bytes("jpeg", seed=1)


@pytest.fixture
def celery_worker_thread(transactional_db, settings) -> Iterator[object]:
    """A real Celery worker (in a thread) consuming the default and media queues."""
    from celery.contrib.testing.worker import start_worker

    from baggintag.celery import app

    _purge(app)
    with start_worker(
        app, pool="solo", perform_ping_check=False, queues=["default", "media"], shutdown_timeout=30
    ) as worker:
        yield worker


def _purge(app) -> None:  # type: ignore[no-untyped-def]
    import contextlib

    with app.connection_for_write() as conn:
        for queue in ("default", "media"):
            with contextlib.suppress(Exception):  # the queue may not exist yet
                conn.default_channel.queue_purge(queue)


def pytest_sessionfinish(session, exitstatus) -> None:  # type: ignore[no-untyped-def]
    """Remove this run's broker and spool folders and Redis keys (names carry the process id)."""
    import shutil

    from django.conf import settings

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    if folder := options.get("data_folder_in"):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(settings.BAGGINTAG_SPOOL_DIR, ignore_errors=True)
    if (prefix := options.get("global_keyprefix")) and settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
