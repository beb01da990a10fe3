"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2): a city 12345 platform, a WeChat
mini-program or any Open311 client reads the catalogue and requests, and posts requests.

Every resource comes as ``.json`` or ``.xml`` by its suffix. A community is a jurisdiction
(``jurisdiction_id`` = its id); a POST authenticates with an API key, whose community is the
jurisdiction. Nothing about the requester as a person is ever returned.

Who sees what (issue 15): a request is listed to a caller without a key only when its category
is public (a public-space problem, never neighbour help, care, health, family or disputes), and
then without free text unless the requester ticked "may be shown publicly" (and even then with
phones, room numbers, ages, known names and health words masked), with an address no finer than
the building, coarse coordinates and no photo. A client with the jurisdiction's key also gets
the requests it submitted itself, in full.
"""

from __future__ import annotations

import json
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, Response, current_app, request
from flask_babel import gettext as _
from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.orm import aliased, joinedload
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BuildError

from portal.core.pagecache import Scope, cached_page
from portal.core.stamps import read_stamp
from portal.core.timeutil import now_utc, to_local
from portal.core.urls import external_url
from portal.core.validators import text_problem
from portal.database import read_outside_transaction
from portal.extensions import csrf, db
from portal.help import intake
from portal.help.apikeys import find_active_key
from portal.help.catalogue import HANDLER_LABELS, NEVER_PUBLIC_GROUPS
from portal.help.models import (
    OPEN_STATUSES,
    ApiKey,
    Category,
    HelpRequest,
    RequestEvent,
    RequestPhoto,
)
from portal.people.models import Person
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


# What XML 1.0 cannot carry (C0 controls but tab, newline and return; lone surrogates; U+FFFE
# and U+FFFF). Input refuses them (text_problem), but older rows may hold them: one of them
# would make a whole list unparseable, so answers replace them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(value: Any) -> Any:
    """``value`` with every string made safe for XML 1.0 and UTF-8 (recursively)."""
    if isinstance(value, str):
        return _NOT_XML.sub("\ufffd", value)
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


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
    data = _clean(data)
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


def _asked_format() -> str:
    fmt = (request.view_args or {}).get("fmt") or request.path.rsplit(".", 1)[-1]
    return fmt if fmt in FORMATS else "json"


@bp.errorhandler(Open311Error)
def _open311_error(error: Open311Error):
    db.session.rollback()
    return _error_answer(_asked_format(), error.code, error.description)


# The spec's messages for errors that werkzeug raises (a body over MAX_CONTENT_LENGTH or a form
# field over MAX_FORM_MEMORY_SIZE: 413; a malformed body: 400). Clients parse errors as the
# format they asked for, never an HTML page.
HTTP_MESSAGES = {
    400: lambda: _(
        "The request could not be read: check its fields and their encoding (no NUL characters)."
    ),
    413: lambda: _(
        "The request is too large: a description of at most %(max)d characters, and no files.",
        max=DESCRIPTION_MAX,
    ),
}


# Registered by code too: Flask prefers the app's handler of a code (portal/errors.py's HTML
# 400/413 pages) to a blueprint's handler of a class.
@bp.errorhandler(400)
@bp.errorhandler(413)
@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    db.session.rollback()
    code = error.code or 500
    message = HTTP_MESSAGES.get(code)
    description = message() if message else (error.name or str(code))
    return _error_answer(_asked_format(), code, description)


def _refuse_bad_text(values) -> None:  # noqa: ANN001 (a werkzeug MultiDict)
    """400 when a given value holds what text cannot (text_problem): control characters, a
    bidirectional override, or only invisible characters."""
    for name, value in values.items(multi=True):
        if not value.strip():
            continue  # blank: a required field says so itself
        problem = text_problem(value) or text_problem(name)
        if problem:
            raise Open311Error(400, f"{name[:40]}: {problem}")


@bp.before_request
def _check_arguments():
    """Every argument of the query string, and the path, as text; a NUL would also reach the
    database (PostgreSQL refuses it with an error, not an answer)."""
    _refuse_bad_text(request.args)
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and text_problem(value):
            raise Open311Error(400, f"{name}: {text_problem(value)}")


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


def _carries_key() -> bool:
    """Whether the request names an api_key (in any case) in its query string or form."""
    names = {name.strip().lower() for name in (*request.args.keys(), *request.form.keys())}
    return "api_key" in names


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
_Major = aliased(Category)
_RequestBuilding = aliased(Building)
_RequestEstate = aliased(Estate)
_HouseholdBuilding = aliased(Building)
_HouseholdEstate = aliased(Estate)


def public_condition():
    """Requests anyone may see (without their free text): of a public category of a report
    group that is never private, whatever the flag says (defence in depth)."""
    return and_(
        Category.public.is_(True),
        Category.kind == "report",
        _Major.kind == "report",
        _Major.code.not_in(NEVER_PUBLIC_GROUPS),
    )


def _requests_query(community_id: int, api_key: ApiKey | None):
    """The requests this caller may see: the public ones, and those its key submitted."""
    visible = public_condition()
    if api_key is not None:
        visible = or_(HelpRequest.api_key_id == api_key.id, visible)
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
            HelpRequest.show_publicly,
            (HelpRequest.api_key_id == api_key.id if api_key is not None else false()).label("own"),
        )
        .join(Category, Category.id == HelpRequest.category_id)
        .outerjoin(_Major, _Major.id == Category.parent_id)
        .outerjoin(_RequestBuilding, _RequestBuilding.id == HelpRequest.building_id)
        .outerjoin(_RequestEstate, _RequestEstate.id == _RequestBuilding.estate_id)
        .outerjoin(Household, Household.id == HelpRequest.household_id)
        .outerjoin(_HouseholdBuilding, _HouseholdBuilding.id == Household.building_id)
        .outerjoin(_HouseholdEstate, _HouseholdEstate.id == _HouseholdBuilding.estate_id)
        .where(HelpRequest.community_id == community_id, visible)
        .order_by(HelpRequest.created_at.desc(), HelpRequest.id.desc())
    )


# --- what a public answer may say --------------------------------------------------------------

# Full-width digits and dashes as an input method types them.
_FULLWIDTH = str.maketrans("０１２３４５６７８９－", "0123456789-")
# Digits that may say who or where: phone, identity and house numbers, rooms (502, 3-2-502,
# 5号房, 2单元301), ages (82岁). Building numbers (3号楼, 3栋) stay: the building is public.
_PERSONAL_NUMBERS = re.compile(
    r"\+?\d[\d\s\-]{5,}\d[xX]?"  # phone, identity or account numbers, spaced or not
    r"|\d+\s*(?:岁|周岁|室|户|号房|房间|房|楼层|层|单元)"  # an age, a room, a floor, an entrance
    r"|[一二两三四五六七八九十百]+多?\s*(?:岁|周岁)"  # 八十多岁
    r"|\d+\s*-\s*\d+(?:\s*-\s*\d+)*"  # 3-2-502
    r"|\d{3,}"  # a room number standing alone
)
# Words that tell of a person's health or frailty (a public list must not map the vulnerable).
HEALTH_WORDS = (
    "高血压", "低血压", "血压", "血糖", "糖尿病", "心脏病", "心脏", "中风", "脑梗", "偏瘫", "瘫痪",
    "卧床", "癌", "肿瘤", "化疗", "透析", "残疾", "失明", "失聪", "聋", "哑", "痴呆", "认知障碍",
    "精神", "抑郁", "自闭", "怀孕", "孕妇", "住院", "手术", "生病", "病人", "患者", "吃药", "药",
    "独居", "孤寡", "空巢", "失能", "半失能", "行动不便", "走不了", "不能走", "腿脚不便", "拐杖",
    "轮椅", "低保", "特困",
)  # fmt: skip
_HEALTH = re.compile("|".join(re.escape(word) for word in HEALTH_WORDS))
MASK = "＊＊"


def public_text(text: str, names: Iterable[str] = ()) -> str:
    """``text`` as a public answer may show it: known names, personal numbers and health words
    masked. The requester ticked "may be shown publicly"; this guards against what they did not
    think of, it does not make a private text public."""
    text = (text or "").translate(_FULLWIDTH)
    for name in sorted({n for n in names if n and len(n) >= 2}, key=len, reverse=True):
        text = text.replace(name, MASK)
    text = _PERSONAL_NUMBERS.sub(MASK, text)
    return _HEALTH.sub(MASK, text)


def _known_names(ids: list[int]) -> dict[int, set[str]]:
    """The names of the people each request concerns (requester, volunteer, the household's
    residents) and their given names, to mask in public text (one query)."""
    if not ids:
        return {}
    rows = db.session.execute(
        select(HelpRequest.id, Person.name)
        .join(
            Person,
            or_(
                Person.id == HelpRequest.requester_id,
                Person.id == HelpRequest.volunteer_id,
                and_(
                    HelpRequest.household_id.is_not(None),
                    Person.household_id == HelpRequest.household_id,
                ),
            ),
        )
        .where(HelpRequest.id.in_(ids))
    )
    names: dict[int, set[str]] = {}
    for request_id, name in rows:
        known = names.setdefault(request_id, set())
        known.add(name)
        if len(name) >= 3:
            known.add(name[1:])  # 秀英 of 王秀英
    return names


# Public coordinates: three decimals, about 100 m: no finer than a building.
PUBLIC_DEGREES = Decimal("0.001")


def _coordinate(value: Decimal | None, full: bool) -> float | None:
    if value is None:
        return None
    return float(value if full else Decimal(value).quantize(PUBLIC_DEGREES))


def _request_data(row, media: dict[int, str], agencies: dict[str, str], names) -> dict:
    """One request as Open311 shows it: in full to the key that submitted it, else the public
    view (no free text unless ticked, masked; building-level address; no photo)."""
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
        show_publicly,
        own,
    ) = row
    full = bool(own)
    if not full:
        # The free address may name a door: only a building of the community is said.
        address = ""
        description = public_text(description, names.get(request_id, ())) if show_publicly else ""
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
    notes = status
    if full and status == "rejected" and reject_reason:
        notes = f"rejected: {reject_reason}"
    return {
        "service_request_id": request_id,
        "status": "open" if status in OPEN_STATUSES else "closed",
        "status_notes": notes,
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
        "lat": _coordinate(lat, full),
        "long": _coordinate(long, full),
        "media_url": media.get(request_id) if full else None,
    }


def _answer_requests(fmt: str, rows: list) -> Response:
    # Photos only of the caller's own requests: a photo may show a face, a door, a room.
    media = _media_urls(r.id for r in rows if r.own)
    names = _known_names([r.id for r in rows if r.show_publicly and not r.own])
    agencies: dict[str, str] = {}
    return _answer(
        fmt,
        "service_requests",
        "request",
        [_request_data(r, media, agencies, names) for r in rows],
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
    stamp; one with an ``api_key`` (in any spelling of the name, anywhere in the request) or no
    jurisdiction is not: a keyed answer holds that client's own requests in full, and must
    never be stored where a keyless caller could be served it."""
    wanted = request.args.get("jurisdiction_id", "").strip()
    if _carries_key() or not wanted.isdigit() or len(wanted) > 9:
        return None
    community_id = int(wanted)
    with read_outside_transaction():  # a cached answer: this one round trip (PostgreSQL)
        return community_id, read_stamp(community_id)


@bp.get("/requests.<fmt>")
@cached_page(jurisdiction_scope)
def requests_index(fmt: str):
    _check_format(fmt)
    api_key = _key_if_given()
    community_id = _community_of(api_key)
    query = _requests_query(community_id, api_key)
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
    api_key = _key_if_given()
    community_id = _community_of(api_key)
    row = None
    if 0 < request_id < 2**63:
        row = db.session.execute(
            _requests_query(community_id, api_key).where(HelpRequest.id == request_id)
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
    # Every posted field (description, address_string, names, phone, attributes ...), kept or
    # not: what cannot be shown or saved is refused, with the field's name.
    _refuse_bad_text(request.form)
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
