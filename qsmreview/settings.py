"""Django settings for qsmreview, all from the environment.

Defaults are the embedded demo set-up (SQLite, a filesystem broker, local media) and are safe only
on a developer's machine: with ``QSMREVIEW_DEMO`` unset and ``DEBUG`` false, a real
``SECRET_KEY`` and ``ALLOWED_HOSTS`` are required. See README "Configuration".
"""

from __future__ import annotations

import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from qsmreview.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("QSMREVIEW_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
DEMO = env_bool("QSMREVIEW_DEMO", False)

_INSECURE_KEY = "insecure-demo-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", _INSECURE_KEY if (DEBUG or DEMO) else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY is required unless DEBUG or QSMREVIEW_DEMO is on")
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"] if (DEBUG or DEMO) else []
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "qsmreview.studies",
    "qsmreview.jobs",
    "qsmreview.processing",
    "qsmreview.annotations",
    "qsmreview.consensus",
    "qsmreview.reports",
    "qsmreview.exports",
    "qsmreview.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CSRF, which reads the body: an over-size upload gets its message, not a bare 400.
    "qsmreview.studies.uploads.UploadTooLargeMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "qsmreview.urls"
WSGI_APPLICATION = "qsmreview.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "qsmreview" / "templates"],
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

# --- database -------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'qsmreview.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A worker process and the web process share the file: wait for locks instead of failing,
    # and let tests use a file (not :memory:) so a real worker process can see the test data.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-qsmreview.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- storage ----------------------------------------------------------------------------------
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]

def _raise(exc: Exception):
    raise exc


_storage_backend = env_str("STORAGE_BACKEND", "filesystem")
if _storage_backend == "filesystem":
    _default_storage: dict = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif _storage_backend == "s3":
    # Any S3-compatible store (AWS, MinIO, Ceph): workers on other machines read the same bucket.
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("S3_BUCKET", "")
            or _raise(ImproperlyConfigured("STORAGE_BACKEND=s3 needs S3_BUCKET")),
            "endpoint_url": env_str("S3_ENDPOINT_URL", "") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID", "") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY", "") or None,
            "region_name": env_str("S3_REGION", "") or None,
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
else:
    raise ImproperlyConfigured(f"STORAGE_BACKEND={_storage_backend!r}: use 'filesystem' or 's3'")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": env_str(
            "STATICFILES_BACKEND", "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- uploads ----------------------------------------------------------------------------------
# Uploads are always streamed to a temporary file (never held in memory), then validated.
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
FILE_UPLOAD_HANDLERS = [
    # First: refuses an upload the caller may not make before any byte of the body is read.
    "qsmreview.api.upload_gate.UploadGateHandler",
    "qsmreview.studies.uploads.LimitedTemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024  # non-file request bodies
#: Largest accepted NIfTI upload in bytes (default 2 GiB).
QSMREVIEW_MAX_UPLOAD_BYTES = env_int("QSMREVIEW_MAX_UPLOAD_BYTES", 2 * 1024**3, minimum=1)
#: Largest volume a NIfTI header may declare, all echoes together, checked from the header before
#: any data is read (a 2 MB .nii.gz can declare gigabytes of zeros). 2**27 = 134,217,728 voxels:
#: 512^3, a 0.5 mm whole brain (448 x 448 x 320) with two echoes, 384 x 384 x 90 with 10 echoes.
#: See docs/data.md.
QSMREVIEW_MAX_VOXELS = env_int("QSMREVIEW_MAX_VOXELS", 2**27, minimum=1)
#: Largest uncompressed data block a NIfTI header may declare (default 1 GiB: 2**27 float64).
QSMREVIEW_MAX_UNPACKED_BYTES = env_int("QSMREVIEW_MAX_UNPACKED_BYTES", 1024**3, minimum=1)
FILE_UPLOAD_TEMP_DIR = env_str("FILE_UPLOAD_TEMP_DIR", "") or None

# --- auth -------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- security outside the demo ----------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not (DEBUG or DEMO))
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not (DEBUG or DEMO))
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)

# --- email (password reset) --------------------------------------------------------------------
# The demo and DEBUG print mail to the console (the web log); production sends it through SMTP.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if (DEBUG or DEMO)
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: set one")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "qsmreview@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- i18n -------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- REST API ---------------------------------------------------------------------------------
# Cache: per-process memory by default; a shared Redis (CACHE_URL) in production, so that the login
# throttle counts requests across all web processes.
CACHE_URL = env_str("CACHE_URL", "")
if CACHE_URL and not CACHE_URL.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured(f"CACHE_URL must be a redis:// or rediss:// URL, got {CACHE_URL!r}")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
#: Password attempts per client address ("<n>/<second|minute|hour|day>") at the token endpoint, the
#: login page and the admin login together (qsmreview.login_throttle): against password guessing.
QSMREVIEW_LOGIN_RATE = env_str("QSMREVIEW_LOGIN_RATE", "10/minute")
if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", QSMREVIEW_LOGIN_RATE):
    raise ImproperlyConfigured(
        f"QSMREVIEW_LOGIN_RATE must look like 10/minute (n/second|minute|hour|day), got {QSMREVIEW_LOGIN_RATE!r}"
    )

REST_FRAMEWORK = {
    # Client address for the login throttle: 0 trusts only REMOTE_ADDR (a client cannot pick its
    # own X-Forwarded-For); behind N reverse proxies that set X-Forwarded-For, use N.
    "NUM_PROXIES": env_int("QSMREVIEW_NUM_PROXIES", 0, minimum=0),
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous request gets 401 with WWW-Authenticate, not 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON that PostgreSQL could not store (1e400, \u0000) is a 400, not a database error.
    "DEFAULT_PARSER_CLASSES": [
        "qsmreview.api.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # The browsable API without forms: DRF's would list every study's rows in <select>s.
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "qsmreview.api.renderers.ReadOnlyBrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "qsmreview.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "qsmreview.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "qsmreview API",
    "DESCRIPTION": "Studies, subjects, sessions, NIfTI series and processing jobs of a 7T MS QSM study.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from our own static files (drf-spectacular-sidecar, pinned): /api/docs/ works
    # offline and loads nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # qsmreview.api.ids.IdConverter: ids are PostgreSQL bigints.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2**63 - 1}
    },
    "ENUM_NAME_OVERRIDES": {
        "SeriesKindEnum": "qsmreview.studies.models.SeriesKind",
        "ProcessingKindEnum": "qsmreview.processing.services.PROCESSING_KINDS",
        "AssignmentStatusEnum": "qsmreview.annotations.models.AssignmentStatus",
        "LesionTypeEnum": "qsmreview.consensus.models.LesionType",
    },
}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.rstrip("/") == "filesystem:":
    # The filesystem transport ignores the host, but kombu warns "No hostname was supplied" on
    # every connection without one: name it, so the demo's log shows only what needs acting on.
    CELERY_BROKER_URL = "filesystem://localhost/"
_broker_dir = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem"):
    # The embedded broker: message files in a folder, shared by web and worker processes.
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
CELERY_BROKER_TRANSPORT_OPTIONS: dict = (
    {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60)}
)
CELERY_TASK_IGNORE_RESULT = True  # the Job row is the record of a job, not a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "qsmreview")
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-jobs": {"task": "qsmreview.jobs.tasks.sweep_stale_jobs", "schedule": 60.0},
    "sweep-orphan-files": {"task": "qsmreview.studies.tasks.sweep_orphan_files", "schedule": 3600.0},
}
#: A running job whose worker has not reported for this long is swept (re-queued or failed).
QSMREVIEW_JOB_STALE_SECONDS = env_int("QSMREVIEW_JOB_STALE_SECONDS", 120, minimum=1)
#: Seconds between heartbeats written by a running job.
QSMREVIEW_JOB_HEARTBEAT_SECONDS = env_int("QSMREVIEW_JOB_HEARTBEAT_SECONDS", 10, minimum=1)
#: How many times a job whose worker died is re-queued before it is failed.
QSMREVIEW_JOB_MAX_ATTEMPTS = env_int("QSMREVIEW_JOB_MAX_ATTEMPTS", 2, minimum=1)
#: A stored series file with no row is deleted by the hourly sweep once it is this old.
QSMREVIEW_ORPHAN_GRACE_SECONDS = env_int("QSMREVIEW_ORPHAN_GRACE_SECONDS", 3600, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
