"""Bad text is refused in every free-text field (core/forms.py, core/validators.py): control
characters, bidirectional overrides and invisible-only text get a message on the field, the form
comes back with what was typed, and no row is written; tabs, newlines, emoji and Chinese pass.

The last tests walk every form class of the portal: each is a PortalForm or PortalSubForm and
each of its free-text fields carries ``plain_text``, so a new form cannot skip it."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import Form, StringField, TextAreaField

import portal
from portal.auth.models import User
from portal.core.forms import PortalForm, PortalSubForm, checks_text
from portal.core.timeutil import local_today
from portal.core.validators import plain_text
from portal.extensions import db
from portal.help.models import HelpRequest, RequestEvent
from portal.patrols.models import Hazard, Shift
from portal.people.models import Person
from portal.places.models import Estate
from portal.points.models import PointsEntry
from portal.rewards.models import Reward
from tests.help.conftest import in_make_catalogue, in_make_request
from tests.patrols.conftest import duty_make_shift, sched_form

CONTROL = "Remove the control characters (they cannot be shown or saved)."
BIDI = "Remove the right-to-left override characters."
INVISIBLE = "Type some visible text, not only spaces or invisible characters."
CORPUS = [
    pytest.param("坏\x01字", CONTROL, id="C0-01"),
    pytest.param("ab\x1b[31mc", CONTROL, id="escape"),
    pytest.param("\u202etxt.exe", BIDI, id="RLO"),
    pytest.param("\u200b\u200b", INVISIBLE, id="zero-width-only"),
    pytest.param("\ufeff", INVISIBLE, id="BOM-only"),
]


@dataclass
class Case:
    """One form: who posts it, where, a valid body, the field under test and the rows it adds."""

    role: str | None
    url: str
    data: dict[str, Any]
    field: str
    model: Any


@pytest.fixture
def scene(world):
    """World A with a help catalogue, a request of its resident and a shift that has started."""
    world.a.cat = in_make_catalogue(world.a.community)
    world.a.request = in_make_request(world.a, world.a.cat.water)
    world.a.started = duty_make_shift(world.a)
    return world


def _cases(world) -> dict[str, Case]:
    a = world.a
    week = local_today() + timedelta(days=7)
    return {
        "help request": Case(
            "resident_a",
            "/requests/new",
            {
                "category": str(a.cat.water.id),
                "description": "水管漏了",
                "where": "household",
                "building": "",
                "address": "",
                "preferred_time": "",
                "urgency": "normal",
            },
            "description",
            HelpRequest,
        ),  # fmt: skip
        "help comment (no WTForms)": Case(
            "resident_a",
            f"/requests/{a.request.id}/act/comment",
            {"text": "师傅几点到？"},
            "text",
            RequestEvent,
        ),
        "shift": Case("secretary_a", "/shifts/new", sched_form(a, week), "title", Shift),
        "shift route stop (subform)": Case(
            "secretary_a", "/shifts/new", sched_form(a, week), "route-1-checkpoint", Shift
        ),
        "hazard report": Case(
            "secretary_a",
            f"/shifts/{a.started.id}/report/hazards",
            {"description": "楼道堆放杂物", "location": "3号楼"},
            "description",
            Hazard,
        ),
        "reward": Case(
            "secretary_a",
            "/rewards/new",
            {"name": "大米", "description": "", "cost": "80", "stock": "3", "active": "y"},
            "name",
            Reward,
        ),
        "estate (place name)": Case(
            "secretary_a",
            "/places/estates/new",
            {"name": "幸福花园", "kind": "ordinary", "address": "幸福路1号"},
            "name",
            Estate,
        ),
        "person name": Case(
            "secretary_a",
            "/people/new",
            {"name": "王强", "building_id": str(a.building.id), "room": "101", "sex": ""},
            "name",
            Person,
        ),
        "signup": Case(
            None,
            "/signup",
            {
                "community_id": str(a.community.id),
                "name": "王小明",
                "phone": "13800138000",
                "username": "wangxm",
                "password": "a-long-pass-9",
                "confirm": "a-long-pass-9",
            },
            "name",
            User,
        ),  # fmt: skip
        "points adjustment": Case(
            "secretary_a",
            f"/points/people/{a.volunteer.person.id}/adjust",
            {"points": "5", "hours": "", "reason": "补录"},
            "reason",
            PointsEntry,
        ),
    }


CASES = [
    "help request", "help comment (no WTForms)", "shift", "shift route stop (subform)",
    "hazard report", "reward", "estate (place name)", "person name", "signup",
    "points adjustment",
]  # fmt: skip


def _rows(model) -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(model))


def _post(client, auth, case: Case, value: str):
    if case.role:
        auth.login(case.role)
    client.post("/language", data={"lang": "en"})
    return client.post(case.url, data={**case.data, case.field: value})


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize(("value", "message"), CORPUS)
def test_bad_text_is_refused_on_the_field(client, auth, scene, name, value, message):
    case = _cases(scene)[name]
    before = _rows(case.model)
    response = _post(client, auth, case, value)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert message in page
    assert value in page  # the form came back with what was typed
    other = next((v for k, v in case.data.items() if k != case.field and len(v) > 1), None)
    if other and not other.isascii():
        assert other in page  # and with the other fields' text
    assert _rows(case.model) == before


GOOD = [
    pytest.param("第一行\r\n第二行", id="newline"),
    pytest.param("上午\t9点", id="tab"),
    pytest.param("谢谢🙏😀", id="emoji"),
    pytest.param("张三丰", id="chinese"),
]


@pytest.mark.parametrize("name", ["help request", "hazard report", "help comment (no WTForms)"])
@pytest.mark.parametrize("value", GOOD)
def test_tabs_newlines_emoji_and_chinese_pass_in_text_areas(client, auth, scene, name, value):
    case = _cases(scene)[name]
    before = _rows(case.model)
    response = _post(client, auth, case, value)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert _rows(case.model) == before + 1


@pytest.mark.parametrize("name", ["shift", "estate (place name)", "person name", "reward"])
@pytest.mark.parametrize("value", ["张三丰", "幸福里🌸", "Zhang San"])
def test_visible_text_passes_in_single_line_fields(client, auth, scene, name, value):
    case = _cases(scene)[name]
    before = _rows(case.model)
    assert _post(client, auth, case, value).status_code == 303
    assert _rows(case.model) == before + 1


# --- every form of the portal ----------------------------------------------------------------


def _portal_forms() -> list[type[Form]]:
    """Every form class defined in the portal's modules (all of them imported)."""
    for module in pkgutil.walk_packages(portal.__path__, "portal."):
        importlib.import_module(module.name)
    found, todo = set(), [Form]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return sorted(
        (
            f
            for f in found
            if f.__module__.startswith("portal.") and f.__module__ != "portal.core.forms"
        ),
        key=lambda f: (f.__module__, f.__qualname__),
    )


def _unchecked_fields(form_class: type[Form]) -> list[str]:
    """Free-text fields of a form instance that lack plain_text (subforms included)."""
    form = form_class(meta={"csrf": False}) if issubclass(form_class, FlaskForm) else form_class()
    missing = []

    def walk(fields, prefix: str = "") -> None:
        for field in fields:
            if hasattr(field, "form"):  # a FormField: its own fields
                walk(field.form, f"{prefix}{field.name}.")
            elif checks_text(field) and plain_text not in field.validators:
                missing.append(prefix + field.name)

    walk(form)
    return missing


def test_the_walk_finds_the_portals_forms():
    names = {f.__qualname__ for f in _portal_forms()}
    assert {"RequestForm", "ShiftForm", "StopForm", "HazardForm", "SignupForm"} <= names
    assert len(names) > 40


def test_every_portal_form_uses_the_base_forms(app):
    strays = [
        f"{f.__module__}.{f.__qualname__}"
        for f in _portal_forms()
        if not issubclass(f, PortalForm | PortalSubForm)
    ]
    assert strays == []


def test_every_text_field_of_every_form_refuses_bad_text(app):
    with app.test_request_context("/", method="POST"):
        missing = {
            f"{f.__module__}.{f.__qualname__}": fields
            for f in _portal_forms()
            if (fields := _unchecked_fields(f))
        }
    assert missing == {}


def test_the_check_would_catch_a_form_that_skips_the_base(app):
    class Careless(FlaskForm):
        note = TextAreaField()

    class Careful(PortalForm):
        note = TextAreaField()
        other = StringField(validators=[plain_text])  # not added twice

    with app.test_request_context("/", method="POST"):
        assert _unchecked_fields(Careless) == ["note"]
        assert _unchecked_fields(Careful) == []
        assert Careful(meta={"csrf": False}).other.validators.count(plain_text) == 1


@pytest.mark.parametrize("value", ["   ", "\u3000\u3000", " \t\r\n"])
def test_spaces_only_count_as_empty_for_the_fields_own_rule(client, auth, scene, value):
    case = _cases(scene)["estate (place name)"]
    before = _rows(Estate)
    response = _post(client, auth, case, value)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert INVISIBLE not in page and CONTROL not in page
    assert "This field is required." in page
    assert _rows(Estate) == before


def test_the_message_is_in_chinese_by_default(client, auth, scene):
    case = _cases(scene)["estate (place name)"]
    before = _rows(Estate)
    auth.login(case.role)
    response = client.post(case.url, data={**case.data, "name": "\u200b"})
    assert "请输入可见的文字，不能只有空格或不可见字符。" in response.get_data(as_text=True)
    assert _rows(Estate) == before
