"""The queue of self-registered accounts waiting to be matched to a household (issue 15,
part 5): who sees it, matching with htmx and without JavaScript, errors, scope."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.auth.models import User
from portal.extensions import db
from portal.trust.models import AuditEntry
from tests import factories
from tests.factories import PASSWORD
from tests.helpers import post_in_parallel

QUEUE = "/people/accounts/unverified"
HX = {"HX-Request": "true"}


def newcomer(side, username: str, phone: str = "13700000001") -> User:
    """A self-registered account as sign-up leaves it: unverified, the phone kept aside."""
    person = factories.make_person(side.community, name=f"新{username}", phone=None)
    user = factories.make_user(
        "resident", side.community, username=username, person=person,
        verified=False, signup_phone=phone,
    )  # fmt: skip
    db.session.commit()
    return user


def match_url(user: User) -> str:
    return f"/people/accounts/{user.id}/match"


def english(client) -> None:
    client.post("/language", data={"lang": "en"})


@pytest.mark.parametrize("username", ["secretary_a", "gridworker_a"])
def test_handlers_see_their_communitys_waiting_accounts(client, auth, world, username):
    newcomer(world.a, "comer_a")
    newcomer(world.b, "comer_b", phone="13700000002")
    auth.login(username)
    page = client.get(QUEUE).get_data(as_text=True)
    assert "comer_a" in page and "137****0001" in page
    assert "comer_b" not in page and "resident_a" not in page  # verified accounts are not listed
    assert "待匹配账号" in page


@pytest.mark.parametrize("username", ["resident_a", "volunteer_a", "admin_a"])
def test_others_may_not_open_the_queue(client, auth, world, username):
    comer = newcomer(world.a, "comer_a")
    auth.login(username)
    assert client.get(QUEUE).status_code == 403
    data = {"building_id": world.a.building.id, "room": "101"}
    assert client.post(match_url(comer), data=data).status_code == 403


def test_matching_with_htmx_swaps_the_row_and_opens_the_community(app, client, auth, world):
    comer = newcomer(world.a, "comer_a")
    auth.login("secretary_a")
    english(client)
    response = client.post(
        match_url(comer),
        data={"building_id": world.a.building.id, "room": "101"},
        headers=HX,
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in page
    assert f'id="unverified-{comer.id}"' in page and "is matched to" in page
    assert response.headers["HX-Trigger"] == "account-matched"
    assert "HX-Request" in response.headers["Vary"]
    db.session.expire_all()
    comer = db.session.get(User, comer.id)
    assert comer.verified and comer.person.household_id == world.a.household.id
    assert (comer.person.phone, comer.signup_phone) == ("13700000001", None)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "account_verified"))
    assert (entry.target_id, entry.actor_user_id) == (comer.id, world.a.secretary.id)
    # Now the account opens the community's pages.
    other = app.test_client()
    other.post("/login", data={"identifier": "comer_a", "password": PASSWORD})
    assert other.get("/shifts").status_code == 200
    # The phone typed at sign-up now signs in too.
    other.post("/logout")
    response = other.post("/login", data={"identifier": "137 0000 0001", "password": PASSWORD})
    assert response.status_code == 303


def test_matching_without_javascript_redirects_to_the_queue(client, auth, world):
    comer = newcomer(world.a, "comer_a")
    auth.login("gridworker_a")
    english(client)
    response = client.post(
        match_url(comer), data={"building_id": world.a.building.id, "room": "101"}
    )
    assert response.status_code == 303 and response.headers["Location"] == QUEUE
    page = client.get(QUEUE).get_data(as_text=True)
    assert "is matched to" in page and "No account is waiting to be matched." in page


def test_a_wrong_room_is_shown_on_the_row_and_nothing_changes(client, auth, world):
    comer = newcomer(world.a, "comer_a")
    auth.login("secretary_a")
    english(client)
    data = {"building_id": world.a.building.id, "room": "999"}
    response = client.post(match_url(comer), data=data, headers=HX)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in page
    assert "No household with this room in this building" in page and 'value="999"' in page
    response = client.post(match_url(comer), data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in page
    assert "No household with this room in this building" in page
    db.session.expire_all()
    assert not db.session.get(User, comer.id).verified


def test_a_grid_worker_matches_only_into_their_grids(client, auth, world):
    comer = newcomer(world.a, "comer_a")
    auth.login("gridworker_a")  # grid 1 only; building2 is in grid 2
    english(client)
    data = {"building_id": world.a.building2.id, "room": "201"}
    page = client.post(match_url(comer), data=data, headers=HX).get_data(as_text=True)
    assert "Choose a building of your grids." in page
    db.session.expire_all()
    assert not db.session.get(User, comer.id).verified


def test_another_communitys_account_is_not_found(client, auth, world):
    comer = newcomer(world.b, "comer_b")
    auth.login("secretary_a")
    data = {"building_id": world.a.building.id, "room": "101"}
    assert client.post(match_url(comer), data=data).status_code == 404
    assert client.post(match_url(comer), data=data, headers=HX).status_code == 200  # flash
    db.session.expire_all()
    assert not db.session.get(User, comer.id).verified


def test_a_phone_held_by_another_resident_stays_with_them(client, auth, world):
    taken = world.a.resident.person.phone
    comer = newcomer(world.a, "comer_a", phone=taken)
    auth.login("secretary_a")
    client.post(match_url(comer), data={"building_id": world.a.building.id, "room": "101"})
    db.session.expire_all()
    comer = db.session.get(User, comer.id)
    assert comer.verified and comer.person.phone is None
    assert comer.signup_phone == taken  # still shown to staff, who can call and sort it out
    assert world.a.resident.person.phone == taken


def test_matching_twice_says_it_is_done(client, auth, world):
    comer = newcomer(world.a, "comer_a")
    auth.login("secretary_a")
    english(client)
    data = {"building_id": world.a.building.id, "room": "101"}
    client.post(match_url(comer), data=data)
    page = client.post(match_url(comer), data=data, headers=HX).get_data(as_text=True)
    assert "This account has been matched already." in page


def test_two_handlers_matching_at_once_match_once(app, world):
    """The secretary and the grid worker press "match" together: one wins, one is told."""
    comer = newcomer(world.a, "comer_a")
    clients = []
    for username in ("secretary_a", "gridworker_a"):
        client = app.test_client()
        client.post("/login", data={"identifier": username, "password": PASSWORD})
        client.post("/language", data={"lang": "en"})
        clients.append(client)
    data = {"building_id": world.a.building.id, "room": "101"}
    statuses = post_in_parallel(app, clients, [match_url(comer)] * 2, [data, data])
    assert sorted(statuses) == [200, 303]  # the loser's page shows "matched already"
    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "account_verified")
    ).all()
    assert len(entries) == 1
    assert db.session.get(User, comer.id).verified
