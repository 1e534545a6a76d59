from django.urls import path

from qsmreview.studies import views

urlpatterns = [
    path("series/<int:series_id>/view/", views.series_view, name="series-view"),
    path("studies/<int:study_id>/upload/", views.study_upload, name="study-upload"),
]
