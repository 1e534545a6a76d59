"""The demo study: users, three synthetic MS subjects, every kind of series and raters' work.

Everything is synthetic: the scans come from :func:`recon.phantom.make_phantom` (a numerical head
with known susceptibility and MS lesions), so the demo holds no patient data and its QSM is the
ground truth. Every session is assigned to rater1..3, and MS001 and MS002 carry each rater's
submitted annotation, drawn from the phantom's lesion truth with realistic disagreement
(:mod:`qsmreview.annotations.demo`), with their consensus, reference ROIs and measurements on
the demo's QSM (:mod:`qsmreview.consensus.demo`); MS003 is left to rate. Loading is idempotent: users, the
study, subjects, sessions, series, assignments and annotations that exist are kept (passwords too,
unless asked to reset them), missing ones are added.

Used by ``manage.py load_demo`` and ``scripts/start``; the logins are listed in README.md.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from scipy import ndimage as ndi

from qsmreview.studies.models import (
    Membership,
    Phenotype,
    Role,
    Series,
    SeriesKind,
    Session,
    Sex,
    Space,
    Study,
    Subject,
)

DEMO_STUDY_NAME = "Demo: MS 7T QSM"
DEMO_STUDY_DESCRIPTION = (
    "Synthetic 7T multiple sclerosis QSM study (numerical phantoms, no patient data). The QSM "
    "series is the phantom's true susceptibility, blinded from raters."
)

#: The demo grid: small enough to load in seconds, large enough to show anatomy and lesions.
DEMO_SHAPE = (128, 128, 48)
DEMO_VOXEL_SIZE_MM = (1.5, 1.5, 2.0)
DEMO_B0_T = 7.0


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: str
    first_name: str
    last_name: str
    superuser: bool = False


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("admin", "admin-demo", Role.ADMIN, "Ada", "Admin", superuser=True),
    DemoUser("rater1", "rater1-demo", Role.RATER, "Rosa", "Rater"),
    DemoUser("rater2", "rater2-demo", Role.RATER, "Rahul", "Rater"),
    DemoUser("rater3", "rater3-demo", Role.RATER, "Rita", "Rater"),
    DemoUser("pi", "pi-demo", Role.PI, "Paul", "Investigator"),
)


@dataclass(frozen=True)
class DemoSubject:
    code: str
    sex: str
    age_years: float
    disease_duration_years: float
    phenotype: str
    treatment: str
    min_wm_lesion_age_months: float
    seed: int
    scan_date: date
    echo_times_s: tuple[float, ...]
    #: T1 and FLAIR on a grid of their own (rotated, other voxel size): "needs coregistration".
    structural_on_own_grid: bool = False
    notes: str = ""


DEMO_SUBJECTS: tuple[DemoSubject, ...] = (
    DemoSubject(
        code="MS001",
        sex=Sex.FEMALE,
        age_years=34.0,
        disease_duration_years=6.5,
        phenotype=Phenotype.RRMS,
        treatment="ocrelizumab",
        min_wm_lesion_age_months=14.0,
        seed=101,
        scan_date=date(2024, 3, 12),
        echo_times_s=(0.006, 0.012, 0.018),
    ),
    DemoSubject(
        code="MS002",
        sex=Sex.MALE,
        age_years=52.0,
        disease_duration_years=18.0,
        phenotype=Phenotype.SPMS,
        treatment="siponimod",
        min_wm_lesion_age_months=60.0,
        seed=102,
        scan_date=date(2024, 4, 2),
        echo_times_s=(0.006, 0.012, 0.018),
        structural_on_own_grid=True,
        notes="T1 and FLAIR acquired on their own oblique grid: coregister before rating.",
    ),
    DemoSubject(
        code="MS003",
        sex=Sex.FEMALE,
        age_years=47.0,
        disease_duration_years=9.0,
        phenotype=Phenotype.PPMS,
        treatment="none",
        min_wm_lesion_age_months=36.0,
        seed=103,
        scan_date=date(2024, 5, 21),
        echo_times_s=(0.0177,),
    ),
)

SCANNER = "Siemens MAGNETOM Terra 7T (synthetic)"


@dataclass
class DemoResult:
    """What :func:`demo_load` did."""

    study: Study
    users_created: list[str] = field(default_factory=list)
    subjects_created: list[str] = field(default_factory=list)
    series_created: int = 0
    series_total: int = 0
    assignments_created: int = 0
    #: "MS001/rater2" for each rater annotation saved and submitted by this run.
    annotations_submitted: list[str] = field(default_factory=list)
    #: Subject codes whose consensus this run computed.
    consensus_computed: list[str] = field(default_factory=list)

    @property
    def created_anything(self) -> bool:
        return bool(
            self.users_created
            or self.subjects_created
            or self.series_created
            or self.assignments_created
            or self.annotations_submitted
            or self.consensus_computed
        )


# --- users and study -------------------------------------------------------------------------


def demo_users_ensure(*, reset_passwords: bool = False) -> tuple[dict[str, AbstractBaseUser], list[str]]:
    """Create the demo users that are missing; returns them by username and the created names.

    ``admin`` is a Django superuser (and staff, so it may create studies). Existing users keep
    their password unless ``reset_passwords``.
    """
    user_model = get_user_model()
    users: dict[str, AbstractBaseUser] = {}
    created: list[str] = []
    for spec in DEMO_USERS:
        user, was_created = user_model.objects.get_or_create(
            username=spec.username,
            defaults={
                "first_name": spec.first_name,
                "last_name": spec.last_name,
                "email": f"{spec.username}@demo.invalid",
                "is_staff": spec.superuser,
                "is_superuser": spec.superuser,
            },
        )
        if was_created or reset_passwords:
            user.set_password(spec.password)
            user.save(update_fields=["password"])
        if was_created:
            created.append(spec.username)
        users[spec.username] = user
    return users, created


def demo_study_ensure(*, users: dict[str, AbstractBaseUser]) -> Study:
    """The demo study with every demo user in their role (created or completed)."""
    from qsmreview.studies.services.studies import membership_set, study_create

    admin = users["admin"]
    study = Study.objects.filter(name=DEMO_STUDY_NAME).first()
    if study is None:
        study = study_create(
            by=admin,
            name=DEMO_STUDY_NAME,
            description=DEMO_STUDY_DESCRIPTION,
            field_strength_t=DEMO_B0_T,
        )
    for spec in DEMO_USERS:
        user = users[spec.username]
        if not Membership.objects.filter(study=study, user=user, role=spec.role).exists():
            membership_set(study=study, by=admin, user=user, role=spec.role)
    return study


# --- subjects, sessions, series --------------------------------------------------------------


def demo_subject_ensure(*, study: Study, by: AbstractBaseUser, spec: DemoSubject) -> tuple[Subject, bool]:
    """The subject ``spec.code`` of the demo study (created with its clinical data if missing)."""
    from qsmreview.studies.services.studies import subject_create

    subject = Subject.objects.filter(study=study, code=spec.code).first()
    if subject is not None:
        return subject, False
    subject = subject_create(
        study=study,
        by=by,
        code=spec.code,
        sex=spec.sex,
        age_years=spec.age_years,
        disease_duration_years=spec.disease_duration_years,
        phenotype=spec.phenotype,
        treatment=spec.treatment,
        min_wm_lesion_age_months=spec.min_wm_lesion_age_months,
        notes=spec.notes,
        extra={"synthetic": True, "phantom_seed": spec.seed},
    )
    return subject, True


def demo_session_ensure(*, subject: Subject, by: AbstractBaseUser, spec: DemoSubject) -> Session:
    from qsmreview.studies.services.studies import session_create

    session = Session.objects.filter(subject=subject, label="01").first()
    if session is None:
        session = session_create(
            subject=subject,
            by=by,
            label="01",
            scan_date=spec.scan_date,
            scanner=SCANNER,
            field_strength_t=DEMO_B0_T,
        )
    return session


@dataclass(frozen=True)
class _Volume:
    kind: str
    label: str
    data: np.ndarray
    affine: np.ndarray
    space: str = Space.T2STAR
    echo_times_s: tuple[float, ...] = ()
    b0_t: float | None = None
    blinded: bool | None = None
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)


def _own_grid(volume: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``volume`` onto a rotated, finer isotropic grid, as a separately planned scan is.

    The voxel is 0.8 times the smallest voxel of ``affine`` (1.2 mm for the demo's 1.5 mm), the
    grid tilted 12 degrees about the left-right axis and centred on the same point.
    """
    angle = np.deg2rad(12.0)
    rot = np.array(
        [
            [1.0, 0.0, 0.0],
            [0.0, np.cos(angle), -np.sin(angle)],
            [0.0, np.sin(angle), np.cos(angle)],
        ]
    )
    extent = np.abs(affine[:3, :3]) @ np.asarray(volume.shape[:3], dtype=float)
    voxel = 0.8 * float(np.linalg.norm(affine[:3, :3], axis=0).min())
    shape = tuple(int(np.ceil(e / voxel)) for e in extent)
    new = np.eye(4)
    new[:3, :3] = rot @ affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0) * voxel
    centre_world = affine @ np.append((np.asarray(volume.shape[:3]) - 1) / 2, 1.0)
    new[:3, 3] = centre_world[:3] - new[:3, :3] @ ((np.asarray(shape) - 1) / 2)
    to_old = np.linalg.inv(affine) @ new
    out = ndi.affine_transform(
        volume, to_old[:3, :3], offset=to_old[:3, 3], output_shape=shape, order=1, mode="constant"
    )
    return out.astype(np.float32), new


def demo_volumes(spec: DemoSubject, *, shape: tuple[int, int, int], voxel_size: tuple[float, float, float]) -> list[_Volume]:
    """Every series of one demo session, computed from the subject's phantom."""
    from recon.phantom import make_phantom

    ph = make_phantom(shape, voxel_size, b0=DEMO_B0_T, te=spec.echo_times_s, seed=spec.seed)
    affine = ph.affine
    te = tuple(float(t) for t in ph.te)
    brain = ph.brain_mask.astype(bool)
    vols = [
        _Volume(SeriesKind.T2STAR_MAGNITUDE, "", ph.magnitude, affine, echo_times_s=te, b0_t=ph.b0,
                description=f"{len(te)}-echo GRE magnitude"),
        _Volume(SeriesKind.T2STAR_PHASE, "", ph.phase, affine, echo_times_s=te, b0_t=ph.b0,
                description=f"{len(te)}-echo GRE phase, radians"),
    ]
    for kind, image in (
        (SeriesKind.T1_WM_NULLED, ph.t1_wmn),
        (SeriesKind.T1_CSF_NULLED, ph.t1_csfn),
        (SeriesKind.FLAIR, ph.flair),
    ):
        if spec.structural_on_own_grid:
            data, own_affine = _own_grid(image, affine)
            vols.append(_Volume(kind, "", data, own_affine, space=Space.NATIVE,
                                description="own oblique grid (tilted 12 degrees, finer voxels)"))
        else:
            vols.append(_Volume(kind, "", image, affine))
    # QSM is the true susceptibility inside the brain (outside, QSM has no meaning).
    vols += [
        _Volume(SeriesKind.QSM, "truth", np.where(brain, ph.chi_ppm, 0).astype(np.float32), affine,
                b0_t=ph.b0, blinded=True,
                description="synthetic truth: the phantom's susceptibility in ppm"),
        _Volume(SeriesKind.BRAIN_MASK, "", brain.astype(np.uint8), affine),
        _Volume(SeriesKind.TISSUE, "", ph.tissue.astype(np.uint8), affine,
                description="FSL FAST codes: 0 background, 1 CSF, 2 GM, 3 WM"),
        _Volume(SeriesKind.LESION_MASK, "truth", (ph.lesions > 0).astype(np.uint8), affine, blinded=True,
                description="synthetic truth: voxels of every lesion (binary)"),
        _Volume(SeriesKind.OTHER, "lesion-ids", ph.lesions.astype(np.int16), affine, blinded=True,
                description="synthetic truth: lesion ids 1..N (types in provenance)",
                provenance={"lesion_types": {str(k): v for k, v in ph.lesion_types.items()}}),
        _Volume(SeriesKind.OTHER, "field-ppm", ph.field_ppm.astype(np.float32), affine, b0_t=ph.b0,
                blinded=True,
                description="synthetic truth: total field (background + local) in ppm"),
    ]
    return vols


def _provenance(spec: DemoSubject, vol: _Volume, shape: tuple[int, ...], voxel_size: tuple[float, ...],
                extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": "synthetic truth" if "truth" in vol.description else "synthetic",
        "generator": "recon.phantom.make_phantom",
        "parameters": {
            "shape": list(shape),
            "voxel_size_mm": list(voxel_size),
            "b0_t": DEMO_B0_T,
            "te_s": list(spec.echo_times_s),
            "seed": spec.seed,
        },
        "description": vol.description,
        "loaded_by": "qsmreview.studies.demo",
        **extra,
    }


def _store(*, session: Session, by: AbstractBaseUser, vol: _Volume, provenance: dict[str, Any],
           workdir: Path) -> Series:
    """Write ``vol`` as NIfTI and store it through the series service, as an upload is."""
    from qsmreview.studies.services.series import series_create_from_file

    name = f"sub-{session.subject.code}_ses-{session.label}_{vol.kind}{('_' + vol.label) if vol.label else ''}.nii.gz"
    path = workdir / name
    img = nib.Nifti1Image(np.asarray(vol.data), vol.affine)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, path)
    kwargs: dict[str, Any] = {
        "session": session,
        "path": path,
        "original_filename": name,
        "by": by,
        "kind": vol.kind,
        "label": vol.label,
    }
    if vol.echo_times_s:
        kwargs["echo_times_s"] = list(vol.echo_times_s)
    if vol.b0_t is not None:
        kwargs["b0_t"] = vol.b0_t
    if vol.blinded is not None:
        kwargs["blinded"] = vol.blinded
    if vol.space == Space.NATIVE:
        kwargs["space"] = Space.NATIVE
    return series_create_from_file(**kwargs, provenance=provenance)


def demo_session_series_ensure(
    *,
    session: Session,
    by: AbstractBaseUser,
    spec: DemoSubject,
    shape: tuple[int, int, int] = DEMO_SHAPE,
    voxel_size: tuple[float, float, float] = DEMO_VOXEL_SIZE_MM,
) -> tuple[int, int]:
    """Add every demo series the session lacks. Returns (created, total demo series)."""
    def present(vol: _Volume) -> bool:
        return Series.objects.filter(session=session, kind=vol.kind, label=vol.label, is_current=True).exists()

    # Computing the phantom is the slow part: skip it when nothing is missing.
    wanted = _expected_slots(spec)
    if all(Series.objects.filter(session=session, kind=k, label=lab, is_current=True).exists()
           for k, lab in wanted):
        return 0, len(wanted)
    vols = demo_volumes(spec, shape=shape, voxel_size=voxel_size)
    created = 0
    with tempfile.TemporaryDirectory(prefix="qsmreview-demo-") as tmp:
        for vol in vols:
            if present(vol):
                continue
            _store(session=session, by=by, vol=vol,
                   provenance=_provenance(spec, vol, shape, voxel_size, vol.provenance), workdir=Path(tmp))
            created += 1
    return created, len(vols)


def _expected_slots(spec: DemoSubject) -> list[tuple[str, str]]:
    return [
        (SeriesKind.T2STAR_MAGNITUDE, ""),
        (SeriesKind.T2STAR_PHASE, ""),
        (SeriesKind.T1_WM_NULLED, ""),
        (SeriesKind.T1_CSF_NULLED, ""),
        (SeriesKind.FLAIR, ""),
        (SeriesKind.QSM, "truth"),
        (SeriesKind.BRAIN_MASK, ""),
        (SeriesKind.TISSUE, ""),
        (SeriesKind.LESION_MASK, "truth"),
        (SeriesKind.OTHER, "lesion-ids"),
        (SeriesKind.OTHER, "field-ppm"),
    ]


# --- everything ------------------------------------------------------------------------------


def demo_load(
    *,
    reset_passwords: bool = False,
    shape: tuple[int, int, int] = DEMO_SHAPE,
    voxel_size: tuple[float, float, float] = DEMO_VOXEL_SIZE_MM,
    subjects: tuple[DemoSubject, ...] = DEMO_SUBJECTS,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Load (or complete) the demo study. Safe to run again: nothing is duplicated.

    Parameters
    ----------
    reset_passwords
        Set the demo users' passwords back to the printed ones.
    shape, voxel_size
        Grid of the synthetic scans (voxels, mm); smaller is faster (tests use a small one).
    subjects
        Which demo subjects to load.
    progress
        Called with a line of text as each subject is done.
    """
    users, users_created = demo_users_ensure(reset_passwords=reset_passwords)
    study = demo_study_ensure(users=users)
    result = DemoResult(study=study, users_created=users_created)
    admin = users["admin"]
    for spec in subjects:
        subject, subject_created = demo_subject_ensure(study=study, by=admin, spec=spec)
        if subject_created:
            result.subjects_created.append(spec.code)
        session = demo_session_ensure(subject=subject, by=admin, spec=spec)
        created, total = demo_session_series_ensure(
            session=session, by=admin, spec=spec, shape=shape, voxel_size=voxel_size
        )
        result.series_created += created
        result.series_total += total
        if progress is not None:
            progress(f"  {spec.code} ({spec.phenotype}): {created} series added, {total - created} kept")
    # Raters' work last: it is drawn on the series loaded above.
    from qsmreview.annotations.demo import DEMO_RATED_SUBJECTS, demo_annotations_ensure

    codes = {spec.code for spec in subjects}
    annotations = demo_annotations_ensure(
        study=study,
        users=users,
        seeds={spec.code: spec.seed for spec in subjects},
        rated_subjects=[code for code in DEMO_RATED_SUBJECTS if code in codes],
        progress=progress,
    )
    result.assignments_created = annotations.assignments_created
    result.annotations_submitted = annotations.submitted
    # The rated sessions' consensus, at once: a new user sees the lesion table without a worker.
    from qsmreview.consensus.demo import demo_consensus_ensure

    result.consensus_computed = demo_consensus_ensure(study=study, progress=progress).computed
    # The statistics: the phantom study's own, and the second demo study (a synthetic cohort like
    # the reference study's), computed at once so a PI sees Table 3 and Fig 2 without a worker.
    from qsmreview.reports.demo import demo_reports_ensure

    demo_reports_ensure(users=users, phantom_study=study, progress=progress)
    return result


def demo_logins_text() -> str:
    """The demo logins, as printed by ``load_demo`` and ``scripts/start``."""
    lines = ["Demo logins (study: " + DEMO_STUDY_NAME + "):"]
    for spec in DEMO_USERS:
        role = {Role.ADMIN: "study admin + Django superuser" if spec.superuser else "study admin",
                Role.RATER: "rater", Role.PI: "principal investigator"}[spec.role]
        lines.append(f"  {spec.username:<8} password {spec.password:<12} {role}")
    return "\n".join(lines)
