"""The jobs page and its self-test form read their study id like the API does (qsmreview.api.ids).

A bad id (not a whole number, past PostgreSQL's range) is a 400 page, never a 500 and never read
as a nearby number.
"""

from __future__ import annotations

import pytest

from qsmreview.jobs.models import Job
from tests.fixtures.cast import page_client as client_for

HUGE = "99999999999999999999"



@pytest.mark.parametrize("value", [HUGE, str(2**63), "1.5", "1e20", "abc", "-1", "%s"])
def test_it_refuses_a_bad_study_on_the_jobs_page(admin, value: str):
    response = client_for(admin).get("/jobs/", {"study": value})

    assert response.status_code == 400


def test_it_still_filters_the_jobs_page_by_study(admin, study):
    response = client_for(admin).get("/jobs/", {"study": str(study.pk)})

    assert response.status_code == 200
    assert response.context["study_filter"] == str(study.pk)


@pytest.mark.parametrize("value", ["abc", "1.5", HUGE, "", "1e3"])
def test_it_refuses_a_bad_study_for_the_selftest_form(admin, study, value: str):
    response = client_for(admin).post("/jobs/selftest/", {"study": value})

    assert response.status_code == 400
    assert not Job.objects.exists()


@pytest.mark.parametrize("steps", ["²", "١", "1e3", "-2"])
def test_it_uses_the_default_steps_for_a_number_it_cannot_read(admin, study, steps: str):
    response = client_for(admin).post("/jobs/selftest/", {"study": str(study.pk), "steps": steps})

    assert response.status_code == 302
    assert Job.objects.get().parameters["steps"] == 5
