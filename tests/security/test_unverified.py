"""Issue 15, part 5: anyone can open a resident account, so a self-registered account sees only
its own requests and account until a grid worker or the secretary matches it to a household;
sign-up never tells whether a phone is on record, and is limited per address."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from flask import url_for
from sqlalchemy import func, select

from portal.auth import throttle
from portal.auth.models import User
from portal.extensions import db
from portal.people.models import Person
from portal.policy import POLICY, UNVERIFIED_ENDPOINTS, rule_for
from tests import factories
from tests.factories import PASSWORD
from tests.helpers import post_in_parallel

WAITING = "Your account waits for a grid worker or the community office"
TOO_MANY = "Too many sign-ups from this network in the last hour."


@pytest.fixture
def clock(monkeypatch):
    state = {"now": 1_800_000_000}
    monkeypatch.setattr(throttle, "now_seconds", lambda: state["now"])
    return SimpleNamespace(advance=lambda s: state.__setitem__("now", state["now"] + s))


def english(app, address: str = "203.0.113.5"):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    client.post("/language", data={"lang": "en"})
    return client


def sign_up(client, community, *, phone: str, username: str, name: str = "新居民"):
    return client.post(
        "/signup",
        data={
            "community_id": community.id,
            "name": name,
            "phone": phone,
            "username": username,
            "password": "a-long-pass-9",
            "confirm": "a-long-pass-9",
        },
    )


@pytest.fixture
def newcomer(app, world, clock):
    """A self-registered account of community A, signed in (English)."""
    client = english(app)
    response = sign_up(client, world.a.community, phone="13700000001", username="newcomer")
    assert response.status_code == 303
    user = db.session.scalar(select(User).where(User.username == "newcomer"))
    return SimpleNamespace(client=client, user=user)


# --- what an unverified account may open ---------------------------------------------------------


def _sample_url(rule) -> str:
    values = {}
    for name, converter in rule._converters.items():
        values[name] = 1 if type(converter).__name__ == "IntegerConverter" else "x"
    return url_for(rule.endpoint, **values)


def test_every_endpoint_but_its_own_pages_refuses_an_unverified_account(app, newcomer):
    refused, checked = [], 0
    for rule in app.url_map.iter_rules():
        method = "GET" if "GET" in rule.methods else sorted(rule.methods - {"OPTIONS"})[0]
        policy = rule_for(rule.endpoint, method)
        if policy is None or policy.public or rule.endpoint in UNVERIFIED_ENDPOINTS:
            continue
        with app.test_request_context():
            url = _sample_url(rule)
        response = newcomer.client.open(url, method=method)
        checked += 1
        if response.status_code != 403:
            refused.append((rule.endpoint, response.status_code))
        elif method == "GET":
            assert WAITING in response.get_data(as_text=True), rule.endpoint
    assert checked > 100
    assert refused == []


@pytest.mark.parametrize(
    "endpoint",
    ["shifts.index", "shifts.detail", "care.tasks", "care.task", "handling.board",
     "volunteers.roster", "points.leaderboard", "volunteers.mine"],
)  # fmt: skip
def test_community_pages_are_refused_until_matched(app, world, newcomer, endpoint):
    with app.test_request_context():
        args = {"shift_id": 1} if endpoint == "shifts.detail" else {}
        args = {"task_id": 1} if endpoint == "care.task" else args
        url = url_for(endpoint, **args)
    response = newcomer.client.get(url)
    assert response.status_code == 403 and WAITING in response.get_data(as_text=True)
    # htmx: the refusal goes to the flash area (htmx swaps no 4xx), never the page's content.
    response = newcomer.client.get(url, headers={"HX-Request": "true"})
    assert response.headers["HX-Retarget"] == "#flash"
    assert WAITING in response.get_data(as_text=True)


def test_an_unverified_account_keeps_its_account_privacy_and_requests(app, newcomer):
    client = newcomer.client
    home = client.get("/").get_data(as_text=True)
    assert "Your account waits to be matched to your household" in home
    assert "/shifts" not in home  # the nav offers only what it may open
    for endpoint in ("help.mine", "help.new", "privacy.index", "auth.password",
                     "notifications.index"):  # fmt: skip
        with app.test_request_context():
            url = url_for(endpoint)
        assert client.get(url).status_code == 200, endpoint
    assert client.post("/logout").status_code == 303


def test_staff_made_and_demo_accounts_are_verified(world):
    assert all(user.verified for user in world.a.users.values())
    assert "verified" in User.__table__.c and User.__table__.c.verified.server_default is not None


def test_every_unverified_endpoint_is_in_the_policy():
    assert set(UNVERIFIED_ENDPOINTS) <= set(POLICY)


# --- sign-up tells nothing of who lives here -----------------------------------------------------


def test_sign_up_with_a_phone_on_record_answers_as_with_a_new_one(app, world, clock):
    on_record = world.a.resident.person.phone  # a resident with an account
    no_account = factories.make_person(world.a.community, name="登记居民").phone  # none
    db.session.commit()
    answers = []
    for n, phone in enumerate((on_record, no_account, "13700000009")):
        client = english(app, f"192.0.2.{n + 1}")
        response = sign_up(client, world.a.community, phone=phone, username=f"probe{n}")
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        answers.append((response.status_code, response.headers["Location"], page.count("flash")))
        user = db.session.scalar(select(User).where(User.username == f"probe{n}"))
        # Every new account is alike: the number waits on it, the record has none yet.
        assert (user.verified, user.signup_phone, user.person.phone) == (False, phone, None)
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][:2] == (303, "/")
    # No record lost its number, none was duplicated.
    for phone in (on_record, no_account):
        assert db.session.scalar(select(func.count(Person.id)).where(Person.phone == phone)) == 1


def test_sign_up_never_says_a_phone_is_taken(app, world, clock):
    client = english(app)
    response = sign_up(
        client, world.a.community, phone=world.a.secretary.person.phone, username="resident_a"
    )
    page = response.get_data(as_text=True)
    assert "This username is taken." in page
    assert "already registered" not in page and 'id="phone-msg"><p' not in page


def test_registrations_are_limited_per_address_and_hour(app, world, clock):
    office = english(app, "203.0.113.80")
    for n in range(3):
        assert sign_up(office, world.a.community, phone=f"1370000010{n}",
                       username=f"family{n}").status_code == 303  # fmt: skip
        office.post("/logout")
    response = sign_up(office, world.a.community, phone="13700000109", username="family9")
    assert response.status_code == 200 and TOO_MANY in response.get_data(as_text=True)
    assert db.session.scalar(select(User.id).where(User.username == "family9")) is None
    # Another address is not affected; this one can again an hour after its last sign-up.
    other = english(app, "198.51.100.80")
    assert (
        sign_up(other, world.a.community, phone="13700000110", username="other0").status_code == 303
    )
    clock.advance(60 * 60)
    assert (
        sign_up(office, world.a.community, phone="13700000109", username="family9").status_code
        == 303
    )


def test_username_probes_are_limited_per_address(app, world, clock):
    app.config["SIGNUP_USERNAME_TRIES_PER_ADDRESS"] = 2
    client = english(app)
    pages = [
        sign_up(client, world.a.community, phone="13700000201", username=name).get_data(
            as_text=True
        )
        for name in ("resident_a", "secretary_a", "volunteer_a")
    ]
    assert "This username is taken." in pages[0] and "This username is taken." in pages[1]
    assert TOO_MANY in pages[2] and "This username is taken." not in pages[2]


def test_the_known_device_cookie_is_httponly_and_only_for_the_sign_in_page(app, world, clock):
    client = english(app)
    response = client.post("/login", data={"identifier": "resident_a", "password": PASSWORD})
    header = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("tongxin_device=")]
    assert len(header) == 1
    assert "HttpOnly" in header[0] and "Path=/login" in header[0] and "SameSite=Lax" in header[0]


def test_parallel_sign_ups_from_one_address_create_three_accounts(app, world, clock):
    """Ten sign-ups at once from one address (as from several workers): exactly 3 accounts."""
    clients = [english(app, "203.0.113.90") for _ in range(10)]
    data = [
        {
            "community_id": world.a.community.id,
            "name": "并发居民",
            "phone": f"1370000030{n}",
            "username": f"burst{n}",
            "password": "a-long-pass-9",
            "confirm": "a-long-pass-9",
        }
        for n in range(10)
    ]
    statuses = post_in_parallel(app, clients, ["/signup"] * 10, data)
    assert sorted(statuses) == [200] * 7 + [303] * 3
    created = db.session.scalar(select(func.count(User.id)).where(User.username.like("burst%")))
    assert created == 3
