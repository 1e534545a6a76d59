"""The p-value filter of the statistics tables."""

from __future__ import annotations

import pytest

from qsmreview.reports.templatetags.pvalues import pvalue


@pytest.mark.parametrize(
    "p, shown",
    [(0.0083, "0.0083"), (0.05412, "0.0541"), (0.001, "0.0010"), (2.6e-23, "2.6e-23"), (0.0, "0.0e+00"), (None, "–")],
)
def test_it_prints_small_p_values_in_scientific_notation(p, shown):
    assert pvalue(p) == shown
