from django.urls import path

from qsmreview.exports import views

urlpatterns = [
    path("studies/<id:study_id>/export/bids.zip", views.study_export, name="study-export-bids"),
]
