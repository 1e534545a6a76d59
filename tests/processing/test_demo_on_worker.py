"""The demo study processed from its processing page, on a real Celery worker.

The demo is what a new user runs first: every job kind is started from the page's "run for every
session" buttons, in the order the page offers them, and every output is checked. Two of the three
demo sessions are multi-echo (three echoes, as in the reference study's protocol); the third is
single-echo, and MS002's T1 and FLAIR lie on their own oblique grid.
"""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage
from django.urls import reverse

from qsmreview.annotations.models import Assignment
from qsmreview.annotations.selectors import session_rateability
from qsmreview.jobs.models import Job
from qsmreview.processing.runners import load
from qsmreview.processing.services import PROCESSING_KINDS
from qsmreview.studies.models import Series, Session
from tests.fixtures.worker import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

#: A small grid that still holds the whole synthetic head (192 x 192 x 126 mm).
GRID = {"shape": (64, 64, 28), "voxel_size": (3.0, 3.0, 4.5)}
JOB_TIMEOUT = 300.0


def load_mask(revision) -> tuple[np.ndarray, np.ndarray]:
    with revision.file.open("rb") as fh:
        image = nib.Nifti1Image.from_bytes(gzip.decompress(fh.read()))
    return np.asanyarray(image.dataobj), image.affine


def _run_from_page(client, study, kind: str) -> list[Job]:
    before = set(Job.objects.filter(study=study, kind=kind).values_list("pk", flat=True))
    response = client.post(reverse("study-processing-run", args=[study.pk]), {"kind": kind})
    assert response.status_code == 302, response.content[:500]
    jobs = list(Job.objects.filter(study=study, kind=kind).exclude(pk__in=before))

    def finished() -> list[Job] | None:
        fresh = [Job.objects.get(pk=j.pk) for j in jobs]
        return fresh if all(j.status in ("succeeded", "failed", "cancelled") for j in fresh) else None

    done = wait_for(finished, timeout=JOB_TIMEOUT, interval=0.5, what=f"{kind} jobs to finish")
    failed = [(j.session.subject.code, j.error) for j in done if j.status != "succeeded"]
    assert not failed, f"{kind} failed: {failed}"
    return done


def test_every_job_kind_succeeds_on_every_demo_session_from_the_page(
    celery_worker, client, settings
) -> None:
    from qsmreview.studies.demo import demo_load

    study = demo_load(**GRID).study
    client.login(username="admin", password="admin-demo")
    sessions = {s.subject.code: s for s in Session.objects.filter(subject__study=study)}
    assert sorted(sessions) == ["MS001", "MS002", "MS003"]
    echoes = {
        code: Series.objects.get(session=s, kind="t2star_mag", is_current=True).shape
        for code, s in sessions.items()
    }
    assert sum(len(shape) == 4 for shape in echoes.values()) == 2, echoes
    assert session_rateability(sessions["MS002"])[0] is False  # its T1 and FLAIR are native

    jobs = {kind: _run_from_page(client, study, kind) for kind in PROCESSING_KINDS}

    # Every session was offered every kind; MS002's T1 and FLAIR, on their own oblique grid, now
    # also lie on the T2* grid with the magnitude's shape.
    for kind, done in jobs.items():
        assert sorted(j.session.subject.code for j in done) == ["MS001", "MS002", "MS003"], kind
    ms002 = sessions["MS002"]
    mag = Series.objects.get(session=ms002, kind="t2star_mag", is_current=True)
    for kind in ("t1_wmn", "t1_csfn", "flair"):
        moved = Series.objects.get(session=ms002, kind=kind, space="t2star", is_current=True)
        assert moved.shape == mag.shape[:3]

    # Tried as a new user: after coregistration the raters could open MS002, and their marks sat
    # on the lesions of every panel. Check it: rateable now, and the demo raters' submitted marks
    # fall on FLAIR-bright voxels of the coregistered FLAIR (lesions are bright on FLAIR).
    assert session_rateability(ms002) == (True, "")
    flair, _ = load(Series.objects.get(session=ms002, kind="flair", space="t2star", is_current=True))
    tissue_ms002, _ = load(Series.objects.get(session=ms002, kind="tissue", derived_by__isnull=True))
    for case in Assignment.objects.filter(session=ms002):
        marks, _ = load_mask(case.submitted_revision)
        normal_wm = (tissue_ms002 == 3) & ~ndimage.binary_dilation(marks > 0, iterations=2)
        assert np.median(flair[marks > 0]) > 1.5 * np.median(flair[normal_wm]), case.rater.username

    for code, session in sessions.items():
        brain = Series.objects.get(session=session, kind="brain_mask", is_current=True, derived_by__isnull=False)
        mask, _ = load(brain)
        assert 0.05 < (mask > 0.5).mean() < 0.6, code

        labels = Series.objects.get(session=session, kind="tissue", is_current=True, derived_by__isnull=False)
        tissue, _ = load(labels)
        assert set(np.unique(tissue).astype(int)) <= {0, 1, 2, 3}, code
        assert (tissue == 3).sum() > 0 and (tissue == 2).sum() > 0, code

        qsm = Series.objects.get(session=session, kind="qsm", is_current=True, derived_by__isnull=False)
        assert qsm.blinded and len(qsm.shape) == 3
        assert qsm.echo_times_s == []
        phases = Series.objects.filter(session=session, kind="t2star_phase", is_current=True)
        fitted = sorted(t for p in phases for t in p.echo_times_s)
        assert sorted(qsm.provenance["fitted_echo_times_s"]) == fitted
        assert len(fitted) == (echoes[code][3] if len(echoes[code]) == 4 else 1)

        # Physics: the deep grey nuclei (iron) are paramagnetic relative to white matter in the
        # demo's truth; the reconstruction must show the same sign.
        chi, _ = load(qsm)
        truth, _ = load(Series.objects.get(session=session, kind="qsm", label="truth", is_current=True))
        inside = chi != 0
        assert inside.sum() > 0.2 * (mask > 0.5).sum(), code
        wm = inside & (tissue == 3)
        nuclei = inside & (truth > np.percentile(truth[inside], 97))
        assert chi[nuclei].mean() - chi[wm].mean() > 0, code

    # The demo's consensus followed every change of its inputs on the worker: the brain mask,
    # tissue and QSM jobs each queued a new consensus of the rated sessions, none failed, and each
    # rated session's current run is made from the jobs' outputs.
    from qsmreview.consensus.models import ConsensusRun
    from tests.fixtures.worker import wait_for

    def consensus_done() -> list[Job] | None:
        jobs = list(Job.objects.filter(study=study, kind="consensus"))
        return jobs if jobs and not any(j.is_active for j in jobs) else None

    done = wait_for(consensus_done, timeout=JOB_TIMEOUT, interval=0.5, what="consensus jobs to finish")
    assert not [(j.session.subject.code, j.error) for j in done if j.status != "succeeded"]
    for code in ("MS001", "MS002"):
        run = ConsensusRun.objects.get(session=sessions[code], current=True)
        assert run.tissue_series.derived_by_id and run.brain_mask_series.derived_by_id, code
        assert run.qsm_series.derived_by_id and run.measurement_sets.get(current=True).rows.exists(), code
