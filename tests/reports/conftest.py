"""Fixtures of the statistics tests: a study with one consensus run (tests.consensus.factories:
P01 with lesion 1 WM 0.07 ppm and lesion 2 mixed, WM portion 0.05 and cortical portion 0.02 ppm)
and a lesion table CSV measured elsewhere."""

from __future__ import annotations

import pytest

#: Imported lesions of three subjects; the numbers are checked against scipy in the tests.
IMPORTED_CSV = (
    "subject,lesion,lesion_type,portion,relative_susceptibility_ppm\n"
    "EXT1,1,wm,wm,0.01\n"
    "EXT1,2,wm,wm,0.03\n"
    "EXT2,1,wm,wm,0.02\n"
    "EXT2,2,cortical,cortical,-0.01\n"
    "EXT3,1,cortical,cortical,-0.03\n"
    "EXT3,2,mixed,wm,0.04\n"
    "EXT3,2,mixed,cortical,-0.02\n"
)


@pytest.fixture
def run(session):
    from tests.consensus.factories import make_consensus_run

    return make_consensus_run(session)


@pytest.fixture
def imported(study, admin):
    from qsmreview.reports.services import lesion_table_import

    return lesion_table_import(by=admin, study=study, name="external.csv", content=IMPORTED_CSV.encode())
