"""Studies, members, subjects and sessions over the API: auth, writes, errors, pages, filters."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from qsmreview.studies.models import Membership, Session, Study, Subject
from tests.api.world import World, client_for
from tests.fixtures.cast import PASSWORD

# --- authentication --------------------------------------------------------------------------


def test_it_returns_a_token_for_a_username_and_password(rater):
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "rater1", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 200
    token = response.json()["token"]
    assert token == Token.objects.get(user=rater).key
    again = APIClient().post(
        "/api/v1/auth/token/", {"username": "rater1", "password": PASSWORD}, format="json"
    )
    assert again.json()["token"] == token, "the same token until revoked"


def test_it_refuses_a_token_for_a_wrong_password(rater):
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "rater1", "password": "wrong"}, format="json"
    )

    assert response.status_code == 400
    message = "Unable to log in with provided credentials."
    assert response.json() == {"detail": message, "code": "invalid", "errors": {"non_field_errors": [message]}}


def test_it_authenticates_with_the_token(study, rater):
    token = APIClient().post(
        "/api/v1/auth/token/", {"username": "rater1", "password": PASSWORD}, format="json"
    ).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    response = client.get("/api/v1/studies/")

    assert response.status_code == 200
    assert [s["name"] for s in response.json()["results"]] == [study.name]


def test_it_answers_401_to_a_bad_token(study):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")

    response = client.get("/api/v1/studies/")

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token.", "code": "authentication_failed"}


def test_it_authenticates_a_browser_session_and_enforces_csrf_on_writes(study, admin):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="admin", password=PASSWORD)

    assert client.get(f"/api/v1/studies/{study.pk}/").status_code == 200
    response = client.patch(f"/api/v1/studies/{study.pk}/", {"description": "x"}, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


# --- studies ---------------------------------------------------------------------------------


def test_it_makes_the_creator_of_a_study_its_admin(staff):
    client = client_for(staff)

    response = client.post(
        "/api/v1/studies/",
        {"name": "  New  ", "description": "d", "field_strength_t": 3.0,
         "protocol": {"qsm": {"lam": 500}}},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "New"
    assert body["my_role"] == "admin"
    assert body["protocol"] == {"qsm": {"lam": 500}}
    study = Study.objects.get(pk=body["id"])
    assert study.created_by == staff
    assert Membership.objects.get(study=study).user == staff
    edit = client.patch(f"/api/v1/studies/{study.pk}/", {"description": "e"}, format="json")
    assert edit.status_code == 200


def test_it_refuses_a_second_study_of_the_same_name(staff, study):
    response = client_for(staff).post("/api/v1/studies/", {"name": study.name}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "a study named 'MS 7T QSM' already exists",
        "code": "conflict",
        "field": "name",
    }


def test_it_says_why_study_creation_is_forbidden(admin):
    response = client_for(admin).post("/api/v1/studies/", {"name": "x"}, format="json")

    assert response.status_code == 403
    assert response.json() == {"detail": "only staff can create studies", "code": "forbidden"}


def test_it_refuses_an_invalid_protocol_with_its_message(study, admin):
    response = client_for(admin).patch(
        f"/api/v1/studies/{study.pk}/", {"protocol": {"qsm": {"lam": -1}}}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "protocol.qsm: lam must be within [0.001, 1e+07], got -1",
        "code": "invalid",
        "field": "protocol",
    }


def test_it_refuses_an_unknown_field_instead_of_ignoring_it(study, admin):
    response = client_for(admin).patch(
        f"/api/v1/studies/{study.pk}/", {"descripton": "typo"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["detail"] == (
        "unknown field(s): descripton; allowed: description, field_strength_t, name, protocol"
    )
    assert response.json()["field"] == "descripton"


def test_it_refuses_an_out_of_range_field_strength(study, admin):
    response = client_for(admin).patch(
        f"/api/v1/studies/{study.pk}/", {"field_strength_t": 0}, format="json"
    )

    assert response.status_code == 400
    message = "must be a field strength in tesla (0.1-20 T), got 0"
    assert response.json() == {
        "detail": f"field_strength_t: {message}",
        "code": "invalid",
        "field": "field_strength_t",
        "errors": {"field_strength_t": [message]},
    }


def test_it_updates_a_study_for_its_admin(study, admin):
    response = client_for(admin).patch(
        f"/api/v1/studies/{study.pk}/", {"name": "Renamed", "description": "new"}, format="json"
    )

    assert response.status_code == 200
    study.refresh_from_db()
    assert (study.name, study.description) == ("Renamed", "new")


# --- members ---------------------------------------------------------------------------------


def test_it_lists_members_with_roles(study, admin, rater, pi):
    response = client_for(pi).get(f"/api/v1/studies/{study.pk}/members/")

    assert response.status_code == 200
    assert [(m["username"], m["role"]) for m in response.json()["results"]] == [
        ("admin", "admin"),
        ("pi", "pi"),
        ("rater1", "rater"),
    ]


def test_it_filters_members_by_role(study, admin, rater, rater2, pi):
    response = client_for(admin).get(f"/api/v1/studies/{study.pk}/members/?role=rater")

    assert [m["username"] for m in response.json()["results"]] == ["rater1", "rater2"]


def test_it_adds_a_member_then_changes_their_role(study, admin, outsider):
    client = client_for(admin)
    url = f"/api/v1/studies/{study.pk}/members/"

    added = client.post(url, {"username": "outsider", "role": "rater"}, format="json")
    changed = client.post(url, {"username": "outsider", "role": "pi"}, format="json")

    assert added.status_code == 201 and added.json()["role"] == "rater"
    assert changed.status_code == 200 and changed.json()["role"] == "pi"
    assert Membership.objects.get(study=study, user=outsider).role == "pi"


def test_it_refuses_an_unknown_username(study, admin):
    response = client_for(admin).post(
        f"/api/v1/studies/{study.pk}/members/", {"username": "ghost", "role": "rater"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "no user named 'ghost'", "code": "invalid", "field": "username"}


def test_it_keeps_the_last_admin(study, admin):
    client = client_for(admin)

    demoted = client.post(
        f"/api/v1/studies/{study.pk}/members/", {"username": "admin", "role": "rater"}, format="json"
    )
    removed = client.delete(f"/api/v1/studies/{study.pk}/members/{admin.pk}/")

    message = "admin is the study's only admin; make another member admin first"
    assert (demoted.status_code, demoted.json()["detail"]) == (409, message)
    assert (removed.status_code, removed.json()["detail"]) == (409, message)
    assert Membership.objects.get(study=study, user=admin).role == "admin"


def test_it_removes_a_member(study, admin, rater):
    response = client_for(admin).delete(f"/api/v1/studies/{study.pk}/members/{rater.pk}/")

    assert response.status_code == 204
    assert not Membership.objects.filter(study=study, user=rater).exists()
    assert client_for(rater).get(f"/api/v1/studies/{study.pk}/").status_code == 404


def test_it_answers_404_for_removing_a_non_member(study, admin, outsider):
    response = client_for(admin).delete(f"/api/v1/studies/{study.pk}/members/{outsider.pk}/")

    assert response.status_code == 404
    assert response.json()["detail"] == "no such member of this study"


# --- subjects and sessions -------------------------------------------------------------------


def test_it_creates_a_subject_with_clinical_data(study, admin):
    response = client_for(admin).post(
        "/api/v1/subjects/",
        {"study": study.pk, "code": "P02", "sex": "M", "age_years": 35.5, "phenotype": "SPMS",
         "extra": {"edss": 3.5}},
        format="json",
    )

    assert response.status_code == 201, response.content
    subject = Subject.objects.get(pk=response.json()["id"])
    assert (subject.code, subject.sex, subject.age_years, subject.phenotype) == (
        "P02", "M", 35.5, "SPMS",
    )
    assert subject.extra == {"edss": 3.5}


def test_it_refuses_a_duplicate_subject_code(study, admin, subject):
    response = client_for(admin).post(
        "/api/v1/subjects/", {"study": study.pk, "code": "P01"}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["detail"] == "subject 'P01' already exists in study 'MS 7T QSM'"


def test_it_refuses_an_unknown_phenotype(study, admin):
    response = client_for(admin).post(
        "/api/v1/subjects/", {"study": study.pk, "code": "P9", "phenotype": "XX"}, format="json"
    )

    assert response.status_code == 400
    message = '"XX" is not a valid choice.'
    assert response.json() == {
        "detail": f"phenotype: {message}", "code": "invalid", "field": "phenotype", "errors": {"phenotype": [message]}
    }


def test_it_gives_a_new_session_the_studys_field_strength(other_study, other_admin):
    subject = Subject.objects.create(study=other_study, code="S1")

    response = client_for(other_admin).post(
        "/api/v1/sessions/",
        {"subject": subject.pk, "label": "01", "scan_date": "2024-03-01"},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["field_strength_t"], body["scan_date"], body["study"]) == (
        3.0, "2024-03-01", other_study.pk,
    )


def test_it_refuses_a_duplicate_session_label(admin, session):
    response = client_for(admin).post(
        "/api/v1/sessions/", {"subject": session.subject_id, "label": " 01 "}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["detail"] == "subject 'P01' already has a session '01'"


def test_it_renames_a_session(admin, session):
    response = client_for(admin).patch(
        f"/api/v1/sessions/{session.pk}/", {"label": "02", "scanner": "Terra"}, format="json"
    )

    assert response.status_code == 200
    session.refresh_from_db()
    assert (session.label, session.scanner) == ("02", "Terra")


# --- pages, filters, ordering ----------------------------------------------------------------


@pytest.fixture
def many_subjects(study, admin) -> list[Subject]:
    phenotypes = ["RRMS", "SPMS", "PPMS"]
    return [
        Subject.objects.create(study=study, code=f"S{i:02d}", phenotype=phenotypes[i % 3])
        for i in range(7)
    ]


def test_it_pages_with_a_client_chosen_size(admin, many_subjects):
    client = client_for(admin)

    first = client.get("/api/v1/subjects/?page_size=3").json()
    last = client.get("/api/v1/subjects/?page_size=3&page=3").json()

    assert first["count"] == 7
    assert [s["code"] for s in first["results"]] == ["S00", "S01", "S02"]
    assert first["next"].endswith("page=2&page_size=3")
    assert [s["code"] for s in last["results"]] == ["S06"]
    assert last["next"] is None


def test_it_caps_the_page_size(admin, many_subjects):
    response = client_for(admin).get("/api/v1/subjects/?page_size=100000")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 7


def test_it_answers_404_for_a_page_past_the_end(admin, many_subjects):
    response = client_for(admin).get("/api/v1/subjects/?page=9")

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page.", "code": "not_found"}


def test_it_filters_subjects_by_phenotype_code_and_study(study, other_study, superuser, many_subjects):
    Subject.objects.create(study=other_study, code="S00", phenotype="RRMS")
    client = client_for(superuser)

    def codes(query: str) -> list[tuple[int, str]]:
        results = client.get(f"/api/v1/subjects/?{query}").json()["results"]
        return [(s["study"], s["code"]) for s in results]

    assert codes(f"phenotype=RRMS&study={study.pk}") == [
        (study.pk, "S00"), (study.pk, "S03"), (study.pk, "S06"),
    ]
    assert codes("code=S00") == [(study.pk, "S00"), (other_study.pk, "S00")]
    assert codes(f"study={other_study.pk}") == [(other_study.pk, "S00")]


def test_it_orders_by_a_chosen_field(admin, many_subjects):
    response = client_for(admin).get("/api/v1/subjects/?ordering=-code&page_size=2")

    assert [s["code"] for s in response.json()["results"]] == ["S06", "S05"]


def test_it_gives_an_empty_page_when_filtering_on_an_invisible_study(rater, other_study):
    Subject.objects.create(study=other_study, code="X1")

    response = client_for(rater).get(f"/api/v1/subjects/?study={other_study.pk}")

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_it_filters_sessions_by_study_and_subject(world: World):
    client = world.client("superuser")
    extra = Session.objects.create(subject=world.own.subject, label="02")

    by_study = client.get(f"/api/v1/sessions/?study={world.own.study.pk}").json()["results"]
    by_subject = client.get(f"/api/v1/sessions/?subject={world.other.subject.pk}").json()["results"]

    assert [s["id"] for s in by_study] == [world.own.session.pk, extra.pk]
    assert [s["id"] for s in by_subject] == [world.other.session.pk]
    assert by_study[0]["subject_code"] == "P01"
