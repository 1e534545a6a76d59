"""Uploaded segmentations to FAST codes: hand-made maps with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qsmreview.processing.labelmaps import labels_to_fast
from recon.errors import ReconInputError


def strip(values: list[int]) -> np.ndarray:
    """A 1 x 1 x N map holding ``values`` in order."""
    return np.asarray(values, dtype=np.int32).reshape(1, 1, -1)


def test_it_maps_freesurfer_aseg_structures_to_tissue_classes() -> None:
    #        bg WM WM ctx ctx LV LV 3V 4V CSF thal thal put  hip cbWM cbCtx BS  CC  WMhypo vDC
    labels = [0, 2, 41, 3, 42, 4, 43, 14, 15, 24, 10, 49, 12, 53, 7, 47, 16, 253, 77, 28]
    expect = [0, 3, 3, 2, 2, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 2, 3, 3, 3, 2]

    fast, report = labels_to_fast(strip(labels), scheme="freesurfer")

    assert fast.dtype == np.uint8
    assert fast.ravel().tolist() == expect
    assert report.unknown == {} and report.warnings == []
    assert report.voxels_per_class == {"background": 1, "CSF": 5, "GM": 8, "WM": 6}


def test_it_maps_aparc_and_wmparc_ranges() -> None:
    labels = [1001, 1035, 2024, 11150, 12100, 3002, 4035, 5001, 5002, 2]
    fast, _ = labels_to_fast(strip(labels), scheme="freesurfer")
    assert fast.ravel().tolist() == [2, 2, 2, 2, 2, 3, 3, 3, 3, 3]


def test_it_leaves_out_vessels_and_choroid_plexus_and_says_so() -> None:
    fast, report = labels_to_fast(strip([4, 31, 31, 63, 30, 2, 3]), scheme="freesurfer")
    assert fast.ravel().tolist() == [1, 0, 0, 0, 0, 3, 2]
    assert report.excluded == {30: 1, 31: 2, 63: 1}
    assert any("choroid-plexus" in w for w in report.warnings)


def test_it_sets_unknown_labels_to_background_with_a_warning() -> None:
    fast, report = labels_to_fast(strip([2, 3, 4, 999, 999]), scheme="freesurfer")
    assert fast.ravel().tolist() == [3, 2, 1, 0, 0]
    assert report.unknown == {999: 2}
    assert report.warnings == [
        "labels not in the freesurfer table: 999 (2 voxels); set to background"
    ]


def test_it_raises_on_unknown_labels_when_asked() -> None:
    message = r"labels not in the freesurfer table: 999 \(1 voxels\)"
    with pytest.raises(ReconInputError, match=message):
        labels_to_fast(strip([2, 3, 999]), scheme="freesurfer", on_unknown="raise")


def test_it_accepts_only_synthseg_labels_for_synthseg() -> None:
    # 77 and 251 are FreeSurfer labels SynthSeg never writes: a sign of the wrong scheme.
    fast, report = labels_to_fast(strip([2, 3, 4, 1002, 77, 251]), scheme="synthseg")
    assert fast.ravel().tolist() == [3, 2, 1, 2, 0, 0]
    assert report.unknown == {77: 1, 251: 1}


def test_it_passes_fast_segmentations_through_from_float_storage() -> None:
    labels = np.array([0.0, 1.0, 2.0, 3.0, 3.0]).reshape(1, 1, -1)
    fast, report = labels_to_fast(labels, scheme="fast")
    assert fast.ravel().tolist() == [0, 1, 2, 3, 3]
    assert report.voxels_per_class == {"background": 1, "CSF": 1, "GM": 1, "WM": 2}


def test_it_does_not_modify_the_input_and_reports_json() -> None:
    labels = strip([0, 2, 3, 4, 31])
    before = labels.copy()
    _, report = labels_to_fast(labels, scheme="freesurfer")
    np.testing.assert_array_equal(labels, before)
    doc = json.loads(json.dumps(report.as_dict()))
    assert doc["excluded"] == {"31": 1}
    assert doc["mapped"][1] == {
        "label": 2, "name": "Left-Cerebral-White-Matter", "fast": 3, "voxels": 1
    }


@pytest.mark.parametrize(
    ("labels", "scheme", "message"),
    [
        (strip([0, 2, 41, 3]), "fast", "a FAST segmentation has labels 0-3"),
        (strip([0, 1, 2, 3]), "freesurfer", "Choose scheme='fast'"),
        (strip([0, 1, 2, 3]), "synthseg", "Choose scheme='fast'"),
        (np.array([0.0, 2.0, 2.5]).reshape(1, 1, 3), "freesurfer", "resampled with linear"),
        (strip([0, -1, 2]), "freesurfer", "negative labels"),
        (strip([0, 0]), "freesurfer", "label map is empty"),
        (np.zeros((4, 4)), "fast", "label map must be 3D"),
        (strip([0, 2]), "aseg", "scheme must be"),
    ],
)
def test_it_rejects_maps_that_do_not_fit_the_scheme(labels, scheme, message) -> None:
    with pytest.raises(ReconInputError, match=message):
        labels_to_fast(labels, scheme=scheme)
