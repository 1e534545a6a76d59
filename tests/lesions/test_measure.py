"""ROI statistics against hand arithmetic; missing values are None, never NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qsmreview.lesions.measure import RoiStats, relative, roi_stats


def test_it_takes_the_mean_and_the_sample_sd_of_the_roi() -> None:
    qsm = np.array([1.0, 2.0, 3.0, 4.0, 100.0], np.float32).reshape(1, 1, 5)
    roi = np.array([True, True, True, True, False]).reshape(1, 1, 5)

    stats = roi_stats(qsm, roi)

    # mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, over n - 1 = 3
    assert stats.n_voxels == 4
    assert stats.mean == pytest.approx(2.5)
    assert stats.sd == pytest.approx(math.sqrt(5 / 3))


def test_it_leaves_the_sd_of_one_voxel_and_the_stats_of_no_voxel_empty() -> None:
    qsm = np.array([0.1, 0.2]).reshape(1, 1, 2)

    assert roi_stats(qsm, np.array([True, False]).reshape(1, 1, 2)) == RoiStats(1, pytest.approx(0.1), None)
    assert roi_stats(qsm, np.zeros((1, 1, 2), bool)) == RoiStats(0, None, None)


def test_it_counts_voxels_but_leaves_values_empty_without_qsm() -> None:
    assert roi_stats(None, np.ones((2, 2, 2), bool)) == RoiStats(8, None, None)


def test_it_gives_the_lesion_minus_reference_mean_or_nothing() -> None:
    assert relative(RoiStats(3, 0.05, 0.01), RoiStats(40, -0.02, 0.01)) == pytest.approx(0.07)
    assert relative(RoiStats(3, 0.05, 0.01), RoiStats(0, None, None)) is None
    assert relative(RoiStats(0, None, None), RoiStats(40, -0.02, 0.01)) is None
