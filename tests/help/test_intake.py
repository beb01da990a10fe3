"""Submitting a request: validation, routing in the same request, photos, on-behalf submission."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.models import HelpRequest, RequestEvent, RequestPhoto
from tests import factories
from tests.help.conftest import IN_HX, in_image


def _data(side, **kw) -> dict:
    data = {
        "category": str(side.cat.water.id),
        "description": "厨房水管漏水，请尽快处理",
        "where": "household",
        "building": "",
        "address": "",
        "preferred_time": "工作日上午",
        "urgency": "normal",
    }
    data.update(kw)
    return data


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _english(client) -> None:
    client.post("/language", data={"lang": "en"})


def test_submit_routes_to_first_grid_worker_and_starts_the_clock(client, auth, in_world):
    world = in_world
    first = factories.make_user(
        "grid_worker", world.a.community, username="a_first_worker", grids=[world.a.grid]
    )
    auth.login("resident_a")
    before = now_utc()
    response = client.post("/requests/new", data=_data(world.a))
    assert response.status_code == 303
    req = db.session.scalars(select(HelpRequest)).one()
    assert response.headers["Location"] == f"/requests/{req.id}"
    assert req.grid_id == world.a.grid.id
    assert req.household_id == world.a.household.id
    assert req.handler_user_id == first.id
    assert req.requester_id == world.a.resident.person.id
    assert req.created_by_id == world.a.resident.id
    assert req.status == "submitted" and req.source == "web"
    assert before + timedelta(hours=24) <= req.due_at <= now_utc() + timedelta(hours=24)
    events = db.session.scalars(
        select(RequestEvent).where(RequestEvent.request_id == req.id).order_by(RequestEvent.id)
    ).all()
    assert [(e.action, e.to_status) for e in events] == [
        ("submit", "submitted"),
        ("route", "submitted"),
    ]
    assert first.display_name in events[1].note
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and "厨房水管漏水" in page.get_data(as_text=True)


def test_a_free_address_goes_to_the_community_office(client, auth, in_world):
    auth.login("resident_a")
    _english(client)
    data = _data(in_world.a, where="address", address="幸福路8号门口")
    response = client.post("/requests/new", data=data)
    assert response.status_code == 303
    req = db.session.scalars(select(HelpRequest)).one()
    assert (req.grid_id, req.handler_user_id, req.address) == (None, None, "幸福路8号门口")
    assert "the community office" in client.get(f"/requests/{req.id}").get_data(as_text=True)


def test_a_building_without_a_grid_worker_goes_to_the_office(client, auth, in_world):
    auth.login("resident_a")
    data = _data(in_world.a, where="building", building=str(in_world.a.building2.id))
    assert client.post("/requests/new", data=data).status_code == 303
    req = db.session.scalars(select(HelpRequest)).one()
    assert (req.grid_id, req.building_id, req.handler_user_id) == (
        in_world.a.grid2.id,
        in_world.a.building2.id,
        None,
    )


BAD = [
    ("unknown category", {"category": "999999"}, "Choose a category from the list."),
    ("no category", {"category": ""}, "Choose a category from the list."),
    ("B's category", {"category": "B"}, "Choose a category from the list."),
    ("major category", {"category": "MAJOR"}, "Choose a precise category under Property repair."),
    ("empty description", {"description": "   "}, "Describe what you need."),
    ("long description", {"description": "水" * 4001}, "At most 4000 characters."),
    (
        "B's building",
        {"where": "building", "building": "BB"},
        "Choose a building of the community.",
    ),
    ("no address", {"where": "address", "address": ""}, "Enter the address."),
    ("long address", {"where": "address", "address": "路" * 201}, "At most 200 characters."),
    ("bad urgency", {"urgency": "now"}, "Choose normal or urgent."),
    ("bad where", {"where": "moon"}, "Choose where help is needed."),
]


@pytest.mark.parametrize(("case", "changes", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_shows_the_message_and_saves_nothing(
    client, auth, in_world, in_uploads, case, changes, message
):
    world = in_world
    swap = {
        "B": str(world.b.cat.water.id),
        "MAJOR": str(world.a.cat.major.id),
        "BB": str(world.b.building.id),
    }
    changes = {key: swap.get(value, value) for key, value in changes.items()}
    auth.login("resident_a")
    _english(client)
    data = _data(world.a, **changes)
    data["photos"] = [(io.BytesIO(in_image()), "leak.png")]
    response = client.post("/requests/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert message in body
    assert 'class="field has-error"' in body
    assert _count(HelpRequest) == 0 and _count(RequestEvent) == 0 and _count(RequestPhoto) == 0
    assert not list(in_uploads.rglob("*.jpg")) if in_uploads.exists() else True


def test_several_messages_show_at_once(client, auth, in_world):
    auth.login("resident_a")
    _english(client)
    response = client.post("/requests/new", data=_data(in_world.a, category="", description=""))
    body = response.get_data(as_text=True)
    assert "Choose a category from the list." in body and "Describe what you need." in body


def test_photos_are_stored_reencoded(client, auth, in_world, in_uploads):
    auth.login("resident_a")
    data = _data(in_world.a)
    data["photos"] = [
        (io.BytesIO(in_image("PNG")), "a.png"),
        (io.BytesIO(in_image("WEBP")), "b.webp"),
    ]
    response = client.post("/requests/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 303
    photos = db.session.scalars(select(RequestPhoto)).all()
    assert len(photos) == 2 and {p.stage for p in photos} == {"submit"}
    for photo in photos:
        assert photo.file.endswith(".jpg") and (in_uploads / photo.file).is_file()


def test_a_file_that_is_not_a_photo_is_refused(client, auth, in_world, in_uploads):
    auth.login("resident_a")
    _english(client)
    data = _data(in_world.a)
    data["photos"] = [
        (io.BytesIO(in_image()), "fine.png"),
        (io.BytesIO(b"%PDF-1.4 not an image"), "leak.jpg"),
    ]
    response = client.post("/requests/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    assert "This file is not a photo" in response.get_data(as_text=True)
    assert _count(HelpRequest) == 0 and _count(RequestPhoto) == 0
    assert not list(in_uploads.rglob("*.jpg"))


def test_too_large_and_too_many_photos(client, auth, in_world, in_uploads, app):
    auth.login("resident_a")
    _english(client)
    data = _data(in_world.a)
    data["photos"] = [(io.BytesIO(in_image()), f"{n}.png") for n in range(4)]
    response = client.post("/requests/new", data=data, content_type="multipart/form-data")
    assert "At most 3 photos." in response.get_data(as_text=True)
    app.config["MAX_PHOTO_BYTES"] = 100
    data = _data(in_world.a)
    data["photos"] = [(io.BytesIO(in_image(size=(300, 300))), "big.png")]
    response = client.post("/requests/new", data=data, content_type="multipart/form-data")
    assert "The photo is too large" in response.get_data(as_text=True)
    assert _count(HelpRequest) == 0 and not list(in_uploads.rglob("*.jpg"))


def test_a_failed_insert_removes_the_stored_photos(client, auth, in_world, in_uploads, monkeypatch):
    from portal.help import intake

    def broken(_req):
        raise RuntimeError("database went away")

    monkeypatch.setattr(intake, "route_request", broken)
    auth.login("resident_a")
    data = _data(in_world.a)
    data["photos"] = [(io.BytesIO(in_image()), "a.png")]
    with pytest.raises(RuntimeError):
        client.post("/requests/new", data=data, content_type="multipart/form-data")
    db.session.rollback()
    assert _count(HelpRequest) == 0
    assert not list(in_uploads.rglob("*.jpg"))


def test_grid_worker_submits_on_behalf_of_a_resident(client, auth, in_world):
    world = in_world
    auth.login("gridworker_a")
    data = _data(world.a, resident=world.a.resident.person.phone)
    assert client.post("/requests/new", data=data).status_code == 303
    req = db.session.scalars(select(HelpRequest)).one()
    assert req.requester_id == world.a.resident.person.id
    assert req.created_by_id == world.a.gridworker.id
    assert req.household_id == world.a.household.id
    # The resident sees it among their requests.
    auth.logout()
    auth.login("resident_a")
    assert f"/requests/{req.id}" in client.get("/requests/mine").get_data(as_text=True)


def test_on_behalf_only_within_the_workers_grids(client, auth, in_world):
    world = in_world
    auth.login("gridworker_a")
    _english(client)
    # pending_a lives in grid 2; resident_b in another community.
    for who in (world.a.pending.person.name, world.b.resident.person.phone):
        response = client.post("/requests/new", data=_data(world.a, resident=who))
        assert response.status_code == 200
        assert "No resident of your grids has this phone or name." in response.get_data(
            as_text=True
        )
    assert _count(HelpRequest) == 0


def test_a_resident_cannot_submit_for_someone_else(client, auth, in_world):
    auth.login("resident_a")
    data = _data(in_world.a, resident=in_world.a.volunteer.person.phone)
    assert client.post("/requests/new", data=data).status_code == 303
    req = db.session.scalars(select(HelpRequest)).one()
    assert req.requester_id == in_world.a.resident.person.id


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("anonymous", 302),
        ("resident", 200),
        ("volunteer", 200),
        ("grid_worker", 200),
        ("secretary", 200),
        ("subdistrict_admin", 403),
    ],
)
def test_who_may_open_the_form(client, auth, in_world, role, status):
    if role != "anonymous":
        auth.login(in_world.a.users[role].username)
    response = client.get("/requests/new")
    assert response.status_code == status
    if status == 200:
        body = response.get_data(as_text=True)
        assert "<optgroup" in body and in_world.a.cat.water.name_zh in body
        assert in_world.b.building.name not in body or in_world.a.building.name in body
        assert ('name="resident"' in body) == (role == "grid_worker")


def test_minor_options_reload_for_a_major(client, auth, in_world):
    auth.login("resident_a")
    cat = in_world.a.cat
    response = client.get(f"/requests/new/categories?major={cat.help_major.id}", headers=IN_HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body
    assert "HX-Request" in response.headers.get("Vary", "")
    assert 'id="field-category"' in body
    assert cat.shopping.name_zh in body and cat.water.name_zh not in body
    # Without htmx it is the form itself.
    plain = client.get(f"/requests/new/categories?major={cat.help_major.id}")
    assert plain.status_code == 302 and plain.headers["Location"].endswith("/requests/new")


def test_english_names_in_english(client, auth, in_world):
    auth.login("resident_a")
    _english(client)
    body = client.get("/requests/new").get_data(as_text=True)
    assert "Water leak" in body and "水管漏水" not in body
