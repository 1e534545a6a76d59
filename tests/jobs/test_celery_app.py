"""What the Celery application prints at start: nothing a demo user cannot act on."""

from __future__ import annotations

import logging
import warnings

import pytest
from kombu import Connection

from qsmreview.celery import quiet_expected_demo_warnings


def _broker_url_from(monkeypatch, value: str | None) -> str:
    """CELERY_BROKER_URL as qsmreview.settings reads it from the environment ``value``."""
    import importlib

    import qsmreview.settings as settings_module

    if value is None:
        monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    else:
        monkeypatch.setenv("CELERY_BROKER_URL", value)
    try:
        return importlib.reload(settings_module).CELERY_BROKER_URL
    finally:
        monkeypatch.undo()
        importlib.reload(settings_module)


@pytest.mark.parametrize("given", [None, "filesystem://", "filesystem:///"])
def test_it_names_a_host_for_the_filesystem_broker(given, monkeypatch, caplog) -> None:
    url = _broker_url_from(monkeypatch, given)

    with caplog.at_level(logging.WARNING, logger="kombu.connection"):
        Connection(url).info()

    assert url.startswith("filesystem://")
    assert not [r for r in caplog.records if "No hostname" in r.getMessage()]


def test_it_keeps_a_given_broker_url(monkeypatch) -> None:
    assert _broker_url_from(monkeypatch, "redis://127.0.0.1:6379/3") == "redis://127.0.0.1:6379/3"


def test_the_demo_hides_the_superuser_warning_and_nothing_else() -> None:
    from celery.platforms import _warn_or_raise_security_error

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_expected_demo_warnings()
        _warn_or_raise_security_error(0, 0, 0, 0, False)  # what a worker started as root warns
        warnings.warn("a worker must act on this", UserWarning)

    assert [str(w.message) for w in seen] == ["a worker must act on this"]


@pytest.mark.parametrize("value", ["", "0", "false"])
def test_outside_the_demo_the_superuser_warning_stays(value, monkeypatch) -> None:
    import subprocess
    import sys

    code = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        "import qsmreview.celery\n"
        "from celery.platforms import _warn_or_raise_security_error\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    _warn_or_raise_security_error(0, 0, 0, 0, False)\n"
        "print(len(seen))\n"
    )
    import os

    env = {**os.environ, "QSMREVIEW_DEMO": value, "DEBUG": "true"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
