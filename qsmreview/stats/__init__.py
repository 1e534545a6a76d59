"""Group statistics of lesion susceptibility (issue 18): tables in, numbers out. No Django.

``python -m qsmreview.stats LESIONS.csv [--json]`` runs the whole analysis (docs/statistics.md).
In code::

    from qsmreview.stats.table import read_table
    from qsmreview.stats.analysis import analyse

    result = analyse(read_table("lesions.csv"))
    result.group("wm_lesions").test.p_corrected
    result.as_dict()  # JSON-safe

Modules: :mod:`~qsmreview.stats.table` (read and validate the lesion table),
:mod:`~qsmreview.stats.analysis` (groups, tests, Bonferroni), :mod:`~qsmreview.stats.mixedmodel`
(the mixed-effects model), :mod:`~qsmreview.stats.results` (the result dataclasses),
:mod:`~qsmreview.stats.report` (text and JSON), :mod:`~qsmreview.stats.synthetic` (the reference
cohort), :mod:`~qsmreview.stats.cli`.

Importing this package imports ``qsmreview/__init__.py`` and with it the Celery app, which sets a
default ``DJANGO_SETTINGS_MODULE`` in the environment and imports ``django.conf``; settings are
never configured and no app is loaded by anything here.
"""
