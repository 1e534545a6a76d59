"""Exports of a study's results: a BIDS derivatives dataset (``bids.py``, no Django) gathered by
``services.py`` for the ``export_study`` command, the study page and the API (docs/export.md)."""
