"""PIPL personal data: masked phones with an audited reveal, consent records (care needs,
leaderboard) withdrawn at once, guardians of minors, downloading one's data, and erasure that
keeps the points ledger whole."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.auth.models import User
from portal.certificates.models import Certificate
from portal.certificates.services import new_number
from portal.core.timeutil import local_today
from portal.extensions import db
from portal.help.models import Category, HelpRequest
from portal.notifications.models import Notification
from portal.people.models import Person
from portal.points import ledger, queries
from portal.points.models import PointsAccount, PointsEntry, PointsTally
from portal.trust.models import AuditEntry, Consent
from portal.trust.privacy import NOTICE_VERSION

ROLES = ("resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")
HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _english(client):
    """These tests read the English texts (the default language is Chinese)."""
    client.post("/language", data={"lang": "en"})


def _audit(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _consents(person_id: int, purpose: str | None = None) -> list[Consent]:
    query = select(Consent).where(Consent.person_id == person_id).order_by(Consent.id)
    if purpose:
        query = query.where(Consent.purpose == purpose)
    return list(db.session.scalars(query))


@pytest.fixture
def elder(world, make_person):
    """A resident of A's grid 1 with a known phone."""
    return make_person(
        world.a.community, household=world.a.household, name="孙老太", phone="13822223333"
    )


# --- reveal -----------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["secretary_a", "gridworker_a"])
def test_person_page_masks_the_phone_until_revealed(client, auth, elder, username):
    auth.login(username)
    page = client.get(f"/people/{elder.id}").text
    assert "138****3333" in page and "13822223333" not in page
    assert f"/people/{elder.id}/phone" in page
    listing = client.get("/people/?q=孙老太").text
    assert "138****3333" in listing and "13822223333" not in listing
    # with masked phones a prefix search would uncover the digits: only a full number matches
    assert "孙老太" not in client.get("/people/?q=1382222").text
    assert "孙老太" in client.get("/people/?q=13822223333").text
    assert _audit("reveal") == []


@pytest.mark.parametrize("username", ["secretary_a", "gridworker_a"])
def test_staff_who_call_residents_reveal_with_an_audit_row(client, auth, world, elder, username):
    auth.login(username)
    response = client.post(f"/people/{elder.id}/phone", headers=HX)
    assert response.status_code == 200
    body = response.text
    assert "<html" not in body and 'id="phone"' in body
    assert 'href="tel:13822223333"' in body
    assert "HX-Request" in response.headers.get("Vary", "")
    [row] = _audit("reveal")
    assert (row.target_type, row.target_id, row.detail) == ("person", elder.id, "phone")
    assert row.actor_name == username and row.community_id == world.a.community.id
    assert "3333" not in row.detail and "2222" not in row.detail


def test_reveal_without_javascript_shows_the_whole_page(client, auth, elder):
    auth.login("secretary_a")
    response = client.post(f"/people/{elder.id}/phone")
    assert response.status_code == 200
    assert "<html" in response.text and "13822223333" in response.text
    assert len(_audit("reveal")) == 1


@pytest.mark.parametrize("role", ["resident", "volunteer", "subdistrict_admin"])
def test_other_roles_may_not_reveal(client, auth, world, elder, role):
    auth.login(world.a.users[role].username)
    response = client.post(f"/people/{elder.id}/phone")
    assert response.status_code == 403
    assert "13822223333" not in response.text
    assert _audit("reveal") == []


def test_admin_sees_no_reveal_button(client, auth, elder):
    auth.login("admin_a")
    page = client.get(f"/people/{elder.id}").text
    assert "138****3333" in page and f"/people/{elder.id}/phone" not in page


@pytest.mark.parametrize("username", ["secretary_b", "gridworker_b"])
def test_another_community_gets_404_and_no_audit_row(client, auth, elder, username):
    auth.login(username)
    response = client.post(f"/people/{elder.id}/phone")
    assert response.status_code == 404
    assert "13822223333" not in response.text
    assert _audit("reveal") == []


def test_grid_worker_outside_their_grids_gets_404(client, auth, world, make_person):
    other = make_person(world.a.community, household=world.a.household2, phone="13833334444")
    auth.login("gridworker_a")
    assert client.post(f"/people/{other.id}/phone").status_code == 404
    assert _audit("reveal") == []


def test_reveal_needs_the_csrf_token(client, auth, elder):
    auth.login("secretary_a")
    response = client.post(f"/people/{elder.id}/phone", csrf=False)
    assert response.status_code == 400
    assert "13822223333" not in response.text
    assert _audit("reveal") == []


# --- consent: care needs ----------------------------------------------------------------------


def _person_form(world, **overrides) -> dict:
    data = {
        "building_id": str(world.a.building.id),
        "room": "101",
        "name": "周大爷",
        "phone": "13712345678",
        "sex": "male",
        "birth_year": "1940",
    }
    data.update(overrides)
    return data


def test_care_needs_write_a_consent_row(client, auth, world):
    auth.login("secretary_a")
    form = _person_form(world, lives_alone="y", care_consent="y")
    response = client.post("/people/new", data=form)
    assert response.status_code == 303
    person = db.session.scalar(select(Person).where(Person.name == "周大爷"))
    assert person.lives_alone and person.care_consent_at is not None
    [consent] = _consents(person.id)
    assert consent.purpose == "care_flags" and consent.notice_version == NOTICE_VERSION
    assert consent.recorded_by_user_id == world.a.secretary.id and consent.withdrawn_at is None
    assert consent.community_id == world.a.community.id
    assert [r.target_id for r in _audit("consent_given")] == [person.id]

    # saving again with consent keeps the one active row
    client.post(f"/people/{person.id}/edit", data=form)
    assert len(_consents(person.id)) == 1

    # unticking consent clears the needs and withdraws the row
    response = client.post(f"/people/{person.id}/edit", data=_person_form(world, lives_alone="y"))
    assert response.status_code == 200  # needs without consent: refused, nothing saved
    client.post(f"/people/{person.id}/edit", data=_person_form(world))
    db.session.refresh(person)
    assert not person.lives_alone and person.care_consent_at is None
    [consent] = _consents(person.id)
    assert consent.withdrawn_at is not None
    assert len(_audit("consent_withdrawn")) == 1


def _care_consent(client, auth, world, person_id: int) -> None:
    """The secretary records the person's care needs with consent."""
    auth.login("secretary_a")
    form = _person_form(world, empty_nest="y", care_consent="y")
    person = db.session.get(Person, person_id)
    form.update(name=person.name, phone=person.phone or "")
    response = client.post(f"/people/{person_id}/edit", data=form)
    assert response.status_code == 303
    auth.logout()


def test_resident_withdraws_care_consent_and_the_needs_go_at_once(client, auth, world):
    person = world.a.resident.person
    _care_consent(client, auth, world, person.id)
    db.session.refresh(person)
    assert person.empty_nest
    [consent] = _consents(person.id)

    auth.login("resident_a")
    page = client.get("/me/privacy").text
    assert "Care needs" in page or "care" in page.lower()
    assert NOTICE_VERSION in page
    response = client.post("/me/privacy/withdraw", data={"consent_id": consent.id}, headers=HX)
    assert response.status_code == 200
    assert "<html" not in response.text and 'id="consents"' in response.text
    assert response.headers.get("HX-Trigger") == "consents-changed"
    db.session.refresh(person)
    db.session.refresh(consent)
    assert consent.withdrawn_at is not None
    assert not person.empty_nest and person.care_consent_at is None
    # staff see no care needs any more
    auth.logout()
    auth.login("secretary_a")
    assert "Empty nest" not in client.get(f"/people/{person.id}").text


def test_withdraw_without_javascript_redirects(client, auth, world):
    person = world.a.resident.person
    _care_consent(client, auth, world, person.id)
    [consent] = _consents(person.id)
    auth.login("resident_a")
    response = client.post("/me/privacy/withdraw", data={"consent_id": consent.id})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/me/privacy#consents")


@pytest.mark.parametrize("username", ["volunteer_a", "secretary_a", "resident_b", "admin_a"])
def test_nobody_else_withdraws_a_consent(client, auth, world, username):
    person = world.a.resident.person
    _care_consent(client, auth, world, person.id)
    [consent] = _consents(person.id)
    auth.login(username)
    response = client.post("/me/privacy/withdraw", data={"consent_id": consent.id})
    assert response.status_code == 404
    db.session.refresh(consent)
    db.session.refresh(person)
    assert consent.withdrawn_at is None and person.empty_nest


@pytest.mark.parametrize("value", ["", "abc", "0", "-1", str(2**70)])
def test_withdraw_with_a_nonsense_id_is_not_found(client, auth, world, value):
    auth.login("resident_a")
    assert client.post("/me/privacy/withdraw", data={"consent_id": value}).status_code == 404


# --- consent: leaderboard ---------------------------------------------------------------------


def _on_board(world, person_id: int) -> bool:
    board = queries.Board(
        scope="community",
        period="all",
        key=queries.period_key("all", local_today()),
        community_id=world.a.community.id,
    )
    return person_id in [row.person_id for row in queries.board_page(board, 1).items]


def test_leaderboard_consent_is_recorded_and_withdrawn_at_once(client, auth, world):
    person = world.a.volunteer.person
    ledger.adjust(
        person.id, points=30, hours=Decimal(1), reason="开账", actor_id=world.a.secretary.id
    )
    db.session.commit()
    auth.login("volunteer_a")
    assert client.post("/points/listing", data={"listed": "y"}).status_code == 303
    [consent] = _consents(person.id, "leaderboard")
    assert consent.withdrawn_at is None and consent.notice_version == NOTICE_VERSION
    assert consent.recorded_by_user_id == world.a.volunteer.id
    assert _on_board(world, person.id)
    assert "Appearing on leaderboards" in client.get("/me/privacy").text

    # withdrawn on the privacy page: the board stops showing the person at once
    response = client.post("/me/privacy/withdraw", data={"consent_id": consent.id})
    assert response.status_code == 303
    db.session.refresh(consent)
    assert consent.withdrawn_at is not None
    assert db.session.get(PointsAccount, person.id).listed is False
    assert not _on_board(world, person.id)

    # opting in again is a new row; opting out on the points page withdraws it
    client.post("/points/listing", data={"listed": "y"})
    assert _on_board(world, person.id)
    client.post("/points/listing", data={}, headers=HX)
    rows = _consents(person.id, "leaderboard")
    assert len(rows) == 2 and all(r.withdrawn_at is not None for r in rows)
    assert not _on_board(world, person.id)
    assert db.session.get(PointsAccount, person.id).balance == 30


# --- the privacy page -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_a_privacy_page(client, auth, world, role):
    auth.login(world.a.users[role].username)
    response = client.get("/me/privacy")
    assert response.status_code == 200
    page = response.text
    assert "Privacy notice" in page and NOTICE_VERSION in page
    assert "/me/data" in page
    assert ("/me/erase" in page) == (role in ("resident", "volunteer"))


def test_anonymous_is_sent_to_sign_in(client):
    for url in ("/me/privacy", "/me/data", "/me/erase"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.post("/me/privacy/withdraw", data={"consent_id": 1}).status_code == 302


def test_the_privacy_page_shows_only_my_consents(client, auth, world):
    _care_consent(client, auth, world, world.a.volunteer.person.id)
    auth.login("resident_a")
    page = client.get("/me/privacy").text
    assert "No consents recorded" in page
    assert world.a.volunteer.person.name not in page


# --- minors and guardians ---------------------------------------------------------------------


def _child_form(world, **overrides) -> dict:
    return _person_form(
        world, name="小明", phone="", birth_year=str(local_today().year - 10), **overrides
    )


def test_a_minor_needs_a_guardian(client, auth, world):
    auth.login("secretary_a")
    response = client.post("/people/new", data=_child_form(world))
    assert response.status_code == 200
    assert "under 14" in response.text and "guardian" in response.text
    assert db.session.scalar(select(Person).where(Person.name == "小明")) is None


@pytest.mark.parametrize("username", ["secretary_a", "gridworker_a"])
def test_a_minor_is_registered_with_a_guardian(client, auth, world, username):
    guardian = world.a.resident.person
    auth.login(username)
    response = client.post("/people/new", data=_child_form(world, guardian=guardian.phone))
    assert response.status_code == 303, response.text
    child = db.session.scalar(select(Person).where(Person.name == "小明"))
    assert child.guardian_person_id == guardian.id
    page = client.get(f"/people/{child.id}").text
    assert guardian.name in page
    # editing keeps the guardian when the field is left empty
    response = client.post(f"/people/{child.id}/edit", data=_child_form(world))
    assert response.status_code == 303
    db.session.refresh(child)
    assert child.guardian_person_id == guardian.id


def test_guardian_by_exact_name(client, auth, world, make_person):
    adult = make_person(world.a.community, name="独一无二", birth_year=1980)
    auth.login("secretary_a")
    response = client.post("/people/new", data=_child_form(world, guardian="独一无二"))
    assert response.status_code == 303
    child = db.session.scalar(select(Person).where(Person.name == "小明"))
    assert child.guardian_person_id == adult.id


@pytest.mark.parametrize("case", ["other_community", "minor", "unknown", "ambiguous"])
def test_an_unfit_guardian_is_refused(client, auth, world, make_person, case):
    if case == "other_community":
        guardian = world.b.resident.person.phone
    elif case == "minor":
        guardian = make_person(world.a.community, birth_year=local_today().year - 16).phone
    elif case == "unknown":
        guardian = "13000000000"
    else:
        make_person(world.a.community, name="同名")
        make_person(world.a.community, name="同名")
        guardian = "同名"
    auth.login("secretary_a")
    response = client.post("/people/new", data=_child_form(world, guardian=guardian))
    assert response.status_code == 200
    assert 'id="guardian-msg"><p class="error">' in response.text
    assert db.session.scalar(select(Person).where(Person.name == "小明")) is None


def test_an_adult_needs_no_guardian(client, auth, world):
    auth.login("secretary_a")
    response = client.post("/people/new", data=_person_form(world, birth_year="1990"))
    assert response.status_code == 303


def test_guardian_sees_and_withdraws_the_minors_consents(client, auth, world, make_person):
    guardian = world.a.resident.person
    child = make_person(
        world.a.community,
        name="小红",
        phone=None,
        birth_year=local_today().year - 8,
        guardian_person_id=guardian.id,
    )
    _care_consent(client, auth, world, child.id)
    [consent] = _consents(child.id)
    auth.login("resident_a")
    page = client.get("/me/privacy").text
    assert "小红" in page and f'value="{consent.id}"' in page
    response = client.post("/me/privacy/withdraw", data={"consent_id": consent.id}, headers=HX)
    assert response.status_code == 200
    db.session.refresh(child)
    db.session.refresh(consent)
    assert consent.withdrawn_at is not None and not child.empty_nest
    # someone who is not the guardian sees nothing of the child
    auth.logout()
    auth.login("volunteer_a")
    assert "小红" not in client.get("/me/privacy").text


# --- download my data -------------------------------------------------------------------------


@pytest.fixture
def history(world):
    """Rows about resident A and about others around them (a household mate, a helper)."""
    a = world.a
    me = a.resident.person
    me.phone = "13566667777"
    mate = a.volunteer.person  # lives in the same household
    mate.phone = "13588889999"
    major = Category(community_id=a.community.id, code="help", name_zh="帮助", name_en="Help")
    db.session.add(major)
    db.session.flush()
    minor = Category(
        community_id=a.community.id, parent_id=major.id, code="help.shopping",
        name_zh="代购", name_en="Shopping", handler="volunteer_pool", time_limit_hours=24,
        kind="neighbour_help",
    )  # fmt: skip
    db.session.add(minor)
    db.session.flush()
    mine = HelpRequest(
        community_id=a.community.id, grid_id=a.grid.id, category_id=minor.id,
        requester_id=me.id, created_by_id=a.resident.id, description="买药，谢谢",
        household_id=a.household.id, volunteer_id=mate.id, status="dispatched",
    )  # fmt: skip
    theirs = HelpRequest(
        community_id=a.community.id, grid_id=a.grid.id, category_id=minor.id,
        requester_id=mate.id, created_by_id=a.volunteer.id, description="别人的秘密",
    )  # fmt: skip
    db.session.add_all([mine, theirs])
    db.session.add(
        Notification(
            community_id=a.community.id, user_id=a.resident.id, kind="request_dispatched",
            params={"number": "1"}, link="/", dedupe_key="mine",
        )
    )  # fmt: skip
    db.session.add(
        Notification(
            community_id=a.community.id, user_id=a.volunteer.id, kind="request_dispatched",
            params={"number": "2"}, link="/", dedupe_key="theirs",
        )
    )  # fmt: skip
    ledger.adjust(me.id, points=40, hours=Decimal(2), reason="巡逻补录", actor_id=a.secretary.id)
    ledger.adjust(
        mate.id, points=70, hours=Decimal(3), reason="别人的积分", actor_id=a.secretary.id
    )
    db.session.add(
        Certificate(
            number=new_number(2030), person_id=me.id, community_id=a.community.id,
            holder_name=me.name, id_number_masked="110105********123X",
            community_name=a.community.name, period_start=date(2030, 1, 1),
            period_end=date(2030, 1, 31), total_hours=Decimal(2), activity_count=1, activities=[],
        )
    )  # fmt: skip
    db.session.commit()
    return world


def _download(client) -> dict:
    response = client.get("/me/data")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    return json.loads(response.data)


def test_download_holds_my_rows_and_nothing_of_others(client, auth, history):
    a = history.a
    me, mate = a.resident.person, a.volunteer.person
    _care_consent(client, auth, history, me.id)
    auth.login("resident_a")
    data = _download(client)
    raw = json.dumps(data, ensure_ascii=False)
    assert data["person"]["name"] == me.name and data["person"]["phone"] == "13566667777"
    assert data["person"]["care_flags"] == ["empty_nest"]
    assert data["account"]["username"] == "resident_a"
    assert data["household"]["room"] == "101" and data["household"]["estate"] == "A花园"
    assert [e["points"] for e in data["points_ledger"]] == [40]
    assert data["points_account"]["balance"] == 40
    [req] = data["help_requests"]
    assert req["description"] == "买药，谢谢" and req["my_part"] == "requester"
    assert req["volunteer"] == mate.name[0] + "*" * (len(mate.name) - 2) + mate.name[-1]
    assert [n["params"]["number"] for n in data["notifications"]] == ["1"]
    assert data["certificates"][0]["id_number_masked"] == "110105********123X"
    assert [c["purpose"] for c in data["consents"]] == ["care_flags"]
    # nothing about the household mate, and no secrets
    assert mate.name not in raw and "13588889999" not in raw
    assert "别人的秘密" not in raw and "别人积分" not in raw
    user = db.session.get(User, a.resident.id)
    assert user.password_hash not in raw and user.session_token not in raw
    assert "password" not in raw and "session_token" not in raw
    [row] = _audit("data_download")
    assert row.actor_user_id == a.resident.id and row.target_id == me.id


@pytest.mark.parametrize("role", ROLES)
def test_every_role_downloads_only_their_own(client, auth, history, role):
    user = history.a.users[role]
    auth.login(user.username)
    data = _download(client)
    assert data["account"]["username"] == user.username
    raw = json.dumps(data, ensure_ascii=False)
    others = [u for r, u in history.a.users.items() if r != role and u.person is not None]
    for other in [*others, history.b.resident]:
        assert other.person.name not in raw
        if other.person.phone:
            assert other.person.phone not in raw
    if role == "subdistrict_admin":
        assert data["person"] is None
    assert len(_audit("data_download")) == 1


# --- erasure ----------------------------------------------------------------------------------


def _totals(person_id: int) -> tuple:
    account = db.session.get(PointsAccount, person_id)
    tallies = db.session.execute(
        select(PointsTally.period, PointsTally.points, PointsTally.hours, PointsTally.activities)
        .where(PointsTally.person_id == person_id)
        .order_by(PointsTally.period)
    ).all()
    ledger_sum = db.session.scalar(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
            PointsEntry.person_id == person_id
        )
    )
    return account.balance, account.earned, account.hours, ledger_sum, [tuple(t) for t in tallies]


def test_erasure_anonymises_and_keeps_the_points(client, auth, history):
    a = history.a
    me = a.resident.person
    person_id, user_id = me.id, a.resident.id
    _care_consent(client, auth, history, person_id)
    auth.login("resident_a")
    client.post("/points/listing", data={"listed": "y"})
    before = _totals(person_id)
    old_token = db.session.get(User, user_id).session_token
    assert before[0] == 40

    assert client.get("/me/erase").status_code == 200
    response = client.post("/me/erase", data={"password": "tongxin-test-pass"})
    assert response.status_code == 303 and "/login" in response.headers["Location"]

    person = db.session.get(Person, person_id)
    assert person.name == f"已注销{person_id}"
    assert person.phone is None and person.sex is None and person.birth_year is None
    assert not person.care_flags and person.care_consent_at is None
    assert person.household_id is None and person.erased_at is not None
    user = db.session.get(User, user_id)
    assert user.active is False and user.session_token != old_token
    assert user.username == f"erased-{user_id}" and not user.check_password("tongxin-test-pass")
    assert all(c.withdrawn_at is not None for c in _consents(person_id))
    assert db.session.get(PointsAccount, person_id).listed is False
    assert _totals(person_id) == before  # ledger rows, balance and tallies unchanged
    cert = db.session.scalar(select(Certificate).where(Certificate.person_id == person_id))
    assert cert.holder_name == person.name and cert.id_number_masked == ""
    assert (
        db.session.scalar(
            select(func.count()).select_from(Notification).where(Notification.user_id == user_id)
        )
        == 0
    )
    [row] = _audit("erasure")
    assert row.target_id == person_id and row.actor_name == f"erased-{user_id}"

    # the old session is gone and the old credentials open nothing
    assert client.get("/me/privacy").status_code == 302
    response = client.post(
        "/login", data={"identifier": "resident_a", "password": "tongxin-test-pass"}
    )
    assert response.status_code != 303
    # staff see the anonymised record only
    auth.login("secretary_a")
    page = client.get(f"/people/{person_id}").text
    assert f"已注销{person_id}" in page and "13566667777" not in page


def test_a_replayed_cookie_after_erasure_is_refused(app, client, auth, history):
    auth.login("resident_a")
    cookie = client.get_cookie("session")
    client.post("/me/erase", data={"password": "tongxin-test-pass"})
    replay = app.test_client()
    replay.set_cookie("session", cookie.value)
    assert replay.get("/me/privacy").status_code == 302


def test_a_wrong_password_erases_nothing(client, auth, history):
    person_id = history.a.resident.person.id
    auth.login("resident_a")
    response = client.post("/me/erase", data={"password": "not-my-password"})
    assert response.status_code == 200
    assert "The password is wrong" in response.text
    person = db.session.get(Person, person_id)
    assert person.name == history.a.resident.person.name and person.erased_at is None
    assert db.session.get(User, history.a.resident.id).active is True
    assert _audit("erasure") == []
    assert client.post("/me/erase", data={}).status_code == 200
    assert db.session.get(Person, person_id).erased_at is None


@pytest.mark.parametrize("role", ["grid_worker", "secretary", "subdistrict_admin"])
def test_staff_accounts_cannot_erase_themselves(client, auth, world, role):
    user = world.a.users[role]
    auth.login(user.username)
    assert client.get("/me/erase").status_code == 403
    response = client.post("/me/erase", data={"password": "tongxin-test-pass"})
    assert response.status_code == 403
    assert db.session.get(User, user.id).active is True
    assert _audit("erasure") == []


def test_erasing_a_guardian_unlinks_their_minors(client, auth, world, make_person):
    guardian = world.a.resident.person
    child = make_person(
        world.a.community, birth_year=local_today().year - 5, guardian_person_id=guardian.id
    )
    auth.login("resident_a")
    client.post("/me/erase", data={"password": "tongxin-test-pass"})
    db.session.refresh(child)
    assert child.guardian_person_id is None
    auth.login("secretary_a")
    assert "needs a guardian" in client.get(f"/people/{child.id}").text


def test_recent_birth_years_count_as_minors():
    from portal.trust.privacy import may_be_minor

    today = date(2026, 11, 28)
    assert may_be_minor(2012, today) and may_be_minor(2020, today)
    assert not may_be_minor(2011, today) and not may_be_minor(None, today)
    assert may_be_minor(today.year - 14, today + timedelta(days=0))
