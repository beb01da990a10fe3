"""Estates and resettlement areas: create, edit, delete when empty, field messages."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.places.models import Estate
from tests import factories
from tests.places.conftest import follow


def estate_count() -> int:
    return db.session.scalar(select(func.count(Estate.id)))


def test_create_resettlement_area(client, login, world, english):
    login("secretary")
    response = client.post(
        "/places/estates/new",
        data={"name": "幸福安置区", "kind": "resettlement", "address": "新华路8号"},
    )
    estate = db.session.scalar(select(Estate).where(Estate.name == "幸福安置区"))
    assert response.headers["Location"] == f"/places/estates/{estate.id}"
    assert (estate.community_id, estate.kind, estate.address) == (
        world.a.community.id,
        "resettlement",
        "新华路8号",
    )
    page = follow(client, response).get_data(as_text=True)
    assert "Resettlement area" in page and "幸福安置区" in page
    tree = client.get("/places/").get_data(as_text=True)
    assert "幸福安置区" in tree and "Resettlement area" in tree


def test_edit_estate(client, login, world):
    login("secretary")
    estate_id = world.a.estate.id
    response = client.post(
        f"/places/estates/{estate_id}/edit",
        data={"name": "A花园（南区）", "kind": "ordinary", "address": "南路1号"},
    )
    assert response.headers["Location"] == f"/places/estates/{estate_id}"
    estate = db.session.get(Estate, estate_id)
    assert (estate.name, estate.address) == ("A花园（南区）", "南路1号")


def test_delete_empty_estate_and_refuse_one_with_buildings(client, login, world, english):
    empty_id = factories.make_estate(world.a.community, name="空小区").id
    login("secretary")
    response = client.post(f"/places/estates/{empty_id}/delete")
    assert response.headers["Location"] == "/places/"
    assert db.session.get(Estate, empty_id) is None

    response = client.post(f"/places/estates/{world.a.estate.id}/delete")
    assert response.headers["Location"] == f"/places/estates/{world.a.estate.id}"
    page = follow(client, response).get_data(as_text=True)
    assert "This estate still has buildings. Delete them first." in page
    assert db.session.get(Estate, world.a.estate.id) is not None


def test_estate_validation_messages(client, login, world, english):
    login("secretary")
    before = estate_count()
    page = client.post("/places/estates/new", data={"name": "", "kind": "ordinary"}).get_data(
        as_text=True
    )
    assert "This field is required." in page
    page = client.post(
        "/places/estates/new", data={"name": "东苑", "kind": "palace", "address": "路"}
    ).get_data(as_text=True)
    assert "Not a valid choice." in page and 'value="东苑"' in page
    page = client.post(
        "/places/estates/new", data={"name": "东苑", "kind": "ordinary", "address": "路" * 201}
    ).get_data(as_text=True)
    assert "Field cannot be longer than 200 characters." in page
    page = client.post(
        "/places/estates/new", data={"name": world.a.estate.name, "kind": "ordinary"}
    ).get_data(as_text=True)
    assert "An estate with this name already exists in your community." in page
    assert estate_count() == before
