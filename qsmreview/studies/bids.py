"""Import a BIDS dataset's anatomical scans into a study.

What is recognised (``sub-<s>[/ses-<t>]/anat/``, and the same layout under ``derivatives/<x>/``):

==========================================================  ==============================
file (``.nii`` or ``.nii.gz``)                              series kind
==========================================================  ==============================
``*_part-mag_T2starw`` (or ``*_T2starw`` without part)      ``t2star_mag``
``*_part-phase_T2starw``                                    ``t2star_phase``
``*_echo-<n>_part-mag_MEGRE`` (or without part)             ``t2star_mag`` (echoes stacked)
``*_echo-<n>_part-phase_MEGRE``                             ``t2star_phase`` (echoes stacked)
``*_acq-<wmn|WMnulled|wmnull>_T1w``                         ``t1_wmn``
``*_acq-<csfn|CSFnulled|csfnull>_T1w``                      ``t1_csfn``
``*_FLAIR``                                                 ``flair``
``*_Chimap``                                                ``qsm`` (blinded)
``*_desc-brain_mask``                                       ``brain_mask``
``*_desc-lesion_mask`` / ``*_label-lesion_mask``            ``lesion_mask``
``*_dseg`` (FSL FAST codes 0-3)                             ``tissue``
==========================================================  ==============================

``*_desc-consensus_dseg`` and ``*_desc-reference_dseg`` (lesion and ROI label maps of qsmreview's
own export) are not tissue labels and are skipped.

Per-echo MEGRE files of one acquisition are stacked, sorted by echo time, into one 4-D series
(echoes on axis 3), which is what QSM reconstruction expects. Echo times come from the JSON
sidecars (``EchoTime``, seconds; the inheritance principle applies), the field strength from
``MagneticFieldStrength``. A phase without an echo time is skipped. ``run-``/``acq-`` entities
other than the T1 contrast labels become the series label (e.g. ``run-2``).

Subjects come from ``participants.tsv`` when present (``sex``, ``age``, ``group``/``phenotype``/
``diagnosis``, ``disease_duration``, ``treatment``; other columns go to ``Subject.extra``) and
from the ``sub-`` folders. A dataset without ``ses-`` folders gets one session labelled ``01``.

Re-running is safe: a file (or stack of echoes) whose checksum is already stored in its slot is
reported as "already imported" and skipped.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import re
import tempfile
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from django.core.exceptions import ValidationError
from django.db.models import Q

from qsmreview.access import Actor, require_manage
from qsmreview.errors import DomainError
from qsmreview.studies import nifti
from qsmreview.studies.models import Phenotype, Series, SeriesKind, Session, Sex, Study, Subject
from qsmreview.studies.services.series import series_create_from_file
from qsmreview.studies.services.studies import session_create, subject_create
from qsmreview.studies.storage import sha256_of_path

WMN_ACQ = frozenset({"wmn", "wmnulled", "wmnull"})
CSFN_ACQ = frozenset({"csfn", "csfnulled", "csfnull"})
DEFAULT_SESSION = "01"
#: ``_dseg`` images that are not tissue classes: the consensus lesions and reference ROIs of
#: qsmreview's BIDS export (a dataset exported and imported again must not turn them into tissue).
NOT_TISSUE_DESC = frozenset({"consensus", "reference"})

#: Import order within a session: the grid-defining series first.
_ORDER = [
    SeriesKind.T2STAR_MAGNITUDE,
    SeriesKind.T2STAR_PHASE,
    SeriesKind.BRAIN_MASK,
    SeriesKind.TISSUE,
    SeriesKind.LESION_MASK,
    SeriesKind.QSM,
    SeriesKind.T1_WM_NULLED,
    SeriesKind.T1_CSF_NULLED,
    SeriesKind.FLAIR,
]
_NIFTI = re.compile(r"^(?P<stem>.+?)\.nii(\.gz)?$")
_SKIP_CATEGORIES = ("unrecognised", "missing metadata", "invalid", "already imported")


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skipped:
    path: str
    category: str  # one of _SKIP_CATEGORIES
    reason: str


@dataclass(frozen=True)
class Imported:
    path: str
    subject: str
    session: str
    kind: str
    label: str
    series_id: int | None  # None in a dry run


@dataclass
class ImportReport:
    imported: list[Imported] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    subjects_created: list[str] = field(default_factory=list)
    sessions_created: list[str] = field(default_factory=list)
    dry_run: bool = False

    def skipped_by(self, category: str) -> list[Skipped]:
        return [s for s in self.skipped if s.category == category]

    def summary_lines(self) -> list[str]:
        verb = "would import" if self.dry_run else "imported"
        lines = [
            f"{verb} {len(self.imported)} series; skipped {len(self.skipped)}"
            + (f"; new subjects {len(self.subjects_created)}, new sessions {len(self.sessions_created)}")
        ]
        for item in self.imported:
            tag = f" '{item.label}'" if item.label else ""
            lines.append(f"  + {item.path} -> sub-{item.subject} ses-{item.session} {item.kind}{tag}")
        for category in _SKIP_CATEGORIES:
            for s in self.skipped_by(category):
                lines.append(f"  - {s.path}: {category}: {s.reason}")
        return lines


# --- file names and sidecars -----------------------------------------------------------------


@dataclass(frozen=True)
class BidsName:
    entities: dict[str, str]
    suffix: str

    @property
    def stem(self) -> str:
        return "_".join([*(f"{k}-{v}" for k, v in self.entities.items()), self.suffix])


def parse_name(filename: str) -> BidsName | None:
    """Entities and suffix of a BIDS file name, or None if it is not one."""
    m = _NIFTI.match(filename) or re.match(r"^(?P<stem>.+?)\.json$", filename)
    if m is None:
        return None
    parts = m.group("stem").split("_")
    entities: dict[str, str] = {}
    for part in parts[:-1]:
        key, sep, value = part.partition("-")
        if not sep or not key or not value:
            return None
        entities[key] = value
    suffix = parts[-1]
    if "-" in suffix or not suffix:
        return None
    return BidsName(entities, suffix)


def sidecar(root: Path, path: Path, name: BidsName) -> dict[str, Any]:
    """The JSON metadata of a file by the BIDS inheritance principle (most specific wins)."""
    merged: dict[str, Any] = {}
    directories: list[Path] = []
    current = path.parent
    while True:
        directories.append(current)
        if current == root or root not in current.parents:
            break
        current = current.parent
    for directory in reversed(directories):  # dataset level first
        for candidate in sorted(directory.glob("*.json")):
            cand = parse_name(candidate.name)
            if cand is None or cand.suffix != name.suffix:
                continue
            if all(name.entities.get(k) == v for k, v in cand.entities.items()):
                try:
                    merged.update(json.loads(candidate.read_text()))
                except (OSError, ValueError):
                    continue
    return merged


# --- what a file is --------------------------------------------------------------------------


@dataclass
class Item:
    """One series to import: one file, or several per-echo files to stack."""

    subject: str
    session: str
    kind: str
    label: str
    files: list[Path]
    echo_times_s: list[float] | None
    b0_t: float | None
    rel: str  # for messages


def _kind_of(name: BidsName) -> tuple[str | None, str]:
    """(kind or None, reason when None)."""
    e = name.entities
    part = e.get("part", "mag")
    if name.suffix in ("T2starw", "MEGRE"):
        if part == "mag":
            return SeriesKind.T2STAR_MAGNITUDE, ""
        if part == "phase":
            return SeriesKind.T2STAR_PHASE, ""
        return None, f"part-{part} is not imported (only mag and phase)"
    if name.suffix == "T1w":
        acq = e.get("acq", "").lower()
        if acq in WMN_ACQ:
            return SeriesKind.T1_WM_NULLED, ""
        if acq in CSFN_ACQ:
            return SeriesKind.T1_CSF_NULLED, ""
        return None, (
            f"T1w with acq-{e.get('acq', '')!s}: the acq- label must name the contrast "
            "(wmn, WMnulled, csfn or CSFnulled)"
        )
    if name.suffix == "FLAIR":
        return SeriesKind.FLAIR, ""
    if name.suffix == "Chimap":
        return SeriesKind.QSM, ""
    if name.suffix == "mask":
        target = (e.get("desc") or e.get("label") or "").lower()
        if target == "brain":
            return SeriesKind.BRAIN_MASK, ""
        if target in ("lesion", "lesions"):
            return SeriesKind.LESION_MASK, ""
        return None, "a mask must be desc-brain, desc-lesion or label-lesion"
    if name.suffix == "dseg":
        if (e.get("desc") or "").lower() in NOT_TISSUE_DESC:
            # qsmreview's own export (docs/export.md): lesion ids 1, 2, 3 would pass as FAST codes
            return None, f"desc-{e['desc']}_dseg is a lesion or ROI label map, not tissue labels"
        return SeriesKind.TISSUE, ""
    return None, f"suffix {name.suffix!r} is not imported"


def _label_of(name: BidsName, kind: str) -> str:
    parts = []
    acq = name.entities.get("acq")
    if acq and kind not in (SeriesKind.T1_WM_NULLED, SeriesKind.T1_CSF_NULLED):
        parts.append(f"acq-{acq}")
    if "run" in name.entities:
        parts.append(f"run-{name.entities['run']}")
    return "_".join(parts)


def _echo_times(meta: dict[str, Any]) -> list[float] | None:
    te = meta.get("EchoTime")
    if te is None:
        return None
    values = te if isinstance(te, list) else [te]
    try:
        return [float(t) for t in values]
    except (TypeError, ValueError):
        return None


def _b0(meta: dict[str, Any]) -> float | None:
    try:
        value = meta.get("MagneticFieldStrength")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _session_dirs(root: Path) -> Iterable[tuple[str, str, Path]]:
    """(subject code, session label, folder holding anat/) for raw data and derivatives."""
    bases = [root] + sorted(p for p in (root / "derivatives").glob("*") if p.is_dir())
    for base in bases:
        for sub in sorted(base.glob("sub-*")):
            if not sub.is_dir():
                continue
            code = sub.name[4:]
            sessions = sorted(p for p in sub.glob("ses-*") if p.is_dir())
            if sessions:
                for ses in sessions:
                    yield code, ses.name[4:], ses
            else:
                yield code, DEFAULT_SESSION, sub


def scan(root: Path) -> tuple[list[Item], list[Skipped], set[str]]:
    """Everything importable under ``root``, what is not and why, and the subject codes seen."""
    root = root.resolve()
    items: list[Item] = []
    skipped: list[Skipped] = []
    codes: set[str] = set()
    echo_groups: dict[tuple, list[tuple[Path, BidsName, dict]]] = defaultdict(list)
    for code, ses, folder in _session_dirs(root):
        codes.add(code)
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or not _NIFTI.match(path.name):
                continue
            rel = str(path.relative_to(root))
            if path.parent.name != "anat":
                skipped.append(Skipped(rel, "unrecognised", f"{path.parent.name}/ is not imported (only anat/)"))
                continue
            name = parse_name(path.name)
            if name is None or name.entities.get("sub") != code:
                skipped.append(Skipped(rel, "unrecognised", "not a BIDS file name (sub-<label>_..._<suffix>)"))
                continue
            kind, why = _kind_of(name)
            if kind is None:
                skipped.append(Skipped(rel, "unrecognised", why))
                continue
            meta = sidecar(root, path, name)
            label = _label_of(name, kind)
            if "echo" in name.entities:
                key = (code, ses, kind, label, name.suffix)
                echo_groups[key].append((path, name, meta))
                continue
            tes = _echo_times(meta)
            if kind == SeriesKind.T2STAR_PHASE and not tes:
                skipped.append(Skipped(rel, "missing metadata", "phase without EchoTime in its JSON sidecar"))
                continue
            if kind not in nifti.ECHO_KINDS:
                tes = None
            items.append(Item(code, ses, kind, label, [path], tes, _b0(meta), rel))
    for (code, ses, kind, label, _suffix), members in echo_groups.items():
        rels = [str(p.relative_to(root)) for p, _, _ in members]
        group_rel = ", ".join(rels)
        tes = [_echo_times(meta) for _, _, meta in members]
        if any(t is None or len(t) != 1 for t in tes):
            missing = [r for r, t in zip(rels, tes) if t is None or len(t) != 1]
            category = "missing metadata"
            reason = f"no single EchoTime in the JSON sidecar of {', '.join(missing)}"
            if kind == SeriesKind.T2STAR_MAGNITUDE:
                reason += " (needed to order and stack the echoes)"
            skipped.append(Skipped(group_rel, category, reason))
            continue
        order = sorted(range(len(members)), key=lambda i: tes[i][0])  # type: ignore[index]
        items.append(
            Item(
                code,
                ses,
                kind,
                label,
                [members[i][0] for i in order],
                [tes[i][0] for i in order],  # type: ignore[index]
                _b0(members[order[0]][2]),
                group_rel,
            )
        )
    items.sort(key=lambda it: (it.subject, it.session, _ORDER.index(it.kind), it.label, it.rel))
    return items, skipped, codes


# --- participants ----------------------------------------------------------------------------

_SEX = {"f": Sex.FEMALE, "female": Sex.FEMALE, "m": Sex.MALE, "male": Sex.MALE, "o": Sex.OTHER, "other": Sex.OTHER}
_PHENOTYPE_ALIASES = {"hc": Phenotype.HC, "control": Phenotype.HC, "healthy": Phenotype.HC, "healthy control": Phenotype.HC}
_PHENOTYPE_COLUMNS = ("phenotype", "group", "diagnosis")
_N_A = {"", "n/a", "na", "nan"}


def _float(value: str) -> float | None:
    try:
        return float(value) if value.strip().lower() not in _N_A else None
    except ValueError:
        return None


def read_participants(root: Path) -> dict[str, dict[str, Any]]:
    """Subject fields by code from participants.tsv (empty when there is none)."""
    path = root / "participants.tsv"
    if not path.is_file():
        return {}
    out: dict[str, dict[str, Any]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            pid = (row.pop("participant_id", "") or "").strip()
            if not pid:
                continue
            code = pid[4:] if pid.startswith("sub-") else pid
            fields: dict[str, Any] = {}
            extra: dict[str, str] = {}
            for column, raw in row.items():
                key = (column or "").strip().lower()
                value = (raw or "").strip()
                if key == "sex" and value.lower() in _SEX:
                    fields["sex"] = _SEX[value.lower()]
                elif key in ("age", "age_years") and _float(value) is not None:
                    fields["age_years"] = _float(value)
                elif key in ("disease_duration", "disease_duration_years") and _float(value) is not None:
                    fields["disease_duration_years"] = _float(value)
                elif key == "treatment" and value.lower() not in _N_A:
                    fields["treatment"] = value[:200]
                elif key in _PHENOTYPE_COLUMNS and "phenotype" not in fields and value.lower() not in _N_A:
                    upper = value.upper()
                    if upper in Phenotype.values:
                        fields["phenotype"] = upper
                    elif value.lower() in _PHENOTYPE_ALIASES:
                        fields["phenotype"] = _PHENOTYPE_ALIASES[value.lower()]
                    else:
                        fields["phenotype"] = Phenotype.OTHER
                        extra[column] = value
                elif value.lower() not in _N_A and column:
                    extra[column] = value
            if extra:
                fields["extra"] = extra
            out[code] = fields
    return out


# --- the import ------------------------------------------------------------------------------


def _stack(item: Item, directory: Path) -> tuple[Path, dict[str, str]]:
    """Stack per-echo 3-D files into one 4-D NIfTI; return its path and the files' checksums.

    Each echo's header is checked against the size limits for the whole stack before its data
    is read (the stack is validated again as an upload afterwards).
    """
    arrays = []
    first = None
    checksums = {}
    for path in item.files:
        checksums[path.name] = sha256_of_path(path)[0]
        with nifti.open_nifti(path) as (image, _, _):
            if len(image.shape) != 3:
                raise DomainError(f"{path.name}: an echo file must be 3-D, got shape {image.shape}")
            declared = nifti.declared_data(image)
            try:
                nifti.check_declared_size(
                    dataclasses.replace(declared, shape=(*declared.shape, len(item.files)))
                )
            except DomainError as exc:
                raise DomainError(f"{len(item.files)} echoes stacked: {exc.message}") from exc
            if first is None:
                first = image
            elif not nifti.same_grid(image.shape, image.affine, first.shape, first.affine):
                raise DomainError(f"{path.name}: echoes are not on one grid")
            arrays.append(np.asanyarray(image.dataobj))
    assert first is not None
    stacked = np.stack(arrays, axis=-1)
    out = nib.Nifti1Image(stacked, first.affine)
    out.set_qform(first.affine, code=1)
    out.set_sform(first.affine, code=1)
    path = directory / "stacked.nii.gz"
    nib.save(out, str(path))
    return path, checksums


def _source_sha256(item: Item) -> str:
    """The identity of an item's source: its file's checksum, or that of its echoes' checksums."""
    if len(item.files) == 1:
        return sha256_of_path(item.files[0])[0]
    joined = "\n".join(sha256_of_path(p)[0] for p in item.files)
    return hashlib.sha256(joined.encode()).hexdigest()


def _already_imported(session: Session, item: Item, source: str) -> Series | None:
    return (
        Series.objects.filter(session=session, kind=item.kind, label=item.label)
        .filter(Q(sha256=source) | Q(provenance__bids__source_sha256=source))
        .first()
    )


def import_bids(
    root: Path | str,
    *,
    study: Study,
    by: Actor,
    dry_run: bool = False,
    progress: Callable[[Iterable[Item]], Iterable[Item]] | None = None,
) -> ImportReport:
    """Import the anatomical series of a BIDS dataset into ``study``.

    Parameters
    ----------
    root : the dataset folder (holding ``sub-*`` and optionally ``participants.tsv``).
    study : the target study.
    by : the acting user (an admin of ``study``) or a system actor (``manage.py import_bids``);
        every write goes through the services, which check it.
    dry_run : validate the files and report what would happen; write nothing. (Grid checks
        against series stored in the database are not made in a dry run.)
    progress : wraps the iteration over items (e.g. ``tqdm``).

    Returns
    -------
    ImportReport
        Imported series and skipped files with their reason.
    """
    require_manage(by, study, "import data")
    root = Path(root).resolve()
    if not root.is_dir():
        raise DomainError(f"{root} is not a folder")
    report = ImportReport(dry_run=dry_run)
    items, skipped, codes = scan(root)
    report.skipped.extend(skipped)
    participants = read_participants(root)
    subjects: dict[str, Subject | None] = {}
    #: subject codes refused by the model's validators, with the reason
    refused: dict[str, str] = {}
    for code in sorted(codes | set(participants)):
        subject = Subject.objects.filter(study=study, code=code).first()
        if subject is None:
            new = Subject(study=study, code=code, **participants.get(code, {}))
            problem = _invalid(new, f"subject {code!r}")
            if problem:
                refused[code] = problem
                report.skipped.append(Skipped(f"sub-{code}", "invalid", problem))
                continue
            report.subjects_created.append(code)
            if not dry_run:
                subject = subject_create(study=study, by=by, code=code, **participants.get(code, {}))
        subjects[code] = subject
    sessions: dict[tuple[str, str], Session | None] = {}
    iterable: Iterable[Item] = progress(items) if progress else items
    for item in iterable:
        if item.subject in refused:
            report.skipped.append(Skipped(item.rel, "invalid", refused[item.subject]))
            continue
        key = (item.subject, item.session)
        if key not in sessions:
            subject = subjects[item.subject]
            session = Session.objects.filter(subject=subject, label=item.session).first() if subject else None
            if session is None:
                new_session = Session(
                    subject=subject,
                    label=item.session,
                    field_strength_t=study.field_strength_t if item.b0_t is None else item.b0_t,
                )
                problem = _invalid(
                    new_session, f"sub-{item.subject} ses-{item.session}", exclude={"subject"}
                )
                if problem:  # e.g. MagneticFieldStrength out of range: this file only
                    report.skipped.append(Skipped(item.rel, "invalid", problem))
                    continue
                report.sessions_created.append(f"sub-{item.subject}/ses-{item.session}")
                if not dry_run:
                    session = session_create(
                        subject=subject,
                        by=by,
                        label=item.session,
                        field_strength_t=new_session.field_strength_t,
                    )
            sessions[key] = session
        session = sessions[key]
        _import_item(root, item, session, report, dry_run=dry_run, by=by)
    return report


def _invalid(instance: Subject | Session, what: str, exclude: Collection[str] = ()) -> str | None:
    """The model validators' complaint about a new subject or session, or None.

    Codes and labels come from folder names and ``participants.tsv``, field strengths from the
    sidecars: the same validators as every other door (control characters, 0.1-20 T, ...).
    """
    try:
        instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        source = {"field_strength_t": "MagneticFieldStrength"}
        return "; ".join(
            f"{what}: {source.get(field, field)}: {' '.join(messages)}"
            for field, messages in exc.message_dict.items()
        )
    return None


def _import_item(
    root: Path, item: Item, session: Session | None, report: ImportReport, *, dry_run: bool, by: Actor
) -> None:
    source = _source_sha256(item)
    if session is not None and session.pk and (existing := _already_imported(session, item, source)):
        report.skipped.append(
            Skipped(item.rel, "already imported", f"same content as series {existing.pk} (v{existing.version})")
        )
        return
    provenance = {
        "source": "bids",
        "bids": {
            "dataset": root.name,
            "files": [str(p.relative_to(root)) for p in item.files],
            "source_sha256": source,
        },
    }
    try:
        with tempfile.TemporaryDirectory(prefix="qsmreview-bids-") as tmp:
            if len(item.files) > 1:
                path, checksums = _stack(item, Path(tmp))
                provenance["bids"]["file_sha256"] = checksums
                provenance["bids"]["stacked_echoes"] = len(item.files)
                original = f"{item.files[0].name} (+{len(item.files) - 1} echoes)"
            else:
                path = item.files[0]
                original = path.name
            if dry_run or session is None:
                nifti.validate_nifti(path, kind=item.kind, echo_times_s=item.echo_times_s)
                series_id = None
            else:
                series = series_create_from_file(
                    session=session,
                    kind=item.kind,
                    path=path,
                    original_filename=original,
                    by=by,
                    label=item.label,
                    echo_times_s=item.echo_times_s,
                    b0_t=item.b0_t,
                    provenance=provenance,
                )
                series_id = series.pk
    except DomainError as exc:
        report.skipped.append(Skipped(item.rel, "invalid", exc.message))
        return
    except (OSError, EOFError, ValueError) as exc:  # unreadable echo data while stacking
        report.skipped.append(Skipped(item.rel, "invalid", f"cannot read the file: {exc}"))
        return
    report.imported.append(Imported(item.rel, item.subject, item.session, item.kind, item.label, series_id))
