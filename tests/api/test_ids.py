"""Ids in paths, query strings and forms: a bad one is 400 (404 in a path), never 500.

Every id goes through :func:`qsmreview.api.ids.parse_id` (queries, forms) or the ``id`` path
converter. The largest accepted id is the largest the database column holds on PostgreSQL (a
``bigint`` for our models, an ``integer`` for users), so an id SQLite would accept but PostgreSQL
would refuse with "integer out of range" is already refused here, on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from qsmreview.api.ids import parse_id
from qsmreview.errors import ValidationFailed
from tests.api.world import World

HUGE = "99999999999999999999"  # > 2**64
BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1



@contextmanager
def never_sent_to_the_database(value: str) -> Iterator[None]:
    """Fail if ``value`` reaches an SQL query (PostgreSQL would answer "integer out of range").

    Checked for long numbers only (a short one such as "1" appears in any query).
    """
    with CaptureQueriesContext(connection) as queries:
        yield
    if not (value.isdigit() and len(value) >= 10):
        return
    sent = [q["sql"] for q in queries.captured_queries if value in q["sql"]]
    assert not sent, f"{value} reached the database: {sent[0][:200]}"


BAD_QUERY_IDS = [
    HUGE, str(BIGINT_MAX + 1), "1.5", "1e20", "-1", "0x10", "abc", " 1", "1_000", "١",
    "%s", "%(x)d%",  # found by the fuzzer: a "%" in the message broke django-filter's formatting
]


@pytest.mark.parametrize("value", BAD_QUERY_IDS)
@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/series/?session={}",
        "/api/v1/series/?study={}",
        "/api/v1/series/?subject={}",
        "/api/v1/subjects/?study={}",
        "/api/v1/sessions/?study={}",
        "/api/v1/sessions/?subject={}",
        "/api/v1/jobs/?study={}",
        "/api/v1/jobs/?session={}",
    ],
)
@pytest.mark.parametrize("role", ["admin", "rater", "superuser"])
def test_it_refuses_a_bad_id_in_a_query_with_400(world: World, url: str, value: str, role: str):
    client = world.client(role)
    with never_sent_to_the_database(value):
        response = client.get(url.format(quote(value)))

    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["code"] == "invalid"
    assert body["field"] == url.split("?")[1].split("=")[0]


@pytest.mark.parametrize("url", ["/api/v1/series/?session={}", "/api/v1/jobs/?study={}"])
def test_it_accepts_the_largest_bigint_id_and_finds_nothing(world: World, url: str):
    response = world.client("superuser").get(url.format(BIGINT_MAX))

    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_it_still_filters_on_a_good_id(world: World):
    session = world.own.session

    response = world.client("admin").get(f"/api/v1/series/?session={session.pk}")

    assert response.status_code == 200
    assert response.json()["count"] == 3


@pytest.mark.parametrize("value", [HUGE, str(BIGINT_MAX + 1)])
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/studies/{}/",
        "/api/v1/studies/{}/members/",
        "/api/v1/subjects/{}/",
        "/api/v1/sessions/{}/",
        "/api/v1/series/{}/",
        "/api/v1/series/{}/volume/",
        "/api/v1/jobs/{}/",
        "/api/v1/studies/{}/processing/",
    ],
)
def test_it_answers_404_to_a_huge_id_in_a_path(world: World, path: str, value: str):
    client = world.client("superuser")
    with never_sent_to_the_database(value):
        response = client.get(path.format(value))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("user_id", [HUGE, str(BIGINT_MAX + 1), str(INT_MAX + 1)])
def test_it_answers_404_to_removing_a_member_with_a_huge_id(world: World, user_id: str):
    study, client = world.own.study, world.client("admin")

    with never_sent_to_the_database(user_id):  # users' ids are PostgreSQL integers
        response = client.delete(f"/api/v1/studies/{study.pk}/members/{user_id}/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("value", ["abc", "1.5", "1e20", HUGE, ""])
@pytest.mark.parametrize("field", ["study", "session"])
def test_it_refuses_a_bad_id_in_a_job_submission(world: World, field: str, value: str):
    body = {"kind": "selftest", "study": world.own.study.pk, field: value}

    response = world.client("admin").post("/api/v1/jobs/", body, format="json")

    assert response.status_code == 400, response.content[:300]
    assert response.json()["field"] == field


@pytest.mark.parametrize(
    ("value", "expected"), [("1", 1), ("42", 42), (7, 7), (str(BIGINT_MAX), BIGINT_MAX)]
)
def test_it_parses_a_good_id(value, expected):
    assert parse_id(value, "study") == expected


@pytest.mark.parametrize(
    "value", ["", "0", "-3", "1.5", "1e3", "+1", " 1", "1 ", "abc", HUGE, True, 1.0, None, [1]]
)
def test_it_refuses_a_bad_id_naming_the_field(value):
    with pytest.raises(ValidationFailed) as caught:
        parse_id(value, "session")

    assert caught.value.field == "session"
    assert "session" in caught.value.message


def test_it_refuses_a_very_long_number_without_converting_or_echoing_it():
    with pytest.raises(ValidationFailed) as caught:
        parse_id("9" * 5000, "session")  # int() of it would take long, or fail past 4300 digits

    assert "between 1 and" in caught.value.message
    assert len(caught.value.message) < 120


def test_it_bounds_an_id_by_the_column_postgresql_has():
    from django.contrib.auth import get_user_model

    assert parse_id(str(INT_MAX), "user", model=get_user_model()) == INT_MAX
    with pytest.raises(ValidationFailed):
        parse_id(str(INT_MAX + 1), "user", model=get_user_model())
