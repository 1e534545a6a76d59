from django.urls import path

from qsmreview.studies.api import bids_upload, views

urlpatterns = [
    path("studies/", views.StudyListApi.as_view(), name="api-study-list"),
    path("studies/<int:pk>/", views.StudyDetailApi.as_view(), name="api-study-detail"),
    path("studies/<int:pk>/members/", views.StudyMemberListApi.as_view(), name="api-study-members"),
    path(
        "studies/<int:pk>/members/<int:user_id>/",
        views.StudyMemberDetailApi.as_view(),
        name="api-study-member",
    ),
    path(
        "studies/<int:pk>/bids-import/", bids_upload.BidsImportApi.as_view(), name="api-study-bids-import"
    ),
    path("subjects/", views.SubjectListApi.as_view(), name="api-subject-list"),
    path("subjects/<int:pk>/", views.SubjectDetailApi.as_view(), name="api-subject-detail"),
    path("sessions/", views.SessionListApi.as_view(), name="api-session-list"),
    path("sessions/<int:pk>/", views.SessionDetailApi.as_view(), name="api-session-detail"),
    path("series/", views.SeriesListApi.as_view(), name="api-series-list"),
    path("series/<int:pk>/", views.SeriesDetailApi.as_view(), name="api-series-detail"),
    path("series/<int:pk>/volume/", views.SeriesVolumeApi.as_view(), name="api-series-volume"),
]
