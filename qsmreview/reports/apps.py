from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "qsmreview.reports"
    label = "reports"
    verbose_name = "Statistics and PI pages"
    default_auto_field = "django.db.models.BigAutoField"
