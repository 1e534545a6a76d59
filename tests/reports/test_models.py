"""The models keep what they are given (snapshots are never edited: a new one is created)."""

from __future__ import annotations

from qsmreview.reports.filters import DEFAULT, Filters
from qsmreview.reports.models import StatisticsSnapshot
from qsmreview.reports.selectors import latest_snapshot


def test_it_finds_the_newest_snapshot_of_a_filter_combination(study):
    older = StatisticsSnapshot.objects.create(study=study, filters=DEFAULT.as_dict(), filters_key=DEFAULT.key,
                                              input_digest="a" * 64)
    newer = StatisticsSnapshot.objects.create(study=study, filters=DEFAULT.as_dict(), filters_key=DEFAULT.key,
                                              input_digest="b" * 64)
    other = Filters(source="imported")
    StatisticsSnapshot.objects.create(study=study, filters=other.as_dict(), filters_key=other.key,
                                      input_digest="c" * 64)

    assert latest_snapshot(study, DEFAULT) == newer != older
    assert latest_snapshot(study, Filters(excluded="include")) is None


def test_filters_keys_are_canonical():
    assert Filters().key == "source=all;excluded=exclude"
    assert Filters(source="imported", excluded="include").query() == "source=imported&excluded=include"
