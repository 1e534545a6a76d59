from django.urls import path

from qsmreview.studies import views

urlpatterns = [
    path("series/<id:series_id>/view/", views.series_view, name="series-view"),
    path("studies/<id:study_id>/upload/", views.study_upload, name="study-upload"),
]
