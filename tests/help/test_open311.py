"""Open311 GeoReport v2: every resource in JSON and XML, with the spec's fields and errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.models import HelpRequest, RequestEvent, RequestPhoto
from tests.help.conftest import cat_category, in_make_request

BASE = "/open311/v2"
REQUEST_FIELDS = {
    "service_request_id", "status", "status_notes", "service_name", "service_code",
    "description", "agency_responsible", "service_notice", "requested_datetime",
    "updated_datetime", "expected_datetime", "address", "address_id", "zipcode", "lat", "long",
    "media_url",
}  # fmt: skip
SERVICE_FIELDS = {
    "service_code", "service_name", "description", "metadata", "type", "keywords", "group",
}  # fmt: skip


def _rows(response, fmt: str, root: str, child: str) -> list[dict]:
    """The answer as a list of {field: text} (JSON values kept as they are)."""
    if fmt == "json":
        assert response.content_type.startswith("application/json")
        return json.loads(response.get_data(as_text=True))
    assert response.content_type.startswith("text/xml")
    body = response.get_data(as_text=True)
    assert body.startswith('<?xml version="1.0" encoding="utf-8"?>')
    element = ET.fromstring(response.get_data())
    assert element.tag == root
    return [{c.tag: c.text for c in item} for item in element if item.tag == child]


def _error(response, fmt: str, status: int) -> str:
    assert response.status_code == status
    (error,) = _rows(response, fmt, "errors", "error")
    assert str(error["code"]) == str(status)
    assert error["description"]
    return error["description"]


def _jid(side) -> str:
    return f"jurisdiction_id={side.community.id}"


@pytest.fixture
def o_requests(cat_keys):
    """Requests of A: one open of a public category (stair lighting), one rejected
    neighbour-help request that A's key submitted, with a photo; and one of B."""
    world = cat_keys
    lighting = cat_category(world.a.community, "repair.lighting")
    a_open = in_make_request(
        world.a, lighting, status="dispatched", handling_unit="property_company",
        description="3号楼楼道灯不亮",
    )  # fmt: skip
    a_rejected = in_make_request(
        world.a, world.a.cat_shopping, status="rejected", reject_reason="重复提交",
        household_id=None, building_id=world.a.building2.id, source="open311",
        api_key_id=world.a.cat_key_row.id, description="帮6楼老人买菜",
    )  # fmt: skip
    b_open = in_make_request(world.b, world.b.cat_water, description="B的请求")
    db.session.add(
        RequestPhoto(community_id=world.a.community.id, request_id=a_rejected.id, file="2030/x.jpg")
    )
    db.session.commit()
    world.a.o_open, world.a.o_rejected, world.b.o_open = a_open, a_rejected, b_open
    return world


def _assert_no_personal_data(body: str, world) -> None:
    for side in (world.a, world.b):
        for user in side.users.values():
            if user.person is not None:
                assert user.person.name not in body
                assert user.person.phone not in body


# --- discovery and services -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_discovery(client, fmt):
    response = client.get(f"{BASE}/discovery.{fmt}")
    assert response.status_code == 200
    if fmt == "json":
        data = response.get_json()
        endpoint = data["endpoints"][0]
        formats = endpoint["formats"]
    else:
        root = ET.fromstring(response.get_data())
        assert root.tag == "discovery"
        data = {c.tag: c.text for c in root}
        endpoint = {c.tag: c.text for c in root.find("endpoints/endpoint")}
        formats = [f.text for f in root.findall("endpoints/endpoint/formats/format")]
    assert {"changeset", "contact", "key_service", "endpoints"} <= set(data)
    assert "jurisdiction_id" in data["contact"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "http://localhost/open311/v2"
    assert endpoint["type"] == "production"
    assert formats == ["text/xml", "application/json"]


@pytest.mark.parametrize("path", ["discovery.html", "services.csv", "requests.yaml"])
def test_unknown_format_is_404(client, path):
    _error(client.get(f"{BASE}/{path}"), "json", 404)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_services(client, cat_world, fmt):
    response = client.get(f"{BASE}/services.{fmt}?{_jid(cat_world.a)}")
    assert response.status_code == 200
    services = _rows(response, fmt, "services", "service")
    assert len(services) >= 40
    assert all(set(s) == SERVICE_FIELDS for s in services)
    by_code = {s["service_code"]: s for s in services}
    shopping, water = by_code["help.shopping"], by_code["repair.water"]
    assert shopping["service_name"] == "代买代购" and shopping["group"] == "家家帮"
    assert water["group"] == "物业报修" and water["type"] == "realtime"
    assert str(shopping["metadata"]).lower() == "true"
    assert str(water["metadata"]).lower() == "false"
    assert "repair" not in by_code  # majors are groups, not services


def test_services_leave_out_deactivated_categories(client, cat_world):
    cat_world.a.cat_water.active = False
    db.session.commit()
    codes = {
        s["service_code"] for s in client.get(f"{BASE}/services.json?{_jid(cat_world.a)}").json
    }
    assert "repair.water" not in codes and "help.shopping" in codes


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_jurisdiction_is_required_and_checked(client, cat_world, fmt):
    assert "jurisdiction_id" in _error(client.get(f"{BASE}/services.{fmt}"), fmt, 400)
    _error(client.get(f"{BASE}/services.{fmt}?jurisdiction_id=99999"), fmt, 404)
    _error(client.get(f"{BASE}/services.{fmt}?jurisdiction_id=abc"), fmt, 404)


def test_single_community_needs_no_jurisdiction(client, make_community):
    from portal.help.catalogue import seed_catalogue

    community = make_community()
    seed_catalogue(community.id)
    db.session.commit()
    response = client.get(f"{BASE}/services.json")
    assert response.status_code == 200 and len(response.json) >= 40


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_service_definition(client, cat_world, fmt):
    response = client.get(f"{BASE}/services/help.shopping.{fmt}?{_jid(cat_world.a)}")
    assert response.status_code == 200
    if fmt == "json":
        data = response.get_json()
        attributes = data["attributes"]
    else:
        root = ET.fromstring(response.get_data())
        assert root.tag == "service_definition"
        data = {"service_code": root.findtext("service_code")}
        attributes = [{c.tag: c.text for c in a} for a in root.findall("attributes/attribute")]
    assert data["service_code"] == "help.shopping"
    (attribute,) = attributes
    assert {"variable", "code", "datatype", "required", "datatype_description", "order",
            "description", "values"} <= set(attribute)  # fmt: skip
    assert attribute["code"] == "preferred_time" and attribute["datatype"] == "string"
    water = client.get(f"{BASE}/services/repair.water.{fmt}?{_jid(cat_world.a)}")
    if fmt == "json":
        assert water.get_json() == {"service_code": "repair.water", "attributes": []}
    else:
        assert ET.fromstring(water.get_data()).find("attributes").findall("attribute") == []
    _error(client.get(f"{BASE}/services/nope.x.{fmt}?{_jid(cat_world.a)}"), fmt, 404)


# --- reading requests -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_requests_list_has_the_spec_fields_and_no_personal_data(client, o_requests, fmt):
    """Without a key: only the public category's request, without its text or photo."""
    world = o_requests
    response = client.get(f"{BASE}/requests.{fmt}?{_jid(world.a)}")
    assert response.status_code == 200
    rows = _rows(response, fmt, "service_requests", "request")
    assert {str(r["service_request_id"]) for r in rows} == {str(world.a.o_open.id)}
    assert all(set(r) == REQUEST_FIELDS for r in rows)
    (open_,) = rows
    assert open_["status"] == "open" and open_["status_notes"] == "dispatched"
    assert open_["service_code"] == "repair.lighting" and open_["service_name"] == "楼道灯坏"
    assert open_["agency_responsible"] == "物业公司"  # labels follow the default language (Chinese)
    assert not open_["description"]  # the requester did not tick "may be shown publicly"
    assert open_["address"] == f"{world.a.estate.name}1号楼"
    assert str(open_["address_id"]) == str(world.a.building.id)
    assert not open_["media_url"]
    expected = datetime.fromisoformat(open_["expected_datetime"])
    assert expected.utcoffset() == timedelta(hours=8)
    assert abs(expected - world.a.o_open.due_at) < timedelta(seconds=1)
    datetime.fromisoformat(open_["requested_datetime"])
    body = response.get_data(as_text=True)
    _assert_no_personal_data(body, world)
    for private in ("B的请求", "room", "3号楼楼道灯不亮", "重复提交", "帮6楼老人买菜"):
        assert private not in body


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_keyed_client_gets_its_own_requests_in_full(client, o_requests, fmt):
    world = o_requests
    response = client.get(f"{BASE}/requests.{fmt}?api_key={world.a.cat_key}")
    rows = {str(r["service_request_id"]): r for r in _rows(response, fmt, "service_requests",
                                                            "request")}  # fmt: skip
    assert set(rows) == {str(world.a.o_open.id), str(world.a.o_rejected.id)}
    own = rows[str(world.a.o_rejected.id)]
    assert own["status"] == "closed" and own["status_notes"] == "rejected: 重复提交"
    assert own["description"] == "帮6楼老人买菜"
    assert str(own["address_id"]) == str(world.a.building2.id)
    assert own["media_url"].startswith("http")
    # Someone else's request: still only its public view.
    other = rows[str(world.a.o_open.id)]
    assert not other["description"] and not other["media_url"]
    _assert_no_personal_data(response.get_data(as_text=True), world)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_requests_filters(client, o_requests, fmt):
    world = o_requests
    a_open, a_rejected = world.a.o_open.id, world.a.o_rejected.id

    def ids(query: str) -> set[int]:
        response = client.get(f"{BASE}/requests.{fmt}?api_key={world.a.cat_key}&{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return {int(r["service_request_id"]) for r in _rows(response, fmt, "service_requests",
                                                             "request")}  # fmt: skip

    assert ids("status=open") == {a_open}
    assert ids("status=closed") == {a_rejected}
    assert ids("status=open,closed") == {a_open, a_rejected}
    assert ids("service_code=help.shopping") == {a_rejected}
    assert ids(f"service_request_id={a_rejected},{world.b.o_open.id}") == {a_rejected}
    # A list of ids overrides the other filters, as the spec says.
    assert ids(f"service_request_id={a_open}&status=closed") == {a_open}
    assert ids("start_date=2000-01-01T00:00:00Z&end_date=2000-12-31T00:00:00Z") == set()
    tomorrow = (now_utc() + timedelta(days=1)).isoformat(timespec="seconds")
    yesterday = (now_utc() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S+08:00")
    assert ids(f"start_date={yesterday}&end_date={tomorrow}") == {a_open, a_rejected}
    assert a_rejected not in ids_keyless(client, world, fmt)
    _error(client.get(f"{BASE}/requests.{fmt}?{_jid(world.a)}&status=pending"), fmt, 400)
    _error(client.get(f"{BASE}/requests.{fmt}?{_jid(world.a)}&start_date=soon"), fmt, 400)
    _error(client.get(f"{BASE}/requests.{fmt}?{_jid(world.a)}&service_request_id=x"), fmt, 400)


def ids_keyless(client, world, fmt: str = "json") -> set[int]:
    response = client.get(f"{BASE}/requests.{fmt}?{_jid(world.a)}")
    return {int(r["service_request_id"]) for r in _rows(response, fmt, "service_requests",
                                                         "request")}  # fmt: skip


def test_requests_default_to_the_last_90_days(client, o_requests):
    world = o_requests
    lighting = cat_category(world.a.community, "repair.lighting")
    old = in_make_request(world.a, lighting, created_at=now_utc() - timedelta(days=91))
    ids = {
        r["service_request_id"] for r in client.get(f"{BASE}/requests.json?{_jid(world.a)}").json
    }
    assert old.id not in ids and world.a.o_open.id in ids
    ids = {
        r["service_request_id"]
        for r in client.get(
            f"{BASE}/requests.json?{_jid(world.a)}&service_request_id={old.id}"
        ).json
    }
    assert ids == {old.id}


def test_requests_list_runs_a_fixed_number_of_queries(client, o_requests):
    world = o_requests
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    url = f"{BASE}/requests.json?api_key={world.a.cat_key}"
    lighting = cat_category(world.a.community, "repair.lighting")
    in_make_request(world.a, lighting, show_publicly=True, description="灯坏了")
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        client.get(url)
        before = len(statements)
        for _ in range(2):
            in_make_request(
                world.a, lighting, household_id=world.a.household2.id, show_publicly=True
            )
            in_make_request(world.a, world.a.cat_shopping, api_key_id=world.a.cat_key_row.id)
            in_make_request(world.a, world.a.cat_shopping)  # private: not listed
        statements.clear()
        assert len(client.get(url).json) == 7
        assert len(statements) == before
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_request_detail_and_isolation(client, o_requests, fmt):
    world = o_requests
    response = client.get(f"{BASE}/requests/{world.a.o_open.id}.{fmt}?{_jid(world.a)}")
    (row,) = _rows(response, fmt, "service_requests", "request")
    assert set(row) == REQUEST_FIELDS and str(row["service_request_id"]) == str(world.a.o_open.id)
    _assert_no_personal_data(response.get_data(as_text=True), world)
    # A key of A names community A: B's request is not found, in the spec's format.
    key = world.a.cat_key
    response = client.get(f"{BASE}/requests/{world.b.o_open.id}.{fmt}?api_key={key}")
    _error(response, fmt, 404)
    assert "B的请求" not in response.get_data(as_text=True)
    _error(client.get(f"{BASE}/requests/{world.b.o_open.id}.{fmt}?{_jid(world.a)}"), fmt, 404)
    _error(client.get(f"{BASE}/requests/{world.a.o_open.id}.{fmt}?api_key=tx_wrong"), fmt, 403)
    _error(client.get(f"{BASE}/requests/{world.a.o_open.id}.{fmt}"), fmt, 400)
    response = client.get(
        f"{BASE}/requests/{world.a.o_open.id}.{fmt}?api_key={key}&{_jid(world.b)}"
    )
    _error(response, fmt, 400)


# --- posting ----------------------------------------------------------------------------------


def _post(client, fmt="json", **data):
    return client.post(f"{BASE}/requests.{fmt}", data=data, csrf=False)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_post_creates_a_routed_request_with_its_clock(client, cat_keys, fmt):
    world = cat_keys
    before = now_utc()
    response = _post(
        client, fmt, api_key=world.a.cat_key, service_code="help.shopping",
        address_id=str(world.a.building.id), description="请帮6楼的老人买菜",
        **{"attribute[preferred_time]": "周六上午"}, first_name="张", phone="13900000000",
    )  # fmt: skip
    assert response.status_code == 200, response.get_data(as_text=True)
    (answer,) = _rows(response, fmt, "service_requests", "request")
    assert set(answer) == {"token", "service_request_id", "service_notice", "account_id"}
    assert not answer["account_id"] and "24" in answer["service_notice"]
    req = db.session.get(HelpRequest, int(answer["service_request_id"]))
    assert req.token == answer["token"] and len(req.token) >= 20
    assert req.community_id == world.a.community.id and req.source == "open311"
    assert req.requester_id is None and req.created_by_id is None
    assert req.api_key_id == world.a.cat_key_row.id
    assert req.category_id == world.a.cat_shopping.id and req.status == "submitted"
    assert req.building_id == world.a.building.id and req.grid_id == world.a.grid.id
    assert req.handler_user_id == world.a.gridworker.id  # routed to the grid's worker
    assert req.preferred_time == "周六上午"
    assert timedelta(hours=23) < req.due_at - before <= timedelta(hours=24, seconds=5)
    actions = list(
        db.session.scalars(select(RequestEvent.action).where(RequestEvent.request_id == req.id))
    )
    assert sorted(actions) == ["route", "submit"]
    # Followed by its token, in both formats.
    for follow_fmt in ("json", "xml"):
        response = client.get(f"{BASE}/tokens/{req.token}.{follow_fmt}?{_jid(world.a)}")
        (row,) = _rows(response, follow_fmt, "service_requests", "request")
        assert str(row["service_request_id"]) == str(req.id) and row["token"] == req.token
    _error(client.get(f"{BASE}/tokens/{req.token}.{fmt}?{_jid(world.b)}"), fmt, 404)
    _error(client.get(f"{BASE}/tokens/nope.{fmt}?{_jid(world.a)}"), fmt, 404)


def test_post_with_coordinates_or_address(client, cat_keys):
    world = cat_keys
    response = _post(
        client, api_key=world.a.cat_key, service_code="repair.water", lat="32.684512",
        long="109.029874", description="路边消防栓漏水",
    )  # fmt: skip
    req = db.session.get(HelpRequest, response.json[0]["service_request_id"])
    assert float(req.lat) == pytest.approx(32.684512) and req.grid_id is None
    assert req.handler_user_id is None  # no grid: the community office
    response = _post(
        client, "xml", api_key=world.a.cat_key, service_code="repair.water",
        address_string="汉江路12号门口", description="井盖缺失",
    )  # fmt: skip
    assert response.status_code == 200
    assert (
        db.session.scalar(select(HelpRequest.address).where(HelpRequest.description == "井盖缺失"))
        == "汉江路12号门口"
    )  # noqa: E501


def _count() -> int:
    return db.session.scalar(select(func.count(HelpRequest.id)))


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"api_key": None}, 403),
        ({"api_key": "tx_not-a-real-key"}, 403),
        ({"api_key": "revoked"}, 403),
        ({"address_id": None}, 400),
        ({"address_id": "other-community"}, 400),
        ({"service_code": "no.such"}, 400),
        ({"service_code": None}, 400),
        ({"service_code": "repair"}, 400),  # a major category is no service
        ({"description": "漏" * 4001}, 400),
        ({"description": ""}, 400),
        ({"lat": "32.1"}, 400),  # without long
        ({"jurisdiction_id": "other-community"}, 400),
    ],
)
def test_post_errors_save_nothing(client, cat_keys, fmt, change, status):
    from portal.help.apikeys import revoke_api_key

    world = cat_keys
    data = {
        "api_key": world.a.cat_key,
        "service_code": "repair.water",
        "address_id": str(world.a.building.id),
        "description": "水管漏水",
    }
    for name, value in change.items():
        if value is None:
            data.pop(name)
        elif value == "revoked":
            revoke_api_key(world.a.cat_key_row)
            db.session.commit()
        elif value == "other-community":
            data[name] = str(world.b.building.id if name == "address_id" else world.b.community.id)
        else:
            data[name] = value
    response = _post(client, fmt, **data)
    _error(response, fmt, status)
    assert _count() == 0


def test_the_4000_character_description_is_accepted(client, cat_keys):
    response = _post(
        client, api_key=cat_keys.a.cat_key, service_code="repair.water",
        address_string="门口", description="漏" * 4000,
    )  # fmt: skip
    assert response.status_code == 200 and _count() == 1


def test_post_needs_no_csrf_token_but_other_forms_do(client, cat_keys, auth):
    response = _post(
        client, api_key=cat_keys.a.cat_key, service_code="repair.water", address_string="门口",
        description="漏水",
    )  # fmt: skip
    assert response.status_code == 200
    auth.login("secretary_a")
    assert client.post("/catalogue/new", data={"name_zh": "x"}, csrf=False).status_code == 400


def test_revoked_key_stops_working(client, auth, cat_keys):
    data = {
        "api_key": cat_keys.a.cat_key, "service_code": "repair.water",
        "address_string": "门口", "description": "漏水",
    }  # fmt: skip
    assert _post(client, **data).status_code == 200
    auth.login("secretary_a")
    client.post(f"/catalogue/api-keys/{cat_keys.a.cat_key_row.id}/revoke")
    auth.logout()
    _error(_post(client, **data), "json", 403)
    assert _count() == 1
