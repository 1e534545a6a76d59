from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("qsmreview.api.urls")),
    path("", include("qsmreview.processing.urls")),
    path("", include("qsmreview.web.urls")),
]
