from django.urls import path

import qsmreview.api.ids  # noqa: F401  (registers the <id:...> path converter)

from qsmreview.processing.api.views import SessionProcessingView, StudyProcessingView

urlpatterns = [
    path("studies/<id:study_id>/processing/", StudyProcessingView.as_view(), name="api-study-processing"),
    path("sessions/<id:session_id>/processing/", SessionProcessingView.as_view(), name="api-session-processing"),
]
