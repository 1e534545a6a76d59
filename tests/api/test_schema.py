"""The OpenAPI schema generates without warnings, validates, and is served with its docs page."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS


@pytest.fixture(autouse=True)
def _fresh_schema_stats():
    GENERATOR_STATS.reset()
    yield
    GENERATOR_STATS.reset()


def test_it_generates_a_valid_schema_without_warnings(db):
    out = io.StringIO()

    # raises SchemaGenerationError on the first warning, and validates against the OpenAPI spec
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", stdout=out)

    assert '"/api/v1/series/{id}/volume/"' in out.getvalue()


def test_it_serves_the_schema_and_the_swagger_page(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/v1/auth/token/",
        "/api/v1/studies/",
        "/api/v1/studies/{id}/members/{user_id}/",
        "/api/v1/subjects/{id}/",
        "/api/v1/sessions/",
        "/api/v1/series/",
    ):
        assert path in paths
    assert "multipart/form-data" in paths["/api/v1/series/"]["post"]["requestBody"]["content"]
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


def test_the_docs_page_loads_its_assets_from_our_static_files_only(client):
    import re

    from django.contrib.staticfiles import finders

    html = client.get("/api/docs/").content.decode()

    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html[:500]
    for url in assets:
        assert url.startswith("/static/"), f"{url} is not one of our static files (offline docs)"
        assert finders.find(url.removeprefix("/static/")), f"{url} is not in the static files"
    assert "cdn" not in html.lower() and "@latest" not in html
