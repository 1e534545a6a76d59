from django.urls import path

import qsmreview.api.ids  # noqa: F401  (registers the <id:...> path converter)

from qsmreview.exports.api import views

urlpatterns = [
    path("studies/<id:pk>/export/bids.zip", views.StudyBidsExportApi.as_view(), name="api-study-export-bids"),
    path("studies/<id:pk>/exports/", views.StudyExportsApi.as_view(), name="api-study-exports"),
    path("exports/<id:pk>/download/", views.ExportDownloadApi.as_view(), name="api-export-download"),
]
