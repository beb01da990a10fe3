"""Grids: a secretary creates, edits and deletes them; bad input gets field messages."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.places import services
from portal.places.models import Grid
from tests import factories
from tests.places.conftest import follow


def grid_count(community) -> int:
    return db.session.scalar(select(func.count(Grid.id)).where(Grid.community_id == community.id))


def test_create_grid_with_workers(client, login, world):
    login("secretary")
    extra = factories.make_user("grid_worker", world.a.community, username="gw_extra")
    response = client.post(
        "/places/grids/new",
        data={
            "name": "三网格",
            "description": "东侧三栋楼",
            "worker_ids": [world.a.gridworker.id, extra.id],
            "community_id": world.b.community.id,  # ignored: the community is the secretary's
        },
    )
    grid = db.session.scalar(select(Grid).where(Grid.name == "三网格"))
    assert response.status_code == 303
    assert response.headers["Location"] == f"/places/grids/{grid.id}"
    assert grid.community_id == world.a.community.id
    assert grid.description == "东侧三栋楼"
    assert {u.username for u in grid.workers} == {"gridworker_a", "gw_extra"}
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "三网格" in page and world.a.gridworker.display_name in page


def test_new_grid_form_offers_only_grid_workers_of_the_community(client, login, world):
    login("secretary")
    page = client.get("/places/grids/new").get_data(as_text=True)
    assert f'value="{world.a.gridworker.id}"' in page
    assert "gridworker_b" not in page
    assert "secretary_a" not in page


def test_edit_grid_renames_and_clears_workers(client, login, world):
    login("secretary")
    grid = world.a.grid
    page = client.get(f"/places/grids/{grid.id}/edit").get_data(as_text=True)
    assert f'value="{grid.name}"' in page and "checked" in page
    response = client.post(
        f"/places/grids/{grid.id}/edit", data={"name": "一网格（新）", "description": ""}
    )
    assert response.status_code == 303
    db.session.expire_all()
    grid = db.session.get(Grid, grid.id)
    assert grid.name == "一网格（新）"
    assert grid.workers == []


def test_delete_empty_grid(client, login, world):
    grid_id = factories.make_grid(world.a.community, name="空网格").id
    login("secretary")
    response = client.post(f"/places/grids/{grid_id}/delete")
    assert response.status_code == 303
    assert response.headers["Location"] == "/places/"
    assert db.session.get(Grid, grid_id) is None
    assert "空网格" in follow(client, response).get_data(as_text=True)  # the flash names it


def test_delete_grid_with_buildings_is_refused(client, login, world, english):
    login("secretary")
    response = client.post(f"/places/grids/{world.a.grid.id}/delete")
    assert response.headers["Location"] == f"/places/grids/{world.a.grid.id}"
    assert "This grid still has buildings." in follow(client, response).get_data(as_text=True)
    assert db.session.get(Grid, world.a.grid.id) is not None


def test_delete_grid_with_volunteers_is_refused(client, login, world, english):
    grid = factories.make_grid(world.a.community, name="有志愿者的网格")
    person = factories.make_person(world.a.community)
    factories.make_volunteer(person, grid_id=grid.id)
    login("secretary")
    grid_id = grid.id
    response = client.post(f"/places/grids/{grid_id}/delete")
    assert "Volunteers still serve in this grid." in follow(client, response).get_data(as_text=True)
    assert db.session.get(Grid, grid_id) is not None


def test_grid_validation_messages(client, login, world, english):
    login("secretary")
    before = grid_count(world.a.community)

    page = client.post("/places/grids/new", data={"name": "   "}).get_data(as_text=True)
    assert "This field is required." in page

    long_name = "网" * 81
    response = client.post(
        "/places/grids/new", data={"name": long_name, "description": "保留的描述"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Field cannot be longer than 80 characters." in page
    assert long_name in page and "保留的描述" in page  # nothing typed is lost

    page = client.post("/places/grids/new", data={"name": "x", "description": "d" * 501}).get_data(
        as_text=True
    )
    assert "Field cannot be longer than 500 characters." in page

    page = client.post("/places/grids/new", data={"name": world.a.grid.name}).get_data(as_text=True)
    assert "A grid with this name already exists in your community." in page

    for foreign in (world.b.gridworker.id, world.a.secretary.id, "abc"):
        page = client.post(
            "/places/grids/new", data={"name": "新网格", "worker_ids": [foreign]}
        ).get_data(as_text=True)
        assert "Choose grid workers of your community." in page, foreign
        assert 'value="新网格"' in page

    assert grid_count(world.a.community) == before


def test_same_grid_name_in_another_community_is_fine(client, login, world):
    login("secretary")
    response = client.post("/places/grids/new", data={"name": world.b.grid.name})
    assert response.status_code == 303


def test_rename_to_a_taken_name_is_refused(client, login, world, english):
    login("secretary")
    response = client.post(
        f"/places/grids/{world.a.grid.id}/edit", data={"name": world.a.grid2.name}
    )
    assert "A grid with this name already exists" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Grid, world.a.grid.id).name == "A一网格"


def test_unique_constraint_race_becomes_a_field_message(client, login, world, english, monkeypatch):
    """If a concurrent request took the name after our check, the constraint still answers."""
    monkeypatch.setattr(services, "_exists", lambda query: False)
    login("secretary")
    before = grid_count(world.a.community)
    response = client.post("/places/grids/new", data={"name": world.a.grid.name})
    assert response.status_code == 200
    assert "A grid with this name already exists in your community." in response.get_data(
        as_text=True
    )
    assert grid_count(world.a.community) == before
    # the session is still usable after the savepoint rolled back: a good name goes through
    assert client.post("/places/grids/new", data={"name": "竞争之后"}).status_code == 303
