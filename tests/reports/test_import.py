"""Importing a lesion table CSV: stored with its checksum and rows; every wrong row named; nothing
stored on any error; only the study's admins."""

from __future__ import annotations

import hashlib

import pytest

from qsmreview.errors import Forbidden, NotFound, ValidationFailed
from qsmreview.reports.models import ImportedLesionRow, ImportedLesionTable
from qsmreview.reports.services import lesion_table_import
from tests.reports.conftest import IMPORTED_CSV

HEADER = "subject,lesion,lesion_type,portion,relative_susceptibility_ppm\n"


def test_it_stores_the_table_with_its_checksum_and_rows(study, admin):
    imported = lesion_table_import(by=admin, study=study, name="external.csv", content=IMPORTED_CSV.encode())

    assert imported.sha256 == hashlib.sha256(IMPORTED_CSV.encode()).hexdigest()
    assert imported.size == len(IMPORTED_CSV.encode()) and imported.n_rows == 7
    assert imported.uploaded_by == admin and imported.who == "admin"
    rows = list(imported.rows.values_list("line", "subject", "lesion", "lesion_type", "portion",
                                          "relative_susceptibility_ppm"))
    assert rows[0] == (2, "EXT1", "1", "wm", "wm", 0.01)
    assert rows[-1] == (8, "EXT3", "2", "mixed", "cortical", -0.02)


def test_it_reads_tsv_with_extra_columns_and_empty_values(study, admin):
    text = "subject\tlesion\tlesion_type\tportion\trelative_susceptibility_ppm\tnote\nA\t1\twm\twm\t\tnot measured\n"

    imported = lesion_table_import(by=admin, study=study, name="t.tsv", content=text.encode())

    assert imported.rows.get().relative_susceptibility_ppm is None


def test_it_names_every_wrong_row_and_stores_nothing(study, admin):
    text = HEADER + "A,1,wm,wm,0.01\nA,2,grey,wm,0.02\nB,1,wm,wm,abc\nB,2,mixed,,0.1\nC,1,wm,wm,0.03\n"

    with pytest.raises(ValidationFailed) as caught:
        lesion_table_import(by=admin, study=study, name="bad.csv", content=text.encode())

    rows = caught.value.extra["rows"]
    assert [r["line"] for r in rows] == [3, 4, 5]
    assert [r["column"] for r in rows] == ["lesion_type", "relative_susceptibility_ppm", "portion"]
    assert str(caught.value).startswith("3 row error(s); nothing was imported")
    assert not ImportedLesionTable.objects.exists() and not ImportedLesionRow.objects.exists()


def test_it_names_a_repeated_lesion_once_every_row_is_right_alone(study, admin):
    text = HEADER + "A,1,wm,wm,0.01\nA,1,wm,wm,0.02\n"

    with pytest.raises(ValidationFailed) as caught:
        lesion_table_import(by=admin, study=study, name="dup.csv", content=text.encode())

    assert [r["line"] for r in caught.value.extra["rows"]] == [3]
    assert not ImportedLesionTable.objects.exists()


@pytest.mark.parametrize(
    "content, message",
    [(b"", "the file is empty"), (b"\xff\xfe\x00", "not UTF-8"), (b"a,b\n1,2\n", "column missing"),
     (HEADER.encode(), "no rows")],
)
def test_it_refuses_files_that_are_not_lesion_tables(study, admin, content, message):
    with pytest.raises(ValidationFailed, match=message):
        lesion_table_import(by=admin, study=study, name="x.csv", content=content)


def test_it_lets_only_the_study_s_admins_import(study, pi, rater, other_admin):
    content = (HEADER + "A,1,wm,wm,0.01\n").encode()

    with pytest.raises(Forbidden, match="only the study's admins can import lesion tables"):
        lesion_table_import(by=pi, study=study, name="x.csv", content=content)
    for user in (rater, other_admin):
        with pytest.raises(NotFound):
            lesion_table_import(by=user, study=study, name="x.csv", content=content)
    assert not ImportedLesionTable.objects.exists()
