"""Tests: TEST_DATABASE_URL picks MariaDB (CI) or SQLite; REDIS_URL picks the job broker.

Names carry the process id so parallel test runs on one machine never share a database,
a broker queue or a spool folder. Worker processes that a test starts (tests/jobs/workers.py)
get BAGGINTAG_TEST_RUN, so they share the test process's names.
"""

import os
import tempfile
from pathlib import Path

from baggintag.settings.base import *  # noqa: F403
from baggintag.settings.base import REDIS_URL, _tune_database, env

_TMP = Path(tempfile.gettempdir())
_RUN = os.environ.get("BAGGINTAG_TEST_RUN") or f"{os.getpid()}"

DATABASES = {"default": env.db("TEST_DATABASE_URL", default=f"sqlite:///{_TMP / 'baggintag-test.sqlite3'}")}
_tune_database(DATABASES["default"])
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not :memory:, so the worker thread and the live server share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(_TMP / f"test_baggintag_{_RUN}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {**DATABASES["default"].get("TEST", {}), "NAME": f"test_baggintag_{_RUN}"}

if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "global_keyprefix": f"bt-test-{_RUN}:"}
else:
    _BROKER = _TMP / f"baggintag-test-broker-{_RUN}"
    _BROKER.mkdir(exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER),
        "data_folder_out": str(_BROKER),
        "control_folder": str(_BROKER / "control"),
        "store_processed": False,
    }

BAGGINTAG_SPOOL_DIR = _TMP / f"baggintag-test-spool-{_RUN}"
BAGGINTAG_SPOOL_DIR.mkdir(exist_ok=True)
FILE_UPLOAD_TEMP_DIR = str(BAGGINTAG_SPOOL_DIR)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
DEBUG = False
