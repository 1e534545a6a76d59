"""Text and JSON show the same numbers; undefined values are n/a in text and null in JSON."""

from __future__ import annotations

import json

import pytest

from qsmreview.stats.analysis import analyse
from qsmreview.stats.report import fmt_p, fmt_ppm, fmt_stat, render_json, render_text
from qsmreview.stats.synthetic import reference_cohort
from tests.stats.cohorts import mixed, whole
from tests.stats.textcheck import check_text_against_json


def test_it_shows_the_same_numbers_in_text_and_json_for_the_reference_cohort() -> None:
    result = analyse(reference_cohort())
    text, data = render_text(result), json.loads(render_json(result))
    check_text_against_json(text, data)
    assert "threshold p <= 0.0083 (alpha/6)" in text
    assert data["versions"]["statsmodels"] in text


def test_it_shows_undefined_values_as_na_and_null() -> None:
    rows = whole("A", "wm", [0.01, 0.02]) + whole("A", "cortical", [-0.01]) + mixed("A", [(0.01, None)])
    result = analyse(rows)
    text = render_text(result)
    data = json.loads(render_json(result), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    check_text_against_json(text, data)
    cortical = next(g for g in data["groups"] if g["name"] == "cortical_lesions")
    assert cortical["sd_ppm"] is None and cortical["test"]["p"] is None
    assert "- cortical lesions: one value: SD, confidence interval and t test need at least 2" in text
    assert "  not fitted (see notes)" in text


def test_it_renders_an_empty_analysis() -> None:
    result = analyse([])
    text = render_text(result)
    assert "Bonferroni: no test of the family could be run (m = 0)." in text
    check_text_against_json(text, json.loads(render_json(result)))


def test_it_formats_numbers_as_documented() -> None:
    assert (fmt_ppm(0.01449), fmt_ppm(-0.00005), fmt_ppm(None)) == ("0.0145", "-0.0001", "n/a")
    assert (fmt_p(0.04791), fmt_p(0.001), fmt_p(0.000286), fmt_p(7.6e-24)) == ("0.0479", "0.0010", "2.86e-04", "7.60e-24")
    assert (fmt_stat(146.0), fmt_stat(37.9500), fmt_stat(-11.613)) == ("146", "37.95", "-11.61")
