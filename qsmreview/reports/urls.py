from django.urls import path

from qsmreview.reports import views

urlpatterns = [
    path("studies/<id:study_id>/reports/", views.study_reports, name="study-reports"),
    path("studies/<id:study_id>/reports/import/", views.study_reports_import, name="study-reports-import"),
]
