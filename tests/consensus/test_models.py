"""What the database itself guarantees about consensus results, and the orphan sweep's coverage."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from qsmreview.consensus.models import ConsensusDecision, ConsensusRun, MeasurementSet
from tests.consensus.factories import make_consensus_run

pytestmark = pytest.mark.django_db


def test_it_allows_one_current_run_per_session(session):
    make_consensus_run(session)

    with pytest.raises(IntegrityError), transaction.atomic():
        ConsensusRun.objects.create(session=session, status="succeeded", current=True)
    ConsensusRun.objects.create(session=session, status="failed", current=False, error="boom")
    assert ConsensusRun.objects.filter(session=session).count() == 2


def test_it_allows_one_current_measurement_set_per_run(session):
    run = make_consensus_run(session)
    first = run.measurement_sets.get()

    with pytest.raises(IntegrityError), transaction.atomic():
        MeasurementSet.objects.create(
            run=run, number=2, current=True, lesion_labels=first.lesion_labels.name, lesion_labels_sha256="x",
            lesion_labels_size=1, reference_labels=first.reference_labels.name, reference_labels_sha256="x",
            reference_labels_size=1,
        )


def test_it_lets_a_decision_be_reverted_once(session, admin):
    run = make_consensus_run(session)
    exclusion = ConsensusDecision.objects.create(run=run, kind="exclude", lesion=1, value={"reason": "vessel"}, reason="x", by=admin)
    ConsensusDecision.objects.create(run=run, kind="revert", reverts=exclusion, reason="y", by=admin)

    with pytest.raises(IntegrityError), transaction.atomic():
        ConsensusDecision.objects.create(run=run, kind="revert", reverts=exclusion, reason="z", by=admin)
    assert exclusion.who == "admin"


def test_the_orphan_sweep_deletes_stray_label_maps_and_keeps_referenced_ones(session, settings):
    from qsmreview.studies.services.orphans import storage_sweep_orphans

    run = make_consensus_run(session)
    kept = run.measurement_sets.get()
    storage = MeasurementSet._meta.get_field("lesion_labels").storage
    stray = storage.save(f"consensus/{session.subject.study_id}/session-{session.pk}/run-999/stray.nii.gz", ContentFile(b"x"))

    result = storage_sweep_orphans(grace=timedelta(0))

    assert stray in result.orphans and not storage.exists(stray)
    assert storage.exists(kept.lesion_labels.name) and storage.exists(kept.reference_labels.name)
