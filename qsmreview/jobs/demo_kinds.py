"""The ``selftest`` job kind: sleeps through a few steps, reporting progress; touches no data.

Always registered (the registry imports this module before discovering the apps' runners), so
an admin can check on any installation that workers pick up jobs, report progress, honour
cancellation and record failures; the tests and the demo use it for the same purpose.

Parameters (all optional):

``steps`` (int, 1-1000, default 5)
    Number of steps; progress is reported at the start of each.
``step_seconds`` (float, 0-60, default 0.5)
    Sleep per step.
``fail_at_step`` (int or null)
    Raise an error during this step (1-based): the job ends failed with that message.
``silent_seconds`` (float, 0-600, default 0)
    Sleep this long first without reporting anything: only the heartbeat thread shows the job
    is alive (a long stage of a real job looks like this).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from qsmreview.errors import ValidationFailed
from qsmreview.jobs.models import Job
from qsmreview.jobs.runners import Report, register_job_kind

SELFTEST = "selftest"

_DEFAULTS: dict[str, Any] = {"steps": 5, "step_seconds": 0.5, "fail_at_step": None, "silent_seconds": 0.0}


def _number(params: dict[str, Any], name: str, cast: type, low: float, high: float) -> Any:
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (cast is int and value != int(value)):
        raise ValidationFailed(f"{name} must be {'an integer' if cast is int else 'a number'}", field="parameters")
    if not low <= value <= high:
        raise ValidationFailed(f"{name} must be between {low:g} and {high:g}", field="parameters")
    return cast(value)


def clean_selftest_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """The self-test's parameters with defaults filled in; ValidationFailed on anything odd."""
    unknown = sorted(set(parameters) - set(_DEFAULTS))
    if unknown:
        raise ValidationFailed(f"unknown selftest parameter(s): {', '.join(unknown)}", field="parameters")
    params = {**_DEFAULTS, **parameters}
    cleaned = {
        "steps": _number(params, "steps", int, 1, 1000),
        "step_seconds": _number(params, "step_seconds", float, 0, 60),
        "silent_seconds": _number(params, "silent_seconds", float, 0, 600),
        "fail_at_step": None,
    }
    if params["fail_at_step"] is not None:
        cleaned["fail_at_step"] = _number(params, "fail_at_step", int, 1, cleaned["steps"])
    return cleaned


@register_job_kind(
    SELFTEST,
    title="Self-test (sleeps, reports progress)",
    submittable=True,
    clean_parameters=clean_selftest_parameters,
)
def run_selftest(job: Job, report: Report) -> dict[str, Any]:
    params = clean_selftest_parameters(job.parameters)
    steps = params["steps"]
    if params["silent_seconds"]:
        report(0.0, "sleeping without reports")
        time.sleep(params["silent_seconds"])
    for step in range(1, steps + 1):
        report((step - 1) / steps, f"step {step} of {steps}")
        time.sleep(params["step_seconds"])
        if step == params["fail_at_step"]:
            raise RuntimeError(f"selftest failed at step {step} as asked")
    report(1.0, "done")
    return {"steps": steps, "host": socket.gethostname(), "pid": os.getpid()}
