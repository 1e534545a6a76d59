from django.urls import path

import qsmreview.api.ids  # noqa: F401  (registers the <id:...> path converter)

from qsmreview.annotations.api import views

urlpatterns = [
    path("assignments/", views.AssignmentListApi.as_view(), name="api-assignment-list"),
    path("studies/<id:pk>/assignments/", views.StudyAssignmentsApi.as_view(), name="api-study-assignments"),
    path("studies/<id:pk>/progress/", views.StudyProgressApi.as_view(), name="api-study-progress"),
    path("assignments/<id:pk>/", views.AssignmentDetailApi.as_view(), name="api-assignment-detail"),
    path("assignments/<id:pk>/reopen/", views.AssignmentReopenApi.as_view(), name="api-assignment-reopen"),
    path("assignments/<id:pk>/submit/", views.AssignmentSubmitApi.as_view(), name="api-assignment-submit"),
    path("assignments/<id:pk>/events/", views.AssignmentEventListApi.as_view(), name="api-assignment-events"),
    path(
        "assignments/<id:pk>/revisions/",
        views.AssignmentRevisionListApi.as_view(),
        name="api-assignment-revisions",
    ),
    path("revisions/<id:pk>/", views.RevisionDetailApi.as_view(), name="api-revision-detail"),
    path("revisions/<id:pk>/mask/", views.RevisionMaskApi.as_view(), name="api-revision-mask"),
    path("revisions/<id:pk>/restore/", views.RevisionRestoreApi.as_view(), name="api-revision-restore"),
]
