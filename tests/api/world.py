"""The world of the API tests: two studies with one object of every kind, and a client per role.

``own`` is the cast's ``study`` (admin, rater1, pi); ``other`` is ``other_study`` (other_admin and
a rater of its own). Each side has a subject, a session and three series: a T2* magnitude (seen
by raters), a QSM and a lesion mask (both blinded by default).
"""

from __future__ import annotations

import gzip
import hashlib
import io
from dataclasses import dataclass, field

import nibabel as nib
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from qsmreview.annotations.models import Assignment
from qsmreview.jobs.models import Job
from qsmreview.studies.models import BLINDED_BY_DEFAULT, Series, Session, Study, Subject
from tests.fixtures.nifti import AFFINE, SHAPE, magnitude_data

#: Roles of the permission matrix, in the order of its columns.
ROLES = ("anonymous", "outsider", "staff", "rater", "pi", "admin", "other_admin", "superuser")
#: Series kinds created on each side of the world.
WORLD_KINDS = ("t2star_mag", "qsm", "lesion_mask")


def nifti_bytes(shape: tuple[int, ...] = SHAPE, *, echoes: int | None = None, seed: int = 0) -> bytes:
    """A gzip-compressed NIfTI-1 magnitude on the test grid (``tests.fixtures.nifti``)."""
    image = nib.Nifti1Image(magnitude_data(shape, echoes=echoes, seed=seed), AFFINE)
    return gzip.compress(image.to_bytes(), mtime=0)


def make_series(
    session: Session,
    kind: str,
    *,
    label: str = "",
    blinded: bool | None = None,
    version: int = 1,
    is_current: bool = True,
    seed: int = 0,
    uploaded_by=None,
) -> Series:
    """A stored Series row with a real file, written through Django's storage (no service)."""
    data = nifti_bytes(seed=seed)
    series = Series(
        session=session,
        kind=kind,
        label=label,
        original_filename=f"{kind}.nii.gz",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        shape=list(SHAPE),
        voxel_size_mm=[0.5, 0.5, 1.0],
        affine=AFFINE.tolist(),
        dtype="float32",
        b0_t=7.0,
        b0_direction=[0.0, 0.0, 1.0],
        blinded=(kind in BLINDED_BY_DEFAULT) if blinded is None else blinded,
        version=version,
        is_current=is_current,
        uploaded_by=uploaded_by,
        provenance={"source": "test"},
    )
    series.file.save(f"{kind}.nii.gz", ContentFile(data), save=False)
    series.save()
    return series


@dataclass
class Side:
    """The objects of one study."""

    name: str
    study: Study
    subject: Subject
    session: Session
    series: dict[str, Series]
    #: a rater of this study, assigned its session, whom the members routes remove
    member: object
    #: "queued" (to cancel) and "failed" (to retry) jobs of this study's session
    jobs: dict[str, Job] = field(default_factory=dict)
    #: the session's current consensus run (tests.consensus.factories) and a decision on it
    consensus: object = None
    decision: object = None
    #: the study's statistics snapshot (default filters), computed from that run
    snapshot: object = None
    #: a prepared BIDS export of the study (a small stored zip)
    export: object = None


@dataclass
class World:
    users: dict[str, object]
    own: Side
    other: Side
    #: (model name, id) -> a stable label such as "own" or "own:qsm"
    labels: dict[tuple[str, int], str] = field(default_factory=dict)

    def side(self, target: str) -> Side:
        return {"own": self.own, "other": self.other}[target]

    def label(self, model: str, pk: int) -> str:
        return self.labels.get((model, pk), f"{model}#{pk}")

    def client(self, role: str) -> APIClient:
        return client_for(self.users[role])


def client_for(user) -> APIClient:
    """An API client authenticated with the user's token (anonymous for None)."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def build_side(name: str, study: Study, session: Session, member, uploader) -> Side:
    # The side's rater is assigned its session: raters see only assigned sessions.
    Assignment.objects.create(session=session, rater=member, assigned_by=uploader)
    series = {
        kind: make_series(session, kind, seed=i, uploaded_by=uploader)
        for i, kind in enumerate(WORLD_KINDS)
    }
    jobs = {
        status: Job.objects.create(
            kind="selftest", status=status, study=study, session=session, created_by=uploader,
            parameters={"steps": 1}, error="boom" if status == "failed" else "",
        )
        for status in ("queued", "failed")
    }
    from qsmreview.consensus.models import ConsensusDecision
    from tests.consensus.factories import make_consensus_run

    run = make_consensus_run(session)
    decision = ConsensusDecision.objects.create(
        run=run, kind="exclude", lesion=1, value={"reason": "vessel"}, reason="a vein", by=uploader
    )
    from qsmreview.access import system
    from qsmreview.reports.services import statistics_compute

    snapshot = statistics_compute(by=system("test world"), study=study)
    export = make_export(study)
    return Side(name, study, session.subject, session, series, member, jobs, run, decision, snapshot, export)


def make_export(study: Study):
    """A prepared export of ``study`` with a small zip stored (what the export job leaves)."""
    import hashlib
    import io
    import zipfile

    from django.core.files.base import ContentFile

    from qsmreview.exports.models import StudyExport

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("study-bids/dataset_description.json", '{"Name": "test", "DatasetType": "derivative"}')
    body = buf.getvalue()
    export = StudyExport(study=study, name="study-bids.zip", sha256=hashlib.sha256(body).hexdigest(),
                         size=len(body), n_sessions=0, n_files=1)
    export.file.save("study-bids.zip", ContentFile(body), save=False)
    export.save()
    return export


def build_world(*, users: dict[str, object], own: Side, other: Side) -> World:
    world = World(users=users, own=own, other=other)
    for side in (own, other):
        world.labels[("study", side.study.pk)] = side.name
        world.labels[("subject", side.subject.pk)] = side.name
        world.labels[("session", side.session.pk)] = side.name
        for kind, series in side.series.items():
            world.labels[("series", series.pk)] = f"{side.name}:{kind}"
        for status, job in side.jobs.items():
            world.labels[("job", job.pk)] = f"{side.name}:{status}"
    return world


def db_fingerprint() -> tuple:
    """Everything a refused write must leave unchanged."""
    from qsmreview.consensus.models import ConsensusDecision, MeasurementSet
    from qsmreview.exports.models import StudyExport
    from qsmreview.reports.models import ImportedLesionRow, ImportedLesionTable, StatisticsSnapshot
    from qsmreview.studies.models import Membership

    return (
        list(Study.objects.order_by("pk").values()),
        list(Membership.objects.order_by("pk").values("study_id", "user_id", "role")),
        list(Subject.objects.order_by("pk").values()),
        list(Session.objects.order_by("pk").values()),
        list(Series.objects.order_by("pk").values()),
        list(Job.objects.order_by("pk").values()),
        list(ConsensusDecision.objects.order_by("pk").values()),
        list(MeasurementSet.objects.order_by("pk").values("pk", "current")),
        list(ImportedLesionTable.objects.order_by("pk").values()),
        list(ImportedLesionRow.objects.order_by("pk").values()),
        list(StatisticsSnapshot.objects.order_by("pk").values("pk")),
        list(StudyExport.objects.order_by("pk").values()),
    )


def upload_body(session: Session, **extra) -> dict:
    """A valid multipart upload of a T2* magnitude to ``session``."""
    body = {
        "session": session.pk,
        "kind": "t2star_mag",
        "label": "upload",
        "file": uploaded_file("mag.nii.gz", nifti_bytes(seed=42)),
    }
    body.update(extra)
    return body


def uploaded_file(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def as_bytes(response) -> bytes:
    """The body of a (possibly streaming) response."""
    if getattr(response, "streaming", False):
        buf = io.BytesIO()
        for chunk in response.streaming_content:
            buf.write(chunk)
        return buf.getvalue()
    return response.content
