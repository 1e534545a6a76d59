"""Ids in page URLs are checked in one place (qsmreview.api.ids.IdConverter): a bad one is 404."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

HUGE = "9" * 20  # more than PostgreSQL's bigint holds
PAGES = [
    "/studies/{}/",
    "/studies/{}/processing/",
    "/studies/{}/upload/",
    "/series/{}/view/",
]
POSTS = ["/studies/{}/processing/run/", "/sessions/{}/processing/run/"]


@pytest.mark.parametrize("bad", [HUGE, "9223372036854775808", "0"])
@pytest.mark.parametrize("url", PAGES)
def test_a_page_with_an_out_of_range_id_is_404(client, admin, url, bad) -> None:
    client.force_login(admin)
    assert client.get(url.format(bad)).status_code == 404


@pytest.mark.parametrize("url", POSTS)
def test_a_post_with_an_out_of_range_id_is_404(client, admin, url) -> None:
    client.force_login(admin)
    assert client.post(url.format(HUGE), {"kind": "qsm"}).status_code == 404
