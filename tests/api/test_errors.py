"""One error contract: DRF's own refusals leave in the same shape as the services' domain errors."""

from __future__ import annotations

import pytest

from qsmreview.api.errors import _first_message, _validation_body
from tests.api.world import client_for

pytestmark = pytest.mark.django_db


def test_it_names_the_method_that_is_not_allowed(admin):
    response = client_for(admin).delete("/api/v1/studies/")

    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "DELETE" not allowed.', "code": "method_not_allowed"}


def test_it_refuses_json_where_a_multipart_upload_belongs(admin):
    response = client_for(admin).post("/api/v1/series/", {"session": 1}, format="json")

    assert response.status_code == 415
    assert response.json() == {
        "detail": 'Unsupported media type "application/json" in request.',
        "code": "unsupported_media_type",
    }


def test_it_calls_malformed_json_invalid(admin):
    response = client_for(admin).post("/api/v1/studies/", "{not json", content_type="application/json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and body["detail"].startswith("JSON parse error")


def test_it_reports_the_first_of_nested_messages_and_keeps_them_all() -> None:
    errors = {"parameters": {"erosion_mm": ["must be >= 0"], "lam": ["must be > 0"]}, "kind": ["bad"]}

    assert _first_message(errors) == ("parameters.erosion_mm", "must be >= 0")
    assert _first_message([{"a": ["x"]}]) == ("0.a", "x")
    assert _validation_body(errors) == {
        "detail": "parameters.erosion_mm: must be >= 0",
        "code": "invalid",
        "field": "parameters.erosion_mm",
        "errors": errors,
    }
    assert _validation_body(["plain"]) == {"detail": "plain", "code": "invalid", "errors": ["plain"]}
