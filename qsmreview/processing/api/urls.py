from django.urls import path

from qsmreview.processing.api.views import SessionProcessingView, StudyProcessingView

urlpatterns = [
    path("studies/<int:study_id>/processing/", StudyProcessingView.as_view(), name="api-study-processing"),
    path("sessions/<int:session_id>/processing/", SessionProcessingView.as_view(), name="api-session-processing"),
]
