"""The registry of job kinds, and the progress reporter every runner is handed.

(The heartbeat thread that keeps a running job alive lives in :mod:`qsmreview.jobs.heartbeat`.)

A job kind is a name (stored in ``Job.kind``), a title for pages, and a runner: a function
``run(job, report) -> dict | None`` living in the app that owns the work. Apps register kinds in a
module named ``runners`` (``qsmreview/<app>/runners.py``), which the registry imports on first use
in every process (web, worker, shell), the way the Django admin discovers ``admin`` modules (so
no ``AppConfig.ready`` is needed)::

    from qsmreview.jobs.runners import Reporter, register_job_kind

    @register_job_kind("qsm", title="QSM reconstruction")
    def run_qsm(job: Job, report: Reporter) -> dict:
        report(0.1, "unwrapping phase")      # progress 0..1 and a stage; may raise JobCancelled
        ...
        with transaction.atomic():           # outputs appear all at once, on success only
            ...
        return {"series": [qsm.pk]}          # stored as Job.result

A runner raises any exception to fail the job (its message becomes ``Job.error``); a
:class:`~qsmreview.errors.DomainError` is shown by its message alone, without a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.apps import apps

from qsmreview.errors import ValidationFailed

if TYPE_CHECKING:
    from qsmreview.jobs.models import Job

#: ``report(fraction, stage)`` as a runner sees it.
Report = Callable[[float, str], None]
#: A runner: does the work of one job, returns what to store in ``Job.result``.
Runner = Callable[["Job", Report], "dict[str, Any] | None"]
#: Checks and normalises a submission's parameters; raises ValidationFailed.
ParameterCleaner = Callable[[dict[str, Any]], dict[str, Any]]


class JobCancelled(Exception):
    """Raised inside a runner (by its reporter) when a user asked to cancel the job."""


class JobLost(Exception):
    """Raised inside a runner when the job is no longer this worker's to run.

    The stale sweep gave it up (re-queued or failed it) because this worker's heartbeats did not
    arrive in time; whatever this worker would still write is discarded.
    """


@dataclass(frozen=True)
class JobKind:
    name: str
    title: str
    run: Runner
    #: Whether ``POST /api/v1/jobs/`` may submit this kind directly. Kinds whose submissions
    #: need checks of their own (processing) keep this off and offer their own service.
    submittable: bool = False
    clean_parameters: ParameterCleaner | None = None


_registry: dict[str, JobKind] = {}
_discovered = False
_discover_lock = threading.Lock()
_discovery_errors: dict[str, str] = {}
log = logging.getLogger(__name__)


def register_job_kind(
    name: str,
    *,
    title: str,
    submittable: bool = False,
    clean_parameters: ParameterCleaner | None = None,
) -> Callable[[Runner], Runner]:
    """Register the decorated function as the runner of job kind ``name``.

    Parameters
    ----------
    name
        The value stored in ``Job.kind`` (at most 32 characters).
    title
        Human-readable name shown on pages and in the API.
    submittable
        Allow the generic ``POST /api/v1/jobs/`` to submit this kind (study admins only).
    clean_parameters
        Called by :func:`qsmreview.jobs.services.job_submit` with the submitted parameters;
        returns the parameters to store, or raises :class:`~qsmreview.errors.ValidationFailed`.

    Raises
    ------
    ImproperlyConfigured
        If another function already registered ``name``.
    """
    if not name or len(name) > 32:
        raise ImproperlyConfigured(f"job kind {name!r} must be 1 to 32 characters")

    def decorator(run: Runner) -> Runner:
        existing = _registry.get(name)
        if existing is not None and _qualname(existing.run) != _qualname(run):
            raise ImproperlyConfigured(
                f"job kind {name!r} is registered twice: {_qualname(existing.run)} and {_qualname(run)}"
            )
        _registry[name] = JobKind(
            name=name, title=title, run=run, submittable=submittable, clean_parameters=clean_parameters
        )
        return run

    return decorator


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def discover_job_kinds() -> None:
    """Import every installed app's ``runners`` module once (and the self-test kind).

    An app whose ``runners`` module fails to import is logged with its traceback and named in the
    "unknown job kind" error of its kinds; the other apps' kinds (and the self-test, which tells
    an admin whether workers work at all) stay usable.
    """
    global _discovered
    if _discovered:
        return
    with _discover_lock:
        if _discovered:
            return
        import qsmreview.jobs.demo_kinds  # noqa: F401  (the always-available self-test kind)

        for app_config in apps.get_app_configs():
            module = f"{app_config.name}.runners"
            if app_config.name == __package__ or importlib.util.find_spec(module) is None:
                continue
            try:
                importlib.import_module(module)
            except Exception as exc:
                log.exception("job kinds of %s are unavailable: %s failed to import", app_config.name, module)
                _discovery_errors[module] = f"{type(exc).__name__}: {exc}"
        _discovered = True


def discovery_errors() -> dict[str, str]:
    """``runners`` modules that failed to import, with their error."""
    discover_job_kinds()
    return dict(_discovery_errors)


def job_kinds() -> dict[str, JobKind]:
    """Every registered job kind by name."""
    discover_job_kinds()
    return dict(sorted(_registry.items()))


def get_job_kind(name: str) -> JobKind:
    """The registered kind ``name``.

    Raises
    ------
    ValidationFailed
        If no app registered ``name``.
    """
    kinds = job_kinds()
    try:
        return kinds[name]
    except KeyError:
        broken = "".join(f"; {module} failed to import ({error})" for module, error in _discovery_errors.items())
        raise ValidationFailed(
            f"unknown job kind {name!r}; registered kinds: {', '.join(kinds) or 'none'}{broken}", field="kind"
        ) from None


def job_kind_title(name: str) -> str:
    """The title of kind ``name``, or the name itself for a kind no longer registered."""
    kind = job_kinds().get(name)
    return kind.title if kind else name


class Reporter:
    """The ``report(fraction, stage)`` callable handed to a runner.

    Writes progress (0-100, never decreasing), stage and heartbeat to the job row, at most every
    ``min_interval`` seconds unless the stage changes, and raises :class:`JobCancelled` when a
    cancellation was requested, :class:`JobLost` when the job is no longer this attempt's.

    Parameters
    ----------
    job_id
        The job being run.
    attempt
        ``Job.attempts`` as claimed by this worker: every write is fenced on it, so a worker that
        the sweep gave up on cannot overwrite the next attempt.
    min_interval
        Seconds between writes of progress alone.
    """

    def __init__(self, *, job_id: int, attempt: int, min_interval: float = 0.5) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.min_interval = min_interval
        self.progress = 0
        self.stage = ""
        self._last_write = float("-inf")

    def __call__(self, fraction: float, stage: str = "") -> None:
        from qsmreview.jobs.models import Job, JobStatus

        fraction = float(fraction)
        if not math.isfinite(fraction):
            fraction = self.progress / 100
        progress = max(self.progress, min(99, max(0, int(fraction * 100))))
        stage = (stage or self.stage)[:200]
        now = time.monotonic()
        if stage == self.stage and now - self._last_write < self.min_interval:
            self.progress = progress
            return
        self.progress, self.stage, self._last_write = progress, stage, now
        mine = Job.objects.filter(pk=self.job_id, status=JobStatus.RUNNING, attempts=self.attempt)
        if not mine.update(progress=progress, stage=stage, heartbeat_at=timezone.now()):
            raise JobLost(f"job {self.job_id} attempt {self.attempt} is no longer running here")
        if mine.filter(cancel_requested=True).exists():
            raise JobCancelled(f"job {self.job_id} was cancelled")
