"""The reference cohort: the study's counts, Table 3's summaries, and the study's conclusions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import stats

from qsmreview.stats.analysis import analyse
from qsmreview.stats.synthetic import REFERENCE_COUNTS, REFERENCE_TABLE3, reference_cohort, subject_name


def values(rows, lesion_type: str, portion: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in rows:
        if r.lesion_type == lesion_type and r.portion == portion:
            out.setdefault(r.subject, []).append(r.relative_susceptibility_ppm)
    return out


def test_it_has_the_reference_studys_patients_and_lesion_counts() -> None:
    rows = reference_cohort()
    lesions = {(r.subject, r.lesion): r.lesion_type for r in rows}
    for i, (cortical, wm, mixed) in enumerate(REFERENCE_COUNTS):
        s = subject_name(i)
        got = Counter(kind for (subject, _), kind in lesions.items() if subject == s)
        assert (got["cortical"], got["wm"], got["mixed"]) == (cortical, wm, mixed)
    assert len(REFERENCE_COUNTS) == 14 and REFERENCE_COUNTS[-1] == (0, 0, 0)
    assert len(lesions) == 147 + 27 + 9 and len(rows) == 147 + 27 + 2 * 9
    assert all(r.relative_susceptibility_ppm is not None and np.isfinite(r.relative_susceptibility_ppm) for r in rows)
    assert len({(r.subject, r.lesion, r.portion) for r in rows}) == len(rows)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_it_matches_table_3_exactly(seed: int) -> None:
    rows = reference_cohort(seed)
    for name, (lesion_type, portion) in {
        "wm_lesions": ("wm", "wm"), "cortical_lesions": ("cortical", "cortical"),
        "mixed_wm_portions": ("mixed", "wm"), "mixed_cortical_portions": ("mixed", "cortical"),
    }.items():
        mean, sd, n, _ = REFERENCE_TABLE3[name]
        x = np.concatenate(list(values(rows, lesion_type, portion).values()))
        assert (x.size, x.mean(), x.std(ddof=1)) == (n, pytest.approx(mean, abs=1e-15), pytest.approx(sd, abs=1e-15))
    for name, kind in {"patient_wm_lesions": "wm", "patient_cortical_lesions": "cortical"}.items():
        mean, sd, n, _ = REFERENCE_TABLE3[name]
        x = np.array([np.mean(v) for v in values(rows, kind, kind).values()])
        assert (x.size, x.mean(), x.std(ddof=1)) == (n, pytest.approx(mean, abs=1e-15), pytest.approx(sd, abs=1e-15))


def test_it_is_deterministic_per_seed() -> None:
    assert reference_cohort(3) == reference_cohort(3)
    assert reference_cohort(3) != reference_cohort(4)


def test_it_reaches_the_reference_studys_conclusions_at_the_bonferroni_threshold() -> None:
    rows = reference_cohort()
    threshold = 0.05 / 6  # the study's P < .0083
    expected_significant = {
        "wm_lesions": True, "cortical_lesions": True, "mixed_wm_portions": False,
        "mixed_cortical_portions": False, "patient_wm_lesions": True, "patient_cortical_lesions": True,
    }
    lesion_level = {"wm_lesions": ("wm", "wm"), "cortical_lesions": ("cortical", "cortical"),
                    "mixed_wm_portions": ("mixed", "wm"), "mixed_cortical_portions": ("mixed", "cortical")}
    p = {name: stats.ttest_1samp(np.concatenate(list(values(rows, *key).values())), 0).pvalue
         for name, key in lesion_level.items()}
    p |= {f"patient_{k}_lesions": stats.ttest_1samp([np.mean(v) for v in values(rows, k, k).values()], 0).pvalue
          for k in ("wm", "cortical")}
    assert {name: bool(v <= threshold) for name, v in p.items()} == expected_significant
    # the uncorrected p of the mixed portions sit where the study's do (.043 and .054)
    assert 0.03 < p["mixed_wm_portions"] < 0.06 and 0.04 < p["mixed_cortical_portions"] < 0.07
    assert p["wm_lesions"] < 1e-22

    result = analyse(rows)
    assert result.correction.m == 6 and result.correction.threshold == pytest.approx(threshold)
    assert {name: result.test(name).significant for name in expected_significant} == expected_significant
    assert [(s.n_cortical, s.n_wm, s.n_mixed) for s in result.subjects] == list(REFERENCE_COUNTS[:13])
    assert (result.n_wm_lesions, result.n_cortical_lesions, result.n_mixed_lesions) == (147, 27, 9)
    assert (result.group("patient_wm_lesions").n, result.group("patient_cortical_lesions").n) == (13, 8)
