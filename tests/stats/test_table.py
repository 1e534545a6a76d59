"""Reading and validating the lesion table: every rule names the file line and the column."""

from __future__ import annotations

from pathlib import Path

import pytest

from qsmreview.stats.table import (
    COLUMNS,
    LesionRow,
    LesionTableError,
    format_table,
    parse_table,
    read_table,
    validate_records,
)

HEADER = "subject,lesion,lesion_type,portion,relative_susceptibility_ppm"


def csv(*lines: str, header: str = HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


def test_it_reads_rows_and_ignores_extra_columns() -> None:
    text = csv("MS01,1,wm,wm,0.012,7", "MS01,2,Cortical,cortical,-0.02,3", header=HEADER + ",volume_mm3")
    table = parse_table(text, source="t.csv")
    assert table.rows == (
        LesionRow("MS01", "1", "wm", "wm", 0.012, 2),
        LesionRow("MS01", "2", "cortical", "cortical", -0.02, 3),
    )
    assert table.source == "t.csv"


def test_it_accepts_columns_in_any_order_and_case() -> None:
    text = "Relative_Susceptibility_ppm, Portion ,lesion_type,lesion,subject\n-0.5,wm,mixed,4,MS02\n"
    assert parse_table(text).rows == (LesionRow("MS02", "4", "mixed", "wm", -0.5, 2),)


def test_it_reads_tsv() -> None:
    text = csv("MS01\t1\tmixed\tcortical\t0.003", header=HEADER.replace(",", "\t"))
    assert parse_table(text).rows[0] == LesionRow("MS01", "1", "mixed", "cortical", 0.003, 2)


def test_it_skips_and_counts_empty_values() -> None:
    table = parse_table(csv("MS01,1,wm,wm,", "MS01,2,wm,wm,0.01", "MS01,3,wm,wm,  "))
    assert [r.relative_susceptibility_ppm for r in table.rows] == [None, 0.01, None]
    assert table.n_unmeasured == 2
    assert len(table.measured) == 1


def test_it_reads_an_empty_portion_of_a_whole_lesion_as_its_type() -> None:
    assert parse_table(csv("MS01,1,cortical,,0.01")).rows[0].portion == "cortical"


def test_it_skips_blank_lines_and_a_byte_order_mark_and_counts_lines_of_the_file() -> None:
    text = "\ufeff" + HEADER + "\n\nMS01,1,wm,wm,0.01\n\nMS01,2,wm,wm,oops\n"
    with pytest.raises(LesionTableError) as err:
        parse_table(text)
    assert err.value.line == 5


def test_it_reads_a_table_with_a_header_only_as_empty() -> None:
    table = parse_table(csv())
    assert table.rows == () and table.n_unmeasured == 0


# (rows after the header, line at fault, column at fault, words in the message)
MALFORMED = {
    "unknown lesion_type": (["MS01,1,wm,wm,0.01", "MS01,2,grey,wm,0.01"], 3, "lesion_type", "'grey' is not one of"),
    "unknown portion": (["MS01,1,mixed,csf,0.01"], 2, "portion", "'csf' is not one of"),
    "mixed without portion": (["MS01,1,mixed,,0.01"], 2, "portion", "must say which portion"),
    "whole lesion with the other portion": (["MS01,1,wm,cortical,0.01"], 2, "portion", "only mixed lesions"),
    "decimal comma": (["MS01,1,wm,wm,0,014"], 2, None, "6 cells, the header has 5"),
    "number with a unit": (["MS01,1,wm,wm,0.01ppm"], 2, "relative_susceptibility_ppm", "'0.01ppm' is not a number"),
    "text value": (["MS01,1,wm,wm,high"], 2, "relative_susceptibility_ppm", "'high' is not a number"),
    "NaN": (["MS01,1,wm,wm,nan"], 2, "relative_susceptibility_ppm", "not a finite number"),
    "infinity": (["MS01,1,wm,wm,0.1", "MS01,2,wm,wm,-inf"], 3, "relative_susceptibility_ppm", "not a finite"),
    "duplicate": (["MS01,1,wm,wm,0.1", "MS02,1,wm,wm,0.1", "MS01,1,wm,wm,0.2"], 4, "portion", "already given on line 2"),
    "duplicate portion": (["MS01,1,mixed,wm,0.1", "MS01,1,mixed,wm,0.2"], 3, "portion", "already given on line 2"),
    "two types for one lesion": (["MS01,1,mixed,wm,0.1", "MS01,1,cortical,cortical,0.2"], 3, "lesion_type",
                                 "is 'mixed' on line 2 but 'cortical' here"),
    "empty subject": (["MS01,1,wm,wm,0.1", " ,2,wm,wm,0.1"], 3, "subject", "empty"),
    "empty lesion": (["MS01,,wm,wm,0.1"], 2, "lesion", "empty"),
    "too few cells": (["MS01,1,wm,wm,0.1", "MS01,2,wm"], 3, "portion", "3 cells, the header has 5"),
    "too many cells": (["MS01,1,wm,wm,0.1,extra"], 2, None, "6 cells, the header has 5"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_it_names_the_line_and_column_of_each_malformed_row(case: str) -> None:
    lines, line, column, words = MALFORMED[case]
    with pytest.raises(LesionTableError) as err:
        parse_table(csv(*lines), source="lesions.csv")
    assert (err.value.line, err.value.column) == (line, column)
    where = f"lesions.csv, line {line}" + (f", column {column}" if column else "")
    assert str(err.value).startswith(where + ": ")
    assert words in str(err.value)


@pytest.mark.parametrize("missing", COLUMNS)
def test_it_names_a_column_missing_from_the_header(missing: str) -> None:
    header = ",".join(c for c in COLUMNS if c != missing)
    with pytest.raises(LesionTableError) as err:
        parse_table(header + "\nA,1,wm,wm\n", source="t.csv")
    assert (err.value.line, err.value.column) == (1, missing)
    assert str(err.value) == f"t.csv, line 1, column {missing}: column missing from the header"


def test_it_refuses_an_empty_file() -> None:
    with pytest.raises(LesionTableError, match="empty file"):
        parse_table("\n\n", source="t.csv")


def test_it_validates_records_given_in_code() -> None:
    with pytest.raises(LesionTableError) as err:
        validate_records([(None, {"subject": "A", "lesion": 1, "lesion_type": "wm", "portion": "wm"})])
    assert err.value.column == "relative_susceptibility_ppm" and "column missing" in str(err.value)
    table = validate_records(
        [(7, {"subject": "A", "lesion": 1, "lesion_type": "wm", "portion": None, "relative_susceptibility_ppm": 0.5})]
    )
    assert table.rows == (LesionRow("A", "1", "wm", "wm", 0.5, 7),)


def test_it_reports_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(LesionTableError, match="cannot read the file") as err:
        read_table(tmp_path / "absent.csv")
    assert str(err.value).startswith(str(tmp_path / "absent.csv"))
    with pytest.raises(LesionTableError, match="cannot read the file"):
        read_table(tmp_path)
    latin = tmp_path / "latin1.csv"
    latin.write_bytes((HEADER + "\nM\xe9,1,wm,wm,0.1\n").encode("latin-1"))
    with pytest.raises(LesionTableError, match="not UTF-8") as err:
        read_table(latin)
    assert err.value.line == 2


def test_it_writes_values_that_read_back_exactly(tmp_path: Path) -> None:
    rows = (
        LesionRow("MS01", "1", "wm", "wm", 0.1 + 0.2),
        LesionRow("MS01", "2", "mixed", "cortical", -1e-17),
        LesionRow("MS 02, left", "3", "cortical", "cortical", None),
    )
    path = tmp_path / "t.csv"
    path.write_text(format_table(rows), encoding="utf-8")
    back = read_table(path)
    assert [(r.subject, r.lesion, r.lesion_type, r.portion, r.relative_susceptibility_ppm) for r in back.rows] == [
        (r.subject, r.lesion, r.lesion_type, r.portion, r.relative_susceptibility_ppm) for r in rows
    ]
    assert [r.line for r in back.rows] == [2, 3, 4]


def test_it_accepts_unclassified_lesions_without_portion_or_value() -> None:
    table = parse_table(csv("MS01,1,wm,wm,0.01", "MS01,2,Unclassified,,"))
    assert table.rows[1] == LesionRow("MS01", "2", "unclassified", "", None, 3)
    for row, column in (("MS01,2,unclassified,wm,", "portion"), ("MS01,2,unclassified,,0.01", "relative_susceptibility_ppm")):
        with pytest.raises(LesionTableError) as err:
            parse_table(csv(row))
        assert (err.value.line, err.value.column) == (2, column)
        assert "an unclassified lesion" in str(err.value)


# The header consensus (issue 17, qsmreview.lesions) writes: the five columns among many others.
CONSENSUS_HEADER = (
    "subject,lesion,lesion_type,portion,n_voxels,volume_mm3,cortical_fraction,raters,lesion_mean_ppm,"
    "lesion_sd_ppm,reference_mean_ppm,reference_sd_ppm,reference_n_voxels,relative_susceptibility_ppm,"
    "lesion_n_voxels,measured_n_voxels,centroid_ijk,central_slice,reference_roi,reference_flag,vote_majority"
)


def test_it_reads_a_table_as_consensus_writes_it() -> None:
    text = csv(
        "MS01,1,wm,wm,40,10.0,0.1,A;B;C,0.02,0.01,0.005,0.01,300,0.015,40,40,1.0;2.0;3.0,2,1,ok,wm",
        "MS01,2,mixed,cortical,20,5.0,0.5,A;B,0.0,0.01,0.01,0.01,200,-0.01,40,20,1;2;3,2,2,ok,mixed",
        "MS01,2,mixed,wm,20,5.0,0.5,A;B,0.02,0.01,0.005,0.01,300,0.015,40,20,1;2;3,2,3,ok,mixed",
        "MS01,3,unclassified,,0,0.0,,C,,,,,,,3,0,4;5;6,,,empty,",
        "MS01,4,cortical,cortical,10,2.5,0.9,A;B;C,,,,,,,10,0,7;8;9,3,4,ok,cortical",
        header=CONSENSUS_HEADER,
    )
    table = parse_table(text)
    assert [(r.lesion, r.lesion_type, r.portion, r.relative_susceptibility_ppm) for r in table.rows] == [
        ("1", "wm", "wm", 0.015), ("2", "mixed", "cortical", -0.01), ("2", "mixed", "wm", 0.015),
        ("3", "unclassified", "", None), ("4", "cortical", "cortical", None)]
    assert table.n_unmeasured == 2
