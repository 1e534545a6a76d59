"""A stored consensus run built without the pipeline (as ``tests.api.world.make_series`` stores
series rows): for the access matrices and the decision tests, whose numbers are set by hand.

The run has two lesions on the test grid (``tests.fixtures.nifti``): lesion 1 (white matter, 8
voxels, one portion) and lesion 2 (mixed, a WM and a cortical portion), three candidates (the two
lesions, and candidate 3 left to adjudication), their reference ROIs, and hand-set measurements.
"""

from __future__ import annotations

import gzip
import hashlib

import nibabel as nib
import numpy as np
from django.core.files.base import ContentFile

from qsmreview.consensus.models import Candidate, ConsensusRun, LesionRow, MeasurementSet
from qsmreview.studies.models import Series, Session
from tests.fixtures.nifti import AFFINE, SHAPE

#: Lesion 1: a 2x2x2 cube; lesion 2: a 3x1x1 bar; candidate 3: one voxel; reference ROIs 11, 21, 22.
LESION_1 = [(i, j, k) for i in (3, 4) for j in (3, 4) for k in (3, 4)]
LESION_2 = [(10, 10, 4), (11, 10, 4), (12, 10, 4)]
CANDIDATE_3 = [(8, 15, 2)]
REFERENCE = {11: [(1, 3, 3), (1, 4, 3)], 21: [(10, 13, 4), (11, 13, 4)], 22: [(12, 13, 4)]}
#: Proposed vessel voxels: one in lesion 1, one in its reference ROI 11.
VESSELS = [(3, 3, 3), (1, 3, 3)]


def label_maps() -> tuple[np.ndarray, np.ndarray]:
    lesions = np.zeros(SHAPE, dtype=np.int16)
    for v in LESION_1:
        lesions[v] = 1
    for v in LESION_2:
        lesions[v] = 2
    reference = np.zeros(SHAPE, dtype=np.int16)
    for roi, voxels in REFERENCE.items():
        for v in voxels:
            reference[v] = roi
    return lesions, reference


def _gz(data: np.ndarray) -> bytes:
    image = nib.Nifti1Image(data, AFFINE)
    image.set_sform(AFFINE, code=1)
    image.set_qform(AFFINE, code=1)
    return gzip.compress(image.to_bytes(), mtime=0)


ROWS = [
    dict(lesion=1, lesion_type="wm", portion="wm", n_voxels=8, volume_mm3=2.0, cortical_fraction=0.0,
         raters=["rater1", "rater2", "rater3"], lesion_mean_ppm=0.05, lesion_sd_ppm=0.01,
         reference_mean_ppm=-0.02, reference_sd_ppm=0.005, reference_n_voxels=2,
         relative_susceptibility_ppm=0.07, extras={"vote_majority": "wm", "class_disagreement": False}),
    dict(lesion=2, lesion_type="mixed", portion="wm", n_voxels=2, volume_mm3=0.5, cortical_fraction=1 / 3,
         raters=["rater1", "rater2"], lesion_mean_ppm=0.04, lesion_sd_ppm=0.0,
         reference_mean_ppm=-0.01, reference_sd_ppm=0.0, reference_n_voxels=2,
         relative_susceptibility_ppm=0.05, extras={"vote_majority": "wm", "class_disagreement": True}),
    dict(lesion=2, lesion_type="mixed", portion="cortical", n_voxels=1, volume_mm3=0.25, cortical_fraction=1 / 3,
         raters=["rater1", "rater2"], lesion_mean_ppm=0.03, lesion_sd_ppm=None,
         reference_mean_ppm=0.01, reference_sd_ppm=None, reference_n_voxels=1,
         relative_susceptibility_ppm=0.02, extras={"vote_majority": "wm", "class_disagreement": True}),
]


def make_consensus_run(session: Session, *, tissue: Series | None = None, current: bool = True) -> ConsensusRun:
    """A succeeded run of ``session`` with measurement set 1 (files stored through the storage)."""
    run = ConsensusRun.objects.create(
        session=session,
        status="succeeded",
        trigger="test",
        revisions=[
            {"revision": 2**40 + i, "assignment": 2**41 + i, "rater": f"rater{i}", "sha256": "ab" * 32}
            for i in (1, 2, 3)
        ],
        tissue_series=tissue,
        tissue_version=tissue.version if tissue else None,
        tissue_sha256=tissue.sha256 if tissue else "",
        params={"majority": None, "min_lesion_diameter_mm": 2.0, "qsm_erosion_mm": 2.5},
        code_version={"qsmreview": "test"},
        agreement={"f1_pairs": {"rater1/rater2": 0.8}, "fleiss_kappa": 0.5, "parameters": {"alpha": 0.1}},
        current=current,
    )
    Candidate.objects.bulk_create(
        [
            Candidate(run=run, number=1, status="lesion", raters=["rater1", "rater2", "rater3"], lesion=1, n_voxels=8),
            Candidate(run=run, number=2, status="lesion", raters=["rater1", "rater2"], lesion=2, n_voxels=3),
            Candidate(run=run, number=3, status="adjudication", raters=["rater2"], n_voxels=1,
                      data={"voxels": [list(v) for v in CANDIDATE_3]}),
        ]
    )
    lesions, reference = label_maps()
    vessels = np.zeros(SHAPE, dtype=np.uint8)
    for v in VESSELS:
        vessels[v] = 1
    content = _gz(vessels)
    run.vessel_proposals.save("vessel-proposals.nii.gz", ContentFile(content), save=False)
    run.vessel_proposals_sha256 = hashlib.sha256(content).hexdigest()
    run.vessel_proposals_size = len(content)
    run.save(update_fields=["vessel_proposals", "vessel_proposals_sha256", "vessel_proposals_size"])
    measurements = MeasurementSet(run=run, number=1, current=True)
    for field, data in (("lesion_labels", lesions), ("reference_labels", reference)):
        content = _gz(data)
        getattr(measurements, field).save(f"{field}.nii.gz", ContentFile(content), save=False)
        setattr(measurements, f"{field}_sha256", hashlib.sha256(content).hexdigest())
        setattr(measurements, f"{field}_size", len(content))
    measurements.save()
    LesionRow.objects.bulk_create(
        LesionRow(measurement_set=measurements, subject=session.subject.code, rule_type=row["lesion_type"], **row)
        for row in ROWS
    )
    return run
