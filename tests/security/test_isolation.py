"""Community isolation, attacked from community A with two fully seeded communities.

For every route taking an id, every workflow action, list, search, export (CSV and XLSX) and
fragment: A's users get 404 for B's objects, see none of B's names, phones or codes, and change
none of B's rows; and forms ignore forged ``community_id``, ``role``, ``points``, ``person_id``.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from portal.auth.models import User
from portal.core.validators import mask_phone
from portal.extensions import db
from portal.help import workflow
from portal.help.handling_views import ACTIONS as HANDLING_ACTIONS
from portal.help.models import ApiKey, Category
from portal.people.models import Person
from portal.places.models import Building, Entrance, Estate, Grid, Household
from portal.points.models import PointsEntry
from portal.policy import rule_for
from portal.rewards.models import Reward
from portal.volunteers.models import Volunteer
from tests.security.conftest import ROLES, body_text, markers, snapshot
from tests.security.test_policy import _matrix_ids, forget_flashes
from tests.test_access_matrix import _url

FORMATS = ("csv", "xlsx")
# Forged fields posted with every form: none of them may move a row or raise a privilege.
FORGED = ("community_id", "subdistrict_id", "role", "points", "person_id", "user_id", "status")


def _methods(rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def _actions(rule) -> list[str]:
    """Every workflow action a route takes in its URL (one placeholder for other routes)."""
    if "action" not in rule.arguments:
        return [""]
    if rule.endpoint == "handling.act":
        return sorted(HANDLING_ACTIONS)
    return sorted(workflow.TRANSITIONS)


def _hostile(b, a) -> dict:
    """A form that would pass validation almost anywhere, pointing at B where it can."""
    return {
        "name": "篡改", "title": "篡改", "description": "篡改", "summary": "篡改", "note": "篡改",
        "reason": "篡改", "room": "999", "code": b.shift.checkin_code, "points": "500",
        "hours": "5", "cost": "1", "stock": "9", "capacity": "9", "outcome": "ok",
        "attendance": "present", "rating": "5", "comment": "篡改", "name_zh": "篡改",
        "name_en": "forged", "community_id": b.community.id, "person_id": b.resident.person.id,
        "grid_id": b.grid.id, "estate_id": b.estate.id, "building_id": b.building.id,
        "household_id": b.household.id, "volunteer_id": b.pending_volunteer.id,
        "consent_id": b.consent.id, "role": "secretary", "status": "approved",
    }  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
def test_b_ids_answer_404_and_change_nothing(app, client, auth, seeded, role):
    """Every route with an id, every method, every workflow action, with B's ids and a hostile
    form: 404 (403 where the policy refuses the role anyway), none of B's data shown, and not
    one row of the database changed."""
    a, b = seeded.a, seeded.b
    auth.login(a.users[role].username)
    b_ids, secret = _matrix_ids(b), set(markers(b))
    data = _hostile(b, a)
    before = snapshot()
    wrong, cases = [], 0
    for rule in app.url_map.iter_rules():
        if not rule.arguments or rule.endpoint in ("static", "auth.logout"):
            continue
        for method in _methods(rule):
            policy_rule = rule_for(rule.endpoint, method)
            if policy_rule.public:
                continue  # secret links and Open311: tests/test_access_matrix.py
            expected = 404 if policy_rule.allows(role) else 403
            for action in _actions(rule):
                ids = dict(b_ids, action=action) if action else b_ids
                url = _url(rule, ids)
                response = client.open(url, method=method, data=data)
                cases += 1
                if cases % 8 == 0:
                    forget_flashes(client)
                if response.status_code != expected:
                    wrong.append((method, url, response.status_code, expected))
                shown = [m for m in secret if m in body_text(response) and m not in url]
                if shown:
                    wrong.append((method, url, "shows", shown))
    assert wrong == []
    assert cases > 60
    assert snapshot() == before
    assert client.get("/").status_code == 200  # still signed in: every case was really tried


def _query_variants(b) -> list[tuple[str, set[str]]]:
    """Query strings that try to reach B through a list's filters or searches, with the values
    the page may echo back (what the user typed is not a leak)."""
    forged_ids = {
        "community": b.community.id, "community_id": b.community.id, "grid": b.grid.id,
        "grid_id": b.grid.id, "estate_id": b.estate.id, "household_id": b.household.id,
        "person_id": b.resident.person.id, "category": b.help_category.id,
        "major": b.help_category.parent_id, "reward": b.reward.id,
    }  # fmt: skip
    name, phone = b.resident.person.name, b.resident.person.phone
    voucher = b.redemption.voucher_code
    return [
        ("", set()),
        (urlencode(forged_ids), set()),
        (urlencode({"q": name, "code": voucher}), {name, voucher}),
        (urlencode({"q": phone, "phone": phone}), {phone}),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_lists_searches_exports_and_fragments_show_nothing_of_b(app, client, auth, seeded, role):
    """Every page A's user may open (lists, searches, filters, exports in CSV and XLSX, detail
    pages of A's objects, their htmx fragments): none of B's names, phones or codes."""
    a, b = seeded.a, seeded.b
    auth.login(a.users[role].username)
    a_ids, secret = _matrix_ids(a), set(markers(b))
    # A's audit log records A's own searches (masked): what A typed, not B's data.
    typed = set().union(*(echoed for _, echoed in _query_variants(b)))
    typed.add(mask_phone(b.resident.person.phone))
    wrong, cases = [], 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        policy_rule = rule_for(rule.endpoint, "GET")
        if policy_rule.public or not policy_rule.allows(role):
            continue
        formats = FORMATS if "fmt" in rule.arguments else ("",)
        variants = _query_variants(b) if set(rule.arguments) <= {"fmt"} else [("", set())]
        for fmt in formats:
            url = _url(rule, dict(a_ids, fmt=fmt) if fmt else a_ids)
            for query, echoed in variants:
                # Fragments once, without forged filters (the page variant already read them).
                htmx = not fmt and not query
                for headers in ({}, {"HX-Request": "true"}) if htmx else ({},):
                    response = client.get(f"{url}?{query}" if query else url, headers=headers)
                    cases += 1
                    if cases % 8 == 0:
                        forget_flashes(client)
                    if response.status_code >= 500:
                        wrong.append((url, query, response.status_code))
                    if rule.endpoint.startswith("audit."):
                        echoed = typed
                    shown = [m for m in secret - echoed if m in body_text(response)]
                    if shown:
                        wrong.append((url, query, headers, "shows", shown))
    assert wrong == [], "\n".join(map(str, wrong))
    assert cases > 20


def _created(model, **where):
    db.session.commit()  # end the test's snapshot: read what the request wrote
    return db.session.scalars(select(model).filter_by(**where)).one_or_none()


def _forge(b, data: dict, keep: tuple[str, ...] = ()) -> dict:
    forged = {
        "community_id": b.community.id, "subdistrict_id": b.subdistrict.id, "role": "secretary",
        "points": "9999", "person_id": b.resident.person.id, "user_id": b.secretary.id,
        "status": "approved",
    }  # fmt: skip
    return {**{k: v for k, v in forged.items() if k not in keep}, **data}


def test_forms_ignore_forged_community_role_points_and_person(app, client, auth, seeded):
    """Each create or edit form, posted valid plus forged fields pointing at B or at a higher
    role: the row is A's, for the right person, with the role and points the form allows."""
    a, b = seeded.a, seeded.b
    problems = []

    def check(what, row, **expected):
        if row is None:
            problems.append((what, "no row was stored"))
            return
        for field, value in expected.items():
            if getattr(row, field) != value:
                problems.append((what, field, getattr(row, field), value))

    auth.login("secretary_a")
    post = client.post
    post("/places/grids/new", data=_forge(b, {"name": "伪网格"}))
    check("grid", _created(Grid, name="伪网格"), community_id=a.community.id)
    post("/places/estates/new", data=_forge(b, {"name": "伪小区", "kind": "ordinary"}))
    check("estate", _created(Estate, name="伪小区"), community_id=a.community.id)
    form = {"name": "伪楼", "estate_id": a.estate.id, "grid_id": a.grid.id}
    post("/places/buildings/new", data=_forge(b, form))
    check("building", _created(Building, name="伪楼"), community_id=a.community.id)
    post(f"/places/buildings/{a.building.id}/entrances", data=_forge(b, {"name": "伪单元"}))
    check("entrance", _created(Entrance, name="伪单元"), community_id=a.community.id)
    post(f"/places/buildings/{a.building.id}/households/new", data=_forge(b, {"room": "909"}))
    check("household", _created(Household, room="909"), community_id=a.community.id)
    form = {"name": "伪居民", "phone": "13700001111", "building_id": a.building.id, "room": "101"}
    post("/people/new", data=_forge(b, form))
    check("person", _created(Person, name="伪居民"), community_id=a.community.id)
    target = a.pending.person
    form = {"name": "改名居民", "phone": target.phone, "household_id": target.household_id}
    post(f"/people/{target.id}/edit", data=_forge(b, form))
    check("person edit", _created(Person, name="改名居民"), community_id=a.community.id)
    form = {"name": "伪奖品", "cost": "5", "stock": "3", "active": "y"}
    post("/rewards/new", data=_forge(b, form))
    check("reward", _created(Reward, name="伪奖品"), community_id=a.community.id)
    form = {"name_zh": "伪大类", "name_en": "Forged", "kind": "report"}
    post("/catalogue/new", data=_forge(b, form))
    check("category", _created(Category, name_zh="伪大类"), community_id=a.community.id)
    post("/catalogue/api-keys", data=_forge(b, {"name": "伪应用"}))
    check("api key", _created(ApiKey, name="伪应用"), community_id=a.community.id)
    # Points: ``points`` is the form's own field here; the person is the one in the URL.
    person = a.volunteer.person
    form = {"points": "7", "hours": "1", "reason": "伪调整"}
    post(f"/points/people/{person.id}/adjust", data=_forge(b, form, keep=("points",)))
    check(
        "adjust",
        _created(PointsEntry, note="伪调整"),
        person_id=person.id,
        community_id=a.community.id,
        points=7,
    )
    auth.logout()

    # A resident registering as a volunteer: their own person, A, and pending (not approved).
    auth.login("resident_a")
    form = {"types": "red_armband", "grid_id": a.grid.id, "reason": "想帮忙"}
    client.post("/volunteers/mine", data=_forge(b, form))
    check(
        "volunteer",
        _created(Volunteer, person_id=a.resident.person.id),
        community_id=a.community.id,
        status="pending",
    )
    auth.logout()

    # Signing up: always a resident of the chosen community, whatever role is posted.
    password = "Tongxin-2026-long!"
    form = {
        "community_id": a.community.id, "name": "新注册", "phone": "13700002222",
        "username": "forged_signup", "password": password, "confirm": password,
        "role": "secretary", "subdistrict_id": b.subdistrict.id, "points": "9999",
    }  # fmt: skip
    client.post("/signup", data=form)
    check("signup", _created(User, username="forged_signup"), role="resident")
    assert problems == []
