"""The API docs page renders in Chromium with every request off this server refused (no network)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_render_with_the_network_cut(page, live_server, screens_dir) -> None:
    own = urlsplit(live_server.url).netloc
    refused: list[str] = []

    def only_this_server(route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", only_this_server)
    page.goto(f"{live_server.url}/api/docs/")

    # Swagger UI drew the schema: its title and the operations of our routes.
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "qsmreview API" in page.locator(".swagger-ui .info .title").inner_text()
    page.wait_for_selector('.opblock-summary-path[data-path="/api/v1/series/"]', timeout=20_000)
    assert refused == []
    page.screenshot(path=str(screens_dir / "api-docs-offline.png"))
