from django.urls import path

from qsmreview.exports import views

urlpatterns = [
    path("studies/<id:study_id>/export/bids.zip", views.study_export, name="study-export-bids"),
    path("studies/<id:study_id>/exports/", views.study_exports, name="study-exports"),
    path("exports/<id:export_id>/download/", views.export_download, name="export-download"),
]
