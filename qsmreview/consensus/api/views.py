"""REST views of consensus runs, their lesion tables, candidates, agreement, label maps, decisions
and QC actions (``/api/v1/``).

Every read goes through :func:`qsmreview.access.consensus_runs_visible_to` (the study's admins and
PI, superusers): for a rater or an outsider a run does not exist (404, like an id that does not).
Writes are the services', which answer 403 to a PI. One small view per endpoint: parse with an
input serializer, call one service or selector, render with an output serializer.
"""

from __future__ import annotations

import csv
import io
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from qsmreview.access import consensus_decisions_visible_to, sessions_with_consensus_visible_to
from qsmreview.api.downloads import JsonErrorsForDownloads, if_none_match_parameter, stored_file_response
from qsmreview.api.error_responses import READ_ERRORS as _READ_ERRORS, WRITE_ERRORS as _WRITE_ERRORS
from qsmreview.api.permissions import get_visible_or_404
from qsmreview.consensus import selectors
from qsmreview.consensus.api import serializers as s
from qsmreview.consensus.qc_edits import consensus_apply_vessel_proposals, consensus_edit_voxels, decode_mask
from qsmreview.consensus.services import (
    consensus_adjudicate,
    consensus_decide_class,
    consensus_exclude,
    consensus_remeasure,
    consensus_remove_voxels,
    consensus_request,
    consensus_revert,
)
from qsmreview.consensus.study_settings import consensus_settings_update, settings_history, settings_rows
from qsmreview.errors import NotFound
from qsmreview.processing.api.serializers import JobBriefSerializer

#: Label maps never change: a client may keep one as long as it likes.
LABELS_CACHE_CONTROL = "private, max-age=31536000, immutable"

_SET = OpenApiParameter(
    "set", OpenApiTypes.INT, OpenApiParameter.QUERY, required=False,
    description="a measurement set's number (default: the current one)",
)


class _Api:
    authentication_classes = [TokenAuthentication, SessionAuthentication]


def _run(request: Request, pk: int):
    return selectors.run_for(request.user, pk)


def _set(request: Request, run):
    return selectors.measurement_set_for(run, request.query_params.get("set"))


@extend_schema(tags=["consensus"])
class SessionConsensusApi(_Api, APIView):
    @extend_schema(
        summary="Consensus runs of a session, newest first (admins and PI)",
        responses={200: s.RunOutputSerializer(many=True), **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        session = get_visible_or_404(sessions_with_consensus_visible_to(request.user), pk, "session")
        runs = selectors.runs_of_session(request.user, session)
        return Response(s.RunOutputSerializer(runs, many=True).data)

    @extend_schema(
        summary="Compute the session's consensus (the study's admins)",
        description=(
            "Queues a `consensus` job on the session's current inputs: the submitted revisions of "
            "at least two raters, the tissue labels, the QSM (if any). 400 names what is missing; "
            "409 when a job on the same inputs is already queued or running."
        ),
        request=s.RequestInputSerializer,
        responses={201: JobBriefSerializer, **_WRITE_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        session = get_visible_or_404(
            sessions_with_consensus_visible_to(request.user).select_related("subject__study"), pk, "session"
        )
        s.RequestInputSerializer(data=request.data).is_valid(raise_exception=True)
        job = consensus_request(by=request.user, session=session)
        return Response(JobBriefSerializer(job).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["consensus"])
class RunDetailApi(_Api, APIView):
    @extend_schema(
        summary="A consensus run: status, inputs with checksums, parameters, code version",
        responses={200: s.RunOutputSerializer, **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.RunOutputSerializer(_run(request, pk)).data)


@extend_schema(tags=["consensus"])
class RunLesionsApi(_Api, APIView):
    @extend_schema(
        summary="The lesion table (one row per lesion or portion of a mixed lesion)",
        parameters=[_SET],
        responses={200: s.LesionRowOutputSerializer(many=True), **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        rows = _set(request, _run(request, pk)).rows.order_by("lesion", "portion")
        return Response(s.LesionRowOutputSerializer(rows, many=True).data)


@extend_schema(tags=["consensus"])
class RunLesionsCsvApi(JsonErrorsForDownloads, _Api, APIView):
    @extend_schema(
        summary="The lesion table as CSV",
        description="Columns: " + ", ".join(selectors.CSV_COLUMNS) + ".",
        parameters=[_SET],
        responses={(200, "text/csv"): OpenApiTypes.STR, **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        run = _run(request, pk)
        measurements = _set(request, run)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(selectors.CSV_COLUMNS)
        writer.writerows(selectors.csv_rows(measurements))
        response = HttpResponse(buf.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="consensus-{run.pk}_set-{measurements.number}_lesions.csv"'
        )
        return response


@extend_schema(tags=["consensus"])
class RunCandidatesApi(_Api, APIView):
    @extend_schema(
        summary="Candidate lesions (any rater's mark) with the rule's verdict",
        description="status: lesion, rejected (minority), too_small, adjudication (an admin decides).",
        responses={200: s.CandidateOutputSerializer(many=True), **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.CandidateOutputSerializer(_run(request, pk).candidates.order_by("number"), many=True).data)


@extend_schema(tags=["consensus"])
class RunAgreementApi(_Api, APIView):
    @extend_schema(
        summary="Agreement of the raters with each other and with the consensus",
        responses={200: s.AgreementOutputSerializer, **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.AgreementOutputSerializer(_run(request, pk)).data)


class _LabelsApi(JsonErrorsForDownloads, _Api, APIView):
    field = ""
    what = ""

    def get(self, request: Request, pk: int) -> HttpResponse:
        run = _run(request, pk)
        measurements = _set(request, run)
        return stored_file_response(
            request,
            getattr(measurements, self.field),
            sha256=getattr(measurements, f"{self.field}_sha256"),
            filename=f"sub-{run.session.subject.code}_consensus-{run.pk}_set-{measurements.number}_{self.what}.nii.gz",
            cache_control=LABELS_CACHE_CONTROL,
            missing=f"the {self.what} label map of consensus run {run.pk} is missing from storage",
        )


_DOWNLOAD = {
    (200, "application/gzip"): OpenApiTypes.BINARY,
    304: OpenApiResponse(description="not modified"),
    **_READ_ERRORS,
    410: s.ErrorSerializer,
}


@extend_schema(tags=["consensus"])
class LesionLabelsApi(_LabelsApi):
    field, what = "lesion_labels", "lesions"

    @extend_schema(
        summary="Download the consensus lesion label map (.nii.gz, one id per lesion, T2* grid)",
        parameters=[_SET, if_none_match_parameter("3b0c…")],
        responses=_DOWNLOAD,
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        return super().get(request, pk)


@extend_schema(tags=["consensus"])
class ReferenceLabelsApi(_LabelsApi):
    field, what = "reference_labels", "reference"

    @extend_schema(
        summary="Download the reference ROI label map (.nii.gz, 10 x lesion + 1 wm / 2 cortical)",
        parameters=[_SET, if_none_match_parameter("3b0c…")],
        responses=_DOWNLOAD,
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        return super().get(request, pk)


@extend_schema(tags=["consensus"])
class RunDecisionsApi(_Api, APIView):
    @extend_schema(
        summary="The run's decisions and QC actions, oldest first (the audit trail)",
        responses={200: s.DecisionOutputSerializer(many=True), **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        run = _run(request, pk)
        return Response(s.DecisionOutputSerializer(run.decisions.select_related("by").order_by("created_at", "pk"), many=True).data)


def _created(decision) -> Response:
    return Response(s.DecisionOutputSerializer(decision).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["consensus"])
class ClassDecisionApi(_Api, APIView):
    @extend_schema(
        summary="Decide a lesion's class (the study's admins); the rule's class stays recorded",
        request=s.ClassDecisionInputSerializer,
        responses={201: s.DecisionOutputSerializer, **_WRITE_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        run = _run(request, pk)
        data = s.ClassDecisionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _created(consensus_decide_class(by=request.user, run=run, **data.validated_data))


@extend_schema(tags=["consensus"])
class AdjudicationApi(_Api, APIView):
    @extend_schema(
        summary="Adjudicate a candidate left to an admin (include it as a lesion or not)",
        request=s.AdjudicationInputSerializer,
        responses={201: s.DecisionOutputSerializer, **_WRITE_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        run = _run(request, pk)
        data = s.AdjudicationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _created(consensus_adjudicate(by=request.user, run=run, **data.validated_data))


@extend_schema(tags=["consensus"])
class ExclusionApi(_Api, APIView):
    @extend_schema(
        summary="QC: exclude a lesion from the measurements (vessel, artifact, eroded, other)",
        request=s.ExclusionInputSerializer,
        responses={201: s.DecisionOutputSerializer, **_WRITE_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        run = _run(request, pk)
        data = s.ExclusionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _created(consensus_exclude(by=request.user, run=run, **data.validated_data))


@extend_schema(tags=["consensus"])
class VoxelRemovalApi(_Api, APIView):
    @extend_schema(
        summary="QC: remove voxels from a lesion or from the reference ROIs, then measure again",
        request=s.VoxelRemovalInputSerializer,
        responses={201: s.DecisionOutputSerializer, **_WRITE_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        run = _run(request, pk)
        data = s.VoxelRemovalInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _created(consensus_remove_voxels(by=request.user, run=run, **data.validated_data))


@extend_schema(tags=["consensus"])
class VoxelEditApi(_Api, APIView):
    @extend_schema(
        summary="QC: a drawn mask removes voxels from a lesion or the reference ROIs, or adds them to one ROI",
        description=(
            "JSON with `mask`: base64 of a NIfTI mask on the T2* grid (the viewer's drawing, "
            "checked like a rater's mask: shape, affine within 1e-3 mm, whole values 0..255; "
            "non-zero means drawn; at most 100 000 voxels). `operation` remove: the drawn voxels "
            "in lesion `lesion` (`target` lesion) or in any reference ROI (`target` reference) "
            "are removed. `operation` add (`target` reference): the drawn voxels are added to ROI "
            "`roi` if every one is of its tissue, outside every lesion and its gap, in no other "
            "ROI (else 400 naming the rule). Answers 201 with the decision; a new measurement set "
            "is current."
        ),
        request=s.VoxelEditInputSerializer,
        responses={201: s.DecisionOutputSerializer, **_WRITE_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        run = _run(request, pk)
        data = s.VoxelEditInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        mask = fields.pop("mask")
        return _created(consensus_edit_voxels(by=request.user, run=run, mask_bytes=decode_mask(mask), **fields))


@extend_schema(tags=["consensus"])
class VesselApplicationApi(_Api, APIView):
    @extend_schema(
        summary="QC: remove the proposed vessel voxels in a lesion or its reference ROIs (explicit, reversible)",
        request=s.VesselApplicationInputSerializer,
        responses={201: s.DecisionOutputSerializer, **_WRITE_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        run = _run(request, pk)
        data = s.VesselApplicationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _created(consensus_apply_vessel_proposals(by=request.user, run=run, **data.validated_data))


@extend_schema(tags=["consensus"])
class QcLesionsApi(_Api, APIView):
    @extend_schema(
        summary="QC list: every lesion with flags, proposed vessel voxels and where it is",
        description=(
            "Per lesion: class, voxels, portions (relative susceptibility, reference ROI id and "
            "voxels, reference_flag), qsm_mask_cut_fraction, the proposed vessel voxels in the "
            "lesion and in its reference ROIs (null when the run has no proposals), the exclusion "
            "in effect, and the lesion voxel nearest its centroid (voxel and mm)."
        ),
        parameters=[_SET],
        responses={200: s.QcOutputSerializer, **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        run = _run(request, pk)
        measurements = _set(request, run)
        return Response(
            s.QcOutputSerializer(
                {
                    "run": run.pk,
                    "set": measurements.number,
                    "current": measurements.current,
                    "vessel_proposals": bool(run.vessel_proposals),
                    "lesions": selectors.qc_lesions(run, measurements),
                }
            ).data
        )


@extend_schema(tags=["consensus"])
class VesselProposalsApi(JsonErrorsForDownloads, _Api, APIView):
    @extend_schema(
        summary="Download the run's vessel proposals (.nii.gz, uint8 0/1, T2* grid; a proposal, never applied)",
        parameters=[if_none_match_parameter("3b0c…")],
        responses=_DOWNLOAD,
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        run = _run(request, pk)
        if not run.vessel_proposals:
            raise NotFound(f"consensus run {run.pk} has no vessel proposals (it had no QSM)")
        return stored_file_response(
            request,
            run.vessel_proposals,
            sha256=run.vessel_proposals_sha256,
            filename=f"sub-{run.session.subject.code}_consensus-{run.pk}_vessel-proposals.nii.gz",
            cache_control=LABELS_CACHE_CONTROL,
            missing=f"the vessel proposals of consensus run {run.pk} are missing from storage",
        )


@extend_schema(tags=["consensus"])
class RemeasureApi(_Api, APIView):
    @extend_schema(
        summary="Measure the run again with every decision in effect (a new measurement set)",
        request=None,
        responses={201: s.MeasurementSetOutputSerializer, **_WRITE_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        measurements = consensus_remeasure(by=request.user, run=_run(request, pk))
        return Response(s.MeasurementSetOutputSerializer(measurements).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["consensus"])
class DecisionRevertApi(_Api, APIView):
    @extend_schema(
        summary="Revert a decision or QC action (restore an excluded lesion, ...)",
        request=s.RevertInputSerializer,
        responses={201: s.DecisionOutputSerializer, **_WRITE_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        decision = get_visible_or_404(
            consensus_decisions_visible_to(request.user).select_related("run__session__subject__study"), pk, "decision"
        )
        data = s.RevertInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _created(consensus_revert(by=request.user, decision=decision, **data.validated_data))


@extend_schema(tags=["consensus"])
class StudyAgreementApi(_Api, APIView):
    @extend_schema(
        summary="Agreement of every session's current consensus run in the study (admins and PI)",
        responses={200: s.AgreementOutputSerializer(many=True), **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        study = selectors.study_for(request.user, pk)
        return Response(s.AgreementOutputSerializer(selectors.current_runs(study), many=True).data)



@extend_schema(tags=["consensus"])
class StudySettingsApi(_Api, APIView):
    def _answer(self, study) -> Response:  # the caller read the study through selectors.study_for
        data = {"settings": settings_rows(study), "history": settings_history(study)}
        return Response(s.SettingsOutputSerializer(data).data)

    @extend_schema(
        summary="The study's consensus settings in effect, their defaults and every change (admins and PI)",
        responses={200: s.SettingsOutputSerializer, **_READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        return self._answer(selectors.study_for(request.user, pk))

    @extend_schema(
        summary="Change consensus settings (the study's admins); every session with a consensus computes it again",
        description=(
            "Send only the settings to change, e.g. `{\"values\": {\"cortical_fraction_cortical\": 0.8}, "
            "\"reason\": \"...\"}`. 400 names an unknown setting or a value the rules refuse."
        ),
        request=s.SettingsInputSerializer,
        responses={200: s.SettingsOutputSerializer, **_WRITE_ERRORS},
    )
    def patch(self, request: Request, pk: int) -> Response:
        study = selectors.study_for(request.user, pk)
        data = s.SettingsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        consensus_settings_update(by=request.user, study=study, **data.validated_data)
        return self._answer(study)
