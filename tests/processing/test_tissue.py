"""HMRF tissue classification: Dice against the synthetic head's truth, class order, errors."""

from __future__ import annotations

import numpy as np
import pytest

from qsmreview.processing.tissue import classify_tissue
from recon.errors import ReconInputError

from . import TISSUE_OF_REGION, grid_affine, grid_points, render

SHAPE = (64, 64, 56)
VOXEL_SIZE = (2.0, 2.0, 2.0)
AFFINE = grid_affine(SHAPE, VOXEL_SIZE)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2.0 * np.sum(a & b) / (np.sum(a) + np.sum(b)))


def biased_head(contrast: str, *, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Image with 4% noise and a smooth +-20% receive-bias-like gradient; FAST truth labels."""
    image, regions = render(SHAPE, AFFINE, contrast, noise=0.04, seed=seed)
    pts = grid_points(SHAPE, AFFINE)
    bias = 1.0 + 0.2 * pts[..., 0] / 50.0 - 0.15 * pts[..., 2] / 50.0
    return (image * bias).astype(np.float32), TISSUE_OF_REGION[regions]


@pytest.mark.parametrize("contrast", ["t1w", "csf_nulled", "wm_nulled"])
def test_it_finds_gm_and_wm_in_a_noisy_biased_head(contrast: str) -> None:
    image, truth = biased_head("t1w" if contrast == "csf_nulled" else contrast)
    original = image.copy()

    labels = classify_tissue(image, truth > 0, VOXEL_SIZE, contrast=contrast)

    assert labels.dtype == np.uint8 and labels.shape == SHAPE
    np.testing.assert_array_equal(image, original)
    assert dice(labels == 2, truth == 2) >= 0.8
    assert dice(labels == 3, truth == 3) >= 0.8
    assert dice(labels == 1, truth == 1) >= 0.7


@pytest.mark.parametrize(
    ("attribute", "contrast"),
    [("t1_wmn", "wm_nulled"), ("t1_csfn", "csf_nulled"), ("flair", "flair")],
)
def test_it_finds_tissue_in_the_recon_phantom(attribute: str, contrast: str) -> None:
    # recon's phantom has GM brighter than CSF in its WM-nulled image, ours the reverse: both
    # must come out right.
    from recon.phantom import make_phantom

    phantom = make_phantom(shape=(64, 64, 48), voxel_size=(2.0, 2.0, 2.0), seed=1)
    labels = classify_tissue(
        getattr(phantom, attribute), phantom.brain_mask, phantom.voxel_size, contrast=contrast
    )
    truth = np.where(phantom.brain_mask, phantom.tissue, 0)
    assert dice(labels == 2, truth == 2) >= 0.8
    assert dice(labels == 3, truth == 3) >= 0.8
    assert dice(labels == 1, truth == 1) >= 0.7


def test_it_finds_tissue_in_flair_less_well() -> None:
    # FLAIR separates GM from WM by only ~0.15 of the intensity range (4% noise here).
    image, truth = biased_head("flair")
    labels = classify_tissue(image, truth > 0, VOXEL_SIZE, contrast="flair")
    assert dice(labels == 1, truth == 1) >= 0.9
    assert dice(labels == 2, truth == 2) >= 0.75
    assert dice(labels == 3, truth == 3) >= 0.8


def test_it_orders_classes_by_the_stated_contrast() -> None:
    # A WM-nulled image read as an ordinary T1w swaps WM and CSF: the contrast argument matters.
    image, truth = biased_head("wm_nulled")
    labels = classify_tissue(image, truth > 0, VOXEL_SIZE, contrast="t1w")
    assert dice(labels == 1, truth == 3) >= 0.8
    assert dice(labels == 3, truth == 1) >= 0.7


def test_it_labels_only_inside_the_mask_and_is_reproducible() -> None:
    image, truth = biased_head("t1w", seed=2)
    mask = truth > 0
    mask[:, :, 40:] = False  # a slab-limited mask
    image[~mask] = np.nan  # ignored outside the mask

    first = classify_tissue(image, mask, VOXEL_SIZE)
    second = classify_tissue(image, mask, VOXEL_SIZE)

    np.testing.assert_array_equal(first, second)
    assert np.all(first[~mask] == 0)
    assert np.all(first[mask] > 0)


def test_it_can_skip_bias_correction() -> None:
    image, truth = render(SHAPE, AFFINE, "t1w", noise=0.04, seed=3)
    truth = TISSUE_OF_REGION[truth]
    labels = classify_tissue(image, truth > 0, VOXEL_SIZE, bias_correction=False)
    assert dice(labels == 3, truth == 3) >= 0.9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"contrast": "t2star"}, "contrast must be one of"),
        ({"beta": -1.0}, "beta must be >= 0"),
        ({"max_iter": 0}, "max_iter must be >= 1"),
        ({"voxel_size": (2.0, 0.0, 2.0)}, "voxel_size must be three positive"),
    ],
)
def test_it_rejects_bad_parameters(kwargs: dict, message: str) -> None:
    image, truth = render((16, 16, 16), grid_affine((16, 16, 16), (8.0, 8.0, 8.0)), "t1w")
    args = {"voxel_size": (8.0, 8.0, 8.0), **kwargs}
    mask = np.ones((16, 16, 16), dtype=bool)
    with pytest.raises(ReconInputError, match=message):
        classify_tissue(image, mask, **args)


def test_it_rejects_a_mask_on_another_grid() -> None:
    with pytest.raises(ReconInputError, match="resample the T1 onto the T2\\* grid"):
        classify_tissue(np.ones((20, 20, 20)), np.ones((20, 20, 19), bool), VOXEL_SIZE)


def test_it_rejects_nan_inside_the_mask() -> None:
    image = np.random.default_rng(0).random((20, 20, 20))
    image[10, 10, 10] = np.nan
    with pytest.raises(ReconInputError, match="1 NaN or infinite voxels inside the brain mask"):
        classify_tissue(image, np.ones((20, 20, 20), bool), VOXEL_SIZE)


def test_it_rejects_a_tiny_or_constant_region() -> None:
    image = np.zeros((20, 20, 20))
    mask = np.zeros((20, 20, 20), bool)
    mask[:3, :3, :3] = True
    with pytest.raises(ReconInputError, match="brain mask has 27 voxels"):
        classify_tissue(image, mask, VOXEL_SIZE)
    with pytest.raises(ReconInputError, match="constant inside the brain mask"):
        classify_tissue(image, np.ones((20, 20, 20), bool), VOXEL_SIZE)
