from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from qsmreview.api.auth import TokenObtainApi

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("v1/auth/token/", TokenObtainApi.as_view(), name="api-token"),
    path("v1/", include("qsmreview.studies.api.urls")),
    path("v1/", include("qsmreview.jobs.api.urls")),
    path("v1/", include("qsmreview.processing.api.urls")),
    path("v1/", include("qsmreview.annotations.api.urls")),
    path("v1/", include("qsmreview.consensus.api.urls")),
    path("v1/", include("qsmreview.reports.api.urls")),
    path("v1/", include("qsmreview.exports.api.urls")),
]
