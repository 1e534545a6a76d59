"""Which stored series a processing job reads, decided in one place.

Every function returns the *current* version of each series and raises
:class:`~qsmreview.errors.ValidationFailed` with a message naming what is missing, so a job is
refused at submission rather than failing on a worker minutes later.
"""

from __future__ import annotations

from dataclasses import dataclass

from qsmreview.errors import ValidationFailed
from qsmreview.studies.models import Series, SeriesKind, Session, Space

#: Sequences coregistered to the T2* magnitude, in the order the job does them.
COREGISTERED_KINDS = (SeriesKind.T1_WM_NULLED, SeriesKind.T1_CSF_NULLED, SeriesKind.FLAIR)


def current(session: Session, kind: str, *, space: str | None = None) -> list[Series]:
    qs = Series.objects.filter(session=session, kind=kind, is_current=True)
    if space is not None:
        qs = qs.filter(space=space)
    return list(qs.order_by("label"))


def _one(session: Session, kind: str, *, space: str | None = Space.T2STAR) -> Series | None:
    found = current(session, kind, space=space)
    if len(found) > 1:
        labels = ", ".join(s.label or "(no label)" for s in found)
        raise ValidationFailed(
            f"{session}: several current {kind} series ({labels}); mark one current first"
        )
    return found[0] if found else None


def magnitude(session: Session) -> Series:
    mag = _one(session, SeriesKind.T2STAR_MAGNITUDE)
    if mag is None:
        raise ValidationFailed(f"{session}: no T2* magnitude series uploaded")
    return mag


@dataclass(frozen=True)
class QSMInputs:
    magnitude: Series
    phases: tuple[Series, ...]  # one 3-D/4-D series, or one 3-D series per echo
    brain_mask: Series | None


def qsm_inputs(session: Session) -> QSMInputs:
    mag = magnitude(session)
    phases = current(session, SeriesKind.T2STAR_PHASE, space=Space.T2STAR)
    if not phases:
        raise ValidationFailed(f"{session}: no T2* phase series uploaded")
    for p in phases:
        if not p.echo_times_s:
            raise ValidationFailed(f"{session}: phase series {p.pk} has no echo time")
    if len(phases) > 1:
        phases.sort(key=lambda p: p.echo_times_s[0])
        if any(len(p.shape) != 3 for p in phases):
            raise ValidationFailed(f"{session}: several phase series must each hold one echo")
    n_phase_echoes = sum(len(p.echo_times_s) for p in phases)
    n_mag_echoes = mag.shape[3] if len(mag.shape) == 4 else 1
    if n_mag_echoes != n_phase_echoes:  # recon fits the echoes of one magnitude-phase pair
        raise ValidationFailed(
            f"{session}: magnitude has {n_mag_echoes} echo(es) but phase has {n_phase_echoes}"
        )
    return QSMInputs(mag, tuple(phases), _one(session, SeriesKind.BRAIN_MASK))


def coregistration_sources(session: Session) -> list[Series]:
    """The sequence to register for each coregistered kind: an upload on its own grid first."""
    sources: list[Series] = []
    for kind in COREGISTERED_KINDS:
        native = _one(session, kind, space=Space.NATIVE)
        on_grid = _one(session, kind, space=Space.T2STAR)
        source = native or (on_grid if on_grid is not None and on_grid.derived_by_id is None else None)
        if source is not None:
            sources.append(source)
    if not sources:
        raise ValidationFailed(f"{session}: no T1 or FLAIR series to coregister")
    return sources


def tissue_source(session: Session, source: str) -> Series:
    """The series tissue classification starts from: a T1 on the T2* grid, or a label map."""
    if source == "labels":
        candidates = [
            s
            for s in current(session, SeriesKind.OTHER, space=Space.T2STAR)
            if s.label.lower() in ("aseg", "aparc+aseg", "synthseg", "fast", "labels")
        ]
        if not candidates:
            raise ValidationFailed(
                f"{session}: no label map uploaded (kind 'other' with label aseg, aparc+aseg, "
                "synthseg or fast, on the T2* grid)"
            )
        return candidates[0]
    kind = {"t1_wmn": SeriesKind.T1_WM_NULLED, "t1_csfn": SeriesKind.T1_CSF_NULLED}.get(source)
    if kind is None:
        raise ValidationFailed(f"tissue source must be t1_wmn, t1_csfn or labels, got {source!r}")
    t1 = _one(session, kind, space=Space.T2STAR)
    if t1 is None:
        raise ValidationFailed(f"{session}: no {kind} on the T2* grid; run coregistration first")
    return t1


def brain_mask_or_none(session: Session) -> Series | None:
    return _one(session, SeriesKind.BRAIN_MASK)
