from django.urls import path

from qsmreview.annotations import views

urlpatterns = [
    path("rate/", views.rate_queue, name="rate-queue"),
    path("rate/<id:assignment_id>/", views.rate_case, name="rate-case"),
]
