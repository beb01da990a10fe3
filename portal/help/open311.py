"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2): a city 12345 platform, a WeChat
mini-program or any Open311 client reads the catalogue and requests, and posts requests.

Every resource comes as ``.json`` or ``.xml`` by its suffix. A community is a jurisdiction
(``jurisdiction_id`` = its id); a POST authenticates with an API key, whose community is the
jurisdiction. Nothing about the requester as a person is ever returned.
"""

from __future__ import annotations

import json
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, Response, current_app, request
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import aliased, joinedload
from werkzeug.routing import BuildError

from portal.core.pagecache import Scope, cached_page
from portal.core.stamps import read_stamp
from portal.core.timeutil import now_utc, to_local
from portal.core.urls import external_url
from portal.database import read_outside_transaction
from portal.extensions import csrf, db
from portal.help import intake
from portal.help.apikeys import find_active_key
from portal.help.catalogue import HANDLER_LABELS
from portal.help.models import (
    OPEN_STATUSES,
    ApiKey,
    Category,
    HelpRequest,
    RequestEvent,
    RequestPhoto,
)
from portal.places.models import Building, Community, Estate, Household

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-28T00:00:00+08:00"  # when this interface last changed
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
MAX_RESULTS = 1000
DEFAULT_DAYS = 90
DESCRIPTION_MAX = 4000
ADDRESS_MAX = 200
PREFERRED_TIME_MAX = 100

# Questions a category asks (its service definition); keyed by category kind.
ATTRIBUTES = {
    "neighbour_help": [
        {
            "code": "preferred_time",
            "datatype": "string",
            "required": False,
            "order": 1,
        }
    ]
}


class Open311Error(Exception):
    """An error answered in the spec's format with the matching HTTP status."""

    def __init__(self, code: int, description: str):
        super().__init__(description)
        self.code = code
        self.description = description


# --- encoding ---------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _xml_element(tag: str, value: Any) -> ET.Element:
    """``value`` as an element: dicts give children, lists repeat the child tag."""
    element = ET.Element(tag)
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, list) and key in LIST_CHILDREN:
                holder = ET.SubElement(element, key)
                for entry in item:
                    holder.append(_xml_element(LIST_CHILDREN[key], entry))
            else:
                element.append(_xml_element(key, item))
    else:
        element.text = _text(value)
    return element


# In XML a list is a holder element with one child per entry.
LIST_CHILDREN = {
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}


def _answer(fmt: str, root: str, child: str | None, data: Any, status: int = 200) -> Response:
    """Serialise ``data`` (a dict, or a list of dicts under ``root``/``child`` in XML)."""
    if fmt == "json":
        body = json.dumps(data, ensure_ascii=False)
    else:
        if child is None:
            element = _xml_element(root, data)
        else:
            element = ET.Element(root)
            for item in data:
                element.append(_xml_element(child, item))
        body = ET.tostring(element, encoding="unicode", xml_declaration=False)
        body = '<?xml version="1.0" encoding="utf-8"?>\n' + body
    response = Response(body, status=status, content_type=FORMATS[fmt])
    response.headers["Cache-Control"] = "no-store"
    return response


def _error_answer(fmt: str, code: int, description: str) -> Response:
    return _answer(
        fmt if fmt in FORMATS else "json",
        "errors",
        "error",
        [{"code": code, "description": description}],
        status=code,
    )


@bp.errorhandler(Open311Error)
def _open311_error(error: Open311Error):
    db.session.rollback()
    fmt = (request.view_args or {}).get("fmt", "json")
    return _error_answer(fmt, error.code, error.description)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise Open311Error(404, _("Unknown format: use .json or .xml."))


def _w3c(moment: datetime | None) -> str | None:
    """ISO 8601 (w3c note) with the offset, in Beijing time."""
    return to_local(moment).isoformat(timespec="seconds") if moment else None


def _parse_w3c(name: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError:
        raise Open311Error(
            400, _("%(name)s is not an ISO 8601 date and time.", name=name)
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=to_local(now_utc()).tzinfo)
    return moment


# --- jurisdiction and key ---------------------------------------------------------------------


def _community_of(api_key: ApiKey | None) -> int:
    """The jurisdiction: the key's community, else ``jurisdiction_id`` (required when the
    portal serves several communities)."""
    wanted = request.values.get("jurisdiction_id", "").strip()
    if api_key is not None:
        if wanted and wanted != str(api_key.community_id):
            raise Open311Error(400, _("jurisdiction_id does not match the api_key."))
        return api_key.community_id
    if wanted:
        ident = int(wanted) if wanted.isdigit() and len(wanted) < 18 else None
        if ident is None or db.session.get(Community, ident) is None:
            raise Open311Error(404, _("jurisdiction_id not found."))
        return ident
    ids = list(db.session.scalars(select(Community.id).order_by(Community.id).limit(2)))
    if not ids:
        raise Open311Error(404, _("jurisdiction_id not found."))
    if len(ids) > 1:
        raise Open311Error(400, _("jurisdiction_id is required: one community's id."))
    return ids[0]


def _key_if_given() -> ApiKey | None:
    """A GET may name its community by an API key instead; a wrong key is refused."""
    if "api_key" not in request.values:
        return None
    api_key = find_active_key(request.values.get("api_key"))
    if api_key is None:
        raise Open311Error(403, _("Invalid api_key."))
    return api_key


# --- discovery and services -------------------------------------------------------------------


@bp.get("/discovery.<fmt>")
def discovery(fmt: str):
    _check_format(fmt)
    data = {
        "changeset": CHANGESET,
        "contact": _(
            "Ask the community office. Every resource takes jurisdiction_id (a community's id),"
            " required when several communities are served; a POST takes an api_key that a"
            " community secretary creates."
        ),
        "key_service": external_url("catalogue.keys"),
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": external_url("open311.discovery", fmt=fmt).rsplit("/", 1)[0],
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
    return _answer(fmt, "discovery", None, data)


def _service(category: Category) -> dict:
    return {
        "service_code": category.code,
        "service_name": category.name_zh,
        "description": category.description,
        "metadata": category.kind in ATTRIBUTES,
        "type": "realtime",
        "keywords": ", ".join(part for part in (category.name_en, category.code) if part),
        "group": category.parent.name_zh if category.parent else "",
    }


def _offered(community_id: int):
    parent = db.aliased(Category)
    return (
        select(Category)
        .join(parent, parent.id == Category.parent_id)
        .options(joinedload(Category.parent))
        .where(
            Category.community_id == community_id,
            Category.active.is_(True),
            parent.active.is_(True),
        )
    )


@bp.get("/services.<fmt>")
def services(fmt: str):
    _check_format(fmt)
    community_id = _community_of(_key_if_given())
    categories = db.session.scalars(
        _offered(community_id).order_by(Category.parent_id, Category.position, Category.id)
    ).unique()
    # Majors first by their own order, then their minors.
    rows = sorted(categories, key=lambda c: (c.parent.position, c.parent.id, c.position, c.id))
    return _answer(fmt, "services", "service", [_service(c) for c in rows])


def _offered_category(community_id: int, code: str) -> Category | None:
    return db.session.scalar(_offered(community_id).where(Category.code == code))


@bp.get("/services/<code>.<fmt>")
def service_definition(code: str, fmt: str):
    _check_format(fmt)
    community_id = _community_of(_key_if_given())
    category = _offered_category(community_id, code)
    if category is None:
        raise Open311Error(404, _("service_code not found."))
    attributes = [
        {
            "variable": True,
            "code": item["code"],
            "datatype": item["datatype"],
            "required": item["required"],
            "datatype_description": _("When would suit you, e.g. weekday afternoons."),
            "order": item["order"],
            "description": _("Preferred time"),
            "values": [],
        }
        for item in ATTRIBUTES.get(category.kind, [])
    ]
    return _answer(
        fmt, "service_definition", None, {"service_code": category.code, "attributes": attributes}
    )


# --- requests ---------------------------------------------------------------------------------


def _media_urls(ids: Iterable[int]) -> dict[int, str]:
    """The absolute URL of each request's first submitted photo (one query)."""
    ids = list(ids)
    if not ids:
        return {}
    first = (
        select(RequestPhoto.request_id, func.min(RequestPhoto.id))
        .where(RequestPhoto.request_id.in_(ids), RequestPhoto.stage == "submit")
        .group_by(RequestPhoto.request_id)
    )
    urls = {}
    for request_id, photo_id in db.session.execute(first):
        try:
            urls[request_id] = external_url("help.photo", photo_id=photo_id)
        except BuildError:  # the photo route is not there: no media
            break
    return urls


# Open311 answers up to MAX_RESULTS rows: they are read as plain rows of the columns the answer
# needs (no ORM objects), the building through the request or its household, in one query.
_RequestBuilding = aliased(Building)
_RequestEstate = aliased(Estate)
_HouseholdBuilding = aliased(Building)
_HouseholdEstate = aliased(Estate)


def _requests_query(community_id: int):
    return (
        select(
            HelpRequest.id,
            HelpRequest.status,
            HelpRequest.reject_reason,
            Category.name_zh,
            Category.code,
            Category.handler,
            HelpRequest.handling_unit,
            HelpRequest.description,
            HelpRequest.created_at,
            HelpRequest.updated_at,
            HelpRequest.due_at,
            HelpRequest.address,
            HelpRequest.lat,
            HelpRequest.long,
            _RequestBuilding.id.label("building_id"),
            _RequestBuilding.name.label("building_name"),
            _RequestEstate.name.label("estate_name"),
            _HouseholdBuilding.id.label("household_building_id"),
            _HouseholdBuilding.name.label("household_building_name"),
            _HouseholdEstate.name.label("household_estate_name"),
        )
        .join(Category, Category.id == HelpRequest.category_id)
        .outerjoin(_RequestBuilding, _RequestBuilding.id == HelpRequest.building_id)
        .outerjoin(_RequestEstate, _RequestEstate.id == _RequestBuilding.estate_id)
        .outerjoin(Household, Household.id == HelpRequest.household_id)
        .outerjoin(_HouseholdBuilding, _HouseholdBuilding.id == Household.building_id)
        .outerjoin(_HouseholdEstate, _HouseholdEstate.id == _HouseholdBuilding.estate_id)
        .where(HelpRequest.community_id == community_id)
        .order_by(HelpRequest.created_at.desc(), HelpRequest.id.desc())
    )


def _request_data(row, media: dict[int, str], agencies: dict[str, str]) -> dict:
    (
        request_id,
        status,
        reject_reason,
        service_name,
        service_code,
        handler,
        handling_unit,
        description,
        created_at,
        updated_at,
        due_at,
        address,
        lat,
        long,
        building_id,
        building_name,
        estate_name,
        household_building_id,
        household_building_name,
        household_estate_name,
    ) = row
    # Where, to the building at most: never the household's door.
    address_id = None
    if building_id is not None:
        address, address_id = f"{estate_name}{building_name}", building_id
    elif household_building_id is not None:
        address = f"{household_estate_name}{household_building_name}"
        address_id = household_building_id
    unit = handling_unit or handler or ""
    agency = agencies.get(unit)
    if agency is None:
        agency = agencies[unit] = str(HANDLER_LABELS.get(unit, unit))
    return {
        "service_request_id": request_id,
        "status": "open" if status in OPEN_STATUSES else "closed",
        "status_notes": f"rejected: {reject_reason}"
        if status == "rejected" and reject_reason
        else status,
        "service_name": service_name,
        "service_code": service_code,
        "description": description,
        "agency_responsible": agency,
        "service_notice": "",
        "requested_datetime": _w3c(created_at),
        "updated_datetime": _w3c(updated_at),
        "expected_datetime": _w3c(due_at),
        "address": address,
        "address_id": address_id,
        "zipcode": "",
        "lat": float(lat) if lat is not None else None,
        "long": float(long) if long is not None else None,
        "media_url": media.get(request_id),
    }


def _answer_requests(fmt: str, rows: list) -> Response:
    media = _media_urls(r.id for r in rows)
    agencies: dict[str, str] = {}
    return _answer(
        fmt, "service_requests", "request", [_request_data(r, media, agencies) for r in rows]
    )


def _id_list(value: str) -> list[int]:
    ids = []
    for part in value.split(","):
        part = part.strip()
        if not part.isdigit() or len(part) > 18:
            raise Open311Error(400, _("service_request_id must be numbers separated by commas."))
        ids.append(int(part))
    return ids


def jurisdiction_scope() -> Scope:
    """A GET naming its community by ``jurisdiction_id`` is cached under that community's data
    stamp; one with an ``api_key`` or no jurisdiction is not."""
    wanted = request.args.get("jurisdiction_id", "").strip()
    if "api_key" in request.values or not wanted.isdigit() or len(wanted) > 9:
        return None
    community_id = int(wanted)
    with read_outside_transaction():  # a cached answer: this one round trip (PostgreSQL)
        return community_id, read_stamp(community_id)


@bp.get("/requests.<fmt>")
@cached_page(jurisdiction_scope)
def requests_index(fmt: str):
    _check_format(fmt)
    community_id = _community_of(_key_if_given())
    query = _requests_query(community_id)
    args = request.args
    if args.get("service_request_id", "").strip():
        # The spec: a list of ids overrides every other filter.
        query = query.where(HelpRequest.id.in_(_id_list(args["service_request_id"])))
    else:
        codes = [c.strip() for c in args.get("service_code", "").split(",") if c.strip()]
        if codes:
            query = query.where(Category.code.in_(codes))
        end = _parse_w3c("end_date", args["end_date"]) if args.get("end_date") else None
        start = _parse_w3c("start_date", args["start_date"]) if args.get("start_date") else None
        if start is None:
            start = (end or now_utc()) - timedelta(days=DEFAULT_DAYS)
        query = query.where(HelpRequest.created_at >= start)
        if end is not None:
            query = query.where(HelpRequest.created_at <= end)
        statuses = {s.strip() for s in args.get("status", "").split(",") if s.strip()}
        if statuses - {"open", "closed"}:
            raise Open311Error(400, _("status must be open or closed."))
        if statuses == {"open"}:
            query = query.where(HelpRequest.status.in_(OPEN_STATUSES))
        elif statuses == {"closed"}:
            query = query.where(HelpRequest.status.not_in(OPEN_STATUSES))
    rows = db.session.execute(query.limit(MAX_RESULTS)).all()
    return _answer_requests(fmt, rows)


@bp.get("/requests/<int:request_id>.<fmt>")
def request_detail(request_id: int, fmt: str):
    _check_format(fmt)
    community_id = _community_of(_key_if_given())
    row = None
    if 0 < request_id < 2**63:
        row = db.session.execute(
            _requests_query(community_id).where(HelpRequest.id == request_id)
        ).first()
    if row is None:
        raise Open311Error(404, _("service_request_id not found."))
    return _answer_requests(fmt, [row])


@bp.get("/tokens/<token>.<fmt>")
def token_detail(token: str, fmt: str):
    _check_format(fmt)
    community_id = _community_of(_key_if_given())
    row = db.session.scalar(
        select(HelpRequest).where(
            HelpRequest.token == token[:40], HelpRequest.community_id == community_id
        )
    )
    if row is None:
        raise Open311Error(404, _("token not found."))
    return _answer(
        fmt,
        "service_requests",
        "request",
        [{"service_request_id": row.id, "token": row.token}],
    )


# --- posting a request ------------------------------------------------------------------------


def _decimal(name: str, value: str, limit: int) -> Decimal:
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise Open311Error(400, _("%(name)s must be a number.", name=name)) from None
    if not number.is_finite() or abs(number) > limit:
        raise Open311Error(400, _("%(name)s is out of range.", name=name))
    return number.quantize(Decimal("0.000001"))


def _location(community_id: int) -> dict:
    """lat+long, address_string or address_id (a building of the community): one is required."""
    form = request.form
    lat, long = form.get("lat", "").strip(), form.get("long", "").strip()
    address = form.get("address_string", "").strip()
    address_id = form.get("address_id", "").strip()
    where: dict[str, Any] = {"lat": None, "long": None, "address": "", "building": None}
    if bool(lat) != bool(long):
        raise Open311Error(400, _("lat and long must be given together."))
    if lat:
        where["lat"] = _decimal("lat", lat, 90)
        where["long"] = _decimal("long", long, 180)
    if len(address) > ADDRESS_MAX:
        raise Open311Error(400, _("address_string: at most %(max)d characters.", max=ADDRESS_MAX))
    where["address"] = address
    if address_id:
        building = None
        if address_id.isdigit() and len(address_id) < 18:
            building = db.session.get(Building, int(address_id))
        if building is None or building.community_id != community_id:
            raise Open311Error(400, _("address_id is not a building of this jurisdiction."))
        where["building"] = building
    if not (lat or address or address_id):
        raise Open311Error(
            400, _("A location is required: lat and long, address_string or address_id.")
        )
    return where


@csrf.exempt
@bp.post("/requests.<fmt>")
def create(fmt: str):
    _check_format(fmt)
    api_key = find_active_key(request.form.get("api_key"))
    if api_key is None:
        raise Open311Error(403, _("Invalid or missing api_key."))
    community_id = _community_of(api_key)
    code = request.form.get("service_code", "").strip()
    if not code:
        raise Open311Error(400, _("service_code is required."))
    category = _offered_category(community_id, code)
    if category is None:
        raise Open311Error(400, _("service_code not found."))
    where = _location(community_id)
    description = request.form.get("description", "").strip()
    if not description:
        raise Open311Error(400, _("description is required."))
    if len(description) > DESCRIPTION_MAX:
        raise Open311Error(400, _("description: at most %(max)d characters.", max=DESCRIPTION_MAX))
    preferred_time = request.form.get("attribute[preferred_time]", "").strip()
    if len(preferred_time) > PREFERRED_TIME_MAX:
        raise Open311Error(
            400, _("preferred_time: at most %(max)d characters.", max=PREFERRED_TIME_MAX)
        )
    req = _create_request(api_key, category, where, description, preferred_time)
    db.session.commit()
    notice = _("To be handled within %(hours)d hours.", hours=category.time_limit_hours or 0)
    return _answer(
        fmt,
        "service_requests",
        "request",
        [
            {
                "token": req.token,
                "service_request_id": req.id,
                "service_notice": notice,
                "account_id": None,
            }
        ],
    )


def _create_request(
    api_key: ApiKey, category: Category, where: dict, description: str, preferred_time: str
) -> HelpRequest:
    """Insert the request, route it like a web request and start its clock; flushes only."""
    now = now_utc()
    building = where["building"]
    req = HelpRequest(
        community_id=api_key.community_id,
        grid_id=building.grid_id if building else None,
        category_id=category.id,
        requester_id=None,
        created_by_id=None,
        description=description,
        building_id=building.id if building else None,
        address=where["address"],
        lat=where["lat"],
        long=where["long"],
        preferred_time=preferred_time,
        status="submitted",
        due_at=now + timedelta(hours=category.time_limit_hours)
        if category.time_limit_hours
        else None,
        source="open311",
        token=secrets.token_urlsafe(24),
        api_key_id=api_key.id,
        created_at=now,
        updated_at=now,
    )
    db.session.add(req)
    db.session.flush()
    handler = intake.route_request(req)
    req.handler_user_id = handler.id if handler else None
    route_note = handler.display_name if handler else ""
    db.session.add_all(
        [
            RequestEvent(
                community_id=req.community_id, request_id=req.id, actor_id=None,
                action="submit", from_status=None, to_status="submitted",
                note=api_key.name, at=now,
            ),
            RequestEvent(
                community_id=req.community_id, request_id=req.id, actor_id=None,
                action="route", from_status="submitted", to_status="submitted",
                note=route_note, at=now,
            ),
        ]
    )  # fmt: skip
    db.session.flush()
    current_app.logger.info("open311 request %s from key %s", req.id, api_key.prefix)
    return req
