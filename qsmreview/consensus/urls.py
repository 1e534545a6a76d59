from django.urls import path

from qsmreview.consensus import views

urlpatterns = [
    path("sessions/<id:session_id>/consensus/", views.session_consensus, name="session-consensus"),
    path("sessions/<id:session_id>/consensus/qc/", views.session_qc, name="session-consensus-qc"),
    path("studies/<id:study_id>/consensus/", views.study_consensus, name="study-consensus"),
]
