"""A study to export: the cast's study with two subjects.

- ``P01`` session ``01``: T2* magnitude, a QSM (stored through ``series_create_derived``, on the
  test grid of ``tests.fixtures.nifti``, 16 x 20 x 8, 0.5 x 0.5 x 1 mm) and a current consensus
  run (``tests.consensus.factories.make_consensus_run``: lesions 1 and 2, reference ROIs 11, 21,
  22, three lesion-table rows), plus an older, no longer current run;
- ``P-02`` session ``pre op``: a QSM only (no consensus yet): exported as ``sub-P02/ses-preop``;
- ``P03`` session ``01``: a magnitude only: nothing to export, left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tests.fixtures.nifti import AFFINE, SHAPE, magnitude_data


@dataclass
class Exportable:
    study: object
    qsm: object
    qsm2: object
    run: object
    old_run: object


def qsm_values(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.05, SHAPE).astype(np.float32)


@pytest.fixture
def exportable(study, session, admin, request) -> Exportable:
    # Stored files under the test's own MEDIA_ROOT; worker tests keep the shared one (the worker
    # process reads it).
    if request.node.get_closest_marker("worker") is None:
        request.getfixturevalue("media_root")
    return make_exportable(study, session, admin)


def make_exportable(study, session, admin) -> Exportable:
    """The study described above, stored (for fixtures elsewhere, e.g. the browser tests)."""
    from qsmreview.studies.models import Session, Subject
    from qsmreview.studies.services.series import series_create_derived
    from tests.consensus.factories import make_consensus_run

    def store(session_, kind, data, **extra):
        return series_create_derived(
            by=admin, session=session_, kind=kind, data=data, affine=AFFINE,
            provenance={"source": "test", "parameters": {"solver": "admm", "lam": 1000}}, **extra,
        )

    store(session, "t2star_mag", magnitude_data())
    qsm = store(session, "qsm", qsm_values(1))
    old = make_consensus_run(session, current=False)
    run = make_consensus_run(session)
    second = Session.objects.create(subject=Subject.objects.create(study=study, code="P-02"), label="pre op")
    store(second, "t2star_mag", magnitude_data(seed=3))
    qsm2 = store(second, "qsm", qsm_values(2))
    third = Session.objects.create(subject=Subject.objects.create(study=study, code="P03"), label="01")
    store(third, "t2star_mag", magnitude_data(seed=4))
    return Exportable(study, qsm, qsm2, run, old)


# The consensus tests' hand-worked session (32 x 32 x 16, lesions A and B rated by three raters),
# for exporting a run the real pipeline computed.
from tests.consensus.conftest import assigned, inputs_session, rated  # noqa: E402, F401
