from django.urls import path

import qsmreview.api.ids  # noqa: F401  (registers the <id:...> path converter)

from qsmreview.jobs.api import views

urlpatterns = [
    path("jobs/", views.JobListView.as_view(), name="api-jobs"),
    path("jobs/kinds/", views.JobKindsView.as_view(), name="api-job-kinds"),
    path("jobs/<id:job_id>/", views.JobDetailView.as_view(), name="api-job-detail"),
    path("jobs/<id:job_id>/cancel/", views.JobCancelView.as_view(), name="api-job-cancel"),
    path("jobs/<id:job_id>/retry/", views.JobRetryView.as_view(), name="api-job-retry"),
]
