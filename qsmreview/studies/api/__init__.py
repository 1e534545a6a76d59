"""The studies REST API: studies, members, subjects, sessions and series under ``/api/v1/``."""
