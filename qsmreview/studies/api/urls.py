from django.urls import path

import qsmreview.api.ids  # noqa: F401  (registers the <id:...> path converter)

from qsmreview.studies.api import bids_upload, views

urlpatterns = [
    path("studies/", views.StudyListApi.as_view(), name="api-study-list"),
    path("studies/<id:pk>/", views.StudyDetailApi.as_view(), name="api-study-detail"),
    path("studies/<id:pk>/members/", views.StudyMemberListApi.as_view(), name="api-study-members"),
    path(
        "studies/<id:pk>/members/<id:user_id>/",
        views.StudyMemberDetailApi.as_view(),
        name="api-study-member",
    ),
    path(
        "studies/<id:pk>/bids-import/", bids_upload.BidsImportApi.as_view(), name="api-study-bids-import"
    ),
    path("subjects/", views.SubjectListApi.as_view(), name="api-subject-list"),
    path("subjects/<id:pk>/", views.SubjectDetailApi.as_view(), name="api-subject-detail"),
    path("sessions/", views.SessionListApi.as_view(), name="api-session-list"),
    path("sessions/<id:pk>/", views.SessionDetailApi.as_view(), name="api-session-detail"),
    path("series/", views.SeriesListApi.as_view(), name="api-series-list"),
    path("series/<id:pk>/", views.SeriesDetailApi.as_view(), name="api-series-detail"),
    path("series/<id:pk>/volume/", views.SeriesVolumeApi.as_view(), name="api-series-volume"),
    path("series/<id:pk>/display/", views.SeriesDisplayApi.as_view(), name="api-series-display"),
]
