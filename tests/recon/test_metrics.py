"""Metrics checked on hand-made arrays with hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from recon.metrics import lesion_agreement, nrmse, relative_susceptibility


def test_nrmse_is_one_for_a_zero_image_and_zero_for_the_truth():
    t = np.zeros((4, 4, 4))
    t[1:3, 1:3, 1:3] = 2.0
    t[0, 0, 0] = -1.0
    m = np.ones(t.shape, bool)
    assert nrmse(t, t, m) == 0.0
    assert nrmse(np.zeros_like(t), t, m) == pytest.approx(1.0)
    # error 0.5 in the 8 voxels of value 2: sqrt(8 * 0.25) / sqrt(8 * 4 + 1)
    e = t.copy()
    e[1:3, 1:3, 1:3] = 2.5
    assert nrmse(e, t, m) == pytest.approx(np.sqrt(2.0) / np.sqrt(33.0))


def test_it_subtracts_a_same_tissue_ring_outside_a_gap():
    chi = np.zeros((21, 21, 21))
    tissue = np.full(chi.shape, 3, np.uint8)
    lesions = np.zeros(chi.shape, np.int16)
    lesions[10, 10, 10] = 1
    chi[10, 10, 10] = 1.0
    # First shell (distance 1): excluded by the 1-voxel gap, even with a crazy value.
    for d in [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]:
        chi[10 + d[0], 10 + d[1], 10 + d[2]] = 100.0
    # Everything further than 3 voxels is out of the ring.
    g = np.indices(chi.shape) - 10
    r = np.sqrt((g**2).sum(0))
    chi[r > 3] = -50.0
    ring = (r > 1) & (r <= 3)
    chi[ring] = 0.25
    res = relative_susceptibility(chi, lesions, tissue, gap_voxels=1, max_distance_voxels=3)
    assert res == {1: pytest.approx(0.75)}


def test_it_references_each_portion_of_a_mixed_lesion_to_its_own_tissue():
    chi = np.zeros((30, 20, 20))
    tissue = np.full(chi.shape, 3, np.uint8)
    tissue[15:] = 2  # GM for x >= 15
    chi[tissue == 3] = -0.03
    chi[tissue == 2] = 0.02
    lesions = np.zeros(chi.shape, np.int16)
    lesions[13:15, 9:11, 9:11] = 1  # WM portion: 8 voxels
    lesions[15:16, 9:11, 9:11] = 1  # GM portion: 4 voxels
    chi[13:15, 9:11, 9:11] = 0.0  # +0.03 vs WM
    chi[15:16, 9:11, 9:11] = -0.01  # -0.03 vs GM
    parts = relative_susceptibility(chi, lesions, tissue, portions=True)
    assert parts[1]["wm"] == pytest.approx(0.03)
    assert parts[1]["gm"] == pytest.approx(-0.03)
    whole = relative_susceptibility(chi, lesions, tissue)
    assert whole[1] == pytest.approx((8 * 0.03 + 4 * -0.03) / 12)


def test_it_ignores_other_lesions_in_the_ring():
    chi = np.zeros((20, 20, 20))
    tissue = np.full(chi.shape, 3, np.uint8)
    lesions = np.zeros(chi.shape, np.int16)
    lesions[5, 5, 5] = 1
    chi[5, 5, 5] = 1.0
    lesions[5, 8, 5] = 2
    chi[5, 8, 5] = 9.0
    res = relative_susceptibility(chi, lesions, tissue)
    assert res[1] == pytest.approx(1.0)


def _point_lesions(values: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-voxel WM lesions 6 voxels apart on a zero background: each contrast is its value."""
    chi = np.zeros((8 * len(values), 12, 12))
    lesions = np.zeros(chi.shape, np.int16)
    for i, v in enumerate(values):
        lesions[4 + 8 * i, 6, 6] = i + 1
        chi[4 + 8 * i, 6, 6] = v
    return chi, lesions, np.full(chi.shape, 3, np.uint8)


def test_it_scores_lesion_contrasts_against_the_truth():
    truth, lesions, tissue = _point_lesions([0.04, 0.02, -0.03, 0.005])
    est, _, _ = _point_lesions([0.03, -0.01, -0.02, -0.002])
    a = lesion_agreement(est, truth, lesions, tissue)
    assert (a.n, a.n_strong) == (4, 3)  # 0.005 ppm is under the 0.01 ppm floor of the sign test
    assert a.sign_fraction == pytest.approx(2 / 3)  # lesion 2 flipped
    assert a.max_error == pytest.approx(0.03) and a.worst == 2
    t, e = np.array([0.04, 0.02, -0.03, 0.005]), np.array([0.03, -0.01, -0.02, -0.002])
    assert a.correlation == pytest.approx(np.corrcoef(t, e)[0, 1])
    assert a.slope == pytest.approx(((t - t.mean()) * (e - e.mean())).sum() / ((t - t.mean()) ** 2).sum())
    assert not a.meets()


def test_it_gives_slope_one_and_full_marks_to_a_shifted_copy():
    truth, lesions, tissue = _point_lesions([0.04, 0.02, -0.03])
    a = lesion_agreement(truth + 0.1, truth, lesions, tissue)  # QSM's zero is arbitrary
    assert a.sign_fraction == 1.0 and a.correlation == pytest.approx(1.0) and a.slope == pytest.approx(1.0)
    assert a.max_error == pytest.approx(0.0, abs=1e-12) and a.meets()


def test_it_scores_the_portions_of_a_mixed_lesion_apart():
    chi = np.zeros((30, 20, 20))
    tissue = np.full(chi.shape, 3, np.uint8)
    tissue[15:] = 2
    lesions = np.zeros(chi.shape, np.int16)
    lesions[13:16, 9:11, 9:11] = 1
    truth = chi.copy()
    truth[13:15, 9:11, 9:11] = 0.03  # WM portion
    truth[15:16, 9:11, 9:11] = -0.03  # GM portion
    est = truth.copy()
    est[15:16, 9:11, 9:11] = 0.01  # GM portion has the wrong sign
    a = lesion_agreement(est, truth, lesions, tissue, portions=True)
    assert a.n == 2 and a.sign_fraction == 0.5 and a.worst == (1, "gm") and a.max_error == pytest.approx(0.04)
