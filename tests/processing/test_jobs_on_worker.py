"""Processing jobs end to end on real Celery worker processes (the test database, a real broker)."""

from __future__ import annotations

import numpy as np
import pytest

from qsmreview.jobs.models import Job
from qsmreview.processing.runners import load
from qsmreview.processing.services import processing_submit
from qsmreview.studies.models import Series
from tests.fixtures.worker import wait_for_job
from tests.fixtures.phantom import Misalignment, dice, eroded, misaligned_world_affine, store

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

JOB_TIMEOUT = 240.0


def run(session, kind, admin, **params) -> Job:
    job = processing_submit(session=session, kind=kind, by=admin, parameters=params or None)
    job = wait_for_job(job, timeout=JOB_TIMEOUT)
    assert job.status == "succeeded", job.error
    return job


def test_qsm_job_stores_a_blinded_versioned_qsm_with_provenance(celery_worker, admin, phantom_session, phantom):
    first = run(phantom_session, "qsm", admin)
    qsm1 = Series.objects.get(derived_by=first)
    assert qsm1.kind == "qsm" and qsm1.blinded and qsm1.is_current and qsm1.version == 1
    prov = qsm1.provenance
    assert prov["parameters"]["erosion_mm"] == 2.5 and prov["parameters"]["solver"] == "admm"
    assert prov["library"]["recon"]
    assert prov["runtime_s"] > 0
    sources = Series.objects.filter(session=phantom_session, kind__in=["t2star_mag", "t2star_phase"])
    assert sorted(i["sha256"] for i in prov["inputs"]) == sorted(s.sha256 for s in sources)
    assert first.progress == 100

    # Physics, not bookkeeping: the stored map is a susceptibility map of this head, in ppm.
    chi, affine = load(qsm1)
    assert np.allclose(affine, phantom.affine)
    inside = chi != 0
    assert inside.sum() > 0.3 * phantom.brain_mask.sum()
    grey_nuclei = (phantom.deep_grey > 0) & inside
    wm = (phantom.tissue == 3) & inside & (phantom.lesions == 0)
    truth = phantom.chi_ppm[grey_nuclei].mean() - phantom.chi_ppm[wm].mean()
    found = chi[grey_nuclei].mean() - chi[wm].mean()
    assert 0.5 * truth < found < 1.5 * truth

    # Re-running keeps the earlier version and marks the new one current.
    second = run(phantom_session, "qsm", admin, erosion_mm=3.0)
    qsm2 = Series.objects.get(derived_by=second)
    qsm1.refresh_from_db()
    assert (qsm1.version, qsm1.is_current) == (1, False)
    assert (qsm2.version, qsm2.is_current) == (2, True)
    assert qsm2.provenance["parameters"]["erosion_mm"] == 3.0


def test_brain_mask_job_matches_the_phantom_brain(celery_worker, admin, phantom_session, phantom):
    job = run(phantom_session, "brain_mask", admin)
    mask, _ = load(Series.objects.get(derived_by=job))
    assert dice(mask > 0.5, phantom.brain_mask) > 0.9


def test_coregistration_recovers_a_known_motion_and_tissue_reaches_dice_0_8(
    celery_worker, admin, phantom_session, phantom
):
    mis = Misalignment(rotation_deg=(4.0, -3.0, 5.0), translation_mm=(3.0, -2.0, 4.0))
    moved = misaligned_world_affine(phantom.affine, mis)
    store(phantom_session, "t1_wmn", phantom.t1_wmn, moved, space="native")
    store(phantom_session, "flair", phantom.flair, moved, space="native")
    job = run(phantom_session, "coregister", admin)
    outputs = {s.kind: s for s in Series.objects.filter(derived_by=job)}
    assert set(outputs) == {"t1_wmn", "flair"}
    t1 = outputs["t1_wmn"]
    assert t1.space == "t2star" and t1.shape == list(phantom.magnitude.shape[:3])
    prov = t1.provenance
    assert prov["method"].startswith("SimpleITK rigid")
    # The registration must find the motion: every brain voxel lands within 0.5 mm of where the
    # true motion puts it, and the rotation is off by less than 0.5 degree.
    true_motion = moved @ np.linalg.inv(phantom.affine)  # world (fixed) -> world (moving)
    found = np.asarray(prov["fixed_to_moving_ras_mm"])
    ijk = np.argwhere(phantom.brain_mask)
    world = phantom.affine[:3, :3] @ ijk.T + phantom.affine[:3, 3:4]
    error_mm = np.linalg.norm(
        (found[:3, :3] - true_motion[:3, :3]) @ world + (found[:3, 3:4] - true_motion[:3, 3:4]), axis=0
    )
    assert error_mm.max() < 0.5, error_mm.max()
    residual = true_motion[:3, :3].T @ found[:3, :3]
    angle = np.degrees(np.arccos(np.clip((np.trace(residual) - 1) / 2, -1, 1)))
    assert angle < 0.5, angle
    data, affine = load(t1)
    assert np.allclose(affine, phantom.affine)
    brain = eroded(phantom.brain_mask, 2)
    # After coregistration the T1 intensities line up with the truth on the T2* grid.
    correlation = np.corrcoef(data[brain], phantom.t1_wmn[brain])[0, 1]
    assert correlation > 0.9

    tissue_job = run(phantom_session, "tissue", admin)
    labels, _ = load(Series.objects.get(derived_by=tissue_job))
    labels = np.rint(labels).astype(int)
    for code, name in ((2, "GM"), (3, "WM")):
        score = dice(labels == code, phantom.tissue == code)
        assert score >= 0.8, f"{name} Dice {score:.3f}"
