"""The lesion table: one row per lesion (two per mixed lesion), read and validated.

The table exchanged between consensus, statistics and exports (docs/statistics.md) has the columns

========================== ==============================================================
``subject``                patient identifier (non-empty text)
``lesion``                 lesion identifier within the subject (non-empty text)
``lesion_type``            ``wm``, ``cortical`` or ``mixed`` (case and spaces ignored); also
                           ``unclassified`` (see below)
``portion``                ``wm`` or ``cortical``: which part of the lesion the row measures
``relative_susceptibility_ppm`` susceptibility relative to the reference ROI, ppm; empty = not
                           measured
========================== ==============================================================

Other columns are ignored. A wm or cortical lesion has one row whose portion equals its type (an
empty portion is read as the type); a mixed lesion has up to two rows, its WM and its cortical
portion. Consensus (issue 17) calls a lesion with no GM or WM voxel ``unclassified``: such a row
is accepted with an empty portion and an empty value, counted, and left out of every statistic. Comma- or tab-separated: the header line decides (a tab in it means TSV). Every rule that
fails raises :class:`LesionTableError` naming the file line (1 = header) and the column.

Only :func:`read_table` touches the file system; :func:`parse_table` and :func:`validate_records`
work on text and records.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The columns every table must have, in the order written by :func:`format_table`.
COLUMNS = ("subject", "lesion", "lesion_type", "portion", "relative_susceptibility_ppm")
#: The lesion types the analysis groups.
LESION_TYPES = ("wm", "cortical", "mixed")
#: The type consensus gives a lesion with no GM or WM voxel (qsmreview.lesions.classify): accepted,
#: never measured, counted and left out of every statistic.
UNCLASSIFIED = "unclassified"
#: Accepted values of ``portion``.
PORTIONS = ("wm", "cortical")


class LesionTableError(ValueError):
    """A table that breaks a rule; the message names the source, file line and column.

    Attributes
    ----------
    line : int or None
        1-based line of the file (1 = the header); None when the whole file is at fault.
    column : str or None
        The column at fault, None when no single column is.
    """

    def __init__(self, message: str, *, source: str = "", line: int | None = None, column: str | None = None):
        where = ", ".join(
            part
            for part in (source, f"line {line}" if line is not None else "", f"column {column}" if column else "")
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class LesionRow:
    """One validated row: a whole wm/cortical lesion, or one portion of a mixed lesion.

    Attributes
    ----------
    subject, lesion : str
        Identifiers, stripped of surrounding spaces.
    lesion_type : {"wm", "cortical", "mixed", "unclassified"}
    portion : {"wm", "cortical", ""}
        Equal to ``lesion_type`` for wm and cortical lesions, either for mixed ones, "" for
        unclassified ones.
    relative_susceptibility_ppm : float or None
        Finite, in ppm; None when the cell was empty (not measured).
    line : int or None
        File line it came from (None for rows built in code).
    """

    subject: str
    lesion: str
    lesion_type: str
    portion: str
    relative_susceptibility_ppm: float | None
    line: int | None = None


@dataclass(frozen=True)
class LesionTable:
    """A validated lesion table.

    Attributes
    ----------
    rows : tuple of LesionRow
        Every row, measured or not, in file order.
    source : str
        Where it came from (a path, or a label), for messages and provenance.
    """

    rows: tuple[LesionRow, ...]
    source: str = ""

    @property
    def measured(self) -> tuple[LesionRow, ...]:
        """Rows with a value."""
        return tuple(r for r in self.rows if r.relative_susceptibility_ppm is not None)

    @property
    def n_unmeasured(self) -> int:
        """Rows whose value cell was empty (skipped by the analysis, counted in its report)."""
        return sum(r.relative_susceptibility_ppm is None for r in self.rows)


def _number(text: str, *, source: str, line: int | None, column: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise LesionTableError(f"{text!r} is not a number", source=source, line=line, column=column) from None
    if not math.isfinite(value):
        raise LesionTableError(f"{text!r} is not a finite number", source=source, line=line, column=column)
    return value


def _choice(text: str, allowed: Sequence[str], *, source: str, line: int | None, column: str) -> str:
    value = text.strip().lower()
    if value not in allowed:
        expected = ", ".join(allowed[:-1]) + f" or {allowed[-1]}"
        raise LesionTableError(f"{text.strip()!r} is not one of {expected}", source=source, line=line, column=column)
    return value


def validate_records(
    records: Iterable[tuple[int | None, Mapping[str, object]]], *, source: str = ""
) -> LesionTable:
    """Validate rows given as ``(line, {column: value})`` and return the table.

    Parameters
    ----------
    records : iterable of (int or None, mapping)
        The file line of each row (None when it has none) and its cells. Cells may be text or
        numbers (None or "" for an empty cell); extra keys are ignored. Not modified.
    source : str
        Named in error messages.

    Returns
    -------
    LesionTable

    Raises
    ------
    LesionTableError
        The first rule broken: a missing column, an empty subject or lesion, an unknown
        lesion_type or portion, a mixed row without portion, a wm/cortical row whose portion is
        the other type, an unclassified row with a portion or a value, a value that is not a
        finite number, a (subject, lesion, portion) seen before, or a lesion given two different
        types.
    """
    rows: list[LesionRow] = []
    seen: dict[tuple[str, str, str], int | None] = {}
    types: dict[tuple[str, str], tuple[str, int | None]] = {}
    for line, cells in records:
        missing = [c for c in COLUMNS if c not in cells]
        if missing:
            raise LesionTableError("column missing", source=source, line=line, column=missing[0])
        text = {c: "" if cells[c] is None else str(cells[c]) for c in COLUMNS}
        subject, lesion = text["subject"].strip(), text["lesion"].strip()
        for column, value in (("subject", subject), ("lesion", lesion)):
            if not value:
                raise LesionTableError("empty", source=source, line=line, column=column)
        kind = _choice(text["lesion_type"], (*LESION_TYPES, UNCLASSIFIED), source=source, line=line,
                       column="lesion_type")
        if kind == UNCLASSIFIED:
            for column, why in (("portion", "has no portion"), ("relative_susceptibility_ppm", "is not measured")):
                if text[column].strip():
                    raise LesionTableError(f"an unclassified lesion {why}, got {text[column].strip()!r}",
                                           source=source, line=line, column=column)
            portion = ""
        elif text["portion"].strip():
            portion = _choice(text["portion"], PORTIONS, source=source, line=line, column="portion")
        elif kind == "mixed":
            raise LesionTableError(
                "a mixed lesion's row must say which portion it measures (wm or cortical)",
                source=source, line=line, column="portion",
            )
        else:
            portion = kind
        if kind not in ("mixed", UNCLASSIFIED) and portion != kind:
            raise LesionTableError(
                f"portion {portion!r} on a {kind!r} lesion (only mixed lesions have portions of another type)",
                source=source, line=line, column="portion",
            )
        value = _number(text["relative_susceptibility_ppm"], source=source, line=line,
                        column="relative_susceptibility_ppm")
        key = (subject, lesion, portion)
        if key in seen:
            first = f"line {seen[key]}" if seen[key] is not None else "an earlier row"
            raise LesionTableError(
                f"subject {subject!r}, lesion {lesion!r}, portion {portion!r} already given on {first}",
                source=source, line=line, column="portion",
            )
        seen[key] = line
        earlier = types.setdefault((subject, lesion), (kind, line))
        if earlier[0] != kind:
            first = f"line {earlier[1]}" if earlier[1] is not None else "an earlier row"
            raise LesionTableError(
                f"subject {subject!r}, lesion {lesion!r} is {earlier[0]!r} on {first} but {kind!r} here",
                source=source, line=line, column="lesion_type",
            )
        rows.append(LesionRow(subject, lesion, kind, portion, value, line))
    return LesionTable(tuple(rows), source)


def parse_table(text: str, *, source: str = "") -> LesionTable:
    """Parse and validate a lesion table given as CSV or TSV text.

    Parameters
    ----------
    text : str
        The whole file. The header line decides the delimiter: tab if it holds one, else comma.
        Column names are matched after stripping spaces and lower-casing; blank lines are skipped.
    source : str
        Named in error messages (e.g. the file's path).

    Returns
    -------
    LesionTable

    Raises
    ------
    LesionTableError
        No header, a required column missing from it, a row with more or fewer cells than the
        header, a CSV syntax error, or any rule of :func:`validate_records`.
    """
    text = text.removeprefix("\ufeff")
    first = next((line for line in text.splitlines() if line.strip()), "")
    reader = csv.reader(io.StringIO(text), delimiter="\t" if "\t" in first else ",")
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
        if header is None:
            raise LesionTableError("empty file: no header line", source=source, line=1)
        header_line = reader.line_num
        names = [name.strip().lower() for name in header]
        for column in COLUMNS:
            if column not in names:
                raise LesionTableError("column missing from the header", source=source, line=header_line,
                                       column=column)
        index = {column: names.index(column) for column in COLUMNS}

        def records() -> Iterable[tuple[int, dict[str, str]]]:
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(names):
                    column = names[len(row)] if len(row) < len(names) else None
                    raise LesionTableError(
                        f"{len(row)} cells, the header has {len(names)}", source=source,
                        line=reader.line_num, column=column,
                    )
                yield reader.line_num, {column: row[i] for column, i in index.items()}

        return validate_records(records(), source=source)
    except csv.Error as exc:
        raise LesionTableError(f"not readable as CSV/TSV ({exc})", source=source, line=reader.line_num) from None


def read_table(path: str | Path) -> LesionTable:
    """Read and validate a lesion table file (UTF-8, CSV or TSV); see :func:`parse_table`.

    Raises
    ------
    LesionTableError
        The file cannot be read or decoded, or any rule of :func:`parse_table` fails.
    """
    source = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise LesionTableError(f"cannot read the file ({exc.strerror or exc})", source=source) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise LesionTableError("not UTF-8 text", source=source, line=line) from None
    return parse_table(text, source=source)


def format_table(rows: Iterable[LesionRow], *, delimiter: str = ",") -> str:
    """The rows as CSV (or TSV) text with the :data:`COLUMNS` header; values written exactly (repr)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        value = "" if r.relative_susceptibility_ppm is None else repr(float(r.relative_susceptibility_ppm))
        writer.writerow((r.subject, r.lesion, r.lesion_type, r.portion, value))
    return out.getvalue()
