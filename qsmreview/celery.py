"""The Celery application. Configuration comes from Django settings (``CELERY_*``)."""

import os
import warnings

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qsmreview.settings")

app = Celery("qsmreview")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def quiet_expected_demo_warnings() -> None:
    """Hide the warnings the embedded demo is expected to raise, and only those.

    The demo runs as whatever user started ``scripts/start`` (often root in a container or a VM);
    Celery then warns at every start that the worker runs with superuser privileges. The demo's
    worker accepts only JSON messages from the web process on the same machine, so there is
    nothing for its user to act on. Production (docker/) runs the worker as an unprivileged user
    and keeps the warning.
    """
    warnings.filterwarnings("ignore", message="You're running the worker with superuser privileges")


if os.environ.get("QSMREVIEW_DEMO", "").strip().lower() in {"1", "true", "yes", "on"}:
    quiet_expected_demo_warnings()
