"""Production-safe settings; every knob comes from the environment (see .env.example)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _data_path(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (BASE_DIR / path).resolve()


# DATA DIR: SQLite file, media, broker spool and the generated secret live here by default.
DATA_DIR = _data_path(env.str("BAGGINTAG_DATA_DIR", default="./data"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """The environment's key, else one generated once and kept (0600) in the data folder."""
    key = env.str("DJANGO_SECRET_KEY", default="")
    if key:
        return key
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


# CORE
SECRET_KEY = _secret_key()
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_beat",
    "apps.core",
    "apps.jobs",
    "apps.media",
    "apps.tags",
    "apps.search",
    "apps.mappings",
    "apps.taggers",
    "apps.datasets",
    "apps.intake",
    "apps.training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.core.middleware.DomainErrorMiddleware",
    # Last: lock-contention retry, JSON 500s on the API, path-id range check (docs/operations.md).
    "apps.core.middleware.RequestGuardMiddleware",
]

ROOT_URLCONF = "baggintag.urls"
WSGI_APPLICATION = "baggintag.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# DATABASES: SQLite (WAL) in the data folder unless DATABASE_URL=mysql://user:pass@host/db
# https://docs.djangoproject.com/en/5.2/ref/databases/#mariadb-notes
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'baggintag.sqlite3'}")}


def _tune_database(db: dict) -> None:
    if db["ENGINE"].endswith("mysql"):
        db["OPTIONS"] = {
            "charset": "utf8mb4",
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
        }
        db["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    elif db["ENGINE"].endswith("sqlite3"):
        # IMMEDIATE serialises writers instead of failing them mid-transaction.
        db["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }


_tune_database(DATABASES["default"])

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "media:item-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# STATIC AND MEDIA
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = _data_path(env.str("BAGGINTAG_STATIC_ROOT", default=str(DATA_DIR / "static")))
MEDIA_ROOT = _data_path(env.str("MEDIA_ROOT", default=str(DATA_DIR / "media")))
MEDIA_URL = "media/"
# S3 or any django-storages backend: set BAGGINTAG_STORAGE_BACKEND and its own AWS_* variables.
STORAGES = {
    "default": {
        "BACKEND": env.str(
            "BAGGINTAG_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
        ),
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# S3: django-storages' open() downloads the whole object into a buffer, kept in memory unless
# this is set (its default is 0, no limit): a 500 MB video read for frame capture would sit in
# the worker's memory. Larger downloads spool to a temporary file (docs/operations.md#s3-storage).
AWS_S3_MAX_MEMORY_SIZE = 16 * 1024 * 1024

# UPLOAD LIMITS
BAGGINTAG_MAX_UPLOAD_BYTES = env.int("BAGGINTAG_MAX_UPLOAD_BYTES", default=512 * 1024 * 1024)
BAGGINTAG_MAX_IMAGE_PIXELS = env.int("BAGGINTAG_MAX_IMAGE_PIXELS", default=100_000_000)
BAGGINTAG_MAX_ANIMATION_PIXELS = env.int("BAGGINTAG_MAX_ANIMATION_PIXELS", default=2_000_000_000)
BAGGINTAG_MAX_ARCHIVE_MEMBERS = env.int("BAGGINTAG_MAX_ARCHIVE_MEMBERS", default=10_000)
BAGGINTAG_MAX_ARCHIVE_BYTES = env.int("BAGGINTAG_MAX_ARCHIVE_BYTES", default=8 * 1024**3)
BAGGINTAG_MAX_ARCHIVE_RATIO = env.int("BAGGINTAG_MAX_ARCHIVE_RATIO", default=100)
BAGGINTAG_MAX_BULK_FILES = env.int("BAGGINTAG_MAX_BULK_FILES", default=1_000)
BAGGINTAG_MAX_BULK_URLS = env.int("BAGGINTAG_MAX_BULK_URLS", default=10_000)
BAGGINTAG_URL_TIMEOUT = env.float("BAGGINTAG_URL_TIMEOUT", default=30.0)
BAGGINTAG_URL_MAX_REDIRECTS = env.int("BAGGINTAG_URL_MAX_REDIRECTS", default=5)
# Networks exempt from the private-address block (CIDRs); only for trusted intranet sources.
BAGGINTAG_URL_ALLOWED_NETWORKS = env.list("BAGGINTAG_URL_ALLOWED_NETWORKS", default=[])
BAGGINTAG_FFMPEG_TIMEOUT = env.float("BAGGINTAG_FFMPEG_TIMEOUT", default=60.0)
BAGGINTAG_THUMBNAIL_SIZE = env.int("BAGGINTAG_THUMBNAIL_SIZE", default=256)
BAGGINTAG_INGEST_THREADS = env.int("BAGGINTAG_INGEST_THREADS", default=0)
# Datasets (apps/datasets/conf.py): above this many members, tag statistics are sampled.
BAGGINTAG_DATASET_STATS_SAMPLE = env.int("BAGGINTAG_DATASET_STATS_SAMPLE", default=5_000)
# Intake (apps/intake/conf.py): the only server folder intake entries may read (empty: none),
# and the most items one query entry adds.
BAGGINTAG_INTAKE_FOLDER_ROOT = env.str("BAGGINTAG_INTAKE_FOLDER_ROOT", default="")
BAGGINTAG_INTAKE_QUERY_MAX = env.int("BAGGINTAG_INTAKE_QUERY_MAX", default=10_000)
# Requests stream big bodies to disk; only the limit above bounds them.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = BAGGINTAG_MAX_BULK_FILES
BAGGINTAG_MODEL_DIR = _data_path(env.str("BAGGINTAG_MODEL_DIR", default=str(DATA_DIR / "models")))
# Taggers (docs/taggers.md#settings): items per embed/score batch, decode threads per worker, and
# the longest estimated `ml` job a CUDA-less host accepts.
BAGGINTAG_ML_BATCH = env.int("BAGGINTAG_ML_BATCH", default=128)
BAGGINTAG_ML_DECODE_WORKERS = env.int("BAGGINTAG_ML_DECODE_WORKERS", default=0)  # 0: one per core
BAGGINTAG_TRAIN_THREADS = env.int("BAGGINTAG_TRAIN_THREADS", default=0)  # 0: torch's default
BAGGINTAG_CPU_JOB_LIMIT_S = env.int("BAGGINTAG_CPU_JOB_LIMIT_S", default=7200)
# Debounced retraining of head taggers (docs/taggers.md#debounced-retraining): after this many
# curated label changes on a head's tags (0: never), a training is queued this many seconds later.
BAGGINTAG_RETRAIN_AFTER_CHANGES = env.int("BAGGINTAG_RETRAIN_AFTER_CHANGES", default=50)
BAGGINTAG_RETRAIN_DELAY_S = env.int("BAGGINTAG_RETRAIN_DELAY_S", default=300)
# Similarity search (docs/taggers.md#similarity-search): items a ranked term returns, and how long
# a request waits for a worker to encode a new `clip:"…"` text before answering 409 "pending".
BAGGINTAG_SIMILAR_TOP_K = env.int("BAGGINTAG_SIMILAR_TOP_K", default=200)
BAGGINTAG_TEXT_QUERY_WAIT_S = env.float("BAGGINTAG_TEXT_QUERY_WAIT_S", default=5.0)
# Training exports (docs/training.md#settings): where bundles are built, the only server folder
# they may be exported into (empty: none), snapshot items per planning step, the largest session
# linted in the request, and the findings an export keeps.
BAGGINTAG_TRAINING_EXPORT_DIR = _data_path(
    env.str("BAGGINTAG_TRAINING_EXPORT_DIR", default=str(DATA_DIR / "exports"))
)
BAGGINTAG_TRAINING_FOLDER_ROOT = env.str("BAGGINTAG_TRAINING_FOLDER_ROOT", default="")
BAGGINTAG_TRAINING_PLAN_CHUNK = env.int("BAGGINTAG_TRAINING_PLAN_CHUNK", default=1000)
BAGGINTAG_TRAINING_SYNC_LINT_MAX = env.int("BAGGINTAG_TRAINING_SYNC_LINT_MAX", default=2000)
BAGGINTAG_TRAINING_FINDINGS_MAX = env.int("BAGGINTAG_TRAINING_FINDINGS_MAX", default=500)
# Local copies of incoming bytes (uploads, downloads, videos); swept when their process is gone.
BAGGINTAG_SPOOL_DIR = _data_path(env.str("BAGGINTAG_SPOOL_DIR", default=str(DATA_DIR / "spool")))
BAGGINTAG_SPOOL_MAX_AGE_HOURS = env.int("BAGGINTAG_SPOOL_MAX_AGE_HOURS", default=12)
BAGGINTAG_SPOOL_DIR.mkdir(parents=True, exist_ok=True)
FILE_UPLOAD_TEMP_DIR = str(BAGGINTAG_SPOOL_DIR)

# REST FRAMEWORK
REST_FRAMEWORK = {
    # Token first, so anonymous API calls get 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.core.permissions.ModelPermissionsOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.IdCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # `?format=` filters media by file format; it must not pick a DRF renderer.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Baggintag API",
    "DESCRIPTION": "Media library, tags and jobs for Stable Diffusion training data.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "apps.jobs.models.Job.Status",
        "JobItemStatusEnum": "apps.jobs.models.JobItem.Status",
        "MediaKindEnum": "apps.media.models.MediaItem.Kind",
        "DescriptionKindEnum": "apps.tags.models.Description.Kind",
        "OperationKindEnum": "apps.tags.models.Operation.Kind",
        "OperationStatusEnum": "apps.tags.models.Operation.Status",
        "RuleStatusEnum": "apps.tags.models.RuleStatus",
        "TagSetKindEnum": "apps.tags.models.TagSet.Kind",
        "VocabularyKindEnum": "apps.tags.models.Vocabulary.Kind",
        "MappingActionEnum": "apps.mappings.models.TagMapping.Action",
        "SchemeRunSelectionEnum": "apps.taggers.models.SchemeRun.Selection",
        "ScheduleSelectionEnum": "apps.taggers.api.scheme_serializers.SCHEDULE_SELECTIONS",
        "IntakeKindEnum": "apps.intake.models.IntakeEntry.Kind",
        "IntakeStateEnum": "apps.intake.models.IntakeEntry.State",
        "TaggerKindEnum": "apps.taggers.models.Tagger.Kind",
        "BaseModelKindEnum": "apps.training.models.BaseModelProfile.Kind",
        "BaseModelSourceKindEnum": "apps.training.models.BaseModelProfile.SourceKind",
        "TrainingExportTargetEnum": "apps.training.models.TrainingExport.Target",
        "TaggerTargetEnum": "apps.taggers.models.Tagger.Target",
    },
}

# CELERY: Redis when REDIS_URL is set, otherwise a file-spool broker that needs no server.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
REDIS_URL = env.str("REDIS_URL", default="")
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any]
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600}
else:
    BROKER_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "media.*": {"queue": "media"},
    "jobs.*": {"queue": "default"},
    "tags.*": {"queue": "default"},
    "mappings.*": {"queue": "default"},
    "intake.*": {"queue": "default"},
    # Taggers (docs/taggers.md#queues): pixels on `ml` (GPU hosts, one per GPU), work on stored
    # vectors on `ml_cpu`, captioners isolated on `ml_caption`, scheme orchestration on `default`.
    # Exact names first: routes are tried in order. `taggers.*` catches the rest for `ml_cpu`.
    "taggers.embed": {"queue": "ml"},
    "taggers.wd": {"queue": "ml"},
    "taggers.detect": {"queue": "ml"},
    "taggers.caption": {"queue": "ml_caption"},
    "taggers.score": {"queue": "ml_cpu"},
    "taggers.vectors": {"queue": "ml_cpu"},
    "taggers.train": {"queue": "ml_cpu"},
    "taggers.cache": {"queue": "ml_cpu"},
    "taggers.cache_space": {"queue": "ml_cpu"},
    "taggers.*": {"queue": "ml_cpu"},
    "schemes.*": {"queue": "default"},
    "datasets.conform": {"queue": "media"},
    "training.*": {"queue": "media"},
}
# Every queue a worker may consume (docs/operations.md#processes-and-queues).
BAGGINTAG_QUEUES = ("default", "media", "ml", "ml_cpu", "ml_caption")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "jobs-requeue-stale": {"task": "jobs.requeue_stale", "schedule": 30.0},
    "intake-collect-finished": {"task": "intake.collect_finished", "schedule": 30.0},
    "tags-rebuild-stale": {"task": "tags.rebuild_stale", "schedule": 900.0},
    "tags-counters-recount": {"task": "tags.counters_recount", "schedule": 24 * 3600.0},
    "tags-operations-expire": {"task": "tags.operations_expire", "schedule": 24 * 3600.0},
    "taggers-cache-refresh": {"task": "taggers.cache", "schedule": 24 * 3600.0},
    # Due scheme schedules become runs (docs/taggers.md#schedules).
    "schemes-tick": {"task": "schemes.tick", "schedule": 60.0},
    # Head taggers with enough curated label changes get one training (docs/taggers.md#debounced-retraining).
    "taggers-retrain-due": {"task": "taggers.retrain_due", "schedule": 60.0},
}
# Jobs (docs/operations.md#failure-handling): a running job whose heartbeat is older than the
# stale time is taken over; running attempts beat every HEARTBEAT seconds; a queued job whose
# message is missing for SEND_GRACE seconds is sent again; after MAX_ATTEMPTS claims a job
# fails; a failed job's staged files are kept KEEP_FAILED_FILES_HOURS for a retry.
BAGGINTAG_JOB_STALE_SECONDS = env.int("BAGGINTAG_JOB_STALE_SECONDS", default=60)
BAGGINTAG_JOB_HEARTBEAT_SECONDS = env.int("BAGGINTAG_JOB_HEARTBEAT_SECONDS", default=10)
BAGGINTAG_JOB_SEND_GRACE_SECONDS = env.int("BAGGINTAG_JOB_SEND_GRACE_SECONDS", default=30)
BAGGINTAG_JOB_MAX_ATTEMPTS = env.int("BAGGINTAG_JOB_MAX_ATTEMPTS", default=5)
BAGGINTAG_JOB_KEEP_FAILED_FILES_HOURS = env.int("BAGGINTAG_JOB_KEEP_FAILED_FILES_HOURS", default=72)

# BULK TAG OPERATIONS (docs/tags.md#bulk-operations)
BULK_SYNC_MAX_CHANGES = env.int("BAGGINTAG_BULK_SYNC_MAX_CHANGES", default=10_000)
BULK_CHUNK_ITEMS = env.int("BAGGINTAG_BULK_CHUNK_ITEMS", default=5_000)
BULK_MAX_TARGET = env.int("BAGGINTAG_BULK_MAX_TARGET", default=100_000)
BULK_PREVIEW_TTL_HOURS = env.int("BAGGINTAG_BULK_PREVIEW_TTL_HOURS", default=24)
BULK_OPERATION_RETENTION_DAYS = env.int("BAGGINTAG_BULK_OPERATION_RETENTION_DAYS", default=90)

# TAG TEMPLATE CSV IMPORTS
BAGGINTAG_VOCAB_IMPORT_MAX_BYTES = env.int("BAGGINTAG_VOCAB_IMPORT_MAX_BYTES", default=32 * 1024 * 1024)
BAGGINTAG_VOCAB_IMPORT_MAX_LINES = env.int("BAGGINTAG_VOCAB_IMPORT_MAX_LINES", default=500_000)

# SEARCH: query language limits and time budgets (docs/query-language.md#limits)
SEARCH_MAX_LENGTH = env.int("BAGGINTAG_SEARCH_MAX_LENGTH", default=2000)
SEARCH_MAX_TAG_TERMS = env.int("BAGGINTAG_SEARCH_MAX_TAG_TERMS", default=12)
SEARCH_MAX_TERMS = env.int("BAGGINTAG_SEARCH_MAX_TERMS", default=64)
SEARCH_MAX_DEPTH = env.int("BAGGINTAG_SEARCH_MAX_DEPTH", default=8)
SEARCH_WILDCARD_MAX = env.int("BAGGINTAG_SEARCH_WILDCARD_MAX", default=100)
SEARCH_TERM_EXPANSION_MAX = env.int("BAGGINTAG_SEARCH_TERM_EXPANSION_MAX", default=500)
SEARCH_DEFAULT_LIMIT = env.int("BAGGINTAG_SEARCH_DEFAULT_LIMIT", default=100)
SEARCH_MAX_LIMIT = env.int("BAGGINTAG_SEARCH_MAX_LIMIT", default=200)
SEARCH_SMALL_THRESHOLD = env.int("BAGGINTAG_SEARCH_SMALL_THRESHOLD", default=20_000)
SEARCH_SCAN_BUDGET = env.int("BAGGINTAG_SEARCH_SCAN_BUDGET", default=200_000)
SEARCH_TIME_LIMIT = env.float("BAGGINTAG_SEARCH_TIME_LIMIT", default=3.0)
SEARCH_COUNT_ESTIMATE_TIME_LIMIT = env.float("BAGGINTAG_SEARCH_COUNT_ESTIMATE_TIME_LIMIT", default=0.05)
SEARCH_COUNT_ESTIMATE_ROWS = env.int("BAGGINTAG_SEARCH_COUNT_ESTIMATE_ROWS", default=20_000)
SEARCH_WILDCARD_TIME_LIMIT = env.float("BAGGINTAG_SEARCH_WILDCARD_TIME_LIMIT", default=1.0)
SEARCH_COUNT_CACHE_SECONDS = env.int("BAGGINTAG_SEARCH_COUNT_CACHE_SECONDS", default=300)

# CACHES: Redis when configured, else per-process memory.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# SECURITY
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "SAMEORIGIN"
SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("BAGGINTAG_LOG_LEVEL", default="INFO")},
}
