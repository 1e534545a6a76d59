from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

import qsmreview.api.ids  # noqa: F401  (registers <id:...>: every id in a path is checked there)
from qsmreview.login_throttle import throttle_login
from qsmreview.web.password_reset import PasswordResetView

# Both password pages share the token endpoint's attempt limit (qsmreview.login_throttle).
admin.site.login = throttle_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", throttle_login(auth_views.LoginView.as_view()), name="login"),
    path("accounts/password_reset/", PasswordResetView.as_view(), name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("qsmreview.api.urls")),
    path("", include("qsmreview.annotations.urls")),
    path("", include("qsmreview.processing.urls")),
    path("", include("qsmreview.consensus.urls")),
    path("", include("qsmreview.reports.urls")),
    path("", include("qsmreview.exports.urls")),
    path("", include("qsmreview.annotations.assignment_urls")),
    path("", include("qsmreview.studies.urls")),
    path("", include("qsmreview.web.urls")),
]

# A URL no pattern matches answers JSON under /api/ (the API's error contract), HTML elsewhere.
handler404 = "qsmreview.api.errors.page_not_found"
