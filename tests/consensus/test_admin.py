"""Consensus in Django's admin: read-only and study-scoped."""

from __future__ import annotations

import pytest

from tests.consensus.factories import make_consensus_run
from tests.fixtures.cast import page_client

pytestmark = pytest.mark.django_db


def test_it_lists_runs_and_decisions_read_only(session, superuser):
    run = make_consensus_run(session)
    client = page_client(superuser)

    assert client.get("/admin/consensus/consensusrun/").status_code == 200
    assert client.get(f"/admin/consensus/consensusrun/{run.pk}/change/").status_code == 200
    assert client.get("/admin/consensus/consensusdecision/").status_code == 200
    assert client.get("/admin/consensus/consensusrun/add/").status_code == 403
    assert client.post(f"/admin/consensus/consensusrun/{run.pk}/delete/", {"post": "yes"}).status_code == 403


def test_it_shows_staff_only_the_runs_of_studies_they_administer(session, other_session, admin, other_admin):
    from qsmreview.studies.models import Membership

    mine, theirs = make_consensus_run(session), make_consensus_run(other_session)
    admin.is_staff = True
    admin.save(update_fields=["is_staff"])
    assert Membership.objects.filter(user=admin, role="admin").exists()

    page = page_client(admin).get("/admin/consensus/consensusrun/").content.decode()

    assert f"/admin/consensus/consensusrun/{mine.pk}/change/" in page
    assert f"/admin/consensus/consensusrun/{theirs.pk}/change/" not in page
