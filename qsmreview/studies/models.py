"""Studies, who works on them in which role, and the scans they hold.

Series are immutable once stored: a recomputed volume is a new Series, and one version per
(session, kind, label, space) is marked current. Every derived Series records its provenance.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from qsmreview.studies.validators import (
    validate_field_strength_t,
    validate_lesion_diameter_mm,
    validate_months,
    validate_multi_line,
    validate_single_line,
    validate_years,
)


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    RATER = "rater", "Rater"
    PI = "pi", "Principal investigator"


class Study(models.Model):
    name = models.CharField(max_length=200, unique=True, validators=[validate_single_line])
    description = models.TextField(blank=True, validators=[validate_multi_line])
    field_strength_t = models.FloatField(
        "field strength (T)", default=7.0, validators=[validate_field_strength_t]
    )
    #: Processing defaults for this study (MEDI parameters, erosion, ...); see processing.protocol.
    protocol = models.JSONField(default=dict, blank=True)
    #: A rater's lesion smaller than a sphere of this diameter is flagged (the reference study: 2 mm).
    min_lesion_diameter_mm = models.FloatField(
        "minimum lesion diameter (mm)", default=2.0, validators=[validate_lesion_diameter_mm]
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in one study. A user may hold different roles in different studies."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "user"], name="one_role_per_user_and_study")
        ]
        ordering = ["study", "role", "user"]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.study}"


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"
    OTHER = "O", "Other"
    UNKNOWN = "U", "Unknown"


class Phenotype(models.TextChoices):
    RRMS = "RRMS", "Relapsing-remitting MS"
    SPMS = "SPMS", "Secondary progressive MS"
    PPMS = "PPMS", "Primary progressive MS"
    CIS = "CIS", "Clinically isolated syndrome"
    RIS = "RIS", "Radiologically isolated syndrome"
    HC = "HC", "Healthy control"
    OTHER = "other", "Other"


class Subject(models.Model):
    """A pseudonymous participant. ``code`` is unique within its study; no identifying data."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="subjects")
    code = models.CharField(max_length=64, validators=[validate_single_line])
    sex = models.CharField(max_length=1, choices=Sex.choices, default=Sex.UNKNOWN)
    age_years = models.FloatField(null=True, blank=True, validators=[validate_years])
    disease_duration_years = models.FloatField(null=True, blank=True, validators=[validate_years])
    phenotype = models.CharField(max_length=8, choices=Phenotype.choices, blank=True)
    treatment = models.CharField(max_length=200, blank=True, validators=[validate_single_line])
    min_wm_lesion_age_months = models.FloatField(
        "minimum WM lesion age (months)", null=True, blank=True, validators=[validate_months]
    )
    notes = models.TextField(blank=True, validators=[validate_multi_line])
    extra = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "code"], name="subject_code_unique_in_study")
        ]
        ordering = ["study", "code"]

    def __str__(self) -> str:
        return f"{self.study} / {self.code}"


class Session(models.Model):
    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="sessions")
    label = models.CharField(
        max_length=64, help_text="e.g. the BIDS session label '01'", validators=[validate_single_line]
    )
    scan_date = models.DateField(null=True, blank=True)
    scanner = models.CharField(max_length=200, blank=True, validators=[validate_single_line])
    field_strength_t = models.FloatField(
        "field strength (T)", default=7.0, validators=[validate_field_strength_t]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subject", "label"], name="session_label_unique")
        ]
        ordering = ["subject", "label"]

    def __str__(self) -> str:
        return f"{self.subject} / ses-{self.label}"

    @property
    def study(self) -> Study:
        return self.subject.study


class SeriesKind(models.TextChoices):
    T2STAR_MAGNITUDE = "t2star_mag", "T2*-weighted magnitude"
    T2STAR_PHASE = "t2star_phase", "T2*-weighted phase"
    T1_WM_NULLED = "t1_wmn", "T1 WM-nulled MPRAGE"
    T1_CSF_NULLED = "t1_csfn", "T1 CSF-nulled MPRAGE"
    FLAIR = "flair", "T2 FLAIR"
    QSM = "qsm", "QSM"
    BRAIN_MASK = "brain_mask", "Brain mask"
    TISSUE = "tissue", "Tissue labels (CSF/GM/WM)"
    LESION_MASK = "lesion_mask", "Lesion mask"
    OTHER = "other", "Other"


#: Kinds hidden from raters unless an admin says otherwise: QSM (the study's blinding) and lesion
#: masks (they may carry another rater's or the consensus marks).
BLINDED_BY_DEFAULT = frozenset({SeriesKind.QSM, SeriesKind.LESION_MASK})

#: Kinds that must lie on the T2* magnitude grid (same shape and affine) to be used directly.
T2STAR_GRID_KINDS = frozenset(
    {
        SeriesKind.T2STAR_MAGNITUDE,
        SeriesKind.T2STAR_PHASE,
        SeriesKind.QSM,
        SeriesKind.BRAIN_MASK,
        SeriesKind.TISSUE,
        SeriesKind.LESION_MASK,
    }
)


class Space(models.TextChoices):
    T2STAR = "t2star", "T2* grid"
    NATIVE = "native", "Own grid (needs coregistration)"


#: Every series file is stored under this storage prefix.
SERIES_STORAGE_PREFIX = "studies"


def series_upload_to(instance: "Series", filename: str) -> str:
    session = instance.session
    return (
        f"{SERIES_STORAGE_PREFIX}/{session.subject.study_id}/sub-{session.subject.code}/ses-{session.label}/"
        f"{instance.kind}/{filename}"
    )


class Series(models.Model):
    """One NIfTI volume of a session. Immutable once stored."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="series")
    kind = models.CharField(max_length=16, choices=SeriesKind.choices)
    label = models.CharField(
        max_length=64,
        blank=True,
        help_text="distinguishes volumes of one kind, e.g. 'echo-2'",
        validators=[validate_single_line],
    )
    space = models.CharField(max_length=8, choices=Space.choices, default=Space.T2STAR)
    file = models.FileField(upload_to=series_upload_to, max_length=500)
    original_filename = models.CharField(max_length=255, blank=True, validators=[validate_single_line])
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    shape = models.JSONField(help_text="array shape, e.g. [384, 384, 90] or [..., n_echoes]")
    voxel_size_mm = models.JSONField()
    affine = models.JSONField(help_text="4x4 voxel-to-world (RAS, mm)")
    dtype = models.CharField(max_length=32)
    echo_times_s = models.JSONField(default=list, blank=True)
    b0_t = models.FloatField("B0 (T)", null=True, blank=True, validators=[validate_field_strength_t])
    b0_direction = models.JSONField(
        default=list, blank=True, help_text="unit B0 direction in voxel coordinates"
    )
    blinded = models.BooleanField(default=False, help_text="hidden from raters")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    derived_by = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="outputs"
    )
    derived_from = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="+")
    #: How the volume came to be: upload notes and conversions, or the job's parameters, library
    #: versions, runtime and the inputs' checksums.
    provenance = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session", "kind", "label", "space"],
                condition=Q(is_current=True),
                name="one_current_series_per_slot",
            ),
            models.UniqueConstraint(
                fields=["session", "kind", "label", "space", "version"],
                name="series_version_unique",
            ),
        ]
        ordering = ["session", "kind", "label", "-version"]
        verbose_name_plural = "series"

    def __str__(self) -> str:
        tag = f" {self.label}" if self.label else ""
        return f"{self.session} {self.kind}{tag} v{self.version}"

    @property
    def study(self) -> Study:
        return self.session.subject.study
