from django.apps import AppConfig


class ProcessingConfig(AppConfig):
    name = "qsmreview.processing"
    label = "processing"
    default_auto_field = "django.db.models.BigAutoField"
