from django.urls import path

from qsmreview.consensus import views

urlpatterns = [
    path("sessions/<id:session_id>/consensus/", views.session_consensus, name="session-consensus"),
    path("sessions/<id:session_id>/consensus/qc/", views.session_qc, name="session-consensus-qc"),
    path("sessions/<id:session_id>/consensus/qc/viewer/", views.session_qc_viewer, name="session-consensus-qc-viewer"),
    path("studies/<id:study_id>/consensus/", views.study_consensus, name="study-consensus"),
]
