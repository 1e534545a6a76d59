"""qsmreview: a multiple sclerosis 7T QSM study, from raw scans to published statistics."""

from qsmreview.celery import app as celery_app

__all__ = ["celery_app"]
