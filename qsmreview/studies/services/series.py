"""Storing series: uploads, outputs of processing jobs, and which version of a slot is current.

A series is written once. The file goes to Django's storage first (never assumed to be local);
the row is created afterwards in one transaction that also numbers the version and demotes the
slot's previous current version. If anything fails, the stored file is deleted and the error is
raised as :class:`~qsmreview.errors.ValidationFailed` (or :class:`~qsmreview.errors.Conflict`),
so a failed upload leaves no file and no row, and earlier series are untouched.

A *slot* is ``(session, kind, label, space)``; versions in a slot count 1, 2, 3, ...
"""

from __future__ import annotations

import getpass
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import Max

from qsmreview.access import Actor, SystemActor, require_manage, user_or_none
from qsmreview.errors import Conflict, ValidationFailed
from qsmreview.studies import nifti
from qsmreview.studies.models import (
    BLINDED_BY_DEFAULT,
    T2STAR_GRID_KINDS,
    Series,
    SeriesKind,
    Session,
    Space,
)
from qsmreview.studies.storage import nifti_suffix, sha256_of_path, storage_delete_quietly
from qsmreview.studies.validators import validate_field_strength_t, validate_single_line
from recon.geometry import b0_direction_from_affine, voxel_size_from_affine

#: Kinds whose grid defines the T2* grid, in order of preference as a reference.
_REFERENCE_KINDS = (SeriesKind.T2STAR_MAGNITUDE, SeriesKind.T2STAR_PHASE)
_MAX_LABEL = Series._meta.get_field("label").max_length
#: Kinds a consensus run reads: a new current version re-runs the session's consensus.
_CONSENSUS_INPUT_KINDS = frozenset({SeriesKind.TISSUE, SeriesKind.QSM, SeriesKind.BRAIN_MASK})


# --- helpers ---------------------------------------------------------------------------------


def _kind(kind: str) -> SeriesKind:
    try:
        return SeriesKind(kind)
    except ValueError as exc:
        choices = ", ".join(SeriesKind.values)
        raise ValidationFailed(f"unknown series kind {kind!r}; use one of {choices}", field="kind") from exc


def _label(label: str | None) -> str:
    label = (label or "").strip()
    if len(label) > _MAX_LABEL:
        raise ValidationFailed(f"label is longer than {_MAX_LABEL} characters", field="label")
    _check(validate_single_line, label, "label")
    return label


def _check(validator: Any, value: Any, field: str, what: str | None = None) -> None:
    """Run a model-field validator; raise its message as ValidationFailed on ``field``."""
    try:
        validator(value)
    except ValidationError as exc:
        raise ValidationFailed(f"{what or field}: {' '.join(exc.messages)}", field=field) from exc


def _b0(b0_t: float | None, session: Session) -> float:
    value = session.field_strength_t if b0_t is None else b0_t
    _check(validate_field_strength_t, value, "b0_t", "B0")
    return float(value)


def _echo_times(echo_times_s: Sequence[float] | None) -> list[float]:
    return [float(t) for t in (echo_times_s or [])]


def _grid_reference(session: Session, kind: str, label: str) -> Series | None:
    """The current series that defines the session's T2* grid, other than the slot being filled.

    The T2* magnitude when there is one, else the phase (so a magnitude that arrives after the
    phase is checked against it).
    """
    for ref_kind in _REFERENCE_KINDS:
        qs = Series.objects.filter(
            session=session, kind=ref_kind, space=Space.T2STAR, is_current=True
        ).order_by("label", "-version")
        if ref_kind == kind:
            qs = qs.exclude(label=label)
        ref = qs.first()
        if ref is not None:
            return ref
    return None


def _describe(series: Series) -> str:
    tag = f" '{series.label}'" if series.label else ""
    return f"the current {series.get_kind_display()}{tag} (series {series.pk}, v{series.version})"


def _resolve_space(
    *, session: Session, kind: str, label: str, shape: Sequence[int], affine: np.ndarray, space: str | None
) -> str:
    """Apply the grid rule; return the space the series is stored in.

    Kinds in ``T2STAR_GRID_KINDS`` must match the reference grid (when one exists). Other kinds
    (T1, FLAIR, other) on the reference grid are ``t2star``; on another grid, or with no reference
    yet, ``native`` (to be coregistered).
    """
    if space is not None and space not in Space.values:
        raise ValidationFailed(f"unknown space {space!r}; use t2star or native", field="space")
    ref = _grid_reference(session, kind, label)
    what = SeriesKind(kind).label
    if kind in T2STAR_GRID_KINDS:
        if space == Space.NATIVE:
            raise ValidationFailed(f"a {what} must lie on the T2* grid (space t2star)", field="space")
        if ref is not None:
            nifti.check_same_grid(shape, affine, ref.shape, np.asarray(ref.affine), what=what, reference=_describe(ref))
        return Space.T2STAR
    on_grid = ref is not None and nifti.same_grid(shape, affine, ref.shape, np.asarray(ref.affine))
    if space == Space.T2STAR:
        if ref is None:
            raise ValidationFailed(
                f"cannot store this {what} on the T2* grid: the session has no T2* magnitude yet",
                field="space",
            )
        nifti.check_same_grid(shape, affine, ref.shape, np.asarray(ref.affine), what=what, reference=_describe(ref))
        return Space.T2STAR
    if space == Space.NATIVE:
        return Space.NATIVE
    return Space.T2STAR if on_grid else Space.NATIVE


def _storage_name(session: Session, kind: str, label: str, suffix: str) -> str:
    """A file name unique without relying on the storage's renaming (which breaks '.nii.gz')."""
    parts = [f"sub-{session.subject.code}", f"ses-{session.label}", kind]
    if label:
        parts.append(label)
    parts.append(uuid.uuid4().hex[:12])
    stem = "_".join(parts)
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem)
    return safe + suffix


def _write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    image = nib.Nifti1Image(data, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, str(path))


def _store_and_create(
    *,
    session: Session,
    kind: str,
    label: str,
    space: str | None,
    local_path: Path,
    shape: Sequence[int],
    affine: np.ndarray,
    dtype: str,
    row: dict[str, Any],
    make_current: bool,
    derived_from: Sequence[Series] = (),
) -> Series:
    """Store the local file, then create the row in one transaction; undo the file on failure."""
    storage = Series._meta.get_field("file").storage
    sha256, size = sha256_of_path(local_path)
    instance = Series(session=session, kind=kind, label=label)
    stored_name: str | None = None
    try:
        name = _storage_name(session, kind, label, nifti_suffix(local_path.name))
        with open(local_path, "rb") as fh:
            instance.file.save(name, File(fh), save=False)
        stored_name = instance.file.name
        with transaction.atomic():
            # Lock the session row: two uploads into one slot are numbered one after the other.
            Session.objects.select_for_update().filter(pk=session.pk).first()
            resolved = _resolve_space(session=session, kind=kind, label=label, shape=shape, affine=affine, space=space)
            slot = Series.objects.filter(session=session, kind=kind, label=label, space=resolved)
            version = (slot.aggregate(v=Max("version"))["v"] or 0) + 1
            if make_current:
                slot.filter(is_current=True).update(is_current=False)
            vs = voxel_size_from_affine(affine)
            instance.space = resolved
            instance.size_bytes = size
            instance.sha256 = sha256
            instance.shape = [int(n) for n in shape]
            instance.voxel_size_mm = [round(float(v), 6) for v in vs]
            instance.affine = np.asarray(affine, dtype=np.float64).tolist()
            instance.dtype = dtype
            instance.b0_direction = list(b0_direction_from_affine(affine))
            instance.version = version
            instance.is_current = make_current
            for key, value in row.items():
                setattr(instance, key, value)
            instance.save()
            if derived_from:
                instance.derived_from.set(derived_from)
            if make_current and kind in _CONSENSUS_INPUT_KINDS:
                # A session with a consensus gets a new one from the new input (queued on commit).
                from qsmreview.consensus.services import consensus_after_input_change

                consensus_after_input_change(session=session, what=SeriesKind(kind).label)
        return instance
    except IntegrityError as exc:
        storage_delete_quietly(storage, stored_name)
        raise Conflict("another version of this series was stored at the same time; retry") from exc
    except BaseException:
        storage_delete_quietly(storage, stored_name)
        raise


def _who(actor: Actor) -> str:
    if isinstance(actor, SystemActor):
        try:
            return f"{actor.get_username()} as {getpass.getuser()}"
        except Exception:
            return actor.get_username()
    return actor.get_username()


# --- services --------------------------------------------------------------------------------


def series_create_from_file(
    *,
    session: Session,
    kind: str,
    path: Path,
    original_filename: str,
    by: Actor,
    label: str = "",
    space: str | None = None,
    echo_times_s: list[float] | None = None,
    b0_t: float | None = None,
    blinded: bool | None = None,
    provenance: dict | None = None,
) -> Series:
    """Validate a NIfTI file and store it as the new current version of its slot.

    Parameters
    ----------
    session : the session the volume belongs to.
    kind : a :class:`~qsmreview.studies.models.SeriesKind` value.
    path : local path of the file (e.g. an upload's ``temporary_file_path()``); its name does not
        matter, the format is recognised from its bytes. The file is not modified or moved.
    original_filename : the name the user gave the file (recorded in provenance).
    by : the acting user (an admin of the session's study) or a system actor; recorded on the row.
    label : distinguishes volumes of one kind in a session (e.g. 'echo-2').
    space : 't2star', 'native' or None (decided by the grid rule: T1/FLAIR on the T2* grid are
        't2star', on their own grid 'native'; T2*-grid kinds must match the T2* magnitude).
    echo_times_s : echo times in seconds, one per echo (required for phase).
    b0_t : field strength in tesla; default the session's.
    blinded : hidden from raters; default by kind (QSM and lesion masks).
    provenance : extra provenance merged into the recorded one (e.g. the BIDS source).

    Returns
    -------
    Series
        The stored series, current in its slot. A scaled integer phase is stored converted to
        float32 radians (.nii.gz), with the original's checksum in ``provenance``.

    Raises
    ------
    Forbidden
        ``by`` is not an admin of the study; nothing is read or stored.
    ValidationFailed
        The file or a parameter is unusable; the message says what is wrong. Nothing is stored.
    Conflict
        A concurrent upload into the same slot won the race; nothing is stored.
    """
    require_manage(by, session.study, "upload series")
    kind = _kind(kind)
    label = _label(label)
    _check(validate_single_line, original_filename, "file", "file name")
    b0 = _b0(b0_t, session)
    path = Path(path)
    tes = _echo_times(echo_times_s)

    def grid_rule(shape: tuple[int, ...], affine: np.ndarray) -> None:
        # From the header, before any value is read; checked again under the lock when storing.
        _resolve_space(session=session, kind=kind, label=label, shape=shape, affine=affine, space=space)

    info = nifti.validate_nifti(path, kind=kind, echo_times_s=tes, check_grid=grid_rule)
    original_sha256, original_size = sha256_of_path(path)
    record: dict[str, Any] = {
        "source": "upload",
        "uploaded_by": _who(by),
        "original_filename": original_filename,
        "original_sha256": original_sha256,
        "original_size_bytes": original_size,
        "format": info.format,
        "value_range": [info.value_range[0], info.value_range[1]],
        "conversions": [],
    }
    with tempfile.TemporaryDirectory(prefix="qsmreview-upload-") as tmp:
        local = Path(tmp) / ("original" + (".nii.gz" if info.compressed else ".nii"))
        dtype = info.dtype
        if info.needs_phase_conversion:
            radians, affine = nifti.load_phase_radians(path, info.phase_conversion or "")
            local = Path(tmp) / "phase-radians.nii.gz"
            _write_nifti(local, radians, affine)
            dtype = "float32"
            record["conversions"].append(f"{info.phase_conversion} (stored as float32)")
        else:
            # Link rather than copy where possible: the stored name decides the suffix.
            try:
                local.hardlink_to(path)
            except OSError:
                local.symlink_to(path.resolve())
        record.update(provenance or {})
        return _store_and_create(
            session=session,
            kind=kind,
            label=label,
            space=space,
            local_path=local,
            shape=info.shape,
            affine=info.affine,
            dtype=dtype,
            make_current=True,
            row={
                "original_filename": original_filename[:255],
                "echo_times_s": tes,
                "b0_t": b0,
                "blinded": (kind in BLINDED_BY_DEFAULT) if blinded is None else bool(blinded),
                "uploaded_by": user_or_none(by),
                "provenance": record,
            },
        )


def series_create_derived(
    *,
    session: Session,
    kind: str,
    data: np.ndarray,
    affine: np.ndarray,
    by: Actor,
    job: Any = None,
    derived_from: Sequence[Series] = (),
    label: str = "",
    space: str = Space.T2STAR,
    echo_times_s: Sequence[float] | None = None,
    b0_t: float | None = None,
    provenance: dict,
    blinded: bool | None = None,
    make_current: bool = True,
) -> Series:
    """Store an array computed by a job (QSM, mask, tissue labels, a coregistered volume).

    The array is written to a temporary ``.nii.gz`` (NIfTI-1, qform/sform code 1), checked like an
    upload (finite values, masks binary, tissue labels 0-3, grid rule), streamed into storage and
    recorded in one transaction; the row becomes visible only when that transaction (or the
    caller's enclosing one) commits.

    Parameters
    ----------
    data : (X, Y, Z) or, for magnitude/phase, (X, Y, Z, E) array; written in its own dtype.
    affine : (4, 4) voxel-to-world (mm).
    by : who stores it: the system actor of the job that computed it, or a study admin.
    job : the :class:`~qsmreview.jobs.models.Job` that computed it (``derived_by``).
    derived_from : the input series.
    provenance : parameters, library versions, input checksums, ... (stored as given).
    make_current : mark the new version current (demoting the previous one).

    Raises
    ------
    Forbidden
        ``by`` may not store series in this study.
    ValidationFailed
        The array is not a valid series of this kind (e.g. NaN, mask not binary, wrong grid).
    """
    require_manage(by, session.study, "store series")
    kind = _kind(kind)
    label = _label(label)
    arr = np.asanyarray(data)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    aff = np.asarray(affine, dtype=np.float64)
    tes = _echo_times(echo_times_s)
    with tempfile.TemporaryDirectory(prefix="qsmreview-derived-") as tmp:
        local = Path(tmp) / "derived.nii.gz"
        _write_nifti(local, arr, aff)
        info = nifti.validate_nifti(local, kind=kind, echo_times_s=tes)
        return _store_and_create(
            session=session,
            kind=kind,
            label=label,
            space=space,
            local_path=local,
            shape=info.shape,
            affine=info.affine,
            dtype=info.dtype,
            make_current=make_current,
            derived_from=derived_from,
            row={
                "original_filename": "",
                "echo_times_s": tes,
                "b0_t": _b0(b0_t, session),
                "blinded": (kind in BLINDED_BY_DEFAULT) if blinded is None else bool(blinded),
                "derived_by": job,
                "provenance": dict(provenance),
            },
        )


def series_set_current(*, series: Series, by: Actor) -> Series:
    """Make ``series`` the current version of its slot, demoting the previous one atomically."""
    require_manage(by, series.study, "change series")
    with transaction.atomic():
        Session.objects.select_for_update().filter(pk=series.session_id).first()
        Series.objects.filter(
            session=series.session_id,
            kind=series.kind,
            label=series.label,
            space=series.space,
            is_current=True,
        ).exclude(pk=series.pk).update(is_current=False)
        # The caller's instance may be stale: write the flag whatever it says.
        series.is_current = True
        series.save(update_fields=["is_current"])
        if series.kind in _CONSENSUS_INPUT_KINDS:
            from qsmreview.consensus.services import consensus_after_input_change

            consensus_after_input_change(session=series.session, what=SeriesKind(series.kind).label)
    return series
