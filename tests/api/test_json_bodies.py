"""JSON bodies PostgreSQL could not store are refused with 400, never a 500 from the database.

Python's JSON reads ``1e400`` as infinity and keeps ``\\u0000`` in strings; PostgreSQL's ``jsonb``
takes neither (nor does its ``text``). SQLite stores both, so these tests assert the 400 the API
gives on any database. Found by the fuzzer (tests/api/test_fuzz.py) or while fixing what it found.
"""

from __future__ import annotations

import pytest

from qsmreview.studies.models import Subject
from tests.api.world import World


def _send(world: World, method: str, url: str, body: str):
    client = world.client("admin")
    return getattr(client, method)(url, body, content_type="application/json")


@pytest.mark.parametrize(
    "parameters",
    [
        '{"steps": 1e400}',  # int(inf) in the self-test's check was a 500
        '{"step_seconds": -1e400}',
        '{"steps": 2, "\\u0000": 1}',
    ],
)
def test_it_refuses_a_job_whose_parameters_no_database_can_store(world: World, parameters: str):
    body = '{"kind": "selftest", "study": %d, "parameters": %s}' % (world.own.study.pk, parameters)

    response = _send(world, "post", "/api/v1/jobs/", body)

    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == "invalid"


@pytest.mark.parametrize("extra", ['{"a": "x\\u0000y"}', '{"\\u0000": 1}', '{"a": [1e999]}'])
def test_it_refuses_a_subject_extra_postgresql_would_refuse(world: World, extra: str):
    subject = world.own.subject

    response = _send(world, "patch", f"/api/v1/subjects/{subject.pk}/", '{"extra": %s}' % extra)

    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert (body["code"], body["field"]) == ("invalid", "extra")
    assert body["detail"].startswith("extra: ")
    assert Subject.objects.get(pk=subject.pk).extra == {}


def test_it_keeps_ordinary_json_numbers_and_text(world: World):
    subject = world.own.subject
    extra = '{"edss": 3.5, "big": 123456789012345678901234567890, "note": "ok \\u00e9"}'

    response = _send(world, "patch", f"/api/v1/subjects/{subject.pk}/", '{"extra": %s}' % extra)

    assert response.status_code == 200, response.content[:300]
    assert response.json()["extra"]["note"] == "ok é"


@pytest.mark.parametrize("parameters", ['{"beta": -1}', '{"source": []}', '{"source": {}}', '{"beta": "x"}'])
def test_it_refuses_bad_tissue_parameters_with_400(world: World, parameters: str):
    url = f"/api/v1/sessions/{world.own.session.pk}/processing/"

    response = _send(world, "post", url, '{"kind": "tissue", "parameters": %s}' % parameters)

    assert response.status_code == 400, response.content[:300]
    assert response.json()["field"] == "parameters"
