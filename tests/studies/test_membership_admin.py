import pytest

from qsmreview.studies.models import Membership

pytestmark = pytest.mark.django_db


def test_it_lists_and_adds_members_in_the_admin(client, superuser, study, admin, rater):
    from tests.fixtures.cast import make_user

    newbie = make_user("newbie")
    client.force_login(superuser)
    assert client.get("/admin/studies/membership/").status_code == 200
    response = client.post(
        "/admin/studies/membership/add/", {"study": study.pk, "user": newbie.pk, "role": "rater"}
    )
    assert response.status_code == 302, response.content[:500]
    assert Membership.objects.get(study=study, user=newbie).role == "rater"


def test_it_keeps_the_study_s_last_admin(client, superuser, study, admin):
    membership = Membership.objects.get(study=study, user=admin)
    client.force_login(superuser)
    response = client.post(f"/admin/studies/membership/{membership.pk}/change/", {"role": "rater"})
    assert response.status_code == 200
    assert "the study&#x27;s only admin" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == "admin"
    assert client.get(f"/admin/studies/membership/{membership.pk}/delete/").status_code == 403
