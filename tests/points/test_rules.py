"""The points rules page: who may read and edit it, bounds with a message per field, upserts
that record who changed what, and the categories' points."""

from __future__ import annotations

import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.core.errors import DomainError
from portal.extensions import db
from portal.help.models import Category
from portal.points import admin
from portal.points.models import RULE_DEFAULTS, PointsRule
from portal.volunteers.models import VOLUNTEER_TYPES
from tests import factories
from tests.helpers import count_queries, reload

URL = "/points/rules"
ROLES = ("anonymous", "resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")


@pytest.fixture
def pa_english(client):
    assert client.post("/language", data={"lang": "en"}).status_code == 303


def _catalogue(community) -> SimpleNamespace:
    """A neighbour-help major with two active minors and an inactive one, and a dispute major."""
    help_major = Category(
        community_id=community.id, code="help", name_zh="家家帮", name_en="Neighbour help",
        kind="neighbour_help",
    )  # fmt: skip
    dispute = Category(
        community_id=community.id, code="dispute", name_zh="邻里纠纷", name_en="Neighbour dispute",
        position=1,
    )  # fmt: skip
    db.session.add_all([help_major, dispute])
    db.session.flush()

    def minor(parent, code, en, points, active=True):
        return Category(
            community_id=community.id, parent_id=parent.id, code=code, name_zh=en, name_en=en,
            kind=parent.kind, handler="volunteer_pool", time_limit_hours=24, points=points,
            active=active,
        )  # fmt: skip

    shopping = minor(help_major, "help.shopping", "Shopping for an elder", 10)
    repair = minor(help_major, "help.repair", "Small repair", 15)
    retired = minor(help_major, "help.old", "Retired category", 5, active=False)
    noise = minor(dispute, "dispute.noise", "Noise between neighbours", 30)
    db.session.add_all([shopping, repair, retired, noise])
    db.session.commit()
    return SimpleNamespace(shopping=shopping, repair=repair, retired=retired, noise=noise)


@pytest.fixture
def scene(world):
    world.a.cat = _catalogue(world.a.community)
    world.b.cat = _catalogue(world.b.community)
    return world


def _form(cat, **overrides) -> dict:
    """A valid submission: every rule and the active categories' points."""
    data = {
        "per_hour_patrol": "12",
        "per_hour_door_watch": "15",
        "per_hour_other": "8",
        "party_report": "30",
        "daily_cap": "100",
        **{f"multiplier_{t}": "1.00" for t in VOLUNTEER_TYPES},
        "multiplier_red_armband": "1.50",
        f"category_{cat.shopping.id}": "12",
        f"category_{cat.repair.id}": "15",
        f"category_{cat.noise.id}": "40",
    }
    data.update(overrides)
    return data


def _value(body: str, name: str) -> str | None:
    """The value attribute of the input called ``name`` in the page."""
    tag = re.search(rf'<input[^>]* name="{name}"[^>]*>', body)
    assert tag is not None, name
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return value.group(1) if value else None


def _rules(community_id: int) -> dict[str, Decimal]:
    db.session.commit()
    return dict(
        db.session.execute(
            select(PointsRule.key, PointsRule.value).where(PointsRule.community_id == community_id)
        ).all()
    )


# --- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_who_may_read_the_rules(client, auth, scene, role):
    if role != "anonymous":
        auth.login(scene.a.users[role].username)
    response = client.get(URL)
    expected = {"anonymous": 302, "secretary": 200, "subdistrict_admin": 200}.get(role, 403)
    assert response.status_code == expected
    if role == "anonymous":
        assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("role", ROLES)
def test_only_the_secretary_may_change_the_rules(client, auth, scene, role):
    if role != "anonymous":
        auth.login(scene.a.users[role].username)
    response = client.post(URL, data=_form(scene.a.cat))
    if role == "secretary":
        assert response.status_code == 303
        assert _rules(scene.a.community.id)["per_hour:patrol"] == Decimal(12)
    else:
        assert response.status_code in (302, 403)
        assert _rules(scene.a.community.id) == {}
        assert reload(Category, scene.a.cat.shopping.id).points == 10


def test_subdistrict_admin_reads_but_gets_no_form(client, auth, scene, pa_english):
    auth.login("admin_a")
    body = client.get(URL).get_data(as_text=True)
    assert 'id="rules-read"' in body and 'id="rules-form"' not in body
    assert "Shopping for an elder" in body and "Retired category" not in body
    assert "gets the highest of their multipliers" in body


def test_another_communitys_rules_answer_404(client, auth, scene):
    auth.login("admin_a")
    assert client.get(URL, query_string={"community_id": scene.b.community.id}).status_code == 404
    assert client.get(URL, query_string={"community_id": scene.a.community.id}).status_code == 200
    auth.logout()
    auth.login("secretary_a")
    assert client.get(URL, query_string={"community_id": scene.b.community.id}).status_code == 404


# --- the page ----------------------------------------------------------------------------------


def test_the_page_shows_defaults_and_says_how_changes_apply(client, auth, scene, pa_english):
    auth.login("secretary_a")
    body = client.get(URL).get_data(as_text=True)
    assert "A change applies to points awarded from now on; past entries keep their points." in body
    assert "A volunteer with several types gets the highest of their multipliers." in body
    assert "Never changed: the default rules apply." in body
    assert _value(body, "per_hour_patrol") == "10"
    assert _value(body, "multiplier_red_armband") == "1.00"
    assert _value(body, f"category_{scene.a.cat.noise.id}") == "30"
    # Active minors grouped under their majors; an inactive one is not offered.
    assert body.index("Neighbour help") < body.index("Shopping for an elder")
    assert body.index("Neighbour dispute") < body.index("Noise between neighbours")
    assert f'name="category_{scene.a.cat.shopping.id}"' in body
    assert f'name="category_{scene.a.cat.retired.id}"' not in body
    assert "Noise between neighbours" in body


def test_saving_stores_every_rule_and_the_categories(client, auth, scene, pa_english):
    auth.login("secretary_a")
    response = client.post(URL, data=_form(scene.a.cat), follow_redirects=True)
    assert "The points rules were saved." in response.get_data(as_text=True)
    stored = _rules(scene.a.community.id)
    assert set(stored) == set(admin.RULE_KEYS)
    assert stored["per_hour:door_watch"] == Decimal(15)
    assert stored["daily_cap"] == Decimal(100)
    assert stored["multiplier:red_armband"] == Decimal("1.50")
    assert stored["multiplier:mediator"] == Decimal("1.00")
    rows = db.session.scalars(select(PointsRule)).all()
    assert {r.updated_by_id for r in rows} == {scene.a.secretary.id}
    assert (reload(Category, scene.a.cat.noise.id).points) == 40
    assert reload(Category, scene.a.cat.retired.id).points == 5  # not offered, not touched
    # Community B is untouched.
    assert _rules(scene.b.community.id) == {}
    assert reload(Category, scene.b.cat.noise.id).points == 30
    body = client.get(URL).get_data(as_text=True)
    assert "Last changed on" in body and scene.a.secretary.person.name in body
    assert _value(body, "multiplier_red_armband") == "1.50"


def test_saving_again_only_touches_what_changed(client, auth, scene):
    auth.login("secretary_a")
    client.post(URL, data=_form(scene.a.cat))
    db.session.commit()
    before = {r.key: r.updated_at for r in db.session.scalars(select(PointsRule))}
    other = factories.make_user("secretary", scene.a.community, username="secretary_a2")
    auth.logout()
    auth.login(other.username)
    client.post(URL, data=_form(scene.a.cat, daily_cap="50"))
    db.session.commit()
    after = {r.key: (r.updated_at, r.updated_by_id) for r in db.session.scalars(select(PointsRule))}
    assert after["daily_cap"][1] == other.id and after["daily_cap"][0] > before["daily_cap"]
    assert all(after[k][0] == before[k] for k in before if k != "daily_cap")
    assert _rules(scene.a.community.id)["daily_cap"] == Decimal(50)


def test_saving_nothing_new_says_so(client, auth, scene, pa_english):
    auth.login("secretary_a")
    client.post(URL, data=_form(scene.a.cat))
    response = client.post(URL, data=_form(scene.a.cat), follow_redirects=True)
    assert "Nothing was changed." in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("per_hour_patrol", "-1", "Enter a whole number from 0 to 1000."),
        ("per_hour_door_watch", "1001", "Enter a whole number from 0 to 1000."),
        ("per_hour_other", "abc", "Enter a whole number."),
        ("per_hour_other", "2.5", "Enter a whole number."),
        ("party_report", "", "Enter a number."),
        ("party_report", "1001", "Enter a whole number from 0 to 1000."),
        ("daily_cap", "-5", "Enter a whole number from 0 (no cap) to 100000."),
        ("multiplier_red_armband", "5.01", "Enter a multiplier from 0.00 to 5.00"),
        ("multiplier_mediator", "-0.5", "Enter a multiplier from 0.00 to 5.00"),
        ("multiplier_five_elders", "1.234", "two decimals at most"),
        ("multiplier_party_member", "lots", "Enter a number such as 1.5."),
        ("multiplier_party_member", "NaN", "Enter a number such as 1.5."),
        ("category", "1001", "Enter a whole number from 0 to 1000."),
        ("category", "-1", "Enter a whole number from 0 to 1000."),
    ],
)
def test_invalid_values_change_nothing(client, auth, scene, pa_english, name, value, message):
    cat = scene.a.cat
    if name == "category":
        name = f"category_{cat.shopping.id}"
    auth.login("secretary_a")
    response = client.post(URL, data=_form(cat, **{name: value}))
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert message in body
    assert f'id="field-{name}"' in body and "has-error" in body
    # What was typed is still there, the rest too.
    assert _value(body, name) == value
    assert _value(body, "party_report") == ("30" if name != "party_report" else value)
    assert _value(body, f"category_{cat.noise.id}") == "40"
    assert _rules(scene.a.community.id) == {}
    assert reload(Category, cat.shopping.id).points == 10
    assert reload(Category, cat.noise.id).points == 30


def test_a_missing_field_is_an_error_not_a_zero(client, auth, scene, pa_english):
    auth.login("secretary_a")
    data = _form(scene.a.cat)
    del data["daily_cap"]
    body = client.post(URL, data=data).get_data(as_text=True)
    assert "Enter a number." in body
    assert _rules(scene.a.community.id) == {}


def test_rules_page_queries_do_not_grow_with_categories(client, auth, scene):
    auth.login("secretary_a")
    client.get(URL)
    with count_queries() as few:
        assert client.get(URL).status_code == 200
    major = scene.a.cat.shopping.parent_id
    for n in range(30):
        db.session.add(
            Category(
                community_id=scene.a.community.id,
                parent_id=major,
                code=f"help.x{n}",
                name_zh=f"类{n}",
                name_en=f"Kind {n}",
                kind="neighbour_help",
                handler="volunteer_pool",
                time_limit_hours=24,
            )  # fmt: skip
        )
    db.session.commit()
    with count_queries() as many:
        assert client.get(URL).status_code == 200
    assert many["n"] == few["n"]


# --- the service ------------------------------------------------------------------------------


def test_save_rules_refuses_another_communitys_category(scene, app):
    with app.test_request_context(), pytest.raises(DomainError) as caught:
        admin.save_rules(
            scene.a.community.id,
            {"daily_cap": 10},
            {scene.b.cat.shopping.id: 99},
            scene.a.secretary.id,
        )
    assert "_" in caught.value.errors
    db.session.rollback()
    assert reload(Category, scene.b.cat.shopping.id).points == 10
    assert db.session.scalar(select(func.count(PointsRule.id))) == 0


def test_save_rules_checks_bounds_itself(scene, app):
    with app.test_request_context(), pytest.raises(DomainError) as caught:
        admin.save_rules(
            scene.a.community.id,
            {"per_hour:patrol": -1, "multiplier:mediator": Decimal("9"), "daily_cap": 5},
            {},
            scene.a.secretary.id,
        )
    assert set(caught.value.errors) == {"per_hour_patrol", "multiplier_mediator"}
    db.session.rollback()
    assert _rules(scene.a.community.id) == {}


def test_new_shifts_take_points_per_hour_from_the_rules(scene, app):
    assert admin.default_points_per_hour(scene.a.community.id, "door_watch") == int(
        RULE_DEFAULTS["per_hour:door_watch"]
    )
    with app.test_request_context():
        admin.save_rules(
            scene.a.community.id,
            {"per_hour:door_watch": 25, "per_hour:other": 7},
            {},
            scene.a.secretary.id,
        )
    db.session.commit()
    assert admin.default_points_per_hour(scene.a.community.id, "door_watch") == 25
    assert admin.default_points_per_hour(scene.a.community.id, "other") == 7
    assert admin.default_points_per_hour(scene.a.community.id, "unknown") == 7
    assert admin.default_points_per_hour(scene.b.community.id, "door_watch") == 10
