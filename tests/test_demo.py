"""The demo study loader (qsmreview/studies/demo.py and ``manage.py load_demo``).

The loader runs on a small grid here (the real demo uses 128 x 128 x 48); the phantom, the series
service and its validation are the real ones.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

SMALL = {"shape": (40, 40, 20), "voxel_size": (4.5, 4.5, 6.0)}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def _load(**kwargs):
    from qsmreview.studies.demo import demo_load

    return demo_load(**SMALL, **kwargs)


def test_it_loads_the_cast_with_their_roles_and_printed_passwords() -> None:
    from django.contrib.auth import get_user_model

    from qsmreview.studies.demo import DEMO_STUDY_NAME
    from qsmreview.studies.models import Membership

    result = _load()

    assert result.study.name == DEMO_STUDY_NAME
    assert sorted(result.users_created) == ["admin", "pi", "rater1", "rater2", "rater3"]
    roles = dict(
        Membership.objects.filter(study=result.study).values_list("user__username", "role")
    )
    assert roles == {
        "admin": "admin",
        "rater1": "rater",
        "rater2": "rater",
        "rater3": "rater",
        "pi": "pi",
    }
    users = get_user_model().objects
    admin = users.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password("admin-demo")
    assert users.get(username="rater2").check_password("rater2-demo")
    assert not users.get(username="pi").is_staff


def test_it_loads_three_subjects_with_clinical_data_and_one_session_each() -> None:
    from qsmreview.studies.models import Session, Subject

    study = _load().study

    subjects = {s.code: s for s in Subject.objects.filter(study=study)}
    assert sorted(subjects) == ["MS001", "MS002", "MS003"]
    assert [subjects[c].phenotype for c in ("MS001", "MS002", "MS003")] == ["RRMS", "SPMS", "PPMS"]
    for subject in subjects.values():
        assert subject.sex in {"F", "M"}
        assert 18 <= subject.age_years <= 80
        assert 0 < subject.disease_duration_years < subject.age_years
        assert subject.treatment
        assert subject.min_wm_lesion_age_months > 0
    sessions = Session.objects.filter(subject__study=study)
    assert sessions.count() == 3
    assert {s.field_strength_t for s in sessions} == {7.0}


def test_it_gives_every_session_every_series_kind() -> None:
    from qsmreview.studies.models import Series, SeriesKind, Session

    study = _load().study

    for session in Session.objects.filter(subject__study=study):
        kinds = set(Series.objects.filter(session=session, is_current=True).values_list("kind", flat=True))
        assert kinds == set(SeriesKind.values), session


def test_it_stores_the_phantom_truth_as_blinded_qsm() -> None:
    from qsmreview.studies.models import Series

    study = _load().study

    qsm = Series.objects.get(session__subject__study=study, session__subject__code="MS001", kind="qsm")
    assert qsm.label == "truth"
    assert qsm.blinded
    assert qsm.provenance["source"] == "synthetic truth"
    assert qsm.provenance["generator"] == "recon.phantom.make_phantom"
    assert qsm.space == "t2star"
    lesions = Series.objects.get(session=qsm.session, kind="lesion_mask")
    assert lesions.blinded
    ids = Series.objects.get(session=qsm.session, kind="other", label="lesion-ids")
    assert set(ids.provenance["lesion_types"].values()) <= {"wm", "cortical", "mixed"}


def test_it_records_echo_times_and_field_strength_of_the_gradient_echo_data() -> None:
    from qsmreview.studies.models import Series

    study = _load().study

    multi = Series.objects.get(session__subject__study=study, session__subject__code="MS001", kind="t2star_phase")
    assert multi.echo_times_s == [0.006, 0.012, 0.018]
    assert multi.shape == [40, 40, 20, 3]
    assert multi.b0_t == 7.0
    single = Series.objects.get(session__subject__study=study, session__subject__code="MS003", kind="t2star_mag")
    assert single.echo_times_s == [0.0177]
    assert single.shape == [40, 40, 20]


def test_it_puts_one_subjects_structural_scans_on_their_own_grid() -> None:
    from qsmreview.studies.models import Series

    study = _load().study

    ms002 = Series.objects.filter(session__subject__study=study, session__subject__code="MS002")
    mag = ms002.get(kind="t2star_mag")
    for kind in ("t1_wmn", "t1_csfn", "flair"):
        own = ms002.get(kind=kind)
        assert own.space == "native"
        assert not np.allclose(np.asarray(own.affine), np.asarray(mag.affine))
    ms001 = Series.objects.filter(session__subject__study=study, session__subject__code="MS001")
    assert set(ms001.filter(kind__in=["t1_wmn", "t1_csfn", "flair"]).values_list("space", flat=True)) == {"t2star"}


def test_it_hides_qsm_and_lesion_truth_from_raters_but_not_from_the_pi() -> None:
    from django.contrib.auth import get_user_model

    from qsmreview.access import series_visible_to

    _load()
    users = get_user_model().objects

    rater_kinds = set(series_visible_to(users.get(username="rater1")).values_list("kind", "label"))
    pi_kinds = set(series_visible_to(users.get(username="pi")).values_list("kind", "label"))
    assert ("qsm", "truth") not in rater_kinds
    assert ("lesion_mask", "truth") not in rater_kinds
    assert ("t2star_mag", "") in rater_kinds
    assert ("qsm", "truth") in pi_kinds


def test_it_loads_again_without_duplicating_anything() -> None:
    from django.contrib.auth import get_user_model

    from qsmreview.studies.models import Membership, Series, Session, Study, Subject

    first = _load()
    counts = [m.objects.count() for m in (Study, Membership, Subject, Session, Series)]
    users = get_user_model().objects.count()

    second = _load()

    assert second.study.pk == first.study.pk
    assert not second.created_anything
    assert second.series_created == 0
    assert second.series_total == first.series_created
    assert [m.objects.count() for m in (Study, Membership, Subject, Session, Series)] == counts
    assert get_user_model().objects.count() == users


def test_it_completes_a_partly_loaded_demo() -> None:
    from qsmreview.studies.models import Series

    first = _load()
    removed = Series.objects.filter(session__subject__code="MS003", kind="flair")
    assert removed.count() == 1
    removed.delete()

    again = _load()

    assert again.series_created == 1
    assert Series.objects.filter(session__subject__code="MS003", kind="flair", is_current=True).count() == 1
    assert Series.objects.count() == first.series_created


def test_it_keeps_a_changed_password_unless_asked_to_reset_it() -> None:
    from django.contrib.auth import get_user_model

    _load()
    rater = get_user_model().objects.get(username="rater1")
    rater.set_password("my-own-secret")
    rater.save()

    _load()
    rater.refresh_from_db()
    assert rater.check_password("my-own-secret")

    _load(reset_passwords=True)
    rater.refresh_from_db()
    assert rater.check_password("rater1-demo")


def test_it_prints_the_logins_from_the_command() -> None:
    _load()  # small grid first: the command then finds the demo complete and adds nothing
    out = StringIO()

    call_command("load_demo", stdout=out)

    text = out.getvalue()
    assert "already complete; nothing added" in text
    for user, password in [
        ("admin", "admin-demo"),
        ("rater1", "rater1-demo"),
        ("rater2", "rater2-demo"),
        ("rater3", "rater3-demo"),
        ("pi", "pi-demo"),
    ]:
        assert f"{user}" in text and f"password {password}" in text
