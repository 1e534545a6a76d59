"""Workflows of the study statistics: computing snapshots (on the workers), requesting them, the
automatic trigger when measurements change, and importing a lesion table.

Every write takes the acting user and checks rights through :mod:`qsmreview.access`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from typing import Any

from django.db import transaction

from qsmreview.access import (
    Actor,
    SystemActor,
    can_see_unblinded,
    require_manage,
    studies_with_statistics_visible_to,
    system,
    user_or_none,
)
from qsmreview.errors import NotFound, ValidationFailed
from qsmreview.jobs.runners import Report
from qsmreview.reports import selectors
from qsmreview.reports.filters import DEFAULT, Filters, parse_filters
from qsmreview.reports.models import ImportedLesionRow, ImportedLesionTable, StatisticsSnapshot
from qsmreview.stats.analysis import analyse, versions
from qsmreview.stats.table import COLUMNS, LesionTableError, parse_table, validate_records
from qsmreview.studies.models import Study

STATISTICS_KIND = "statistics"
#: Largest lesion table CSV accepted for import (bytes).
IMPORT_MAX_BYTES = 20 * 1024 * 1024


def _require_visible(by: Actor, study: Study) -> None:
    if isinstance(by, SystemActor):
        return
    if not studies_with_statistics_visible_to(by).filter(pk=study.pk).exists():
        raise NotFound("no such study")


def statistics_dedupe_key(study: Study, filters: Filters) -> str:
    """The key that lets one statistics job per study and filters be queued or running."""
    return f"{STATISTICS_KIND}:study:{study.pk}:{filters.key}"


def _code_versions() -> dict[str, str]:
    from qsmreview.consensus.compute import code_version

    return {**dict(versions()), "qsmreview": code_version()["qsmreview"]}


def _requester_id(by: Actor, job: Any) -> int | None:
    user = user_or_none(by)
    if user is not None:
        return user.pk
    if job is not None:
        wanted = job.parameters.get("requested_by") if isinstance(job.parameters, dict) else None
        if isinstance(wanted, int) and not isinstance(wanted, bool):
            from django.contrib.auth import get_user_model

            if get_user_model().objects.filter(pk=wanted).exists():
                return wanted
    return None


def statistics_compute(
    *,
    by: Actor,
    study: Study,
    filters: Filters = DEFAULT,
    job: Any = None,
    trigger: str = "",
    progress: Report | None = None,
    force: bool = False,
) -> StatisticsSnapshot:
    """Analyse the study's lesion table under ``filters`` and store the result as a snapshot.

    Without ``force``, the newest snapshot is returned as it is when it was made from exactly the
    same inputs (same measurement sets, imported tables and filters).

    Raises
    ------
    NotFound
        ``by`` may not read the study's statistics (a rater, an outsider).
    ValidationFailed
        The lesion table breaks a rule of :mod:`qsmreview.stats.table` (e.g. an imported table
        and the consensus both name a subject's lesion 1): the message says which row.
    """
    _require_visible(by, study)
    report = progress or (lambda fraction, stage: None)
    report(0.05, "reading the lesion table")
    table = selectors.lesion_table(study, filters)
    if not force:
        latest = selectors.latest_snapshot(study, filters)
        if latest is not None and latest.input_digest == table.digest:
            report(0.99, f"statistics snapshot {latest.pk} is up to date")
            return latest
    report(0.2, "validating")
    try:
        validated = validate_records(((None, r) for r in table.rows), source=f"study {study.pk}")
    except LesionTableError as exc:
        raise ValidationFailed(f"the study's lesion table: {exc}") from exc
    report(0.3, "analysing")
    started = time.perf_counter()
    analysis = analyse(validated)
    seconds = time.perf_counter() - started
    report(0.9, "storing the snapshot")
    snapshot = StatisticsSnapshot.objects.create(
        study=study,
        filters=filters.as_dict(),
        filters_key=filters.key,
        inputs=table.inputs,
        input_digest=table.digest,
        result=analysis.as_dict(),
        versions=_code_versions(),
        job=job,
        requested_by_id=_requester_id(by, job),
        trigger=trigger[:200],
        compute_seconds=seconds,
    )
    report(0.99, "done")
    return snapshot


#: How many times a statistics job computes again when the measurements changed while it ran.
MAX_CATCH_UP = 3


def statistics_job_compute(*, job: Any, filters: Filters, trigger: str, progress: Report | None = None) -> StatisticsSnapshot:
    """What the ``statistics`` job does: :func:`statistics_compute`, then again (at most
    :data:`MAX_CATCH_UP` times) while the lesion table changed during the computation. A change
    that arrives while a job runs is absorbed by that job (:func:`statistics_request` returns it),
    so the job itself makes sure its last snapshot is of the newest table."""
    study = job.study
    by = system(f"job #{job.pk}")
    snapshot = statistics_compute(by=by, study=study, filters=filters, job=job, trigger=trigger, progress=progress)
    for _ in range(MAX_CATCH_UP):
        if selectors.lesion_table(study, filters).digest == snapshot.input_digest:
            break
        snapshot = statistics_compute(by=by, study=study, filters=filters, job=job, progress=progress,
                                      trigger="the measurements changed while the statistics were computed")
    return snapshot


def statistics_request(*, by: Actor, study: Study, filters: Filters = DEFAULT, trigger: str = "") -> Any:
    """Queue a ``statistics`` job for the study under ``filters`` (its admins and PI may ask).

    The job is submitted by the system on the requester's behalf (a PI may not run jobs
    otherwise). A job already queued or running for the same study and filters is returned
    instead of a second one (the debounce; a running job computes again when the table changed
    meanwhile: :func:`statistics_job_compute`).

    Raises
    ------
    NotFound
        ``by`` may not read the study's statistics.
    """
    from qsmreview.jobs.services import job_submit_or_pending

    _require_visible(by, study)
    if not isinstance(by, SystemActor) and not can_see_unblinded(by, study):
        raise NotFound("no such study")
    who = by.get_username() if not isinstance(by, SystemActor) else by.reason
    trigger = trigger or f"requested by {who}"
    return job_submit_or_pending(
        kind=STATISTICS_KIND,
        parameters={"filters": filters.as_dict(), "trigger": trigger[:200],
                    "requested_by": getattr(user_or_none(by), "pk", None)},
        study=study,
        by=system(f"statistics for {who}"),
        dedupe_key=statistics_dedupe_key(study, filters),
    )


def statistics_after_change(*, study_id: int, what: str) -> None:
    """Called (on commit) when a study's measurements changed: queue a statistics job for the
    default filters and for every other filter combination that has a snapshot. Debounced: a job
    already queued for the same study and filters absorbs the change (it reads the newest table
    when it runs)."""
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        return
    keys = {DEFAULT.key: DEFAULT}
    for filters in StatisticsSnapshot.objects.filter(study=study).values_list("filters", flat=True).distinct():
        try:
            parsed = parse_filters(filters)
        except ValidationFailed:
            continue
        keys[parsed.key] = parsed
    for filters in keys.values():
        statistics_request(by=system(what), study=study, filters=filters, trigger=what)


def statistics_after_change_on_commit(*, study_id: int, what: str) -> None:
    """:func:`statistics_after_change` once the transaction commits. Robust: a failure to queue
    is logged and does not fail what committed (the consensus run, the import)."""
    transaction.on_commit(lambda: statistics_after_change(study_id=study_id, what=what), robust=True)


# --- importing a lesion table -------------------------------------------------------------------


def lesion_table_errors(text: str, *, source: str) -> list[dict[str, Any]]:
    """Every row-level error of a lesion table CSV or TSV: ``[{"line", "column", "message"}]``.

    The core (:func:`qsmreview.stats.table.parse_table`) stops at the first broken rule; here each
    row is checked on its own with the core's rules, then (when every row passes) the whole table
    (a repeated lesion portion, a lesion given two types).
    """
    try:
        parse_table(text, source=source)
        return []
    except LesionTableError as whole:
        first_error = {"line": whole.line, "column": whole.column, "message": str(whole)}
    text = text.removeprefix("\ufeff")
    first = next((line for line in text.splitlines() if line.strip()), "")
    reader = csv.reader(io.StringIO(text), delimiter="\t" if "\t" in first else ",")
    errors: list[dict[str, Any]] = []
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
        if header is None:
            return [first_error]
        names = [name.strip().lower() for name in header]
        if any(column not in names for column in COLUMNS):
            return [first_error]
        index = {column: names.index(column) for column in COLUMNS}
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = reader.line_num
            if len(row) != len(names):
                errors.append({"line": line, "column": None,
                               "message": f"{source}: line {line}: {len(row)} cells, the header has {len(names)}"})
                continue
            try:
                validate_records([(line, {c: row[i] for c, i in index.items()})], source=source)
            except LesionTableError as exc:
                errors.append({"line": exc.line, "column": exc.column, "message": str(exc)})
    except csv.Error:
        return [first_error]
    return errors or [first_error]


def lesion_table_import(*, by: Actor, study: Study, name: str, content: bytes) -> ImportedLesionTable:
    """Import a lesion table CSV (measurements made elsewhere) into the study (its admins).

    The columns are ``subject, lesion, lesion_type, portion, relative_susceptibility_ppm``
    (others are ignored); rows are validated by :mod:`qsmreview.stats.table`. Nothing is stored
    when any row is wrong: the error lists every wrong row (``extra["rows"]``).
    Then a statistics job is queued for the study.

    Raises
    ------
    NotFound
        ``by`` may not see the study's statistics.
    Forbidden
        ``by`` is not an admin of the study (a PI).
    ValidationFailed
        Empty, too large, not UTF-8, or row errors (``extra={"rows": [...]}``).
    """
    _require_visible(by, study)
    require_manage(by, study, "import lesion tables")
    name = (name or "").strip()[:200] or "lesion table"
    if not content:
        raise ValidationFailed("the file is empty", field="file")
    if len(content) > IMPORT_MAX_BYTES:
        raise ValidationFailed(f"the file is larger than {IMPORT_MAX_BYTES} bytes", field="file")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("the file is not UTF-8 text", field="file") from None
    try:
        table = parse_table(text, source=name)
    except LesionTableError:  # then every wrong row, not only the first
        errors = lesion_table_errors(text, source=name)
        raise ValidationFailed(
            f"{len(errors)} row error(s); nothing was imported. First: {errors[0]['message']}",
            field="file",
            extra={"rows": errors[:200]},
        ) from None
    if not table.rows:
        raise ValidationFailed("the table has a header but no rows", field="file")
    with transaction.atomic():
        imported = ImportedLesionTable.objects.create(
            study=study,
            name=name,
            uploaded_by=user_or_none(by),
            uploaded_by_label="" if user_or_none(by) else str(by),
            sha256=hashlib.sha256(content).hexdigest(),
            size=len(content),
            n_rows=len(table.rows),
        )
        ImportedLesionRow.objects.bulk_create(
            ImportedLesionRow(
                table=imported,
                line=r.line or i,
                subject=r.subject[:64],
                lesion=r.lesion[:64],
                lesion_type=r.lesion_type,
                portion=r.portion,
                relative_susceptibility_ppm=r.relative_susceptibility_ppm,
            )
            for i, r in enumerate(table.rows, start=1)
        )
        statistics_after_change_on_commit(study_id=study.pk, what=f"lesion table {name} imported")
    return imported
