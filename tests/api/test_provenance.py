"""Provenance passes the blinding rule: a rater never reads a blinded input's id, version or checksum.

A coregistered FLAIR is not blinded, but its provenance names its inputs; one of them here is the
session's QSM (blinded). The rater sees the FLAIR with that input replaced by a neutral marker;
the study's admin and PI see every input.
"""

from __future__ import annotations

import json

import pytest

from qsmreview.access import HIDDEN_INPUT, provenance_visible_to
from qsmreview.studies.models import Series
from tests.api.world import World, make_series


def _input(series: Series) -> dict:
    return {
        "series": series.pk, "kind": series.kind, "label": series.label,
        "version": series.version, "sha256": series.sha256,
    }


@pytest.fixture
def flair(world: World) -> Series:
    """A coregistered FLAIR (not blinded) derived from the magnitude and the blinded QSM."""
    side = world.own
    series = make_series(side.session, "flair", seed=7, uploaded_by=None)
    series.provenance = {
        "job": side.jobs["failed"].pk,
        "job_kind": "coregister",
        "method": "SimpleITK rigid",
        "inputs": [_input(side.series["t2star_mag"]), _input(side.series["qsm"])],
    }
    series.save(update_fields=["provenance"])
    return series


def test_it_hides_a_blinded_input_of_a_visible_series_from_a_rater(world: World, flair: Series):
    qsm, mag = world.own.series["qsm"], world.own.series["t2star_mag"]

    response = world.client("rater").get(f"/api/v1/series/{flair.pk}/")

    assert response.status_code == 200
    provenance = response.json()["provenance"]
    assert provenance["inputs"] == [_input(mag), HIDDEN_INPUT]
    assert provenance["method"] == "SimpleITK rigid"
    assert qsm.sha256 not in response.content.decode()


def test_it_hides_a_blinded_input_in_the_rater_s_list_too(world: World, flair: Series):
    qsm = world.own.series["qsm"]

    response = world.client("rater").get("/api/v1/series/?kind=flair")

    (row,) = response.json()["results"]
    assert row["provenance"]["inputs"][1] == HIDDEN_INPUT
    assert qsm.sha256 not in response.content.decode()


@pytest.mark.parametrize("role", ["admin", "pi", "superuser"])
def test_it_shows_every_input_to_those_who_see_blinded_series(world: World, flair: Series, role: str):
    response = world.client(role).get(f"/api/v1/series/{flair.pk}/")

    assert response.json()["provenance"] == flair.provenance


def test_it_shows_an_input_once_an_admin_unblinds_it(world: World, flair: Series):
    qsm = world.own.series["qsm"]
    Series.objects.filter(pk=qsm.pk).update(blinded=False)

    body = world.client("rater").get(f"/api/v1/series/{flair.pk}/").json()

    assert body["provenance"]["inputs"][1] == _input(qsm)


@pytest.mark.parametrize(
    "inputs",
    [
        [{"kind": "qsm", "sha256": "f" * 64}],  # no series id: cannot be checked
        [{"series": "12", "sha256": "f" * 64}],  # not an id
        ["a string"],
        [{"series": 10**12, "sha256": "f" * 64}],  # a series that does not exist (deleted)
    ],
)
def test_it_hides_an_input_it_cannot_check(world: World, inputs: list):
    series = world.own.series["t2star_mag"]
    series.provenance = {"inputs": inputs}

    shown = provenance_visible_to(world.users["rater"], series)

    assert shown["inputs"] == [HIDDEN_INPUT]
    assert "f" * 64 not in json.dumps(shown)


def test_it_leaves_the_stored_provenance_unchanged(world: World, flair: Series):
    before = json.dumps(flair.provenance, sort_keys=True)

    provenance_visible_to(world.users["rater"], flair)

    assert json.dumps(flair.provenance, sort_keys=True) == before
