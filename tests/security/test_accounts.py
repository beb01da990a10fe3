"""Account management: a secretary manages their community's accounts, a subdistrict admin those
of their subdistrict. Role changes and disabling end the account's sessions at once and are
audited; another community's account answers 404; posted roles and communities outside the
allowed set change nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.auth.models import User
from portal.extensions import db
from portal.places.models import grid_worker
from portal.trust.models import AuditEntry
from tests.factories import PASSWORD, make_user


def to_english(client):
    client.post("/language", data={"lang": "en"})


def signed_in(app, username: str):
    browser = app.test_client()
    response = browser.post("/login", data={"identifier": username, "password": PASSWORD})
    assert response.status_code == 303
    return browser


def reload(user: User) -> User:
    db.session.commit()
    db.session.refresh(user)
    return user


def audit(action: str) -> list[AuditEntry]:
    db.session.commit()
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


# --- who may use it ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["resident", "volunteer", "grid_worker"])
@pytest.mark.parametrize("htmx", [False, True])
def test_other_roles_are_refused(client, auth, world, role, htmx):
    auth.login(world.a.users[role].username)
    headers = {"HX-Request": "true"} if htmx else {}
    target = world.a.resident if role != "resident" else world.a.volunteer
    answers = [client.get("/accounts/", headers=headers)]
    for action, data in (("role", {"role": "secretary"}), ("disable", {}), ("enable", {})):
        answers.append(client.post(f"/accounts/{target.id}/{action}", data=data, headers=headers))
    for response in answers:
        if htmx:  # htmx swaps no error answer: the refusal comes for the flash area
            assert response.headers["HX-Retarget"] == "#flash"
        else:
            assert response.status_code == 403
        assert "account-results" not in response.get_data(as_text=True)
    assert reload(target).role in ("resident", "volunteer") and target.active


def test_signed_out_visitors_go_to_sign_in(client, world):
    response = client.get("/accounts/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    response = client.post(f"/accounts/{world.a.resident.id}/disable")
    assert response.status_code == 302
    assert reload(world.a.resident).active


# --- the list ----------------------------------------------------------------------------------


def test_secretary_lists_own_community_with_masked_phones(client, auth, world):
    auth.login("secretary_a")
    page = client.get("/accounts/").get_data(as_text=True)
    for user in world.a.users.values():
        if user.role != "subdistrict_admin":
            assert user.username in page
    for user in world.b.users.values():
        assert user.username not in page
    assert "admin_a" not in page
    phone = world.a.resident.person.phone
    assert phone not in page
    assert phone[:3] + "****" + phone[-4:] in page


def test_subdistrict_admin_lists_the_communities_of_the_subdistrict(client, auth, world):
    auth.login("admin_a")
    page = client.get("/accounts/").get_data(as_text=True)
    assert "secretary_a" in page and "resident_a" in page
    assert "secretary_b" not in page and "resident_b" not in page
    assert world.a.community.name in page  # the community column


def test_search_by_username_and_name_with_htmx_fragment(client, auth, world):
    auth.login("secretary_a")
    response = client.get("/accounts/?q=gridworker", headers={"HX-Request": "true"})
    page = response.get_data(as_text=True)
    assert "<html" not in page and 'id="account-results"' in page
    assert "HX-Request" in response.headers["Vary"]
    assert "gridworker_a" in page and "resident_a" not in page
    name = world.a.resident.person.name
    page = client.get("/accounts/", query_string={"q": name}).get_data(as_text=True)
    assert "resident_a" in page and "gridworker_a" not in page
    # LIKE wildcards are plain characters
    page = client.get("/accounts/?q=%25").get_data(as_text=True)
    assert "resident_a" not in page


def test_list_is_paginated(client, app, auth, world):
    app.config["PAGE_SIZE"] = 2
    auth.login("secretary_a")
    first = client.get("/accounts/").get_data(as_text=True)
    assert first.count('<tr id="account-') == 2
    assert 'href="/accounts/?page=2"' in first
    assert client.get("/accounts/?page=2").get_data(as_text=True).count('<tr id="account-') == 2
    third = client.get("/accounts/?page=3").get_data(as_text=True)
    assert third.count('<tr id="account-') == 1


def test_own_and_higher_accounts_have_no_controls(client, auth, world):
    auth.login("secretary_a")
    page = client.get("/accounts/").get_data(as_text=True)
    assert f"/accounts/{world.a.secretary.id}/role" not in page
    assert f"/accounts/{world.a.resident.id}/role" in page
    assert 'value="subdistrict_admin"' not in page


# --- changing a role ---------------------------------------------------------------------------


def test_role_change_ends_sessions_and_is_audited(client, app, auth, world):
    victim = signed_in(app, "resident_a")
    assert victim.get("/").status_code == 200
    auth.login("secretary_a")
    response = client.post(
        f"/accounts/{world.a.resident.id}/role",
        data={"role": "grid_worker", "next": "/accounts/?q=resident"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/accounts/?q=resident"
    assert reload(world.a.resident).role == "grid_worker"
    # the old session ends at its next request
    answer = victim.get("/")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    (entry,) = audit("role_changed")
    assert entry.detail == "resident→grid_worker"
    assert (entry.actor_user_id, entry.target_id) == (world.a.secretary.id, world.a.resident.id)
    assert entry.community_id == world.a.community.id
    # the person signs in again and works with the new role
    assert signed_in(app, "resident_a").get("/").status_code == 200


def test_a_former_grid_worker_keeps_no_grids(client, auth, world):
    auth.login("secretary_a")
    client.post(f"/accounts/{world.a.gridworker.id}/role", data={"role": "resident"})
    assert reload(world.a.gridworker).role == "resident"
    count = db.session.scalar(
        select(func.count())
        .select_from(grid_worker)
        .where(grid_worker.c.user_id == world.a.gridworker.id)
    )
    assert count == 0


@pytest.mark.parametrize("role", ["subdistrict_admin", "root", "", "Secretary"])
def test_roles_outside_the_allowed_set_are_refused(client, auth, world, role):
    auth.login("secretary_a")
    to_english(client)
    token_before = reload(world.a.resident).session_token
    response = client.post(f"/accounts/{world.a.resident.id}/role", data={"role": role})
    assert response.status_code == 303
    assert "Choose one of the roles offered." in client.get("/accounts/").get_data(as_text=True)
    assert reload(world.a.resident).role == "resident"
    assert world.a.resident.session_token == token_before
    assert audit("role_changed") == []


def test_posted_community_is_ignored(client, auth, world):
    auth.login("secretary_a")
    client.post(
        f"/accounts/{world.a.resident.id}/role",
        data={"role": "volunteer", "community_id": world.b.community.id},
    )
    user = reload(world.a.resident)
    assert (user.role, user.community_id) == ("volunteer", world.a.community.id)


def test_no_change_to_ones_own_account(client, auth, world):
    auth.login("secretary_a")
    to_english(client)
    client.post(f"/accounts/{world.a.secretary.id}/role", data={"role": "resident"})
    client.post(f"/accounts/{world.a.secretary.id}/disable")
    page = client.get("/accounts/").get_data(as_text=True)
    assert "You cannot change your own account here." in page
    me = reload(world.a.secretary)
    assert (me.role, me.active) == ("secretary", True)


def test_a_secretary_may_appoint_but_not_demote_another_secretary(client, auth, world):
    auth.login("secretary_a")
    to_english(client)
    client.post(f"/accounts/{world.a.resident.id}/role", data={"role": "secretary"})
    assert reload(world.a.resident).role == "secretary"
    client.post(f"/accounts/{world.a.resident.id}/role", data={"role": "resident"})
    client.post(f"/accounts/{world.a.resident.id}/disable")
    page = client.get("/accounts/").get_data(as_text=True)
    assert "Only a higher-ranking account can change this account." in page
    user = reload(world.a.resident)
    assert (user.role, user.active) == ("secretary", True)


def test_subdistrict_admin_manages_a_secretary(client, app, auth, world):
    victim = signed_in(app, "secretary_a")
    auth.login("admin_a")
    client.post(f"/accounts/{world.a.secretary.id}/role", data={"role": "grid_worker"})
    assert reload(world.a.secretary).role == "grid_worker"
    assert victim.get("/").status_code == 302
    (entry,) = audit("role_changed")
    assert entry.detail == "secretary→grid_worker" and entry.actor_user_id == world.a.admin.id


# --- disabling and enabling --------------------------------------------------------------------


def test_disabling_ends_sessions_and_sign_in_then_enabling_restores(client, app, auth, world):
    victim = signed_in(app, "volunteer_a")
    auth.login("secretary_a")
    response = client.post(f"/accounts/{world.a.volunteer.id}/disable")
    assert response.status_code == 303
    assert reload(world.a.volunteer).active is False
    assert victim.get("/").status_code == 302
    refused = app.test_client().post(
        "/login", data={"identifier": "volunteer_a", "password": PASSWORD}
    )
    assert refused.status_code == 200
    (entry,) = audit("account_disabled")
    assert entry.target_id == world.a.volunteer.id and entry.actor_user_id == world.a.secretary.id
    client.post(f"/accounts/{world.a.volunteer.id}/enable")
    assert reload(world.a.volunteer).active is True
    assert len(audit("account_enabled")) == 1
    assert signed_in(app, "volunteer_a").get("/").status_code == 200


# --- another community -------------------------------------------------------------------------


@pytest.mark.parametrize("manager", ["secretary_a", "admin_a"])
@pytest.mark.parametrize("action", ["role", "disable", "enable"])
def test_another_communitys_account_answers_404(client, auth, world, manager, action):
    auth.login(manager)
    target = world.b.resident
    response = client.post(f"/accounts/{target.id}/{action}", data={"role": "volunteer"})
    assert response.status_code == 404
    user = reload(target)
    assert (user.role, user.active) == ("resident", True)


@pytest.mark.parametrize("target", ["admin_a", "admin_b"])
def test_subdistrict_admin_accounts_are_out_of_reach(client, auth, world, target):
    auth.login("secretary_a")
    user = db.session.scalar(select(User).where(User.username == target))
    assert client.post(f"/accounts/{user.id}/disable").status_code == 404
    assert client.post(f"/accounts/{user.id}/role", data={"role": "resident"}).status_code == 404
    assert reload(user).active


def test_admin_of_another_subdistrict_answers_404(client, auth, world):
    extra = make_user("resident", world.a.community, username="extra_a")
    auth.login("admin_b")
    assert client.post(f"/accounts/{extra.id}/disable").status_code == 404
    page = client.get("/accounts/?q=extra").get_data(as_text=True)
    assert "extra_a" not in page


def test_unknown_and_huge_ids_answer_404(client, auth, world):
    auth.login("secretary_a")
    assert client.post("/accounts/999999/disable").status_code == 404
    assert client.post(f"/accounts/{2**63}/disable").status_code == 404


def test_actions_need_the_csrf_token(client, auth, world):
    auth.login("secretary_a")
    response = client.post(f"/accounts/{world.a.resident.id}/disable", csrf=False)
    assert response.status_code == 400
    assert reload(world.a.resident).active


def test_offsite_next_is_ignored(client, auth, world):
    auth.login("secretary_a")
    for target in ("https://evil.example/", "//evil.example/accounts/", "/accounts//evil"):
        response = client.post(
            f"/accounts/{world.a.resident.id}/role", data={"role": "volunteer", "next": target}
        )
        assert response.headers["Location"] == "/accounts/"
