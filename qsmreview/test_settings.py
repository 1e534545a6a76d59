"""Settings for the test suite: the production settings with test-only defaults.

The database and broker still come from the environment (``DATABASE_URL``,
``CELERY_BROKER_URL``), so the same suite runs on SQLite with the filesystem broker and on
PostgreSQL with Redis. A worker process started by the tests uses this module too, with
``QSMREVIEW_WORKER_USES_TEST_DB=1`` so that it opens the test database.
"""

import os
from pathlib import Path

_root = Path(__file__).resolve().parent.parent
os.environ.setdefault("QSMREVIEW_VAR_DIR", str(_root / "var" / "test"))
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
os.environ.setdefault("QSMREVIEW_JOB_STALE_SECONDS", "6")
os.environ.setdefault("QSMREVIEW_JOB_HEARTBEAT_SECONDS", "1")

from qsmreview.settings import *  # noqa: E402,F403
from qsmreview.settings import DATABASES, STORAGES  # noqa: E402

# pytest-django's live_server serves unhashed static files.
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False

_db = DATABASES["default"]
if _db["ENGINE"].endswith("postgresql"):
    _db.setdefault("TEST", {})["NAME"] = f"test_{_db['NAME']}"
if os.environ.get("QSMREVIEW_WORKER_USES_TEST_DB") == "1":
    _db["NAME"] = _db["TEST"]["NAME"]

# whitenoise warns on every request when STATIC_ROOT is missing (tests never collect static).
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
