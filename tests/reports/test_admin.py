"""Snapshots and imported tables in Django's admin: read-only and study-scoped."""

from __future__ import annotations

import pytest

from qsmreview.access import system
from qsmreview.reports.services import statistics_compute
from tests.fixtures.cast import page_client

pytestmark = pytest.mark.django_db


def test_it_lists_snapshots_and_tables_read_only(study, run, imported, superuser):
    snapshot = statistics_compute(by=system("test"), study=study)
    client = page_client(superuser)

    assert client.get("/admin/reports/statisticssnapshot/").status_code == 200
    assert client.get(f"/admin/reports/statisticssnapshot/{snapshot.pk}/change/").status_code == 200
    assert client.get(f"/admin/reports/importedlesiontable/{imported.pk}/change/").status_code == 200
    assert client.get("/admin/reports/importedlesiontable/add/").status_code == 403
    assert client.post(f"/admin/reports/statisticssnapshot/{snapshot.pk}/delete/", {"post": "yes"}).status_code == 403


def test_it_shows_staff_only_their_studies_snapshots(study, other_study, run, admin, other_admin):
    mine = statistics_compute(by=system("test"), study=study)
    theirs = statistics_compute(by=system("test"), study=other_study)
    admin.is_staff = True
    admin.save(update_fields=["is_staff"])

    page = page_client(admin).get("/admin/reports/statisticssnapshot/").content.decode()

    assert f"/admin/reports/statisticssnapshot/{mine.pk}/change/" in page
    assert f"/admin/reports/statisticssnapshot/{theirs.pk}/change/" not in page
