"""Query-string filters of the list routes.

Ids are plain numbers (:class:`qsmreview.api.ids.IdFilter`: a bad one is 400), not model choices: filtering on a study the user cannot see gives an empty
page, never a "no such choice" error that would confirm the study exists. The filters only narrow
a queryset a selector already scoped to the user.
"""

from __future__ import annotations

import django_filters

from qsmreview.api.ids import IdFilter
from qsmreview.studies.models import Phenotype, Series, SeriesKind, Session, Space, Study, Subject


class StudyFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="part of the name")

    class Meta:
        model = Study
        fields = ["name"]


class SubjectFilter(django_filters.FilterSet):
    study = IdFilter(field_name="study_id")
    code = django_filters.CharFilter(help_text="exact subject code")
    phenotype = django_filters.ChoiceFilter(choices=Phenotype.choices)

    class Meta:
        model = Subject
        fields = ["study", "code", "phenotype"]


class SessionFilter(django_filters.FilterSet):
    study = IdFilter(field_name="subject__study_id")
    subject = IdFilter(field_name="subject_id")
    label = django_filters.CharFilter()

    class Meta:
        model = Session
        fields = ["study", "subject", "label"]


class SeriesFilter(django_filters.FilterSet):
    study = IdFilter(field_name="session__subject__study_id")
    subject = IdFilter(field_name="session__subject_id")
    session = IdFilter(field_name="session_id")
    kind = django_filters.ChoiceFilter(choices=SeriesKind.choices)
    label = django_filters.CharFilter()
    space = django_filters.ChoiceFilter(choices=Space.choices)
    is_current = django_filters.BooleanFilter()
    blinded = django_filters.BooleanFilter()

    class Meta:
        model = Series
        fields = ["study", "subject", "session", "kind", "label", "space", "is_current", "blinded"]
