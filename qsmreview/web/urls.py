from django.urls import path

from qsmreview.web import views

urlpatterns = [
    path("", views.home, name="home"),
    path("studies/<id:study_id>/", views.study_detail, name="study"),
    path("jobs/", views.jobs_page, name="jobs"),
    path("jobs/selftest/", views.jobs_submit_selftest, name="jobs-selftest"),
]
