from django.urls import path

from qsmreview.processing import views

urlpatterns = [
    path("studies/<id:study_id>/processing/", views.study_processing, name="study-processing"),
    path("studies/<id:study_id>/processing/run/", views.run_study, name="study-processing-run"),
    path("sessions/<id:session_id>/processing/run/", views.run_session, name="session-processing-run"),
]
