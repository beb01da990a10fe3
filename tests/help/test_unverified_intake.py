"""A self-registered account not yet matched to a household submits and follows its own
request (issue 15, part 5): the only part of the community it reaches."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.help.models import HelpRequest
from tests import factories


def test_an_unverified_resident_submits_and_follows_their_request(client, auth, in_world):
    side = in_world.a
    person = factories.make_person(side.community, name="新居民", phone=None)
    factories.make_user(
        "resident", side.community, username="comer_a", person=person, verified=False
    )
    db.session.commit()
    auth.login("comer_a")
    data = {
        "category": str(side.cat.water.id),
        "description": "楼道灯不亮，晚上看不清台阶",
        "where": "address",
        "building": "",
        "address": "1号楼楼道",
        "preferred_time": "",
        "urgency": "normal",
    }
    response = client.post("/requests/new", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)
    req = db.session.scalars(select(HelpRequest)).one()
    assert req.requester_id == person.id
    assert client.get(response.headers["Location"]).status_code == 200
    assert "楼道灯不亮" in client.get("/requests/mine").get_data(as_text=True)
    # Another resident's request stays closed to it.
    other = factories.make_person(side.community, name="邻居")
    theirs = HelpRequest(
        community_id=side.community.id, grid_id=side.grid.id, category_id=side.cat.water.id,
        requester_id=other.id, created_by_id=side.resident.id, description="漏水",
    )  # fmt: skip
    db.session.add(theirs)
    db.session.commit()
    assert client.get(f"/requests/{theirs.id}").status_code in (403, 404)
