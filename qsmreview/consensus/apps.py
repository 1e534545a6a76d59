from django.apps import AppConfig


class ConsensusConfig(AppConfig):
    name = "qsmreview.consensus"
    label = "consensus"
    verbose_name = "Consensus lesions"
    default_auto_field = "django.db.models.BigAutoField"
