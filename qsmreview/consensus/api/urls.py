from django.urls import path

import qsmreview.api.ids  # noqa: F401  (registers the <id:...> path converter)

from qsmreview.consensus.api import views

urlpatterns = [
    path("sessions/<id:pk>/consensus/", views.SessionConsensusApi.as_view(), name="api-session-consensus"),
    path("studies/<id:pk>/consensus-settings/", views.StudySettingsApi.as_view(), name="api-study-consensus-settings"),
    path("studies/<id:pk>/agreement/", views.StudyAgreementApi.as_view(), name="api-study-agreement"),
    path("consensus/<id:pk>/", views.RunDetailApi.as_view(), name="api-consensus-detail"),
    path("consensus/<id:pk>/lesions/", views.RunLesionsApi.as_view(), name="api-consensus-lesions"),
    path("consensus/<id:pk>/lesions/csv/", views.RunLesionsCsvApi.as_view(), name="api-consensus-lesions-csv"),
    path("consensus/<id:pk>/candidates/", views.RunCandidatesApi.as_view(), name="api-consensus-candidates"),
    path("consensus/<id:pk>/agreement/", views.RunAgreementApi.as_view(), name="api-consensus-agreement"),
    path("consensus/<id:pk>/lesion-labels/", views.LesionLabelsApi.as_view(), name="api-consensus-lesion-labels"),
    path(
        "consensus/<id:pk>/reference-labels/",
        views.ReferenceLabelsApi.as_view(),
        name="api-consensus-reference-labels",
    ),
    path("consensus/<id:pk>/decisions/", views.RunDecisionsApi.as_view(), name="api-consensus-decisions"),
    path("consensus/<id:pk>/class-decisions/", views.ClassDecisionApi.as_view(), name="api-consensus-class-decision"),
    path("consensus/<id:pk>/adjudications/", views.AdjudicationApi.as_view(), name="api-consensus-adjudication"),
    path("consensus/<id:pk>/exclusions/", views.ExclusionApi.as_view(), name="api-consensus-exclusion"),
    path("consensus/<id:pk>/voxel-removals/", views.VoxelRemovalApi.as_view(), name="api-consensus-voxel-removal"),
    path("consensus/<id:pk>/voxel-edits/", views.VoxelEditApi.as_view(), name="api-consensus-voxel-edit"),
    path(
        "consensus/<id:pk>/vessel-applications/",
        views.VesselApplicationApi.as_view(),
        name="api-consensus-vessel-application",
    ),
    path("consensus/<id:pk>/qc/", views.QcLesionsApi.as_view(), name="api-consensus-qc"),
    path(
        "consensus/<id:pk>/vessel-proposals/",
        views.VesselProposalsApi.as_view(),
        name="api-consensus-vessel-proposals",
    ),
    path("consensus/<id:pk>/remeasure/", views.RemeasureApi.as_view(), name="api-consensus-remeasure"),
    path("consensus-decisions/<id:pk>/revert/", views.DecisionRevertApi.as_view(), name="api-consensus-revert"),
]
