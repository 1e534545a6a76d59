from django.urls import path

from qsmreview.annotations import assignment_pages

urlpatterns = [
    path("studies/<id:study_id>/assignments/", assignment_pages.study_assignments, name="study-assignments"),
]
